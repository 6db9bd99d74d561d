"""Rooms (XEP-0045) across three nodes on loopback sharing NATS and
PostgreSQL: XMPP users (slixmpp's xep_0045) and a native user on different
nodes share a room; when the room's owner node is SIGKILLed, the occupants
elsewhere are told (status 332), enter again and talk on the new owner."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_nodes import running_cluster
from conftest import ServerProcess
from e2e.chat_terminal import quit_chat, spawn_chat
from e2e.test_muc_e2e import MucPeer
from e2e.xmpp_helpers import TIMEOUT, connect
from slixmpp import JID as SlixJID

from xmlchat.client.native import NativeClient
from xmlchat.client.native_rooms import OccupantUpdate, RoomEvent, RoomLeft, RoomMessage
from xmlchat.routing.cluster import owner_of

USERS = {n: f"{n}pw" for n in ("alice", "bob", "carol", "dave")}
NODES = ["n0", "n1", "n2"]
SERVICE = "conference.localhost"


def room_owned_by(node: str) -> str:
    """A room that ``node`` serves while all three nodes live."""
    return next(f"r{i}@{SERVICE}" for i in range(1000) if owner_of(f"r{i}@{SERVICE}", NODES) == node)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    with running_cluster(tmp_path, 3, USERS) as started:
        yield started


async def xmpp(node: ServerProcess, user: str) -> MucPeer:
    peer = await connect(node, user, resource="pc")
    peer.client.register_plugin("xep_0045")
    return MucPeer(peer)


def native(node: ServerProcess, user: str) -> NativeClient:
    return NativeClient(user, USERS[user], port=node.ports["native"], ssl=node.client_ssl(), reconnect=False)


async def next_event(client: NativeClient, kind: type[RoomEvent]) -> RoomEvent:
    while True:
        event = await asyncio.wait_for(client.rooms.incoming.get(), TIMEOUT)
        if isinstance(event, kind):
            return event


async def native_heard_until(client: NativeClient, last: str) -> list[tuple[str, str]]:
    """(nick, body) of every room message up to and including ``last``."""
    heard: list[tuple[str, str]] = []
    while not heard or heard[-1][1] != last:
        event = await next_event(client, RoomMessage)
        assert isinstance(event, RoomMessage)
        heard.append((event.nick, event.body))
    return heard


async def xmpp_heard_until(peer: MucPeer, last: str) -> list[tuple[str, str]]:
    heard: list[tuple[str, str]] = []
    while not heard or heard[-1][1] != last:
        message = await peer.next_groupchat()
        heard.append((str(message["from"].resource), str(message["body"])))
    return heard


async def test_users_on_three_nodes_share_a_room(nodes: list[ServerProcess]) -> None:
    # The room lives on n0: the native user (n1) and carol (n2) reach it
    # through NATS, and it reaches them through their nodes.
    room = room_owned_by("n0")
    alice = await xmpp(nodes[0], "alice")
    bob = native(nodes[1], "bob")
    carol = await xmpp(nodes[2], "carol")
    await bob.start()
    try:
        await alice.join("Alice", room)
        assert (await bob.rooms.join(room, "Bob")).nick == "Bob"
        await carol.join("Carol", room)
        # Everyone sees everyone: presence in the room, both protocols.
        await alice.next_presence(f"{room}/Bob")
        await alice.next_presence(f"{room}/Carol")
        assert await next_event(bob, OccupantUpdate) == OccupantUpdate(room, "Alice", True)
        assert await next_event(bob, OccupantUpdate) == OccupantUpdate(room, "Carol", True)
        assert set(carol.muc.get_roster(SlixJID(room))) == {"Alice", "Bob", "Carol"}
        assert await bob.rooms.who(room) == ["Alice", "Bob", "Carol"]
        # One message from each; every occupant hears each exactly once.
        alice.client.send_message(mto=SlixJID(room), mbody="from n0", mtype="groupchat")
        await alice.next_groupchat("from n0")  # the room's echo: in order from here
        await bob.rooms.say(room, "from n1")
        await carol.next_groupchat("from n1")
        carol.client.send_message(mto=SlixJID(room), mbody="from n2", mtype="groupchat")
        expected = [("Alice", "from n0"), ("Bob", "from n1"), ("Carol", "from n2")]
        assert await native_heard_until(bob, "from n2") == expected
        assert await xmpp_heard_until(alice, "from n2") == expected[1:]
        assert await xmpp_heard_until(carol, "from n2") == expected[2:]
        # No copy comes late: a last message closes every count.
        await bob.rooms.say(room, "end")
        assert Counter(await xmpp_heard_until(alice, "end")) == Counter({("Bob", "end"): 1})
        assert Counter(await xmpp_heard_until(carol, "end")) == Counter({("Bob", "end"): 1})
        assert await native_heard_until(bob, "end") == [("Bob", "end")]
        # A late joiner on another node gets the history from the owner.
        dave = await xmpp(nodes[1], "dave")
        _, _, _, history = await dave.join("Dave", room)
        assert [str(m["body"]) for m in history][-4:] == ["from n0", "from n1", "from n2", "end"]
        await dave.peer.close()
        # bob leaves on n1: the others see it.
        await bob.rooms.leave(room)
        await alice.next_presence(f"{room}/Bob", "unavailable")
        await carol.next_presence(f"{room}/Bob", "unavailable")
    finally:
        await bob.close()
        await alice.peer.close()
        await carol.peer.close()


async def test_occupants_of_a_killed_owner_node_are_told_and_talk_again(nodes: list[ServerProcess]) -> None:
    room = room_owned_by("n2")
    alice = await xmpp(nodes[0], "alice")
    bob = native(nodes[1], "bob")
    carol = await xmpp(nodes[2], "carol")
    await bob.start()
    try:
        await alice.join("Alice", room)
        await bob.rooms.join(room, "Bob")
        await carol.join("Carol", room)
        await alice.next_presence(f"{room}/Carol")
        assert nodes[2].stop(signal.SIGKILL) == -signal.SIGKILL
        # Within node_timeout (1.5 s, cluster_nodes.py) each surviving node tells its own.
        gone = await alice.next_presence(f"{room}/Alice", "unavailable")
        assert set(gone["muc"]["status_codes"]) == {110, 332}
        assert await next_event(bob, RoomLeft) == RoomLeft(room, "shutdown")
        # Both enter again: the room now lives on n0 or n1, without carol.
        own, _, _, _ = await alice.join("Alice", room)
        assert 110 in own["muc"]["status_codes"]
        assert (await bob.rooms.join(room, "Bob")).nick == "Bob"
        await alice.next_presence(f"{room}/Bob")
        assert await bob.rooms.who(room) == ["Alice", "Bob"]
        await bob.rooms.say(room, "after the fall")
        assert (await alice.next_groupchat("after the fall"))["from"].resource == "Bob"
        alice.client.send_message(mto=SlixJID(room), mbody="still here", mtype="groupchat")
        heard = await native_heard_until(bob, "still here")
        assert heard == [("Bob", "after the fall"), ("Alice", "still here")]
    finally:
        await bob.close()
        await alice.peer.close()
        await carol.peer.close()


def test_both_chats_enter_again_when_the_rooms_node_dies(nodes: list[ServerProcess]) -> None:
    """``xmlchat xmpp-chat`` on n0 and ``xmlchat chat`` on n1 in a room n2
    serves: n2 is SIGKILLed, both are told (332), enter again by themselves
    and their lines reach each other."""
    room = room_owned_by("n2")
    name = room.partition("@")[0]
    alice = spawn_chat(nodes[0], "xmpp-chat", "alice")
    bob = spawn_chat(nodes[1], "chat", "bob")
    try:
        alice.sendline(f"/join {name}")
        alice.expect_exact(f"~ you are in {room} as alice")
        bob.sendline(f"/join {name}")
        bob.expect_exact(f"~ you are in {room} as bob")
        assert nodes[2].stop(signal.SIGKILL) == -signal.SIGKILL
        for chat, nick in ((alice, "alice"), (bob, "bob")):
            chat.expect_exact(f"{room} moved to another node; entering it again")
            chat.expect_exact(f"~ you are in {room} as {nick}")
        bob.sendline("after the move")
        alice.expect_exact(f"#{room} bob: after the move")
        alice.sendline("heard you")
        bob.expect_exact(f"#{room} alice: heard you")
    finally:
        for chat in (alice, bob):
            quit_chat(chat, "d")
