"""The admin channel, the server's side: a Unix socket in the data directory.

The protocol is described in :mod:`xmlchat.client.admin`. Only the server's
user (or root) may use it: the socket is created mode 0600, and each peer's
uid is checked with ``SO_PEERCRED`` as well (a directory's permissions can
be looser than the socket's). The server holds the data directory's lock
before it opens the channel, so a socket file left by a server that died is
stale and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from xmlchat.client.admin import MAX_REQUEST_BYTES, short_path, socket_path
from xmlchat.routing.api import AdminCommandError

log = logging.getLogger("xmlchat.admin")

Command = Callable[[Mapping[str, Any]], Awaitable[Any]]
# Arguments worth a log line: never a password or an announcement's text.
_LOGGED_ARGS = ("jid", "level", "file", "host")


class AdminChannel:
    def __init__(self, data_path: Path, commands: Mapping[str, Command]) -> None:
        self.path = socket_path(data_path)
        self.commands = commands
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # stale: we hold the data directory's lock
        with short_path(self.path) as name:
            # The socket is born 0600 (no moment at the umask's mode).
            old = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(self._serve, name, limit=MAX_REQUEST_BYTES)
            finally:
                os.umask(old)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _peer_allowed(writer.get_extra_info("socket")):
                log.warning("admin: refused a peer of another user")
                await _answer(writer, {"ok": False, "error": "permission denied"})
                return
            while line := await reader.readline():
                await _answer(writer, await self.answer(line))
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # a client gone, or a line over the limit: nothing to answer
        finally:
            writer.close()

    async def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            name = request["command"]
            args = request.get("args") or {}
            if not isinstance(name, str) or not isinstance(args, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": 'bad request: expected {"command": NAME, "args": {...}}'}
        command = self.commands.get(name)
        if command is None:
            known = ", ".join(sorted(self.commands))
            return {"ok": False, "error": f"unknown command {name!r}; known: {known}"}
        shown = " ".join(f"{k}={args[k]}" for k in _LOGGED_ARGS if k in args)
        log.info("admin: %s %s", name, shown)
        try:
            return {"ok": True, "result": await command(args)}
        except AdminCommandError as e:
            return {"ok": False, "error": str(e)}
        except Exception:
            log.exception("admin: %s failed", name)
            return {"ok": False, "error": "internal error (the server's log has the details)"}


def _peer_allowed(sock: socket.socket | None) -> bool:
    """The peer runs as the server's user, or as root."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True  # no way to ask; the socket's mode still protects it
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (os.geteuid(), 0)


async def _answer(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
    writer.write(json.dumps(answer, default=str).encode() + b"\n")
    await writer.drain()
