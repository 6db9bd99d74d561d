"""The hostile input of tests/e2e/test_xmpp_errors.py, over RFC 7395 WebSocket.

Each case must end as on TCP: the stream error, then ``<close/>`` (§3.6.1),
then the WebSocket closes, and the server goes on serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from conftest import ServerProcess
from e2e.test_xmpp_errors import BAD_UTF8, NOT_WELL_FORMED, RESTRICTED_XML
from e2e.web_clients import FRAMING, OPEN, STREAMS, XmppWebSocket
from e2e.xmpp_client_helpers import started_server
from lxml import etree

STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"


@pytest.fixture(scope="module")
def hserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("wshostile"), ("alice", "bob"))


@pytest.fixture
async def http(hserver: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=hserver.client_ssl())) as session:
        yield session


async def websocket(server: ServerProcess, http: aiohttp.ClientSession, login: bool) -> XmppWebSocket:
    ws = await XmppWebSocket.connect(http, f"wss://localhost:{server.ports['https']}/xmpp-websocket")
    if login:
        await ws.login("alice", "alicepw", resource="hostile")
    else:
        await ws.open()
    return ws


async def expect_stream_error(ws: XmppWebSocket, condition: str) -> etree._Element:
    error = await ws.next("error")
    assert error.tag == f"{{{STREAMS}}}error"
    assert error.find(f"{{{STREAM_ERRORS}}}{condition}") is not None, etree.tostring(error)
    closing = await ws.next("close")  # RFC 7395 §3.6.1: the error, then <close/>
    assert closing.tag == f"{{{FRAMING}}}close"
    message = await ws.ws.receive(5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    return error


async def still_serving(server: ServerProcess, http: aiohttp.ClientSession) -> None:
    ws = await websocket(server, http, login=True)
    await ws.close()


@NOT_WELL_FORMED
async def test_not_well_formed(hserver: ServerProcess, http: aiohttp.ClientSession, payload: bytes) -> None:
    ws = await websocket(hserver, http, login=True)
    await ws.send(payload.decode())
    await expect_stream_error(ws, "not-well-formed")
    await still_serving(hserver, http)


@RESTRICTED_XML
async def test_restricted_xml(hserver: ServerProcess, http: aiohttp.ClientSession, payload: bytes) -> None:
    ws = await websocket(hserver, http, login=True)
    await ws.send(payload.decode())
    await expect_stream_error(ws, "restricted-xml")


@BAD_UTF8
async def test_bad_utf8_in_a_binary_message(
    hserver: ServerProcess, http: aiohttp.ClientSession, data: bytes
) -> None:
    # A text message with bad UTF-8 never gets this far: the WebSocket layer
    # closes with 1007 (RFC 6455 §8.1). A binary message is read as bytes.
    ws = await websocket(hserver, http, login=True)
    await ws.ws.send_bytes(data)
    await expect_stream_error(ws, "unsupported-encoding")


async def test_a_dtd_in_the_opening_message(hserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    ws = await XmppWebSocket.connect(http, f"wss://localhost:{hserver.ports['https']}/xmpp-websocket")
    await ws.send("<!DOCTYPE open [<!ENTITY lol 'lol'>]>" + OPEN)
    # Every message is content of the stream the server primed its parser
    # with, so a DOCTYPE is never a prolog: it is not even well-formed there,
    # and its entities are never declared.
    await expect_stream_error(ws, "not-well-formed")


@pytest.mark.parametrize("authenticated", [False, True], ids=["before-auth", "after-auth"])
async def test_an_oversized_stanza(
    hserver: ServerProcess, http: aiohttp.ClientSession, authenticated: bool
) -> None:
    ws = await websocket(hserver, http, login=authenticated)
    size = 300 * 1024 if authenticated else 12_000
    await ws.send(f"<message xmlns='jabber:client' to='bob@localhost'><body>{'x' * size}</body></message>")
    error = await expect_stream_error(ws, "policy-violation")
    assert error.find("{urn:xmpp:errors}stanza-too-big") is not None


async def test_a_frame_far_over_the_limit_is_refused_by_the_websocket_layer(
    hserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await websocket(hserver, http, login=True)
    await ws.send("<message>" + "x" * (1024 * 1024) + "</message>")
    message = await ws.ws.receive(5)
    # No XMPP answer: aiohttp refuses the frame unread (1009, message too big,
    # RFC 6455 §7.4.1) and drops the connection, so the client may see 1006.
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert ws.ws.close_code in (1009, 1006)


async def test_a_stanza_before_authentication(hserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    ws = await websocket(hserver, http, login=False)
    await ws.send("<message xmlns='jabber:client' to='bob@localhost'><body>sneaky</body></message>")
    await expect_stream_error(ws, "not-authorized")


async def test_a_stanza_before_open_and_a_second_open(
    hserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    ws = await XmppWebSocket.connect(http, f"wss://localhost:{hserver.ports['https']}/xmpp-websocket")
    await ws.send("<message xmlns='jabber:client' to='bob@localhost'><body>early</body></message>")
    await expect_stream_error(ws, "bad-format")
    ws = await websocket(hserver, http, login=False)
    await ws.send(OPEN)
    await expect_stream_error(ws, "bad-format")
