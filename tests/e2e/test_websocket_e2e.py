"""XMPP over WebSocket (RFC 7395) and the native protocol over WebSocket, end to end.

A raw RFC 7395 client (aiohttp; slixmpp has no WebSocket transport) logs in
with SCRAM and chats with a slixmpp client over TCP and a native client over
TCP; a native WebSocket client chats with XMPP over TCP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from conftest import ServerFactory, ServerProcess
from e2e.web_clients import FRAMING, STREAMS, XmppWebSocket, local
from e2e.xmpp_client_helpers import started_server
from e2e.xmpp_helpers import connect
from lxml import etree

from xmlchat.client.native import NativeClient

NATIVE_NS = "urn:xmlchat:native:1"


@pytest.fixture(scope="module")
def wserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("ws"), ("alice", "bob", "carol"))


@pytest.fixture
async def http(wserver: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=wserver.client_ssl())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def wss(server: ServerProcess, path: str = "/xmpp-websocket") -> str:
    return f"wss://localhost:{server.ports['https']}{path}"


async def test_websocket_client_chats_with_tcp_xmpp_and_native(
    wserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    alice = await XmppWebSocket.connect(http, wss(wserver))
    jid = await alice.login("alice", "alicepw")
    bob = await connect(wserver, "bob")
    carol = NativeClient("carol", "carolpw", port=wserver.ports["native"], ssl=wserver.client_ssl())
    await carol.start()
    try:
        await alice.send(
            "<message xmlns='jabber:client' to='bob@localhost' type='chat' id='w1'>"
            "<body>hi bob</body></message>"
        )
        got = await bob.next_message()
        assert got["body"] == "hi bob" and got["from"] == jid  # the server stamped 'from'
        bob.client.send_message(mto=jid, mbody="hello web", mtype="chat")
        reply = await alice.next("message")
        assert reply.findtext("{jabber:client}body") == "hello web"
        assert reply.get("from", "").startswith("bob@localhost/")

        await alice.send(
            "<message xmlns='jabber:client' to='carol@localhost' type='chat'><body>hi carol</body></message>"
        )
        native = await carol.incoming.get()
        assert (native.sender, native.body) == ("alice@localhost", "hi carol")
        await carol.send(jid, "from native")
        back = await alice.next("message")
        assert back.findtext("{jabber:client}body") == "from native"
    finally:
        await carol.close()
        await bob.close()
        await alice.close()


async def test_the_framing_of_rfc_7395(wserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    ws = await XmppWebSocket.connect(http, wss(wserver))
    assert ws.ws.protocol == "xmpp"  # §3.1
    await ws.send(f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")
    opened = await ws.receive()
    assert opened.tag == f"{{{FRAMING}}}open"  # §3.3.2
    assert (opened.get("from"), opened.get("version")) == ("localhost", "1.0") and opened.get("id")
    features = await ws.receive()  # a whole element: it declares the stream prefix itself
    assert features.tag == f"{{{STREAMS}}}features"
    assert features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is None  # §3.4: no STARTTLS
    await ws.send(f"<close xmlns='{FRAMING}'/>")
    closed = await ws.receive()
    assert closed.tag == f"{{{FRAMING}}}close"  # §3.6: the server answers with <close/>
    message = await ws.ws.receive(5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_the_xmpp_subprotocol_is_required(wserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(wss(wserver))
    assert refused.value.status == 400


async def test_an_origin_not_listed_is_refused(server_factory: ServerFactory) -> None:
    server = server_factory('[http]\nwebsocket_origins = ["https://chat.example"]\n')
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.client_ssl())) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(wss(server), protocols=("xmpp",), origin="https://evil.example")
        assert refused.value.status == 403
        ws = await session.ws_connect(wss(server), protocols=("xmpp",), origin="https://chat.example")
        await ws.close()


async def test_plain_http_refuses_xmpp_unless_told_it_is_secure(
    wserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    # xmpp.require_encryption is on: as on TCP, no login without TLS.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"ws://127.0.0.1:{wserver.ports['http']}/xmpp-websocket", protocols=("xmpp",))
    assert refused.value.status == 403


@pytest.mark.parametrize("scheme", ["wss", "ws"], ids=["tls", "plain-loopback"])
async def test_native_over_websocket_chats_with_xmpp_over_tcp(
    wserver: ServerProcess, http: aiohttp.ClientSession, scheme: str
) -> None:
    # In clear only from loopback, as the plaintext native listener.
    url = wss(wserver, "/native-websocket") if scheme == "wss" else (
        f"ws://127.0.0.1:{wserver.ports['http']}/native-websocket"
    )
    ws = await http.ws_connect(url, protocols=("xmlchat-native",))
    bob = await connect(wserver, "bob", resource="tcp")
    try:
        await ws.send_str(f"<session xmlns='{NATIVE_NS}' version='1'/>")
        await ws.send_str("<login><user>carol</user><password>carolpw</password></login>")
        opened = etree.fromstring((await ws.receive_str(timeout=5)).encode())
        assert opened.tag == f"{{{NATIVE_NS}}}session" and opened.get("server") == "localhost"
        ok = etree.fromstring((await ws.receive_str(timeout=5)).encode())
        assert local(ok) == "login-ok", etree.tostring(ok)
        # Message ids are unique per user (a repeat within delivery.dedupe_window is a re-send).
        await ws.send_str(f"<message><id>n1-{scheme}</id><to>bob</to><body>native via ws</body></message>")
        got = await bob.next_message()
        assert got["body"] == "native via ws" and str(got["from"].bare) == "carol@localhost"
        bob.client.send_message(mto="carol@localhost", mbody="back to ws", mtype="chat")
        await ws.send_str("<ping><id>p1</id></ping>")
        seen = {}
        while not {"ack", "message", "pong"} <= seen.keys():
            element = etree.fromstring((await ws.receive_str(timeout=5)).encode())
            seen[local(element)] = element
        assert seen["message"].findtext("body") == "back to ws"
        assert seen["ack"].findtext("id") == f"n1-{scheme}" and seen["pong"].findtext("id") == "p1"
        await ws.send_str("<logout/>")
        closing = await ws.receive(5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        await ws.close()
        await bob.close()


async def test_who_names_the_transport(wserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    ws = await XmppWebSocket.connect(http, wss(wserver))
    jid = await ws.login("alice", "alicepw", resource="who")
    try:
        result = await asyncio.to_thread(wserver.cli, "who", "--json")
        rows = {row["jid"]: row for row in json.loads(result.stdout)}
        row = rows[jid]
        assert (row["protocol"], row["transport"], row["tls"]) == ("xmpp", "websocket", True)
        shown = await asyncio.to_thread(wserver.cli, "who")
        assert f"{jid}  xmpp over websocket  " in shown.stdout
    finally:
        await ws.close()
