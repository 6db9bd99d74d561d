"""BOSH (XEP-0124, XEP-0206) at /http-bind, end to end with a small aiohttp BOSH client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from conftest import ServerFactory, ServerProcess
from e2e.web_clients import CLIENT, BoshClient
from e2e.xmpp_client_helpers import started_server
from e2e.xmpp_helpers import connect
from lxml import etree
from polling import wait_for

STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"


@pytest.fixture(scope="module")
def bserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("bosh"), ("alice", "bob"))


@pytest.fixture
async def http(bserver: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=bserver.client_ssl())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def bosh(server: ServerProcess, http: aiohttp.ClientSession) -> BoshClient:
    return BoshClient(http, f"https://localhost:{server.ports['https']}/http-bind")


async def test_bosh_client_logs_in_restarts_binds_and_chats(
    bserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    alice = bosh(bserver, http)
    jid = await alice.login("alice", "alicepw")
    assert jid.startswith("alice@localhost/")
    attrib = alice.attrib
    assert len(attrib["sid"]) >= 32 and attrib["requests"] == "2" and attrib["hold"] == "1"
    assert attrib["authid"] and attrib["restartlogic"] == "true"
    bob = await connect(bserver, "bob")
    try:
        alice.start_polling()
        await alice.request(f"<presence xmlns='{CLIENT}'/>")
        await alice.request(
            f"<message xmlns='{CLIENT}' to='bob@localhost' type='chat'><body>hi from bosh</body></message>"
        )
        got = await bob.next_message()
        assert got["body"] == "hi from bosh" and got["from"] == jid
        bob.client.send_message(mto=jid, mbody="hi bosh", mtype="chat")
        reply = await alice.next("message")
        assert reply.findtext(f"{{{CLIENT}}}body") == "hi bosh"
        ended = await alice.terminate()
        assert ended.get("type") == "terminate"
    finally:
        await bob.close()


async def test_a_lost_response_is_sent_again_for_the_same_rid(
    bserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    client = bosh(bserver, http)
    await client.login("alice", "alicepw", resource="retransmit")
    iq = f"<iq xmlns='{CLIENT}' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    first = await client.request(iq)
    if first.find(f"{{{CLIENT}}}iq") is None:  # the answer may ride the next request
        first = await client.request()
    # The client "lost" that response: it asks again with the same rid (§14.3).
    again = await client.post(client.body(rid=client.rid))
    assert etree.tostring(again) == etree.tostring(first)
    assert again.find(f"{{{CLIENT}}}iq") is not None


async def test_a_rid_outside_the_window_terminates_the_session(
    bserver: ServerProcess, http: aiohttp.ClientSession
) -> None:
    client = bosh(bserver, http)
    await client.create()
    answer = await client.post(client.body(rid=client.rid + 10))  # §14: beyond 'requests'
    assert (answer.get("type"), answer.get("condition")) == ("terminate", "item-not-found")
    after = await client.post(client.body(rid=client.rid + 1))  # the session is gone
    assert after.get("condition") == "item-not-found"


async def test_an_unknown_sid_and_bad_bodies(bserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    client = bosh(bserver, http)
    client.sid = "no-such-session"
    unknown = await client.post(client.body())
    assert (unknown.get("type"), unknown.get("condition")) == ("terminate", "item-not-found")
    url = f"https://localhost:{bserver.ports['https']}/http-bind"
    for data in (b"<body xmlns='http://jabber.org/protocol/httpbind' rid='1'", b"<!DOCTYPE x><body/>"):
        async with http.post(url, data=data) as response:
            assert response.status == 400
            assert b"bad-request" in await response.read()


async def test_host_meta_names_both_endpoints(bserver: ServerProcess, http: aiohttp.ClientSession) -> None:
    base = f"https://localhost:{bserver.ports['https']}"
    async with http.get(f"{base}/.well-known/host-meta") as response:
        xrd = etree.fromstring(await response.read())
    links = {link.get("rel"): link.get("href") for link in xrd}
    assert links == {
        "urn:xmpp:alt-connections:xbosh": f"{base}/http-bind",
        "urn:xmpp:alt-connections:websocket": f"wss://localhost:{bserver.ports['https']}/xmpp-websocket",
    }
    async with http.get(f"{base}/.well-known/host-meta.json", headers={"Origin": "https://x.example"}) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "https://x.example"  # CORS, '*' by default
        assert {link["rel"]: link["href"] for link in (await r.json())["links"]} == links


async def test_the_server_ending_the_stream_reaches_the_client(server_factory: ServerFactory) -> None:
    """A stream error written while no request is held waits for the next one."""
    server = server_factory("[limits]\nlogin_timeout = 1.0\n")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.client_ssl())) as http:
        client = bosh(server, http)
        await client.create()  # and never logs in; no request is held
        await wait_for(lambda: "login took too long" in server.log(), what="the login timeout")
        ended = await client.request()
        assert (ended.get("type"), ended.get("condition")) == ("terminate", "remote-stream-error")
        error = ended.find("{http://etherx.jabber.org/streams}error")
        assert error is not None and error.find(f"{{{STREAM_ERRORS}}}connection-timeout") is not None


async def test_cors_follows_the_configured_origins(server_factory: ServerFactory) -> None:
    server = server_factory('[http]\ncors_origins = ["https://chat.example"]\n')
    url = f"https://localhost:{server.ports['https']}/http-bind"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.client_ssl())) as http:
        preflight = {"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"}
        async with http.options(url, headers=preflight) as allowed:
            assert allowed.status == 204
            assert allowed.headers["Access-Control-Allow-Origin"] == "https://chat.example"
            assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
        async with http.options(url, headers={**preflight, "Origin": "https://evil.example"}) as other:
            assert "Access-Control-Allow-Origin" not in other.headers  # the browser refuses
