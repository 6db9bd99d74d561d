"""A minimal client of xmlchat's native protocol (docs/native-protocol.md), over
plain TCP (the ``native_plain`` listener).

Login is the root element and ``<login>`` in one write, then ``<login-ok>``.
Messages go out as ``<message><to/><body/></message>``; the server answers each
with an ``<ack>``, which is counted and otherwise ignored. Input is parsed
incrementally like the XMPP driver's: a stanza is handled when its end tag has been
parsed, never per ``recv()``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from xml.sax.saxutils import escape

from lxml import etree

from benchmarks.accounts import Account
from benchmarks.drivers import Driver, Endpoint, LoginError, MessageCallback, Session

NS = "urn:xmlchat:native:1"
TAG_ROOT = f"{{{NS}}}session"
TAG_LOGIN_OK = f"{{{NS}}}login-ok"
TAG_LOGIN_FAILED = f"{{{NS}}}login-failed"
TAG_ADDRESS = f"{{{NS}}}address"
TAG_MESSAGE = f"{{{NS}}}message"
TAG_FROM = f"{{{NS}}}from"
TAG_BODY = f"{{{NS}}}body"
TAG_ACK = f"{{{NS}}}ack"
TAG_ERROR = f"{{{NS}}}error"
TAG_PING = f"{{{NS}}}ping"
TAG_CONDITION = f"{{{NS}}}condition"


class NativeProtocol(asyncio.Protocol, Session):
    def __init__(self) -> None:
        self.address = ""
        self.on_message: MessageCallback | None = None
        self.transport: asyncio.Transport | None = None
        self._parser: Any = etree.XMLPullParser(events=("start", "end"),
                                                resolve_entities=False)
        self._depth = 0
        self._root: Any = None
        self._login: asyncio.Future[Any] | None = None
        self._open = False
        self._errors = 0
        self.acks = 0

    # -- Session --------------------------------------------------------------

    def send_message(self, to: str, body: str) -> None:
        assert self.transport is not None
        self.transport.write(f"<message><to>{to}</to><body>{body}</body></message>".encode())

    def send_messages(self, items: list[tuple[str, str]]) -> None:
        assert self.transport is not None
        self.transport.write("".join(f"<message><to>{to}</to><body>{body}</body></message>"
                                     for to, body in items).encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"</session>")
            self.transport.close()
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def errors(self) -> int:
        return self._errors

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        self._settle_login(exc or ConnectionResetError("connection closed by server"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
            for event, el in self._parser.read_events():
                if event == "start":
                    self._depth += 1
                    if self._depth == 1:
                        self._root = el
                        if el.tag != TAG_ROOT:
                            self._settle_login(LoginError(f"unexpected root {el.tag}"))
                    continue
                depth = self._depth
                self._depth = depth - 1
                if depth == 2:
                    self._stanza(el)
                    self._root.remove(el)
                elif depth == 1:
                    self._settle_login(ConnectionResetError("server closed the session"))
                    self.close()
                    return
        except etree.XMLSyntaxError as e:
            self._settle_login(LoginError(f"malformed XML from server: {e}"))
            self.close()

    # -- internals ------------------------------------------------------------

    def _settle_login(self, outcome: Any) -> None:
        f = self._login
        if f is not None and not f.done():
            if isinstance(outcome, BaseException):
                f.set_exception(outcome)
            else:
                f.set_result(outcome)

    def _stanza(self, el: Any) -> None:
        tag = el.tag
        if tag == TAG_MESSAGE:
            cb = self.on_message
            if cb is not None:
                cb(el.findtext(TAG_FROM) or "", el.findtext(TAG_BODY) or "", "chat")
        elif tag == TAG_ACK:
            self.acks += 1
        elif tag == TAG_PING and self.transport is not None:
            self.transport.write(b"<pong/>")
        elif tag == TAG_ERROR:
            self._errors += 1
            if self._login is not None and not self._login.done():
                self._settle_login(LoginError(f"error: {el.findtext(TAG_CONDITION)}"))
        elif tag == TAG_LOGIN_OK:
            self._settle_login(el.findtext(TAG_ADDRESS) or "")
        elif tag == TAG_LOGIN_FAILED:
            self._settle_login(LoginError(f"login failed: {el.findtext(TAG_CONDITION)}"))

    async def login(self, account: Account, resource: str) -> None:
        assert self.transport is not None
        self._login = asyncio.get_running_loop().create_future()
        self.transport.write(
            f"<session xmlns='{NS}' version='1'><login><user>{escape(account.user)}</user>"
            f"<password>{escape(account.password)}</password>"
            f"<resource>{escape(resource)}</resource></login>".encode()
        )
        self.address = await self._login
        if not self.address:
            raise LoginError("login-ok carries no address")


class NativeDriver(Driver):
    name = "native"

    async def login(
        self, endpoint: Endpoint, account: Account, resource: str, timeout: float
    ) -> Session:
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(NativeProtocol, endpoint.host, endpoint.port), timeout
        )
        try:
            await asyncio.wait_for(proto.login(account, resource), timeout)
        except BaseException:
            if proto.transport is not None:
                proto.transport.abort()
            raise
        return proto
