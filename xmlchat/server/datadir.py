"""One server per data directory.

Two servers on one SQLite file would both accept messages, each routing only
to its own connections: a message "sent" through one reaches a user connected
to the other late (at the next login) or never. So the server takes an
exclusive ``flock`` on ``DATA_DIR/server.lock`` for its lifetime; the kernel
releases it when the process ends, however it ends (SIGKILL included), so a
stale lock never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirInUse(OSError):
    """Another running server holds the data directory."""


class DataDirLock:
    def __init__(self, data_path: Path) -> None:
        self.path = data_path / "server.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirInUse(
                f"another xmlchat server (pid {holder}) is serving {self.path.parent.resolve()}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def scram_secret(data_path: Path) -> bytes:
    """The server's secret for SCRAM's fake salts (RFC 5802 §5.1), kept in
    ``DATA_DIR/scram-secret`` so an unknown user's salt stays the same across
    restarts, as a real account's does: a salt that changed with each restart
    would tell an attacker the account does not exist."""
    path = data_path / "scram-secret"
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret
