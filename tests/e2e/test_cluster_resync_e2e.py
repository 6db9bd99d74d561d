"""A node cut off from NATS for a moment misses what the others announced
meanwhile (core NATS keeps nothing for a subscriber that is away); once it is
back it catches up: it reloads what it caches of its users (their XEP-0191
block lists, pushing what changed, §3.3) and learns the sessions that came
or went elsewhere.

Two nodes on loopback sharing NATS and PostgreSQL, as tests/cluster_nodes.py
runs them, except that node 1 reaches NATS through a TCP proxy the test can
cut (:class:`NatsProxy`). ``node_timeout`` is long, so the nodes never forget
each other: the cut is the short kind a NATS restart or a network blip makes.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_nodes import NATS_URL, _nats_reachable, running_cluster
from conftest import ServerProcess
from e2e.test_blocking_e2e import ALICE, BOB, CAROL, _next, closing, xmpp_user
from e2e.xmpp_helpers import TIMEOUT, connect, subscribe_and_approve
from faults.peers import USERS
from slixmpp import JID as SlixJID

CONFIG = """
[cluster]
heartbeat_interval = 0.2
node_timeout = 60
relay_timeout = 3.0
"""


class NatsProxy:
    """A TCP proxy to NATS, in a thread of its own (a node connects through it
    while the test's loop is not running). ``cut()`` closes every connection
    and refuses new ones; ``restore()`` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self.restore()

    def restore(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(5)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._proxy, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        writers, self._writers = self._writers, set()
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)

    async def _proxy(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        nats_in, nats_out = await asyncio.open_connection(*self._upstream)
        self._writers |= {client_out, nats_out}
        await asyncio.gather(self._pump(client_in, nats_out), self._pump(nats_in, client_out))

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


@pytest.fixture
def proxy() -> Iterator[NatsProxy]:
    if not _nats_reachable(NATS_URL):
        pytest.skip(f"NATS unreachable at {NATS_URL}")
    started = NatsProxy(("127.0.0.1", int(NATS_URL.rsplit(":", 1)[1])))
    started.start()
    yield started
    started.close()


@pytest.fixture
def nodes(tmp_path: Path, proxy: NatsProxy) -> Iterator[list[ServerProcess]]:
    """n0 on NATS directly, n1 through the proxy; one subject prefix and schema per run."""
    with running_cluster(tmp_path, 2, USERS, cluster_config=CONFIG, nats_urls=(NATS_URL, proxy.url)) as nodes:
        yield nodes


async def test_a_block_made_while_a_node_was_cut_off_applies_there_once_it_is_back(
    nodes: list[ServerProcess], proxy: NatsProxy
) -> None:
    alice_a = await xmpp_user(nodes[0], "alice", "a")
    alice_b = await xmpp_user(nodes[1], "alice", "b")
    bob = await xmpp_user(nodes[1], "bob", "desk")
    async with closing(alice_a, alice_b, bob):
        assert await alice_a.blocklist() == []
        assert await alice_b.blocklist() == []  # interested in pushes (§3.3)

        proxy.cut()
        await alice_a.blocking.block([SlixJID(BOB)], timeout=TIMEOUT)
        assert await _next(alice_a.pushes) == ("block", [BOB])
        proxy.restore()

        # Node 1 missed the announcement; back on NATS it reloads alice's list
        # and pushes the difference to her resource there.
        assert await _next(alice_b.pushes) == ("block", [BOB])
        bob.send(f"{ALICE}/b", "to your resource on my node")
        assert await bob.error() == ("service-unavailable", False)
        assert await alice_b.received() == []


async def test_a_session_that_came_while_a_node_was_cut_off_is_known_there_once_it_is_back(
    nodes: list[ServerProcess], proxy: NatsProxy
) -> None:
    bob = await connect(nodes[1], "bob", resource="desk")
    try:
        proxy.cut()
        carol = await connect(nodes[0], "carol", resource="phone")
        try:
            await carol.roster()  # a round trip: her initial presence is handled (offline messages sent)
            proxy.restore()
            # Node 1 missed carol's session; until it learns of it again, a
            # message to her full JID is stored for her next login instead:
            # only one delivered live (no XEP-0203 <delay/>) counts.
            async with asyncio.timeout(TIMEOUT * 2):
                while True:
                    bob.client.send_message(mto=SlixJID(f"{CAROL}/phone"), mbody="ping", mtype="chat")
                    try:
                        async with asyncio.timeout(0.5):
                            message = await carol.messages.get()
                    except TimeoutError:
                        continue
                    if message.xml.find("{urn:xmpp:delay}delay") is None:
                        break
            assert str(message["body"]) == "ping"
        finally:
            await carol.close()
    finally:
        await bob.close()


async def test_a_session_that_went_while_a_node_was_cut_off_goes_there_once_it_is_back(
    nodes: list[ServerProcess], proxy: NatsProxy
) -> None:
    bob = await connect(nodes[1], "bob", resource="desk")
    carol = await connect(nodes[0], "carol", resource="phone")
    try:
        await subscribe_and_approve(bob, carol, CAROL)
        carol.send_presence()
        await bob.next_presence("available", f"{CAROL}/phone")

        proxy.cut()
        await carol.close()
        proxy.restore()

        # Node 1 missed carol's going and her unavailable presence; once it
        # hears node 0 list its sessions without her, bob is told (RFC 6121 §4.5).
        await bob.next_presence("unavailable", f"{CAROL}/phone", timeout=TIMEOUT * 2)
    finally:
        await bob.close()
