"""Rooms (XEP-0045) with occupants on several nodes: each room is served by
its owner node (rendezvous hashing over the live nodes), stanzas from other
nodes are forwarded there, and when the owner changes each node tells its own
occupants with status 332. Real hubs with every module, one in-memory store,
the direct bus of cluster_world (the NATS bus: tests/e2e/test_cluster_rooms_e2e.py)."""

from __future__ import annotations

import random
import string
from collections import Counter
from dataclasses import replace

import pytest
from lxml import etree
from modules.fakes import Recorder
from routing.cluster_world import Cluster

from xmlchat.config import Config
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.modules.muc import Muc, names
from xmlchat.modules.muc.form import RoomConfig
from xmlchat.routing.cluster import owner_of
from xmlchat.routing.session import NATIVE_CLIENT, Session
from xmlchat.server.modules import build_hub
from xmlchat.stanza import make
from xmlchat.storage import MemoryStorage, StoredRoom

SERVICE = "conference.localhost"
ALICE = JID.parse("alice@localhost")


def room_owned_by(node: str, nodes: list[str], but_not: str | None = None) -> JID:
    """A room name whose owner among ``nodes`` is ``node``."""
    for i in range(1000):
        room = JID.parse(f"room{i}@{SERVICE}")
        if owner_of(str(room), nodes) == node and (
            but_not is None or owner_of(str(room), [n for n in nodes if n != but_not]) != but_not
        ):
            return room
    raise AssertionError("no such room")


def join_presence(session: Session, room: JID, nick: str) -> tuple[etree._Element, JID]:
    to = names.room_address(room, nick)
    presence = make("presence", {"from": str(session.jid), "to": str(to)})
    etree.SubElement(presence, names.X_MUC, nsmap={None: names.MUC})
    return presence, to


async def join(cluster: Cluster, node: str, session: Session, room: JID, nick: str) -> None:
    presence, to = join_presence(session, room, nick)
    await cluster.hubs[node].receive(session, presence, to)


async def say(cluster: Cluster, node: str, session: Session, room: JID, body: str) -> None:
    message = make("message", {"from": str(session.jid), "to": str(room), "type": "groupchat"})
    etree.SubElement(message, "{jabber:client}body").text = body
    await cluster.hubs[node].receive(session, message, room)


def groupchat(seen: Recorder) -> list[tuple[str, str]]:
    """(sender's room JID, body) of each groupchat message with a body."""
    return [
        (str(s.get("from")), str(s.findtext("{jabber:client}body")))
        for s in seen.stanzas
        if s.tag == "{jabber:client}message"
        and s.get("type") == "groupchat"
        and s.find("{jabber:client}body") is not None
    ]


def muc(cluster: Cluster, node: str) -> Muc:
    return next(m for m in cluster.hubs[node].modules if isinstance(m, Muc))


def codes(stanza: etree._Element) -> set[str]:
    return {str(s.get("code")) for s in stanza.iterfind(f"{{{names.USER}}}x/{{{names.USER}}}status")}


def occupants_seen(seen: Recorder, room: JID) -> set[str]:
    """The nicks a client would list from the room's presence, in order."""
    present: set[str] = set()
    for s in seen.stanzas:
        sender = JID.parse_or_none(s.get("from"))
        if s.tag != "{jabber:client}presence" or sender is None or sender.bare != room or not sender.resource:
            continue
        (present.discard if s.get("type") == "unavailable" else present.add)(sender.resource)
    return present


def test_the_owner_is_the_same_whatever_the_order_and_moves_only_from_a_node_that_goes() -> None:
    nodes = ["node1", "node2", "node3"]
    keys = [f"{''.join(random.choices(string.ascii_lowercase, k=8))}@{SERVICE}" for _ in range(3000)]
    owners = {key: owner_of(key, nodes) for key in keys}
    assert all(owner_of(key, list(reversed(nodes))) == owners[key] for key in keys)
    spread = Counter(owners.values())
    assert all(800 < spread[node] < 1200 for node in nodes), spread  # about a third each
    without = {key: owner_of(key, ["node1", "node3"]) for key in keys}
    moved = {key for key in keys if without[key] != owners[key]}
    assert moved == {key for key in keys if owners[key] == "node2"}  # only node2's rooms move
    with_fourth = {key: owner_of(key, [*nodes, "node4"]) for key in keys}
    assert {with_fourth[key] for key in keys if with_fourth[key] != owners[key]} == {"node4"}


async def test_occupants_on_three_nodes_see_each_other_and_each_message_once() -> None:
    cluster = Cluster("a", "b", "c")
    room = room_owned_by("b", ["a", "b", "c"])
    alice, alice_sees = await cluster.online("a", "alice@localhost/desk")
    bob, bob_sees = await cluster.online("b", "bob@localhost/phone")
    native = Recorder("native")
    carol = Session(JID.parse("carol@localhost/tty"), NATIVE_CLIENT, native)
    await cluster.hubs["c"].open_session(carol)
    await join(cluster, "a", alice, room, "alice")
    await join(cluster, "b", bob, room, "bob")
    await join(cluster, "c", carol, room, "carol")
    for seen in (alice_sees, bob_sees, native):
        assert occupants_seen(seen, room) == {"alice", "bob", "carol"}
    await say(cluster, "a", alice, room, "from a")
    await say(cluster, "b", bob, room, "from b")
    await say(cluster, "c", carol, room, "from c")
    expected = [(f"{room}/alice", "from a"), (f"{room}/bob", "from b"), (f"{room}/carol", "from c")]
    for seen in (alice_sees, bob_sees, native):
        assert groupchat(seen) == expected
    # Only the owner holds the room's live state.
    assert [room in muc(cluster, node).rooms for node in "abc"] == [False, True, False]


async def test_a_late_joiner_on_another_node_gets_the_history() -> None:
    cluster = Cluster("a", "b")
    room = room_owned_by("a", ["a", "b"])
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    await join(cluster, "a", alice, room, "alice")
    await say(cluster, "a", alice, room, "before you came")
    bob, bob_sees = await cluster.online("b", "bob@localhost/phone")
    await join(cluster, "b", bob, room, "bob")
    assert groupchat(bob_sees) == [(f"{room}/alice", "before you came")]
    history = next(s for s in bob_sees.stanzas if s.tag == "{jabber:client}message")
    assert history.find("{urn:xmpp:delay}delay") is not None


async def test_a_refusal_by_the_owner_reaches_the_sender_on_its_own_node() -> None:
    # The nick is taken: an XMPP client gets the error presence (XEP-0045
    # §7.2.9), a native client's front end gets the error to answer its <join>.
    cluster = Cluster("a", "b")
    room = room_owned_by("a", ["a", "b"])
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    await join(cluster, "a", alice, room, "same")
    bob, bob_sees = await cluster.online("b", "bob@localhost/phone")
    bob_sees.stanzas.clear()
    await join(cluster, "b", bob, room, "same")
    error = bob_sees.stanzas[-1]
    assert error.get("type") == "error" and error.find(f"{{{names.MUC}}}x") is not None
    assert error.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None
    carol = Session(JID.parse("carol@localhost/tty"), NATIVE_CLIENT, Recorder("native"))
    await cluster.hubs["b"].open_session(carol)
    with pytest.raises(StanzaError) as refused:
        await join(cluster, "b", carol, room, "same")
    assert refused.value.condition is StanzaCondition.CONFLICT


async def test_an_occupant_whose_session_ends_on_another_node_leaves_the_room() -> None:
    cluster = Cluster("a", "b")
    room = room_owned_by("a", ["a", "b"])
    alice, alice_sees = await cluster.online("a", "alice@localhost/desk")
    bob, _ = await cluster.online("b", "bob@localhost/phone")
    await join(cluster, "a", alice, room, "alice")
    await join(cluster, "b", bob, room, "bob")
    await cluster.hubs["b"].close_session(bob)
    assert occupants_seen(alice_sees, room) == {"alice"}
    assert [o.nick for o in muc(cluster, "a").rooms[room].occupants.values()] == ["alice"]


async def test_unavailable_presence_on_another_node_leaves_the_room() -> None:
    # RFC 6121 §4.6.2: broadcast unavailable presence goes to every room entered.
    cluster = Cluster("a", "b")
    room = room_owned_by("a", ["a", "b"])
    alice, alice_sees = await cluster.online("a", "alice@localhost/desk")
    bob, _ = await cluster.online("b", "bob@localhost/phone")
    await join(cluster, "a", alice, room, "alice")
    await join(cluster, "b", bob, room, "bob")
    await cluster.hubs["b"].receive(bob, make("presence", {"type": "unavailable"}), None)
    assert occupants_seen(alice_sees, room) == {"alice"}


async def test_when_the_owner_dies_occupants_elsewhere_get_332_and_talk_again_on_the_new_owner() -> None:
    cluster = Cluster("a", "b", "c")
    room = room_owned_by("b", ["a", "b", "c"])
    alice, alice_sees = await cluster.online("a", "alice@localhost/desk")
    bob, _ = await cluster.online("b", "bob@localhost/phone")
    carol, carol_sees = await cluster.online("c", "carol@localhost/desk")
    for node, session, nick in (("a", alice, "alice"), ("b", bob, "bob"), ("c", carol, "carol")):
        await join(cluster, node, session, room, nick)
    alice_sees.stanzas.clear()
    carol_sees.stanzas.clear()
    await cluster.kill("b")
    for seen, nick in ((alice_sees, "alice"), (carol_sees, "carol")):
        told = [s for s in seen.stanzas if s.get("from") == f"{room}/{nick}"]
        assert len(told) == 1 and told[0].get("type") == "unavailable"
        assert codes(told[0]) == {names.STATUS_SELF, names.STATUS_SHUTDOWN}
    new_owner = owner_of(str(room), ["a", "c"])
    await join(cluster, "a", alice, room, "alice")
    await join(cluster, "c", carol, room, "carol")
    assert occupants_seen(carol_sees, room) == {"alice", "carol"}  # bob left with his node
    alice_sees.stanzas.clear()
    await say(cluster, "c", carol, room, "still here")
    assert groupchat(alice_sees) == [(f"{room}/carol", "still here")]
    assert room in muc(cluster, new_owner).rooms


async def test_a_node_that_joins_takes_its_rooms_and_their_occupants_are_told() -> None:
    # Node d starts and wins the room: the old owner (alive) drops it, and
    # every node tells its own occupants (332); they enter again on d.
    cluster = Cluster("a", "b", "d")
    cluster.down.add("d")  # not started yet
    room = next(
        JID.parse(f"room{i}@{SERVICE}")
        for i in range(1000)
        if owner_of(f"room{i}@{SERVICE}", ["a", "b", "d"]) == "d"
        and owner_of(f"room{i}@{SERVICE}", ["a", "b"]) == "a"
    )
    alice, alice_sees = await cluster.online("a", "alice@localhost/desk")
    bob, bob_sees = await cluster.online("b", "bob@localhost/phone")
    await join(cluster, "a", alice, room, "alice")
    await join(cluster, "b", bob, room, "bob")
    assert room in muc(cluster, "a").rooms
    cluster.down.discard("d")
    for node in ("a", "b", "d"):
        await cluster.hubs[node].cluster_changed()
    assert room not in muc(cluster, "a").rooms
    for seen, nick in ((alice_sees, "alice"), (bob_sees, "bob")):
        assert codes(seen.stanzas[-1]) == {names.STATUS_SELF, names.STATUS_SHUTDOWN}
        assert seen.stanzas[-1].get("from") == f"{room}/{nick}"
    await join(cluster, "a", alice, room, "alice")
    await join(cluster, "b", bob, room, "bob")
    assert room in muc(cluster, "d").rooms
    assert occupants_seen(bob_sees, room) == {"alice", "bob"}


async def test_a_node_asked_for_a_room_it_does_not_serve_passes_the_stanza_to_its_owner() -> None:
    # Node d has just started: b (the room's old owner) has heard of it, a
    # not yet. a forwards to b, which passes it on to d, the owner now; no
    # copy of the room starts on b, where no one would ever tell it to stop.
    cluster = Cluster("a", "b", "d")
    room = next(
        JID.parse(f"room{i}@{SERVICE}")
        for i in range(1000)
        if owner_of(f"room{i}@{SERVICE}", ["a", "b", "d"]) == "d"
        and owner_of(f"room{i}@{SERVICE}", ["a", "b"]) == "b"
    )
    cluster.unheard["a"] = {"d"}
    alice, alice_sees = await cluster.online("a", "alice@localhost/desk")
    await join(cluster, "a", alice, room, "alice")
    assert [room in muc(cluster, node).rooms for node in "abd"] == [False, False, True]
    assert codes(alice_sees.stanzas[-2]) >= {names.STATUS_SELF, names.STATUS_CREATED}


async def test_a_persistent_room_keeps_its_configuration_when_its_owner_changes() -> None:
    cluster = Cluster("a", "b", "c")
    room = room_owned_by("b", ["a", "b", "c"])
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    await join(cluster, "a", alice, room, "alice")
    form = make("iq", {"type": "set", "id": "cfg", "from": str(alice.jid), "to": str(room)})
    query = etree.SubElement(form, f"{{{names.OWNER}}}query")
    x = etree.SubElement(query, "{jabber:x:data}x", type="submit")
    for var, value in (("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
                       ("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_roomname", "Kept")):
        field = etree.SubElement(x, "{jabber:x:data}field", var=var)
        etree.SubElement(field, "{jabber:x:data}value").text = value
    await cluster.hubs["a"].receive(alice, form, room)
    await cluster.kill("b")
    new_owner = owner_of(str(room), ["a", "c"])
    await join(cluster, "a", alice, room, "alice")
    kept = muc(cluster, new_owner).rooms[room]
    assert kept.config.persistent and kept.config.name == "Kept"
    assert kept.affiliation(alice.jid) == "owner"


async def test_a_node_keeps_no_copy_of_a_persistent_room_it_does_not_serve() -> None:
    # Each node loads the persistent rooms at start: only those it owns, or a
    # stale copy would serve the room once it became the owner.
    cluster = Cluster("a", "b")
    room = room_owned_by("b", ["a", "b"])
    stored = StoredRoom(room, RoomConfig(persistent=True, name="Old").values(), {ALICE: "owner"})
    await cluster.store.save_room(stored)
    for hub in cluster.hubs.values():
        await hub.start()
    assert [room in muc(cluster, node).rooms for node in "ab"] == [False, True]
    # The owner changes its name (saved, as every change of a persistent room), then dies.
    await cluster.store.save_room(replace(stored, config=RoomConfig(persistent=True, name="New").values()))
    await cluster.kill("b")
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    await join(cluster, "a", alice, room, "alice")
    assert muc(cluster, "a").rooms[room].config.name == "New"


async def test_without_a_cluster_the_room_service_adds_nothing_to_the_path_out() -> None:
    hub = build_hub(Config(), MemoryStorage(), Metrics())
    outbound = [fn for _, fn in hub.registry.outbound]
    assert not any(getattr(fn, "__self__", None).__class__.__name__ == "Memberships" for fn in outbound)
    assert hub.registry.cluster_outbound  # kept for a cluster
