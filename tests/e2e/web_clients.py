"""Web transports from the client side, on aiohttp: a raw RFC 7395 WebSocket
client, a small BOSH client (XEP-0124/0206), SCRAM over either.

    ws = await XmppWebSocket.connect(session, url)
    jid = await ws.login("alice", "alicepw")          # SCRAM-SHA-256, restart, bind
    await ws.send("<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>")
    message = await ws.next("message")                 # the next <message>, as an element

Each message or body is parsed on its own with lxml (as a browser's
DOMParser would): RFC 7395 makes every message a whole element.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from lxml import etree
from scramp import ScramClient

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
CLIENT = "jabber:client"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STREAMS = "http://etherx.jabber.org/streams"
HTTPBIND = "http://jabber.org/protocol/httpbind"
TIMEOUT = 5.0
OPEN = f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"
_ids = itertools.count()


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


async def sasl_scram(
    send: Callable[[str], Awaitable[None]],
    receive: Callable[[], Awaitable[etree._Element]],
    user: str,
    password: str,
) -> etree._Element:
    """A SCRAM-SHA-256 exchange (RFC 5802, RFC 6120 §6); returns the <success/>."""
    scram = ScramClient(["SCRAM-SHA-256"], user, password)
    first = base64.b64encode(scram.get_client_first().encode()).decode()
    await send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
    challenge = await receive()
    assert local(challenge) == "challenge", etree.tostring(challenge)
    scram.set_server_first(base64.b64decode(challenge.text or "").decode())
    final = base64.b64encode(scram.get_client_final().encode()).decode()
    await send(f"<response xmlns='{SASL}'>{final}</response>")
    success = await receive()
    assert local(success) == "success", etree.tostring(success)
    scram.set_server_final(base64.b64decode(success.text or "").decode())  # the server proved itself
    return success


def bind_iq(resource: str) -> str:
    return (
        f"<iq xmlns='{CLIENT}' type='set' id='bind-{next(_ids)}'>"
        f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    )


class XmppWebSocket:
    """One RFC 7395 connection: text messages in and out, each one element."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[etree._Element] = []  # read but not yet asked for
        self.jid = ""

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, **kwargs: Any) -> XmppWebSocket:
        return cls(await session.ws_connect(url, protocols=("xmpp",), **kwargs))

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def receive(self, timeout: float = TIMEOUT) -> etree._Element:
        if self.received:
            return self.received.pop(0)
        message = await self.ws.receive(timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"websocket: {message.type.name} {message.data!r}")
        return etree.fromstring(message.data.encode())

    async def next(self, name: str, timeout: float = TIMEOUT) -> etree._Element:
        """The next element named ``name``; others are kept for later."""
        kept: list[etree._Element] = []
        try:
            while True:
                element = await self.receive(timeout)
                if local(element) == name:
                    return element
                kept.append(element)
        finally:
            self.received[:0] = kept

    async def open(self) -> etree._Element:
        """Open (or restart) the stream; returns the features."""
        await self.send(OPEN)
        opened = await self.receive()
        assert opened.tag == f"{{{FRAMING}}}open", etree.tostring(opened)
        features = await self.receive()
        assert features.tag == f"{{{STREAMS}}}features", etree.tostring(features)
        return features

    async def login(self, user: str, password: str, resource: str = "web") -> str:
        features = await self.open()
        assert "SCRAM-SHA-256" in [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        await sasl_scram(self.send, self.receive, user, password)
        await self.open()
        await self.send(bind_iq(resource))
        result = await self.next("iq")
        self.jid = result.findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid") or ""
        assert self.jid.startswith(f"{user}@localhost/"), etree.tostring(result)
        return self.jid

    async def close(self) -> None:
        if not self.ws.closed:
            await self.send(f"<close xmlns='{FRAMING}'/>")
            await self.ws.close()


class BoshClient:
    """A BOSH session (XEP-0124/0206) with hold=1: one request held, one to send with."""

    def __init__(self, session: aiohttp.ClientSession, url: str, **kwargs: Any) -> None:
        self.http, self.url, self.kwargs = session, url, kwargs
        self.rid = random.randint(1, 2**40)
        self.sid = ""
        self.attrib: dict[str, str] = {}
        self.received: asyncio.Queue[etree._Element] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None
        self.jid = ""

    async def post(self, body: str) -> etree._Element:
        async with self.http.post(self.url, data=body.encode(), **self.kwargs) as response:
            data = await response.read()
        element = etree.fromstring(data)
        assert element.tag == f"{{{HTTPBIND}}}body", data
        return element

    def body(self, rid: int | None = None, payload: str = "", **attrs: str) -> str:
        attrib = {"rid": str(self.rid if rid is None else rid), **({"sid": self.sid} if self.sid else {})}
        attrib.update(attrs)
        rendered = "".join(f" {k.replace('__', ':')}='{v}'" for k, v in attrib.items())
        return f"<body xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'{rendered}>{payload}</body>"

    async def request(self, payload: str = "", **attrs: str) -> etree._Element:
        """One request with the next rid; what its response carried is queued too."""
        self.rid += 1
        answer = await self.post(self.body(payload=payload, **attrs))
        for child in answer:
            self.received.put_nowait(child)
        return answer

    async def create(self) -> etree._Element:
        attrs = {"to": "localhost", "wait": "10", "hold": "1", "ver": "1.6", "xmpp__version": "1.0"}
        answer = await self.post(self.body(**attrs, **{"xml:lang": "en"}))
        self.attrib = {etree.QName(k).localname: v for k, v in answer.attrib.items()}
        self.sid = self.attrib["sid"]
        return answer

    async def next(self, name: str, timeout: float = TIMEOUT) -> etree._Element:
        while True:
            element = await asyncio.wait_for(self.received.get(), timeout)
            if local(element) == name:
                return element

    async def login(self, user: str, password: str, resource: str = "bosh") -> str:
        answer = await self.create()
        assert answer.find(f"{{{STREAMS}}}features") is not None, etree.tostring(answer)

        async def send(text: str) -> None:
            await self.request(text)

        async def receive() -> etree._Element:
            return await self.next_any()

        await sasl_scram(send, receive, user, password)
        restarted = await self.request(to="localhost", xmpp__restart="true", **{"xml:lang": "en"})
        assert restarted.find(f"{{{STREAMS}}}features") is not None, etree.tostring(restarted)
        self.drain()
        await self.request(bind_iq(resource))
        result = await self.next("iq")
        self.jid = result.findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid") or ""
        return self.jid

    async def next_any(self, timeout: float = TIMEOUT) -> etree._Element:
        return await asyncio.wait_for(self.received.get(), timeout)

    def drain(self) -> None:
        while not self.received.empty():
            self.received.get_nowait()

    def start_polling(self) -> None:
        """Keep one empty request held, as a BOSH client does between sends."""

        async def poll() -> None:
            while True:
                answer = await self.request()
                if answer.get("type") == "terminate":
                    return

        self._poller = asyncio.create_task(poll())

    async def terminate(self) -> etree._Element:
        if self._poller is not None:
            self._poller.cancel()
        return await self.request(
            f"<presence xmlns='{CLIENT}' type='unavailable'/>", type="terminate"
        )
