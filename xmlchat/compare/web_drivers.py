"""XMPP clients over HTTP for the scenarios: RFC 7395 WebSocket and XEP-0206 BOSH.

slixmpp has no WebSocket or BOSH transport, so these are small clients of
our own on aiohttp, doing what a browser client (Strophe.js, Converse.js)
does: SCRAM-SHA-256, the stream restart, bind, initial presence and the
roster — the same login as :class:`~xmlchat.compare.clients.XmppDriver` —
then messages, and answers to the server's XEP-0199 pings.

* :class:`WebSocketDriver`: one long-lived connection, one element per
  WebSocket message.
* :class:`BoshDriver` with ``hold=1``: long polling. One empty request is
  always held by the server; stanzas to send go in a second request, and
  whatever queued up waits for the next free one (at most ``requests``
  in flight, XEP-0124 §11).
* :class:`BoshDriver` with ``hold=0``: short polling (XEP-0124 §12). Every
  request is answered at once; the client asks again every ``interval``
  seconds, and posts a message as soon as it is written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import secrets
import ssl
import time
from typing import Final

import aiohttp
from lxml import etree
from scramp import ScramClient

from xmlchat.compare.clients import RESOURCE, ChatDriver, DriverFailed

FRAMING: Final = "urn:ietf:params:xml:ns:xmpp-framing"
CLIENT: Final = "jabber:client"
SASL: Final = "urn:ietf:params:xml:ns:xmpp-sasl"
HTTPBIND: Final = "http://jabber.org/protocol/httpbind"
PING: Final = "urn:xmpp:ping"
_ids = itertools.count(1)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebXmppDriver(ChatDriver):
    """The XMPP session both HTTP transports carry; subclasses move the elements."""

    def __init__(
        self, user: str, password: str, domain: str, host: str, port: int, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(user, password, domain, host, port)
        self._tls = tls
        self._http: aiohttp.ClientSession | None = None
        self._login_inbox: asyncio.Queue[etree._Element] = asyncio.Queue()
        self._online = False
        self._closing = False
        self.requests = 0  # HTTP requests made (a WebSocket's upgrade is one)

    @property
    def _scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    def _session(self, fresh_connections: bool = False) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._tls or False, force_close=fresh_connections)
        return aiohttp.ClientSession(connector=connector)

    # ---- what subclasses provide

    async def _open_transport(self) -> None:
        raise NotImplementedError

    def _write(self, text: str) -> None:
        raise NotImplementedError

    async def _restart(self) -> None:
        raise NotImplementedError

    # ---- the session

    async def start(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._login(), timeout)
        except Exception as e:
            self._fail(e)
            raise DriverFailed(f"{self.user}: {type(e).__name__}: {e}") from e
        self._mark_ready()

    async def _login(self) -> None:
        await self._open_transport()
        await self._next("features")
        scram = ScramClient(["SCRAM-SHA-256"], self.user, self.password)
        first = base64.b64encode(scram.get_client_first().encode()).decode()
        self._write(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
        challenge = await self._next("challenge", "failure")
        scram.set_server_first(base64.b64decode(challenge.text or "").decode())
        final = base64.b64encode(scram.get_client_final().encode()).decode()
        self._write(f"<response xmlns='{SASL}'>{final}</response>")
        success = await self._next("success", "failure")
        scram.set_server_final(base64.b64decode(success.text or "").decode())
        await self._restart()
        await self._next("features")
        self._write(
            f"<iq xmlns='{CLIENT}' type='set' id='b{next(_ids)}'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{RESOURCE}</resource></bind></iq>"
        )
        await self._next("iq")
        # Online and interested in presence (RFC 6121 §4.2, §2.2), as XmppDriver.
        self._write(
            f"<presence xmlns='{CLIENT}'/><iq xmlns='{CLIENT}' type='get' id='r{next(_ids)}'>"
            "<query xmlns='jabber:iq:roster'/></iq>"
        )
        await self._next("iq")
        self._online = True

    def _fail(self, error: BaseException) -> None:
        super()._fail(error)
        self._login_inbox.put_nowait(etree.Element(f"{{{SASL}}}failure"))  # ends a login under way

    async def _next(self, *names: str) -> etree._Element:
        while True:
            element = await self._login_inbox.get()
            if _local(element) in names:
                if _local(element) == "failure":
                    raise DriverFailed(f"SASL failure: {etree.tostring(element)!r}")
                return element

    def _incoming(self, element: etree._Element) -> None:
        name = _local(element)
        if name == "error" and str(element.tag).startswith("{http://etherx.jabber.org/streams}"):
            self._fail(ConnectionError(f"stream error: {etree.tostring(element)!r}"))
            return
        if not self._online:
            self._login_inbox.put_nowait(element)
            return
        if name == "message":
            body = element.findtext(f"{{{CLIENT}}}body")
            if body is not None:
                self._deliver(body)
        elif name == "iq" and element.get("type") == "get" and element.find(f"{{{PING}}}ping") is not None:
            # XEP-0199 §4.2: the server checks the client is there.
            self._write(
                f"<iq xmlns='{CLIENT}' type='result' id='{_escape(element.get('id', ''))}'"
                f" to='{_escape(element.get('from', self.domain))}'/>"
            )

    def send(self, to_user: str, body: str) -> None:
        self._write(
            f"<message xmlns='{CLIENT}' type='chat' to='{to_user}@{self.domain}' id='m{next(_ids)}'>"
            f"<body>{_escape(body)}</body></message>"
        )

    async def close(self) -> None:
        self._closing = True
        if self._http is not None:
            await self._http.close()


class WebSocketDriver(WebXmppDriver):
    """RFC 7395: subprotocol ``xmpp``, ``<open/>``/``<close/>``, one element per message."""

    def __init__(
        self, user: str, password: str, domain: str, host: str, port: int, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(user, password, domain, host, port, tls)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def _open_transport(self) -> None:
        self._http = self._session()
        url = f"{self._scheme}://{self.host}:{self.port}/xmpp-websocket"
        self._ws = await self._http.ws_connect(
            url, protocols=("xmpp",), server_hostname=self.domain if self._tls else None, autoping=True
        )
        self.requests += 1
        self._reader = asyncio.create_task(self._read())
        self._writer = asyncio.create_task(self._write_loop())
        self._write(self._open())

    def _open(self) -> str:
        return f"<open xmlns='{FRAMING}' to='{self.domain}' version='1.0'/>"

    async def _restart(self) -> None:
        self._write(self._open())  # RFC 7395 §3.5: a new <open/> after SASL success

    def _write(self, text: str) -> None:
        self._outbox.put_nowait(text)

    async def _write_loop(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                await self._ws.send_str(await self._outbox.get())

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self._incoming(etree.fromstring(message.data.encode()))
        if not self._closing:
            self._fail(ConnectionError("websocket closed"))

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.send_str(f"<close xmlns='{FRAMING}'/>"), 1)
                await asyncio.wait_for(self._ws.close(), 2)
        for task in (self._reader, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await super().close()


class BoshDriver(WebXmppDriver):
    """XEP-0124/0206: long polling with ``hold=1``, short polling with ``hold=0``."""

    def __init__(
        self,
        user: str,
        password: str,
        domain: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        *,
        hold: int,
        wait: int = 60,
        interval: float = 2.0,
        login_interval: float = 0.25,
        fresh_connections: bool = False,
    ) -> None:
        super().__init__(user, password, domain, host, port, tls)
        self.hold, self.wait = hold, wait
        self.interval, self.login_interval = interval, login_interval
        self._fresh = fresh_connections
        self._url = f"{self._scheme}://{host}:{port}/http-bind"
        self._rid = secrets.randbelow(2**32) + 1
        self._sid = ""
        self._max_in_flight = 1
        self._in_flight = 0
        self._outbox: list[str] = []
        self._restart_due = False
        self._next_poll = 0.0
        self._wake = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()

    async def _open_transport(self) -> None:
        self._http = self._session(self._fresh)
        attrs = {"to": self.domain, "wait": str(self.wait), "hold": str(self.hold), "ver": "1.6"}
        answer = await self._post(attrs, "")
        self._sid = answer.get("sid", "")
        if not self._sid:
            raise DriverFailed(f"no BOSH session: {etree.tostring(answer)!r}")
        self._max_in_flight = int(answer.get("requests", "1"))
        self._after_answer(answer, empty=True)
        self._pump_task = asyncio.create_task(self._pump())

    async def _restart(self) -> None:
        self._restart_due = True  # XEP-0206 §5: a request with xmpp:restart='true'
        self._wake.set()

    def _write(self, text: str) -> None:
        self._outbox.append(text)
        self._wake.set()

    async def _post(self, attrs: dict[str, str], payload: str) -> etree._Element:
        assert self._http is not None
        self._rid += 1
        attrs = {"rid": str(self._rid), **({"sid": self._sid} if self._sid else {}), **attrs}
        rendered = "".join(f" {k}='{v}'" for k, v in attrs.items())
        start = f"<body xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'{rendered}>"
        body = f"{start}{payload}</body>"
        self.requests += 1
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        hostname = self.domain if self._tls else None
        async with self._http.post(
            self._url, data=body.encode(), headers=headers, server_hostname=hostname
        ) as r:
            data = await r.read()
        return etree.fromstring(data)

    def _after_answer(self, answer: etree._Element, empty: bool) -> None:
        if answer.get("type") == "terminate":
            self._fail(ConnectionError(f"BOSH session terminated: {answer.get('condition')}"))
            self._closing = True
        for child in answer:
            self._incoming(child)
        if empty:
            interval = self.interval if self._online else self.login_interval
            self._next_poll = time.monotonic() + interval

    async def _pump(self) -> None:
        """Keep the requests going: what to send as soon as a request is free,
        and otherwise one held empty request (long polling) or a poll every
        ``interval`` (short polling)."""
        while not self._closing:
            self._wake.clear()
            free = self._in_flight < self._max_in_flight
            now = time.monotonic()
            if free and self._restart_due and not self._outbox:
                self._restart_due = False
                self._launch({"to": self.domain, "xmpp:restart": "true"}, "", empty=False)
            elif free and self._outbox:
                payload, self._outbox = "".join(self._outbox), []
                self._launch({}, payload, empty=False)
            elif (self.hold > 0 and self._in_flight == 0) or (
                self.hold == 0 and self._in_flight == 0 and now >= self._next_poll
            ):
                self._launch({}, "", empty=True)
            else:
                timeout = max(0.0, self._next_poll - now) if self.hold == 0 and self._in_flight == 0 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    def _launch(self, attrs: dict[str, str], payload: str, empty: bool) -> None:
        self._in_flight += 1
        task = asyncio.create_task(self._exchange(attrs, payload, empty))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _exchange(self, attrs: dict[str, str], payload: str, empty: bool) -> None:
        try:
            answer = await self._post(attrs, payload)
            self._after_answer(answer, empty)
        except (aiohttp.ClientError, OSError, etree.XMLSyntaxError) as e:
            if not self._closing:
                self._fail(e)
                self._closing = True
        finally:
            self._in_flight -= 1
            self._wake.set()

    async def close(self) -> None:
        if self._sid and not self._closing and self._http is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._post({"type": "terminate"}, ""), 2)
        self._closing = True
        self._wake.set()
        for task in [self._pump_task, *self._requests]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await super().close()
