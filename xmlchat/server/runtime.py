"""The process around the server: which event loop runs it, and the collector.

Both are settings of ``[runtime]`` (docs/configuration.md); why each default,
with the measurements, is in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from xmlchat.config import Config, Listener, Runtime

log = logging.getLogger("xmlchat")

T = TypeVar("T")


def direct_tls_listeners(config: Config) -> list[str]:
    """The enabled listeners whose connections start with a TLS handshake."""
    listeners = config.listeners
    return [
        f.name
        for f in dataclasses.fields(listeners)
        if isinstance(listener := getattr(listeners, f.name), Listener)
        and listener.enabled
        and listener.tls == "direct"
    ]


def loop_factory(config: Config) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when chosen, or (``auto``) when installed and safe; None is asyncio's own.

    uvloop does the transport work (reads, writes) in C: less CPU per message
    and a lower round trip (docs/performance.md). But a direct-TLS connection
    is admitted first and upgraded with ``start_tls``, and uvloop loses a
    ClientHello read before that call and the handshake hangs
    (MagicStack/uvloop#707, open), so ``auto`` keeps asyncio whenever a
    direct-TLS listener is on, and ``uvloop`` is refused then."""
    choice = config.runtime.event_loop
    if choice == "asyncio":
        return None
    direct = direct_tls_listeners(config)
    if choice == "auto" and (direct or importlib.util.find_spec("uvloop") is None):
        return None
    if direct:
        names = ", ".join(direct)
        raise ValueError(f"runtime.event_loop = 'uvloop' cannot serve direct-TLS listeners ({names}) yet")
    import uvloop  # a missing uvloop with event_loop = "uvloop" fails here, loudly

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], factory: Callable[[], asyncio.AbstractEventLoop] | None) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` chose."""
    with asyncio.Runner(loop_factory=factory) as runner:
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
