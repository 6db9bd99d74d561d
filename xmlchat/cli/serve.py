"""``serve``: run the server until SIGINT or SIGTERM, then shut down cleanly."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from xmlchat.config import Config
from xmlchat.log import say


def register(sub: Any, common: argparse.ArgumentParser, listener_flags: tuple[str, ...]) -> None:
    parser = sub.add_parser("serve", parents=[common], help="run the server")
    for flag in listener_flags:
        parser.add_argument(f"--{flag}", metavar="ADDRESS:PORT", help=f"enable the {flag} listener here")
    parser.set_defaults(run=_serve, server_logging=True)


def _serve(args: argparse.Namespace, config: Config) -> int:
    from xmlchat.server.app import Server

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            server = await Server.open(config)
            bound = await server.start()
        except (OSError, ValueError) as e:
            say(f"xmlchat: cannot start: {e}", config.log.format, error=True, logger="xmlchat.serve")
            return 1
        for b in bound:
            say(str(b), config.log.format, logger="xmlchat.serve")
        ready = f"ready: serving {', '.join(config.hosts)}; data in {config.data_path.resolve()}"
        say(ready, config.log.format, logger="xmlchat.serve")
        await stop.wait()
        logging.getLogger("xmlchat").info("shutting down")
        await server.stop()
        return 0

    return asyncio.run(serve())
