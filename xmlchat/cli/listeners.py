"""Which listeners ``check`` and ``health`` look at, and what the running
server (if any) says it serves.

``--host H`` replaces every listener's address (a container's service name,
a machine's public address); ``--port P`` narrows to one listener: the one
named by ``--listener``, else the one configured on port P, else ``native``,
moved to port P.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from xmlchat.client import admin
from xmlchat.config import Config, Listener


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="look at this address instead of the configured ones")
    parser.add_argument("--port", type=int, help="look at one listener, on this port")
    parser.add_argument(
        "--listener",
        choices=("native", "native_plain", "xmpp", "xmpp_tls", "http", "https", "component"),
        help="which listener --port is (default: the one configured on that port, else native)",
    )


@dataclass(frozen=True, slots=True)
class Running:
    """The server answering on the data directory's admin channel."""

    pid: int
    bound: dict[str, int]  # listener name -> the port it listens on

    def serves(self, name: str, listener: Listener) -> Listener | None:
        """``listener`` as the running server serves it (its port 0 resolved), if it does."""
        port = self.bound.get(name)
        if port is None or listener.port not in (0, port):
            return None
        return dataclasses.replace(listener, port=port)


def running_server(config: Config) -> Running | None:
    try:
        stats: dict[str, Any] = admin.request(config.data_path, "stats", timeout=5)
    except (admin.ServerNotRunning, admin.AdminError, OSError):
        return None
    bound = {str(b["name"]): int(b["port"]) for b in stats.get("listeners", [])}
    return Running(int(stats["pid"]), bound)


def selected(config: Config, args: argparse.Namespace, running: Running | None = None) -> dict[str, Listener]:
    """The enabled listeners, or the one ``--port`` names, at ``--host``.
    The running server's ports (``running``) name a listener configured on port 0."""
    every = {name: getattr(config.listeners, name) for name in config.listeners.__dataclass_fields__}
    chosen = {name: listener for name, listener in every.items() if listener.enabled}
    port = getattr(args, "port", None)
    if port is not None:
        bound = running.bound if running is not None else {}
        name = getattr(args, "listener", None) or next(
            (n for n, listener in every.items() if port in (listener.port, bound.get(n))), "native"
        )
        chosen = {name: dataclasses.replace(every[name], port=port, enabled=True)}
    host = getattr(args, "host", None)
    if host:
        chosen = {name: dataclasses.replace(listener, address=host) for name, listener in chosen.items()}
    return chosen
