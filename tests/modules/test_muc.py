"""XEP-0045 room logic on a real hub with in-memory storage, no sockets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from modules.fakes import Harness
from modules.muc_world import SERVICE, World, codes, item

from xmlchat.config import Config
from xmlchat.config import Muc as MucSettings
from xmlchat.config_rules import problems
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.muc.history import limits_of
from xmlchat.modules.muc.names import MUC
from xmlchat.stanza import make

ROOM = f"room@{SERVICE}"


async def _refused(coro: object) -> StanzaCondition:
    with pytest.raises(StanzaError) as info:
        await coro  # type: ignore[misc]
    return info.value.condition


async def test_the_first_to_enter_creates_and_owns_the_room() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    own = alice.presences()[-1]
    assert own.get("from") == f"{ROOM}/Alice"
    assert codes(own) == {"110", "201"}
    assert item(own)["affiliation"] == "owner" and item(own)["role"] == "moderator"
    subject = alice.stanzas[-1]
    assert subject.find("{jabber:client}subject") is not None  # §7.2.15: last, even when empty


async def test_occupants_see_each_other_and_every_message_once() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    bob = await world.join("bob", "room", "Bob")
    # bob is shown alice first, then himself (110, no 201: he did not create it).
    froms = [p.get("from") for p in bob.presences()]
    assert froms == [f"{ROOM}/Alice", f"{ROOM}/Bob"]
    assert codes(bob.presences()[-1]) == {"110"}
    assert item(bob.presences()[-1])["role"] == "participant"
    # semi-anonymous: bob does not see alice's real JID; alice (a moderator) sees bob's.
    assert "jid" not in item(bob.presences()[0])
    assert item(alice.presences()[-1])["jid"] == "bob@localhost/pc"
    await world.say(bob, "room", "hello")
    assert alice.bodies()[-1] == (f"{ROOM}/Bob", "hello")
    assert bob.bodies() == [(f"{ROOM}/Bob", "hello")]  # reflected to the sender (§7.4)


async def test_bad_input_gets_the_xep_0045_errors() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    assert await _refused(world.join("bob", "room", "alice")) == StanzaCondition.CONFLICT  # case-folded
    carol = await world.client("carol")
    assert await _refused(world.say(carol, "room", "hi")) == StanzaCondition.NOT_ACCEPTABLE
    assert await _refused(world.say(carol, "nowhere", "hi")) == StanzaCondition.ITEM_NOT_FOUND
    assert await _refused(world.join("bob", "room", "a\u200bb")) == StanzaCondition.JID_MALFORMED
    await world.configure(alice, "room", membersonly="1")
    assert await _refused(world.join("bob", "room", "Bob")) == StanzaCondition.REGISTRATION_REQUIRED
    await world.configure(alice, "room", membersonly="0", roomsecret="s3cret")
    assert await _refused(world.join("bob", "room", "Bob")) == StanzaCondition.NOT_AUTHORIZED
    assert await _refused(world.join("bob", "room", "Bob", "wrong")) == StanzaCondition.NOT_AUTHORIZED
    bob = await world.join("bob", "room", "Bob", "s3cret")
    assert codes(bob.presences()[-1]) == {"110"}


async def test_a_nickname_is_made_canonical_and_the_client_told() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice\u00a0 Smith")
    own = alice.presences()[-1]
    assert own.get("from") == f"{ROOM}/Alice Smith"
    assert "210" in codes(own)


async def test_ban_kick_and_members() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    bob = await world.join("bob", "room", "Bob")
    await world.admin(alice, "room", nick="Bob", role="none")
    kicked = bob.presences()[-1]
    assert kicked.get("type") == "unavailable" and codes(kicked) == {"110", "307"}
    assert codes(alice.presences()[-1]) == {"307"}
    bob = await world.join("bob", "room", "Bob")  # a kick is not a ban
    await world.admin(alice, "room", jid="bob@localhost", affiliation="outcast")
    assert codes(bob.presences()[-1]) == {"110", "301"}
    assert await _refused(world.join("bob", "room", "Bob")) == StanzaCondition.FORBIDDEN
    # Only admins and owners ban; a participant cannot.
    carol = await world.join("carol", "room", "Carol")
    refused = world.admin(carol, "room", jid="alice@localhost", affiliation="outcast")
    assert await _refused(refused) == StanzaCondition.NOT_ALLOWED
    await world.admin(alice, "room", jid="bob@localhost", affiliation="member")
    await world.configure(alice, "room", membersonly="1")
    # carol was no member: she is put out with 322; bob, now a member, may enter.
    assert codes(carol.presences()[-1]) == {"110", "322"}
    bob = await world.join("bob", "room", "Bob")
    assert item(bob.presences()[-1])["affiliation"] == "member"


async def test_history_on_join_honours_maxstanzas() -> None:
    world = await World.start(history_size=5)
    alice = await world.join("alice", "room", "Alice")
    for i in range(8):
        await world.say(alice, "room", f"m{i}")
    bob = await world.join("bob", "room", "Bob", maxstanzas="2")
    assert [b for _, b in bob.bodies()] == ["m6", "m7"]
    history = [m for m in bob.stanzas if m.find("{jabber:client}body") is not None]
    assert all(m.find("{urn:xmpp:delay}delay") is not None for m in history)
    carol = await world.join("carol", "room", "Carol")
    assert [b for _, b in carol.bodies()] == ["m3", "m4", "m5", "m6", "m7"]
    dave = await world.join("dave", "room", "Dave", maxstanzas="0")
    assert dave.bodies() == []


async def test_nick_change_and_leaving() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    bob = await world.join("bob", "room", "Bob")
    await world.join("bob", "room", "Robert")
    change = [p for p in alice.presences() if "303" in codes(p)][-1]
    assert change.get("from") == f"{ROOM}/Bob" and item(change)["nick"] == "Robert"
    assert alice.presences()[-1].get("from") == f"{ROOM}/Robert"
    await world.leave(bob, "room", "Robert")
    assert alice.presences()[-1].get("type") == "unavailable"
    assert codes(bob.presences()[-1]) == {"110"}
    await world.harness.hub.close_session(alice.session)
    assert JID.parse(ROOM) not in world.muc.rooms  # a temporary room goes with its last occupant


async def test_limits_rooms_occupants_and_rate() -> None:
    world = await World.start(max_rooms=1, max_occupants=2, messages_per_second=0.001, message_burst=2)
    alice = await world.join("alice", "room", "Alice")
    await world.join("bob", "room", "Bob")
    assert await _refused(world.join("carol", "room", "Carol")) == StanzaCondition.SERVICE_UNAVAILABLE
    assert await _refused(world.join("carol", "other", "Carol")) == StanzaCondition.RESOURCE_CONSTRAINT
    await world.say(alice, "room", "1")
    await world.say(alice, "room", "2")
    assert await _refused(world.say(alice, "room", "3")) == StanzaCondition.POLICY_VIOLATION


async def test_a_persistent_room_survives_a_restart() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    await world.configure(alice, "room", persistentroom="1", roomname="Lobby")
    await world.admin(alice, "room", jid="bob@localhost", affiliation="member")
    subject = make("message", {"to": ROOM, "type": "groupchat"})
    etree.SubElement(subject, "{jabber:client}subject").text = "Plans"
    await world.send(alice, subject)
    await world.leave(alice, "room", "Alice")
    assert JID.parse(ROOM) in world.muc.rooms  # persistent: kept when empty
    again = Harness(world.harness.config)
    again.store = world.harness.store
    restarted = await World.start(again)
    room = restarted.muc.rooms[JID.parse(ROOM)]
    assert room.config.name == "Lobby" and room.subject == "Plans"
    assert room.affiliations == {JID.parse("alice@localhost"): "owner", JID.parse("bob@localhost"): "member"}


async def test_a_failing_room_does_not_touch_another(monkeypatch: pytest.MonkeyPatch) -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    bob = await world.join("bob", "other", "Bob")
    broken = world.muc.rooms[JID.parse(ROOM)]

    def explode(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(broken.history, "add", explode)
    assert await _refused(world.say(alice, "room", "boom")) == StanzaCondition.INTERNAL_SERVER_ERROR
    await world.say(bob, "other", "still fine")
    assert bob.bodies()[-1] == (f"other@{SERVICE}/Bob", "still fine")


async def test_disco_of_service_and_room() -> None:
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    info_ns = "http://jabber.org/protocol/disco#info"
    result = await world.iq(alice, "get", ROOM, etree.Element(f"{{{info_ns}}}query"))
    features = {f.get("var") for f in result.iter(f"{{{info_ns}}}feature")}
    assert {"http://jabber.org/protocol/muc", "muc_temporary", "muc_open", "muc_semianonymous"} <= features
    items_ns = "http://jabber.org/protocol/disco#items"
    result = await world.iq(alice, "get", SERVICE, etree.Element(f"{{{items_ns}}}query"))
    assert [i.get("jid") for i in result.iter(f"{{{items_ns}}}item")] == [ROOM]


async def test_an_xmpp_client_gets_a_muc_error_presence() -> None:
    """§7.2.9: the error presence comes from the room JID and carries the MUC <x/>."""
    world = await World.start()
    await world.join("alice", "room", "Alice")
    bob = await world.client("bob", xmpp=True)
    await world.join("bob", "room", "Alice")
    error = bob.presences()[-1]
    assert error.get("type") == "error" and error.get("from") == f"{ROOM}/Alice"
    assert error.find("{http://jabber.org/protocol/muc}x") is not None
    assert error.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None


def test_history_limits_seconds_and_since_take_the_later_bound() -> None:
    """§7.2.15: seconds and since both bound the history; malformed values are ignored."""
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    x = etree.Element(f"{{{MUC}}}x")
    etree.SubElement(x, f"{{{MUC}}}history", seconds="60", since="2026-12-01T11:00:00Z", maxchars="x")
    limits = limits_of(x, now)
    assert limits.since == now - timedelta(seconds=60) and limits.max_chars is None
    etree.SubElement(x[0], "ignored")
    x[0].set("since", "2026-12-01T11:59:30Z")
    assert limits_of(x, now).since == datetime(2026, 12, 1, 11, 59, 30, tzinfo=UTC)
    assert limits_of(None, now).max_stanzas is None


async def test_a_non_anonymous_room_says_so_and_shows_real_jids() -> None:
    """§7.2.4 status 100 on entering, §10.2.1 104 and 172 when the owner turns it on."""
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    bob = await world.join("bob", "room", "Bob")
    assert "jid" not in item(bob.presences()[0])  # semi-anonymous by default
    await world.configure(alice, "room", whois="anyone")
    notice = [s for s in bob.stanzas if s.tag == "{jabber:client}message" and codes(s)][-1]
    assert codes(notice) == {"104", "172"} and notice.get("from") == ROOM
    carol = await world.join("carol", "room", "Carol")
    assert codes(carol.presences()[-1]) == {"110", "100"}
    assert {item(p).get("jid") for p in carol.presences()[:-1]} == {"alice@localhost/pc", "bob@localhost/pc"}


async def test_an_occupant_cannot_speak_for_the_room() -> None:
    """Status codes, invitations and stanza ids are the room's to give: they are
    taken off what an occupant sends (XEP-0359 §3.3 for the ids)."""
    world = await World.start()
    alice = await world.join("alice", "room", "Alice")
    bob = await world.join("bob", "room", "Bob")
    forged = make("message", {"to": ROOM, "type": "groupchat"})
    etree.SubElement(forged, "{jabber:client}body").text = "trust me"
    x = etree.SubElement(forged, "{http://jabber.org/protocol/muc#user}x")
    etree.SubElement(x, "{http://jabber.org/protocol/muc#user}status", code="104")
    etree.SubElement(forged, "{urn:xmpp:sid:0}stanza-id", by=ROOM, id="fake")
    await world.send(bob, forged)
    received = [s for s in alice.stanzas if s.findtext("{jabber:client}body") == "trust me"][-1]
    assert codes(received) == set() and received.find("{urn:xmpp:sid:0}stanza-id") is None


async def test_the_room_service_can_have_another_name() -> None:
    world = await World.start(subdomain="rooms")
    await world.send(await world.client("alice"), make("presence", {"to": "lobby@rooms.localhost/Alice"}))
    assert JID.parse("lobby@rooms.localhost") in world.muc.rooms


def test_room_settings_are_checked_at_start() -> None:
    """One DNS label (the hub finds a service by its domain's first label), counts above 0."""
    settings = replace(MucSettings(), subdomain="chat.rooms", max_rooms=0, messages_per_second=-1)
    found = {e.key for e in problems(replace(Config(), muc=settings))}
    assert found == {"muc.subdomain", "muc.max_rooms", "muc.messages_per_second"}
    assert problems(Config()) == []
