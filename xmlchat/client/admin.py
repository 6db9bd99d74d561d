"""The admin channel, the client's side: what ``xmlchat who``, ``kick``, … say
to a running server (as ``prosodyctl shell`` or ``ejabberdctl`` do).

The channel is a Unix socket in the data directory, ``DATA_DIR/admin.sock``,
mode 0600: only the server's own user (and root) can connect, and the server
checks the peer's uid again (``SO_PEERCRED``). One JSON object per line each
way::

    → {"command": "kick", "args": {"jid": "alice@localhost"}}
    ← {"ok": true, "result": {"closed": 2}}
    ← {"ok": false, "error": "no such user bob@localhost"}

A connection may carry several requests; each gets one answer, in order.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

SOCKET_NAME: Final = "admin.sock"
# An announcement, a password: requests are small. Answers (who, queue) may be longer.
MAX_REQUEST_BYTES: Final = 64 * 1024
# sockaddr_un holds 108 bytes on Linux; longer paths go through /proc (see short_path).
_MAX_SUN_PATH: Final = 100


class ServerNotRunning(Exception):
    """Nothing answers on the data directory's admin socket."""


class AdminError(Exception):
    """The server refused the request; the message says why."""


def socket_path(data_path: Path) -> Path:
    return data_path / SOCKET_NAME


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A name for ``path`` that fits in a sockaddr_un: itself when short,
    else ``/proc/self/fd/N/NAME`` through an open handle on its directory
    (deep test and home directories exceed the 108-byte limit)."""
    if len(os.fsencode(path)) <= _MAX_SUN_PATH or not Path("/proc/self/fd").is_dir():
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def request(data_path: Path, command: str, timeout: float = 60.0, **args: Any) -> Any:
    """Send one request to the server serving ``data_path``; return its result.

    Raises :class:`ServerNotRunning` when no server listens there, and
    :class:`AdminError` when it refuses the request.
    """
    path = socket_path(data_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with short_path(path) as name:
            try:
                sock.connect(name)
            except (FileNotFoundError, ConnectionRefusedError):
                raise ServerNotRunning(f"no server is running on {data_path}") from None
            except PermissionError:
                raise AdminError(
                    f"permission denied on {path}: run this as the server's user (or root)"
                ) from None
        sock.sendall(json.dumps({"command": command, "args": args}).encode() + b"\n")
        answer = _read_line(sock)
    finally:
        sock.close()
    if not answer.get("ok"):
        raise AdminError(str(answer.get("error", "refused")))
    return answer.get("result")


def _read_line(sock: socket.socket) -> dict[str, Any]:
    chunks: list[bytes] = []
    while not chunks or not chunks[-1].endswith(b"\n"):
        data = sock.recv(65536)
        if not data:
            if not chunks:
                raise AdminError("the server closed the admin channel without answering")
            break
        chunks.append(data)
    answer = json.loads(b"".join(chunks))
    if not isinstance(answer, dict):
        raise AdminError("unreadable answer on the admin channel")
    return answer
