"""A raw TCP peer for hostile-input tests: bytes in, bytes out, no client logic."""

from __future__ import annotations

import socket
import ssl
import time


class RawPeer:
    def __init__(
        self,
        port: int,
        context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
        source: str | None = None,
    ) -> None:
        """``source``: the local address to connect from (127.0.0.2 is another client IP)."""
        where = (source, 0) if source else None
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=where)
        self.sock: socket.socket = context.wrap_socket(sock, server_hostname="localhost") if context else sock
        self.received = b""
        self.closed = False

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def read_until(self, needle: bytes | str, timeout: float = 5.0) -> bytes:
        """Read until ``needle`` has arrived (or the peer closed); return all so far."""
        want = needle.encode() if isinstance(needle, str) else needle
        deadline = time.monotonic() + timeout
        while want not in self.received and not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        return self.received

    def read_until_closed(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        return self.received

    def _recv(self, deadline: float) -> None:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return
        except (ConnectionError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.closed = True
        self.received += chunk

    def close(self) -> None:
        self.sock.close()


NATIVE_OPEN = "<session xmlns='urn:xmlchat:native:1' version='1'>"


def native_login(
    port: int, user: str, password: str, source: str | None = None, receipts: bool = False
) -> RawPeer:
    """Logged in; with ``receipts``, messages come numbered and stay stored until confirmed."""
    peer = RawPeer(port, source=source)
    extra = "<receipts/>" if receipts else ""
    peer.send(f"{NATIVE_OPEN}<login><user>{user}</user><password>{password}</password>{extra}</login>")
    assert b"<login-ok>" in peer.read_until("</login-ok>")
    return peer
