"""A minimal XMPP client for load generation (RFC 6120/6121), over plain TCP.

Login: stream header, SASL PLAIN, stream restart, resource binding, the RFC 3921
session only when a server demands it, initial presence. Input is parsed
incrementally with one :class:`lxml.etree.XMLPullParser` per connection: bytes are
fed as they come, and a stanza is handled when its end tag has been parsed, however
the stream was cut into ``recv()`` chunks. Completed stanzas are removed from the
tree, so a long-lived session's memory stays flat.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections import deque
from typing import Any, cast

from lxml import etree

from benchmarks.accounts import Account
from benchmarks.drivers import Driver, Endpoint, LoginError, MessageCallback, Session

NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_PING = "urn:xmpp:ping"

TAG_STREAM = f"{{{NS_STREAM}}}stream"
TAG_STREAM_ERROR = f"{{{NS_STREAM}}}error"
TAG_FEATURES = f"{{{NS_STREAM}}}features"
TAG_MECHANISM = f"{{{NS_SASL}}}mechanism"
TAG_SUCCESS = f"{{{NS_SASL}}}success"
TAG_BIND = f"{{{NS_BIND}}}bind"
TAG_JID = f"{{{NS_BIND}}}jid"
TAG_SESSION = f"{{{NS_SESSION}}}session"
TAG_OPTIONAL = f"{{{NS_SESSION}}}optional"
TAG_MESSAGE = "{jabber:client}message"
TAG_BODY = "{jabber:client}body"
TAG_IQ = "{jabber:client}iq"
TAG_PRESENCE = "{jabber:client}presence"
NS_MUC = "http://jabber.org/protocol/muc"

_ids = itertools.count(1)

Element = Any  # lxml's _Element; kept loose so lxml-stubs are not required here


def _header(domain: str) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    ).encode()


def _condition(el: Element) -> str:
    names = [etree.QName(c).localname for c in el if isinstance(c.tag, str)]
    return ",".join(names) or "?"


class XmppProtocol(asyncio.Protocol, Session):
    def __init__(self) -> None:
        self.address = ""
        self.on_message: MessageCallback | None = None
        self.transport: asyncio.Transport | None = None
        self._parser = self._new_parser()
        self._depth = 0
        self._root: Element = None
        self._logged_in = False
        self._pending: deque[Element] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._failure: Exception | None = None
        self._open = False
        self._errors = 0
        # Room joins waiting for our own occupant presence: occupant JID -> future.
        self._joins: dict[str, asyncio.Future[None]] = {}

    # -- Session --------------------------------------------------------------

    def send_message(self, to: str, body: str) -> None:
        assert self.transport is not None
        self.transport.write(
            f"<message to='{to}' type='chat'><body>{body}</body></message>".encode()
        )

    def send_messages(self, items: list[tuple[str, str]]) -> None:
        assert self.transport is not None
        self.transport.write(
            "".join(
                f"<message to='{to}' type='chat'><body>{body}</body></message>"
                for to, body in items
            ).encode()
        )

    async def join_room(self, room: str, nick: str, timeout: float) -> None:
        assert self.transport is not None
        occupant = f"{room}/{nick}"
        joined = self._joins[occupant] = asyncio.get_running_loop().create_future()
        self.transport.write(
            f"<presence to='{occupant}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>".encode()
        )
        try:
            await asyncio.wait_for(joined, timeout)
        finally:
            self._joins.pop(occupant, None)

    def send_groupchat(self, room: str, body: str) -> None:
        assert self.transport is not None
        self.transport.write(f"<message to='{room}' type='groupchat'><body>{body}</body></message>".encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"</stream:stream>")
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
        # (uvloop's transports are not registered subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        self._open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        self._fail(exc or ConnectionResetError("connection closed by server"))

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        try:
            parser.feed(data)
            for event, el in parser.read_events():
                if event == "start":
                    self._depth += 1
                    if self._depth == 1:
                        self._root = el
                        self._push(el)  # the stream header
                    continue
                # "end"
                depth = self._depth
                self._depth = depth - 1
                if depth == 2:
                    self._stanza(el)
                    if self._parser is not parser:
                        return  # stream restarted: the rest belongs to the old stream
                    self._root.remove(el)
                elif depth == 1:
                    self._fail(ConnectionResetError("server closed the stream"))
                    self.close()
                    return
        except etree.XMLSyntaxError as e:
            self._fail(LoginError(f"malformed XML from server: {e}"))
            self.close()

    # -- internals ------------------------------------------------------------

    @staticmethod
    def _new_parser() -> Any:
        return etree.XMLPullParser(events=("start", "end"), resolve_entities=False)

    def _stanza(self, el: Element) -> None:
        tag = el.tag
        if self._logged_in:
            if tag == TAG_MESSAGE:
                mtype = el.get("type")
                if mtype == "error":
                    self._errors += 1
                cb = self.on_message
                if cb is not None:
                    cb(el.get("from", ""), el.findtext(TAG_BODY) or "", mtype)
            elif tag == TAG_IQ:
                self._answer_iq(el)
            elif tag == TAG_PRESENCE and self._joins:
                self._joined(el)
            elif tag == TAG_STREAM_ERROR:
                self._errors += 1
                self._fail(ConnectionResetError(f"stream error: {_condition(el)}"))
            # presence and anything else: ignored
            return
        if tag == TAG_STREAM_ERROR:
            self._fail(LoginError(f"stream error: {_condition(el)}"))
            return
        self._push(el)

    def _joined(self, el: Element) -> None:
        waiter = self._joins.get(el.get("from", ""))
        if waiter is None or waiter.done():
            return
        if el.get("type") == "error":
            self._errors += 1
            err = el.find("{jabber:client}error")
            waiter.set_exception(LoginError(f"join refused: {_condition(err)}"))
        else:
            waiter.set_result(None)

    def _answer_iq(self, el: Element) -> None:
        kind = el.get("type")
        if kind not in ("get", "set") or self.transport is None:
            return
        iq_id = el.get("id", "")
        frm = el.get("from")
        to = f" to='{frm}'" if frm else ""
        if el.find(f"{{{NS_PING}}}ping") is not None:
            self.transport.write(f"<iq type='result' id='{iq_id}'{to}/>".encode())
        else:
            self.transport.write(
                f"<iq type='error' id='{iq_id}'{to}><error type='cancel'>"
                "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "</error></iq>".encode()
            )

    def _push(self, el: Element) -> None:
        self._pending.append(el)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _next(self) -> Element:
        while not self._pending:
            if self._failure is not None:
                raise self._failure
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        return self._pending.popleft()

    async def _stream(self, domain: str) -> Element:
        """Open a stream; return its features."""
        assert self.transport is not None
        self._parser = self._new_parser()
        self._depth = 0
        self._pending.clear()
        self.transport.write(_header(domain))
        header = await self._next()
        if header.tag != TAG_STREAM:
            raise LoginError(f"expected a stream header, got {header.tag}")
        features = await self._next()
        if features.tag != TAG_FEATURES:
            raise LoginError(f"expected stream features, got {features.tag}")
        return features

    async def _iq(self, payload: str) -> Element:
        assert self.transport is not None
        iq_id = f"b{next(_ids)}"
        self.transport.write(f"<iq type='set' id='{iq_id}'>{payload}</iq>".encode())
        while True:
            el = await self._next()
            if el.tag == TAG_IQ and el.get("id") == iq_id:
                if el.get("type") != "result":
                    err = el.find("{jabber:client}error")
                    raise LoginError(f"iq {payload[:20]}… failed: {_condition(err)}")
                return el

    async def login(self, domain: str, account: Account, resource: str) -> None:
        assert self.transport is not None
        features = await self._stream(domain)
        mechanisms = [m.text for m in features.iter(TAG_MECHANISM)]
        if "PLAIN" not in mechanisms:
            raise LoginError(f"SASL PLAIN not offered (offered: {mechanisms})")
        creds = base64.b64encode(f"\0{account.user}\0{account.password}".encode()).decode()
        self.transport.write(
            f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>".encode()
        )
        answer = await self._next()
        if answer.tag != TAG_SUCCESS:
            raise LoginError(f"SASL failed for {account.user}: {_condition(answer)}")
        features = await self._stream(domain)
        if features.find(TAG_BIND) is None:
            raise LoginError("no resource binding offered")
        bound = await self._iq(f"<bind xmlns='{NS_BIND}'><resource>{resource}</resource></bind>")
        self.address = bound.findtext(f"{TAG_BIND}/{TAG_JID}") or ""
        if not self.address:
            raise LoginError("bind result carries no JID")
        session = features.find(TAG_SESSION)
        if session is not None and session.find(TAG_OPTIONAL) is None:
            await self._iq(f"<session xmlns='{NS_SESSION}'/>")
        self._pending.clear()
        self._logged_in = True
        self.transport.write(b"<presence/>")


class XmppDriver(Driver):
    name = "xmpp"

    async def login(
        self, endpoint: Endpoint, account: Account, resource: str, timeout: float
    ) -> Session:
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(XmppProtocol, endpoint.host, endpoint.port), timeout
        )
        try:
            await asyncio.wait_for(proto.login(endpoint.domain, account, resource), timeout)
        except BaseException:
            if proto.transport is not None:
                proto.transport.abort()
            raise
        return proto
