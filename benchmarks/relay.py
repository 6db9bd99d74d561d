"""A no-XML XMPP relay: the most a Python server can do per CPU-second.

``python -m benchmarks.relay PORT`` speaks just enough XMPP for the load
generator's driver (``benchmarks/drivers/xmpp.py``) and nothing more: the
login is canned (any SASL PLAIN password is accepted, the bind answer is a
template), and a message is routed by a byte search for its ``to='…'``, its
bytes forwarded with a ``from`` spliced in. No parser, no checks, no
escaping, no storage. ``make bench`` runs it as the ``relay`` target, so the
distance between xmlchat and the limit of a Python server on this machine is
measured in the same run. It is a yardstick, not a server: never expose it.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import signal
import sys
from typing import Final

DOMAIN: Final = b"localhost"
HEADER: Final = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='r' version='1.0'>"
)
SASL_FEATURES: Final = (
    b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)
BIND_FEATURES: Final = b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
SUCCESS: Final = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
MESSAGE_END: Final = b"</message>"

# Full JID -> its connection: the whole routing table.
ROUTES: dict[bytes, Relay] = {}


def _between(data: bytes, start: bytes, end: bytes) -> bytes:
    i = data.find(start) + len(start)
    return data[i : data.find(end, i)]


class Relay(asyncio.Protocol):
    """One client: header, auth, header, bind, then stanzas split by byte search."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.step = self._header_before_auth
        self.user = b""
        self.jid = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if ROUTES.get(self.jid) is self:
            del ROUTES[self.jid]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer and self.step():
            pass

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def _take_through(self, marker: bytes) -> bytes | None:
        end = self.buffer.find(marker)
        if end < 0:
            return None
        end += len(marker)
        taken, self.buffer = self.buffer[:end], self.buffer[end:]
        return taken

    def _header(self, features: bytes) -> bool:
        start = self.buffer.find(b"<stream:stream")
        end = self.buffer.find(b">", start)
        if start < 0 or end < 0:
            return False
        self.buffer = self.buffer[end + 1 :]
        self._write(HEADER + features)
        return True

    def _header_before_auth(self) -> bool:
        if not self._header(SASL_FEATURES):
            return False
        self.step = self._auth
        return True

    def _auth(self) -> bool:
        auth = self._take_through(b"</auth>")
        if auth is None:
            return False
        token = _between(auth, b">", b"</auth>")
        self.user = base64.b64decode(token).split(b"\0")[1]
        self._write(SUCCESS)
        self.step = self._header_before_bind
        return True

    def _header_before_bind(self) -> bool:
        if not self._header(BIND_FEATURES):
            return False
        self.step = self._bind
        return True

    def _bind(self) -> bool:
        iq = self._take_through(b"</iq>")
        if iq is None:
            return False
        self.jid = self.user + b"@" + DOMAIN + b"/" + _between(iq, b"<resource>", b"</resource>")
        ROUTES[self.jid] = self
        self._write(
            b"<iq type='result' id='" + _between(iq, b"id='", b"'") + b"'>"
            b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>" + self.jid + b"</jid></bind></iq>"
        )
        self.step = self._stanza
        return True

    def _stanza(self) -> bool:
        buffer = self.buffer
        if buffer.startswith(b"<message"):
            end = buffer.find(MESSAGE_END)
            if end < 0:
                return False
            end += len(MESSAGE_END)
            stanza, self.buffer = buffer[:end], buffer[end:]
            target = ROUTES.get(_between(stanza, b" to='", b"'"))
            if target is not None and target.transport is not None:
                target.transport.write(b"<message from='" + self.jid + b"'" + stanza[8:])
            return True
        if buffer.startswith(b"</stream:stream>"):
            assert self.transport is not None
            self._write(b"</stream:stream>")
            self.transport.close()
            self.buffer = b""
            return False
        # <presence/>, whitespace, anything else: dropped up to its end.
        end = buffer.find(b">")
        if end < 0:
            return False
        cut = end
        if buffer.startswith(b"<") and buffer[end - 1 : end] != b"/":  # <x ...>...</x>
            close = buffer.find(b"</", end)
            cut = buffer.find(b">", close) if close >= 0 else -1
            if cut < 0:
                return False
        self.buffer = buffer[cut + 1 :]
        return True


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(Relay, "127.0.0.1", port, backlog=1024)
    print(f"relay on 127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    port = int(sys.argv[1])
    if importlib.util.find_spec("uvloop") is not None:  # as xmlchat's default
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(port))
    else:
        asyncio.run(serve(port))


if __name__ == "__main__":
    main()
