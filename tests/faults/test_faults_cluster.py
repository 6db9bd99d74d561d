"""Issue 17, item 3: a node of a three-node cluster SIGKILLed mid-traffic
loses no acknowledged message; and the node serving a room, killed while
its occupants talk, leaves them told and able to talk again.

alice (native, on node 0) sends to bob, who reads on node 1. When the node
holding bob dies, his client logs in again on node 2 and must find there
every message acknowledged to alice: written to him before the kill, or
stored in the shared PostgreSQL once node 1 stopped answering. When alice's
own node dies instead, everything acknowledged to her was already delivered.

A message node 1 wrote to bob but could not confirm before it died is stored
again by node 0 and may be shown twice (as row e of the single-node suite);
that is reported, not failed on: the promise here is *no loss*.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_nodes import running_cluster
from conftest import ServerProcess
from faults.ledger import Ledger
from faults.peers import USERS, Recipient, native_client, pump, settle
from polling import wait_for

from xmlchat.client.native import NativeClient, PresenceUpdate, ServerError
from xmlchat.client.native_rooms import OccupantUpdate, RoomEvent, RoomLeft, RoomMessage
from xmlchat.routing.cluster import owner_of

pytestmark = pytest.mark.faults


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    with running_cluster(tmp_path, 3, USERS) as started:
        yield started


async def _traffic(nodes: list[ServerProcess], victim: int, ledger: Ledger) -> None:
    """600 x 1 KB from alice (node 0) to bob (node 1); SIGKILL ``victim`` after 150 acks."""
    bob = Recipient(nodes[1], "bob", "native", ledger)
    await bob.login()
    seen: list[PresenceUpdate] = []
    alice = native_client(nodes[0], "alice", reconnect=False, on_presence=seen.append)
    await alice.start()
    # alice's node knows bob is on node 1 before the traffic starts.
    await alice.add_contact("bob")
    await wait_for(lambda: PresenceUpdate("bob@localhost", True) in seen, 5, what="bob online at alice")
    sending = asyncio.create_task(pump(alice, "bob", (f"m{i:04}" for i in range(600)), 1024, ledger))
    await wait_for(lambda: len(ledger.acked) >= 150 or sending.done(), 20, what="acks before the kill")
    assert nodes[victim].stop(signal.SIGKILL) == -signal.SIGKILL
    await asyncio.wait_for(sending, 30)
    await alice.close()
    if victim == 1:
        await wait_for(bob.dropped, 10, what="bob's connection to the dead node ends")
        await bob.close()
        bob = Recipient(nodes[2], "bob", "native", ledger)
        await bob.login()
    # A last message, through a live node, arrives after everything owed before it.
    assert await settle(nodes[2], "bob", ledger, "marker", timeout=15, gone=bob.dropped)
    await bob.close()


@pytest.mark.parametrize("victim", [1, 0], ids=["recipients-node", "senders-node"])
async def test_node_killed_mid_traffic_loses_no_acknowledged_message(
    nodes: list[ServerProcess], victim: int
) -> None:
    ledger = Ledger()
    await _traffic(nodes, victim, ledger)
    assert len(ledger.acked) >= 150
    assert not ledger.lost, ledger.summary()
    assert not ledger.unknown, ledger.summary()
    print(f"node {victim} killed: {ledger.summary()}")


async def _room_events(client: NativeClient, into: list[RoomEvent]) -> None:
    while True:
        into.append(await client.rooms.incoming.get())


@pytest.fixture
def busy_nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Three nodes whose rooms take messages as fast as they come."""
    with running_cluster(tmp_path, 3, USERS, "[muc]\nmessages_per_second = 0\n") as started:
        yield started


async def test_a_rooms_node_killed_mid_traffic(busy_nodes: list[ServerProcess]) -> None:
    """alice (node 0) talks in a room node 2 serves; bob reads on node 1. Node
    2 is SIGKILLed after 100 acknowledged messages. Both are told (332,
    ``<left reason="shutdown">``) within the node timeout, enter again on the
    new owner, and the talk resumes: every message acknowledged after both
    are back reaches bob, and bob never sees one twice or out of order.

    XEP-0045 keeps no room message for its recipients, so a message in flight
    at the kill may be lost: that is counted and printed, not failed on."""
    room = next(f"f{i}@conference.localhost" for i in range(1000)
                if owner_of(f"f{i}@conference.localhost", ["n0", "n1", "n2"]) == "n2")
    alice = native_client(busy_nodes[0], "alice", reconnect=False)
    bob = native_client(busy_nodes[1], "bob", reconnect=False)
    await alice.start()
    await bob.start()
    alice_events: list[RoomEvent] = []
    bob_events: list[RoomEvent] = []
    listeners = [
        asyncio.create_task(_room_events(c, e)) for c, e in ((alice, alice_events), (bob, bob_events))
    ]
    acked: list[str] = []
    try:
        await alice.rooms.join(room, "alice")
        await bob.rooms.join(room, "bob")
        await wait_for(lambda: OccupantUpdate(room, "bob", True) in alice_events, 5, what="bob in the room")
        shutdown = RoomLeft(room, "shutdown")
        killed = 0.0
        for i in itertools.count():  # until alice is told the room went
            if len(acked) == 100 and not killed:
                assert busy_nodes[2].stop(signal.SIGKILL) == -signal.SIGKILL
                killed = time.monotonic()
            if shutdown in alice_events:
                break
            try:
                await alice.rooms.say(room, f"a{i:04}")
                acked.append(f"a{i:04}")
            except ServerError:
                await asyncio.sleep(0.05)  # the owner is gone: refused until the cluster notices
        await wait_for(lambda: shutdown in bob_events, 5, what="bob told the room went")
        assert time.monotonic() - killed < 1.5 + 2.0  # node_timeout in cluster_nodes.py, and slack
        before = len(acked)
        await alice.rooms.join(room, "alice")
        await bob.rooms.join(room, "bob")
        await wait_for(lambda: alice_events.count(OccupantUpdate(room, "bob", True)) == 2, 5, what="bob back")
        after = [f"b{i:04}" for i in range(200)]
        for body in after:
            await alice.rooms.say(room, body)
        await wait_for(lambda: _heard(bob_events, room)[-1:] == [after[-1]], 10, what="the last message")
        heard = _heard(bob_events, room)
        assert len(heard) == len(set(heard)), "a message shown twice"
        assert heard == sorted(heard), "messages out of order"
        assert heard[-len(after):] == after  # everything after the move, once, in order
        missed = sorted(set(acked[:before]) - set(heard))
        print(f"room owner killed: {before} acknowledged before the move, {len(missed)} not heard by bob")
    finally:
        for task in listeners:
            task.cancel()
        await alice.close()
        await bob.close()


def _heard(events: list[RoomEvent], room: str) -> list[str]:
    return [e.body for e in events if isinstance(e, RoomMessage) and e.room == room and e.nick == "alice"]
