"""``serve``: run the server until SIGINT or SIGTERM, then shut down cleanly.

SIGTERM (and SIGINT) drain: the listeners stop accepting, what is being
handled finishes, every client is told ``system-shutdown``, storage is
flushed, and the process exits 0. SIGHUP reloads the configuration's log,
limits and certificate without dropping a session (:mod:`xmlchat.server.reload`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from xmlchat.config import Config
from xmlchat.log import say
from xmlchat.storage import SchemaTooNew

log = logging.getLogger("xmlchat")


def register(sub: Any, common: argparse.ArgumentParser, listener_flags: tuple[str, ...]) -> None:
    parser = sub.add_parser("serve", parents=[common], help="run the server")
    for flag in listener_flags:
        parser.add_argument(f"--{flag}", metavar="ADDRESS:PORT", help=f"enable the {flag} listener here")
    parser.add_argument(
        "--node-name", metavar="NAME", help="this node's name in a cluster (cluster.node_name)"
    )
    parser.set_defaults(run=_serve, server_logging=True)


def _serve(args: argparse.Namespace, config: Config) -> int:
    from xmlchat.server import runtime
    from xmlchat.server.app import Server

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            _on_signal(loop, sig, stop.set)
        reloads: set[asyncio.Task[None]] = set()
        started: list[Server] = []

        def reload() -> None:
            # Before the server is up there is nothing to reload (and SIGHUP must not kill it).
            for server in started:
                task = asyncio.create_task(_reload(server))
                reloads.add(task)
                task.add_done_callback(reloads.discard)

        _on_signal(loop, signal.SIGHUP, reload)
        say(f"data directory: {config.data_path}", config.log.format, logger="xmlchat.serve")
        try:
            server = await Server.open(config, args.load_config)
            bound = await server.start()
        except (OSError, ValueError, SchemaTooNew) as e:
            say(f"xmlchat: cannot start: {e}", config.log.format, error=True, logger="xmlchat.serve")
            return 1
        started.append(server)
        runtime.tune_collector(config.runtime)
        log.info("event loop: %s", runtime.loop_name())
        for b in bound:
            say(str(b), config.log.format, logger="xmlchat.serve")
        if server.certificate is not None:
            say(f"certificate: {server.certificate} (clients: --cafile this file)", config.log.format,
                logger="xmlchat.serve")  # fmt: skip
        say(f"ready: serving {', '.join(config.hosts)}; data in {config.data_path}", config.log.format,
            logger="xmlchat.serve")  # fmt: skip
        await stop.wait()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload during shutdown has nothing to apply
        log.info("shutting down")
        await server.stop()
        return 0

    try:
        loop_factory = runtime.loop_factory(config)
    except (ValueError, ImportError) as e:
        say(f"xmlchat: cannot start: {e}", config.log.format, error=True, logger="xmlchat.serve")
        return 1
    return runtime.run(serve(), loop_factory)


def _on_signal(loop: asyncio.AbstractEventLoop, sig: signal.Signals, callback: Callable[[], None]) -> None:
    """Run ``callback`` in ``loop`` when ``sig`` comes.

    Not ``loop.add_signal_handler``: asyncio's loop hears of that signal only
    through a byte written to its self-pipe, which every call_soon_threadsafe
    (the store's thread, the executor's) also writes to; while the loop is
    busy a burst of those fills the pipe, the signal's byte is dropped and the
    server never stops. A Python handler runs in the main thread at the next
    bytecode whatever the pipe holds; the loop's wake-up byte, written when
    there is room, still wakes it from an idle wait; with no asyncio handler
    set there is no wake-up fd, and the signal interrupts the loop's select(),
    whose retry (PEP 475) runs the Python handler first."""
    signal.signal(sig, lambda *_: loop.call_soon_threadsafe(callback))


async def _reload(server: Any) -> None:
    try:
        await server.reload()
    except ValueError as e:  # a bad file or certificate: the running settings stay
        log.error("SIGHUP: not reloaded: %s", e)
