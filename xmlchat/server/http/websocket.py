"""WebSockets: XMPP (RFC 7395) at ``/xmpp-websocket``, the native protocol at ``/native-websocket``.

A :class:`WebSocketTransport` carries one connection: each unit the core
queues (with the message framing: a whole element) leaves as one text
message, and each message read is fed to the core. The XMPP and native front
ends (``server/xmpp.py``, ``server/native.py``) run on it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Final

from aiohttp import WSMsgType, web

from xmlchat.server.transport import Transport

log = logging.getLogger(__name__)

XMPP_SUBPROTOCOL: Final = "xmpp"  # RFC 7395 §3.1
NATIVE_SUBPROTOCOL: Final = "xmlchat-native"

# Queued output above this makes drain() wait (the TCP transport's default high-water mark).
_HIGH_WATER: Final = 64 * 1024


class WebSocketTransport(Transport):
    """One WebSocket: a message per unit out, a message's bytes per read.

    aiohttp's send is a coroutine, so units wait in a queue that one writer
    task empties in order; :meth:`buffered` counts them, so a slow reader
    is cut off exactly as on TCP.
    """

    kind = "websocket"
    messages = True

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, encrypted: bool) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        super().__init__(f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?", encrypted)
        self.ws = ws
        self._socket = request.transport
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._emptied = asyncio.Event()
        self._closing = False
        self._ping: asyncio.Task[None] | None = None
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.peer}")

    async def read(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type is WSMsgType.TEXT:
                return str(message.data).encode("utf-8")
            if message.type is WSMsgType.BINARY:
                return bytes(message.data)  # read the same; the parser checks the UTF-8
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return b""
            # PING and PONG are aiohttp's to answer.

    def write(self, units: list[bytes]) -> None:
        if self._closing:
            return
        self._queue.extend(units)
        self._queued += sum(map(len, units))
        self._emptied.clear()
        self._wake.set()

    def buffered(self) -> int:
        return self._queued

    async def drain(self) -> None:
        while self._queued > _HIGH_WATER and not self.is_closing():
            await self._emptied.wait()
        if self.ws.closed:
            raise ConnectionResetError("websocket closed")

    def is_closing(self) -> bool:
        return self._closing or self.ws.closed

    def close(self) -> None:
        """Send what is queued, then the close frame (RFC 6455 §5.5.1)."""
        self._closing = True
        self._wake.set()

    def abort(self) -> None:
        self._closing = True
        self._queue.clear()
        self._queued = 0
        self._writer.cancel()
        if self._socket is not None:
            self._socket.abort()

    def keepalive(self) -> None:
        """A WebSocket ping (RFC 6455 §5.5.2): RFC 7395 has no whitespace keepalive."""
        if self._ping is None or self._ping.done():
            self._ping = asyncio.create_task(self._send_ping())

    async def _send_ping(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.ping()

    async def finished(self, timeout: float = 5.0) -> None:
        """Wait for the writer (and the close handshake) to end."""
        self.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._writer), timeout)
        if not self._writer.done():
            self._writer.cancel()

    async def _write_loop(self) -> None:
        ws = self.ws
        try:
            while True:
                while self._queue:
                    unit = self._queue.popleft()
                    # Our units are UTF-8 already: no decoding to re-encode (send_str).
                    await ws.send_frame(unit, WSMsgType.TEXT)
                    self._queued -= len(unit)
                self._emptied.set()
                if self._closing:
                    break
                self._wake.clear()
                await self._wake.wait()
        except (ConnectionError, RuntimeError) as e:
            log.debug("websocket write failed: %s", e)
        finally:
            self._closing = True
            self._queue.clear()
            self._queued = 0
            self._emptied.set()
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await ws.close()
