"""Three nodes on loopback sharing NATS and PostgreSQL: users on different
nodes chat and see each other's presence, on both protocols."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_nodes import running_cluster
from conftest import ServerProcess, make_server
from e2e.xmpp_client_helpers import next_item, online
from e2e.xmpp_helpers import connect
from faults.peers import USERS, native_client
from polling import wait_for

from xmlchat.client import admin
from xmlchat.client.native import PresenceUpdate
from xmlchat.client.xmpp import wait_closed


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    with running_cluster(tmp_path, 3, USERS) as started:
        yield started


async def test_users_on_two_nodes_chat_and_see_presence(nodes: list[ServerProcess]) -> None:
    seen: list[PresenceUpdate] = []
    alice = native_client(nodes[0], "alice", on_presence=seen.append)
    bob = native_client(nodes[1], "bob")
    await alice.start()
    await bob.start()
    try:
        # Mutual native contacts; bob is online on another node, and alice sees it.
        await alice.add_contact("bob")
        await wait_for(lambda: PresenceUpdate("bob@localhost", True) in seen, 5, what="bob online at alice")
        assert await alice.contacts() == [("bob@localhost", True)]
        ack = await alice.send("bob", "across the cluster")
        got = await asyncio.wait_for(bob.incoming.get(), 5)
        assert (got.sender, got.body) == ("alice@localhost", "across the cluster")
        assert (got.id, got.time) == (ack.id, ack.time)
        await bob.send("alice", "and back")
        assert (await asyncio.wait_for(alice.incoming.get(), 5)).body == "and back"
        # The operator's view of node 0: its own sessions, and the cluster.
        stats = admin.request(nodes[0].data_dir, "stats")
        assert stats["sessions"] == {"native": 1}
        assert stats["cluster"] == {"node": "n0", "peers": ["n1", "n2"], "remote_sessions": 1}
        # bob leaves node 1: alice, on node 0, sees him go.
        await bob.close()
        await wait_for(lambda: PresenceUpdate("bob@localhost", False) in seen, 5, what="bob offline at alice")
    finally:
        await alice.close()
        await bob.close()


async def test_xmpp_subscription_presence_and_chat_across_nodes(nodes: list[ServerProcess]) -> None:
    alice = await connect(nodes[2], "alice", resource="desk")
    bob = await connect(nodes[1], "bob", resource="phone")
    carol = native_client(nodes[0], "carol")
    await carol.start()
    try:
        # RFC 6121 §3.1 across nodes: the request, the approval and then the presence.
        alice.send_presence("subscribe", "bob@localhost")
        await bob.next_presence("subscribe", "alice@localhost")
        bob.send_presence("subscribed", "alice@localhost")
        await alice.next_presence("subscribed", "bob@localhost")
        await alice.next_presence(None, bob.jid)  # bob's current presence, from node 1
        alice.client.send_message(mto=bob.jid, mbody="to your full JID", mtype="chat")
        got = await bob.next_message()
        assert (str(got["from"]), got["body"]) == (alice.jid, "to your full JID")
        # A native user on node 0 reaches the XMPP user on node 2, and back.
        await carol.send("alice", "from the native side")
        got = await alice.next_message()
        assert (str(got["from"].bare), got["body"]) == ("carol@localhost", "from the native side")
        alice.client.send_message(mto="carol@localhost", mbody="from the XMPP side", mtype="chat")
        assert (await asyncio.wait_for(carol.incoming.get(), 5)).body == "from the XMPP side"
        # bob goes: alice, subscribed, hears it on another node (§4.5.2).
        await bob.close()
        await alice.next_presence("unavailable", bob.jid)
    finally:
        await carol.close()
        for peer in (alice, bob):
            await peer.close()


async def test_the_same_resource_on_another_node_replaces_the_first(nodes: list[ServerProcess]) -> None:
    async with (
        online(nodes[0], "bob", "phone") as first,
        online(nodes[2], "alice") as alice,
        online(nodes[1], "bob", "phone") as second,
    ):
        # RFC 6120 §7.7.2.2: the newer session wins, wherever the older one is.
        await wait_closed(first)
        assert first.stream_errors == ["conflict"]
        alice.send_chat("bob@localhost/phone", "which phone?")
        assert (await next_item(second.incoming)).body == "which phone?"  # type: ignore[attr-defined]


async def test_a_dead_nodes_users_go_offline_within_the_node_timeout(nodes: list[ServerProcess]) -> None:
    seen: list[PresenceUpdate] = []
    alice = native_client(nodes[0], "alice", on_presence=seen.append)
    bob = native_client(nodes[1], "bob", reconnect=False)
    await alice.start()
    await bob.start()
    try:
        await alice.add_contact("bob")
        await wait_for(lambda: PresenceUpdate("bob@localhost", True) in seen, 5, what="bob online at alice")
        assert nodes[1].stop(signal.SIGKILL) == -signal.SIGKILL
        killed = time.monotonic()
        # cluster.node_timeout is 1.5 s with 0.2 s heartbeats (cluster_nodes.py).
        await wait_for(lambda: PresenceUpdate("bob@localhost", False) in seen, 5, what="bob offline at alice")
        assert time.monotonic() - killed < 1.5 + 2.0
        # Meanwhile a message to bob is kept for him, and he gets it on another node.
        await alice.send("bob", "while you were away")
        again = native_client(nodes[2], "bob")
        await again.start()
        assert (await asyncio.wait_for(again.incoming.get(), 5)).body == "while you were away"
        await again.close()
    finally:
        await alice.close()
        await bob.close()


def test_a_node_without_a_shared_store_or_nats_does_not_start(tmp_path: Path, postgres_url: str) -> None:
    node = make_server(tmp_path)
    node.env["XMLCHAT_CLUSTER_NATS_URL"] = "nats://127.0.0.1:1"
    with pytest.raises(RuntimeError, match="needs a shared PostgreSQL store"):
        node.start()
    node.env["XMLCHAT_STORAGE_URL"] = postgres_url
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"cannot reach NATS at nats://127\.0\.0\.1:1"):
        node.start(timeout=30)
    assert time.monotonic() - started < 20
