"""Where a connection's bytes come from and go to: a TCP stream, or a message transport.

A :class:`~xmlchat.server.connection.Connection` drives one sans-IO core and
knows nothing of sockets: it reads with :meth:`Transport.read`, hands the
units the core queued (a header, an element, a closing tag) to
:meth:`Transport.write`, and asks how far behind the peer is. A TCP stream
writes them back to back; a WebSocket (``server/http/websocket.py``) sends each
as one message; a BOSH session (``server/http/bosh.py``) wraps them in
``<body>`` responses. The XMPP and native front ends run unchanged on each.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import ssl
from typing import Final

READ_SIZE: Final = 64 * 1024


class Transport(abc.ABC):
    """One connection's I/O, as the connection sees it."""

    # "tcp", "websocket" or "bosh": for logs.
    kind: str = "?"
    # Each unit travels as a message of its own (WebSocket, BOSH), so it must
    # stand alone: the cores use their message framing (RFC 7395 for XMPP).
    messages: bool = False

    def __init__(self, peer: str, encrypted: bool) -> None:
        self.peer = peer  # "address:port"
        # The transport is confidential: TLS here, or a proxy's the operator vouches for.
        self.encrypted = encrypted

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next bytes from the peer; b"" when it is gone."""

    @abc.abstractmethod
    def write(self, units: list[bytes]) -> None:
        """Send what the core queued, in order, without waiting."""

    @abc.abstractmethod
    def buffered(self) -> int:
        """Bytes written but not yet taken by the peer's side of the transport."""

    @abc.abstractmethod
    async def drain(self) -> None:
        """Wait until :meth:`buffered` is below the transport's low-water mark."""

    @abc.abstractmethod
    def is_closing(self) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Close after what was written (a TCP FIN, a WebSocket close frame)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the connection now, written or not (a slow reader)."""

    @abc.abstractmethod
    def keepalive(self) -> None:
        """A sign of life for a peer with no session yet (no stanza may be sent)."""

    @property
    def can_start_tls(self) -> bool:
        return False

    async def start_tls(self, context: ssl.SSLContext, handshake_timeout: float | None = None) -> str:
        """Upgrade in place (STARTTLS, or direct TLS after admission); returns
        the TLS version. A handshake longer than ``handshake_timeout`` seconds
        raises ConnectionAbortedError (asyncio's)."""
        raise NotImplementedError(f"no STARTTLS over {self.kind}")


def forget_connection_tracebacks() -> None:
    """A TCP stream's reader keeps the exception that ended it (a reset, a
    broken pipe) and that exception its traceback, whose frames hold the
    connection that was reading or writing: a cycle per ended connection,
    with its buffers, left to the garbage collector (which the server runs
    rarely: ``[runtime] gc_threshold``). Dropped where the exception is
    stored; the connection logs the reason, never that traceback."""
    protocol = asyncio.streams.StreamReaderProtocol
    if getattr(protocol, "_xmlchat_forgets", False):
        return
    original = protocol.connection_lost

    def connection_lost(self: asyncio.streams.StreamReaderProtocol, exc: Exception | None) -> None:
        if exc is not None:
            exc.__traceback__ = None
        original(self, exc)

    protocol.connection_lost = connection_lost  # type: ignore[method-assign, assignment]
    protocol._xmlchat_forgets = True  # type: ignore[attr-defined]


class StreamTransport(Transport):
    """A TCP connection (asyncio streams): units written back to back."""

    kind = "tcp"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, encrypted: bool) -> None:
        peer = writer.get_extra_info("peername")
        super().__init__(f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer), encrypted)
        self.reader, self.writer = reader, writer
        # asyncio's stream protocol keeps its drain() waiters in a deque, 760
        # bytes for every connection though one rarely waits; a list does the
        # same (append, remove, iterate) in 56.
        protocol = writer.transport.get_protocol()
        if isinstance(getattr(protocol, "_drain_waiters", None), collections.deque):
            protocol._drain_waiters = list(protocol._drain_waiters)  # type: ignore[attr-defined]

    @property
    def address(self) -> str:
        peer = self.writer.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    async def read(self) -> bytes:
        return await self.reader.read(READ_SIZE)

    def write(self, units: list[bytes]) -> None:
        self.writer.write(b"".join(units))

    def buffered(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        await self.writer.drain()

    def is_closing(self) -> bool:
        return self.writer.is_closing()

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    def abort(self) -> None:
        self.writer.transport.abort()

    def keepalive(self) -> None:
        self.writer.write(b" ")  # RFC 6120 §4.6.1 whitespace keepalive (native: ignored whitespace)

    @property
    def can_start_tls(self) -> bool:
        return True

    async def start_tls(self, context: ssl.SSLContext, handshake_timeout: float | None = None) -> str:
        await self.writer.drain()
        await self.writer.start_tls(context, ssl_handshake_timeout=handshake_timeout)
        self.encrypted = True
        return str(self.writer.get_extra_info("ssl_object").version())
