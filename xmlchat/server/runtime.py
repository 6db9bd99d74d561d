"""The process around the server: which event loop runs it, and the collector.

Both are settings of ``[runtime]`` (docs/configuration.md); why each default,
with the measurements, is in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from xmlchat.config import Runtime

log = logging.getLogger("xmlchat")

T = TypeVar("T")


def loop_factory(runtime: Runtime) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when chosen or (``auto``) installed; None is asyncio's own.

    uvloop does the transport work (reads, writes, TLS) in C, and its TLS
    transport does not zero a 256 KiB read buffer per connection as
    asyncio's does: both matter to a chat server (docs/performance.md)."""
    if runtime.event_loop == "asyncio":
        return None
    if runtime.event_loop == "auto" and importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop  # a missing uvloop with event_loop = "uvloop" fails here, loudly

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], runtime: Runtime) -> T:
    """``asyncio.run(main)`` on the configured loop."""
    with asyncio.Runner(loop_factory=loop_factory(runtime)) as runner:
        return runner.run(main)


def loop_name() -> str:
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__}.{type(loop).__name__}"


def tune_collector(runtime: Runtime) -> None:
    """Once the server is up: fewer young collections, and the start-up heap
    (modules, the schema, tables) frozen so full collections skip it.

    A full collection walks every tracked object and stops the whole server
    meanwhile; what start-up allocated lives as long as the process, so
    walking it again and again only adds to the pause."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(runtime.gc_threshold, middle, oldest)
    if runtime.gc_freeze:
        gc.collect()
        gc.freeze()
    log.info("gc: threshold %d, %d objects frozen", runtime.gc_threshold, gc.get_freeze_count())
