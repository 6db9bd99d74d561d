"""Limits of the HTTP listener: connections per IP shared with TCP, BOSH caps,
polling and inactivity (XEP-0124 §12, §7), request header and body sizes."""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import ServerFactory, ServerProcess
from e2e.rawsock import RawPeer
from e2e.web_clients import BoshClient
from polling import wait_until

LIMITED = """
[limits]
max_connections_per_ip = 2
exempt_loopback = false
[http]
bosh_max_sessions = 1
bosh_inactivity = 1.0
"""


def session(server: ServerProcess) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server.client_ssl()))


def wss(server: ServerProcess) -> str:
    return f"wss://localhost:{server.ports['https']}/xmpp-websocket"


def bind_url(server: ServerProcess) -> str:
    return f"https://localhost:{server.ports['https']}/http-bind"


async def test_connections_per_ip_are_counted_across_tcp_and_websocket(server_factory: ServerFactory) -> None:
    server = server_factory(LIMITED)
    tcp = RawPeer(server.ports["xmpp"])
    async with session(server) as http:
        first = await http.ws_connect(wss(server), protocols=("xmpp",))
        try:
            async with http.get(wss(server).replace("wss", "https"), headers=_upgrade()) as refused:
                assert refused.status == 503  # the third from 127.0.0.1
            extra = RawPeer(server.ports["xmpp"])
            assert extra.read_until_closed(timeout=5) == b"" and extra.closed  # TCP refused too
            extra.close()
        finally:
            await first.close()

        async def admitted() -> bool:
            try:
                ws = await http.ws_connect(wss(server), protocols=("xmpp",))
            except aiohttp.WSServerHandshakeError:
                return False
            await ws.close()
            return True

        await wait_until(admitted)  # the WebSocket's place was given back
    tcp.close()


def _upgrade() -> dict[str, str]:
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "xmpp",
    }


async def test_bosh_session_cap_and_inactivity(server_factory: ServerFactory) -> None:
    uncounted = LIMITED.replace("max_connections_per_ip = 2", "max_connections_per_ip = 0")
    server = server_factory(uncounted)
    async with session(server) as http:
        first = BoshClient(http, bind_url(server))
        await first.create()
        second = BoshClient(http, bind_url(server))
        refused = await second.post(second.body(to="localhost", wait="5", hold="1"))
        assert (refused.get("type"), refused.get("condition")) == ("terminate", "policy-violation")

        third = BoshClient(http, bind_url(server))

        async def place_freed() -> bool:
            answer = await third.post(third.body(to="localhost", wait="5", hold="1"))
            return answer.get("type") != "terminate"

        # No request for http.bosh_inactivity seconds: the session ends, its place is free.
        await wait_until(place_freed)
        gone = await first.post(first.body(rid=first.rid + 1))
        assert (gone.get("type"), gone.get("condition")) == ("terminate", "item-not-found")


async def test_polling_faster_than_allowed_terminates(server_factory: ServerFactory) -> None:
    server = server_factory()
    async with session(server) as http:
        client = BoshClient(http, bind_url(server))
        answer = await client.post(client.body(to="localhost", wait="5", hold="0"))
        client.sid = answer.get("sid", "")
        assert answer.get("hold") == "0" and answer.get("polling") == "2"
        first = await client.request()
        assert first.get("type") is None
        second = await client.request()  # §12: two empty requests inside 'polling' seconds
        assert (second.get("type"), second.get("condition")) == ("terminate", "policy-violation")


async def test_request_header_and_body_size_limits(server_factory: ServerFactory) -> None:
    server = server_factory()
    async with session(server) as http:
        async with http.post(bind_url(server), data=b"<body/>", headers={"X-Big": "x" * 9000}) as big_header:
            assert big_header.status in (400, 431)
        async with http.post(bind_url(server), data=b"<body/>" + b" " * (400 * 1024)) as big_body:
            assert big_body.status == 413


async def test_more_requests_at_once_than_allowed_terminates(server_factory: ServerFactory) -> None:
    server = server_factory()
    async with session(server) as http:
        client = BoshClient(http, bind_url(server))
        answer = await client.post(client.body(to="localhost", wait="3", hold="1"))
        client.sid = answer.get("sid", "")
        assert answer.get("requests") == "2"
        # The same rid three times at once: the window holds it, §11 does not.
        same = client.body(rid=client.rid + 1)
        answers = await asyncio.gather(*(client.post(same) for _ in range(3)))
        ended = [(a.get("type"), a.get("condition")) for a in answers]
        assert ended == [("terminate", "policy-violation")] * 3
