"""XEP-0045 rooms end to end: slixmpp's xep_0045 and xep_0249 plugins and the
native client in the same rooms, against the real server; raw-socket errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import ServerFactory, ServerProcess
from e2e.xmpp_client_helpers import raw_login
from e2e.xmpp_helpers import TIMEOUT, XmppPeer, connect
from slixmpp import JID as SlixJID
from slixmpp.exceptions import PresenceError
from slixmpp.stanza import Message, Presence

from xmlchat.client.native import NativeClient, ServerError
from xmlchat.client.native_rooms import OccupantUpdate, RoomEvent, RoomLeft, RoomMessage, RoomSubject

ROOM = "lobby@conference.localhost"
USERS = {n: f"{n}pw" for n in ("alice", "bob", "carol", "dave")}


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory("[archive]\nenabled = true\n", users=USERS)


class MucPeer:
    """A slixmpp client with the MUC plugins and queues of what rooms send."""

    def __init__(self, peer: XmppPeer) -> None:
        self.peer = peer
        self.client = peer.client
        self.muc = peer.client.plugin["xep_0045"]
        self.groupchat: asyncio.Queue[Message] = asyncio.Queue()
        self.invites: asyncio.Queue[Message] = asyncio.Queue()
        self.presences: asyncio.Queue[Presence] = asyncio.Queue()
        self.client.add_event_handler("groupchat_presence", self.presences.put_nowait)
        self.client.add_event_handler("groupchat_message", self.groupchat.put_nowait)
        self.client.add_event_handler("groupchat_invite", self.invites.put_nowait)
        self.client.add_event_handler("groupchat_direct_invite", self.invites.put_nowait)

    async def join(
        self, nick: str, room: str = ROOM, **kw: Any
    ) -> tuple[Presence, Message, list[Presence], list[Message]]:
        result: tuple[Presence, Message, list[Presence], list[Message]] = await self.muc.join_muc_wait(
            SlixJID(room), nick, timeout=TIMEOUT, **kw
        )
        return result

    async def refused(self, nick: str, room: str = ROOM, **kw: Any) -> str:
        with pytest.raises(PresenceError) as info:
            await self.join(nick, room, **kw)
        return str(info.value.condition)

    async def configure(self, room: str = ROOM, **values: Any) -> None:
        """Fill the room's configuration form (muc#roomconfig_NAME=value) and submit it."""
        form = await self.muc.get_room_config(SlixJID(room))
        for name, value in values.items():
            form.field[f"muc#roomconfig_{name}"]["value"] = value
        form.set_type("submit")
        await self.muc.set_room_config(SlixJID(room), form)

    async def next_presence(self, sender: str, type_: str = "available") -> Presence:
        while True:
            presence = await asyncio.wait_for(self.presences.get(), TIMEOUT)
            if str(presence["from"]) == sender and presence["type"] == type_:
                return presence

    async def next_groupchat(self, body: str | None = None) -> Message:
        while True:
            message = await asyncio.wait_for(self.groupchat.get(), TIMEOUT)
            if body is None or message["body"] == body:
                return message


async def _muc(server: ServerProcess, user: str) -> MucPeer:
    peer = await connect(server, user, resource="pc")
    for plugin in ("xep_0045", "xep_0249", "xep_0313", "xep_0030"):
        peer.client.register_plugin(plugin)
    return MucPeer(peer)


def _native(server: ServerProcess, user: str) -> NativeClient:
    return NativeClient(
        user, f"{user}pw", port=server.ports["native"], ssl=server.client_ssl(), reconnect=False
    )


async def _next_event(client: NativeClient, kind: type[RoomEvent]) -> Any:
    while True:
        event = await asyncio.wait_for(client.rooms.incoming.get(), TIMEOUT)
        if isinstance(event, kind):
            return event


def _codes(presence: Presence) -> set[int]:
    return set(presence["muc"]["status_codes"])


async def test_xmpp_and_native_users_share_a_room(server: ServerProcess) -> None:
    alice = await _muc(server, "alice")
    own, _, _, _ = await alice.join("Alice")
    assert {110, 201} <= _codes(own) and own["muc"]["affiliation"] == "owner"
    bob = _native(server, "bob")
    await bob.start()
    try:
        joined = await bob.rooms.join("lobby", "Bob")
        assert (joined.room, joined.nick) == (ROOM, "Bob")
        assert await _next_event(bob, OccupantUpdate) == OccupantUpdate(ROOM, "Alice", True)
        assert await _next_event(bob, RoomSubject) == RoomSubject(ROOM, None, "")  # last of the join
        alice.muc.set_subject(SlixJID(ROOM), "Plans")
        assert await _next_event(bob, RoomSubject) == RoomSubject(ROOM, "Alice", "Plans")
        seen = await alice.next_presence(f"{ROOM}/Bob")
        assert seen["muc"]["role"] == "participant"
        alice.client.send_message(mto=SlixJID(ROOM), mbody="hello from xmpp", mtype="groupchat")
        heard = await _next_event(bob, RoomMessage)
        assert (heard.room, heard.nick, heard.body, heard.delayed) == (
            ROOM,
            "Alice",
            "hello from xmpp",
            False,
        )
        ack = await bob.rooms.say("lobby", "hello from native")
        message = await alice.next_groupchat("hello from native")
        assert str(message["from"]) == f"{ROOM}/Bob" and message["id"] == ack.id
        assert await bob.rooms.who("lobby") == ["Alice", "Bob"]
        # A private message through the room (§7.5), both ways: the room hides real addresses.
        await bob.send(f"{ROOM}/Alice", "psst")
        private = await alice.peer.next_message()
        while private["type"] == "groupchat":  # the room's messages share the queue
            private = await alice.peer.next_message()
        assert (str(private["from"]), private["body"], private["type"]) == (f"{ROOM}/Bob", "psst", "chat")
        alice.client.send_message(mto=SlixJID(f"{ROOM}/Bob"), mbody="yes?", mtype="chat")
        answer = await asyncio.wait_for(bob.incoming.get(), TIMEOUT)
        assert (answer.sender, answer.body) == (f"{ROOM}/Alice", "yes?")
        # Joining again under another name is a nick change (§7.6): answered with the new name.
        assert (await bob.rooms.join("lobby", "Bobby")).nick == "Bobby"
        renamed = await alice.next_presence(f"{ROOM}/Bob", "unavailable")
        assert 303 in _codes(renamed) and renamed["muc"]["item_nick"] == "Bobby"
        assert await bob.rooms.who("lobby") == ["Alice", "Bobby"]
        # A late native joiner gets the history, marked as such.
        carol = _native(server, "carol")
        await carol.start()
        await carol.rooms.join(ROOM, max_history=1)
        earlier = await _next_event(carol, RoomMessage)
        assert (earlier.body, earlier.delayed) == ("hello from native", True)
        await carol.close()
        left = await bob.rooms.leave("lobby")
        assert left == RoomLeft(ROOM, None)
        await alice.next_presence(f"{ROOM}/Bobby", "unavailable")
    finally:
        await bob.close()
        await alice.peer.close()


async def test_room_errors_on_both_protocols(server: ServerProcess) -> None:
    alice = await _muc(server, "alice")
    await alice.join("Alice")
    bob = await _muc(server, "bob")
    assert await bob.refused("alice") == "conflict"  # nicknames compare case-folded
    carol = _native(server, "carol")
    await carol.start()
    try:
        with pytest.raises(ServerError) as info:
            await carol.rooms.join("lobby", "ALICE")
        assert info.value.condition == "conflict"
        with pytest.raises(ServerError) as info:
            await carol.rooms.say("lobby", "not in it")
        assert info.value.condition == "not-acceptable"
        # members-only, then banned, then password-protected
        await alice.configure(membersonly=True)
        assert await bob.refused("Bob") == "registration-required"
        with pytest.raises(ServerError) as info:
            await carol.rooms.join("lobby")
        assert info.value.condition == "registration-required"
        await alice.muc.set_affiliation(SlixJID(ROOM), "outcast", jid=SlixJID("bob@localhost"))
        assert await bob.refused("Bob") == "forbidden"
        await alice.configure(membersonly=False, roomsecret="s3cret")
        with pytest.raises(ServerError) as info:
            await carol.rooms.join("lobby", password="wrong")
        assert info.value.condition == "not-authorized"
        assert (await carol.rooms.join("lobby", password="s3cret")).nick == "carol"
        # A kick reaches the native user as <left> with its reason.
        await alice.muc.set_role(SlixJID(ROOM), "carol", "none")
        assert await _next_event(carol, RoomLeft) == RoomLeft(ROOM, "kicked")
    finally:
        await carol.close()
        await bob.peer.close()
        await alice.peer.close()


async def test_invitations_direct_and_mediated(server: ServerProcess) -> None:
    alice = await _muc(server, "alice")
    await alice.join("Alice")
    bob = await _muc(server, "bob")
    alice.client.plugin["xep_0249"].send_invitation(SlixJID("bob@localhost"), SlixJID(ROOM), reason="come")
    direct = await asyncio.wait_for(bob.invites.get(), TIMEOUT)
    assert str(direct["groupchat_invite"]["jid"]) == ROOM
    alice.muc.invite(SlixJID(ROOM), SlixJID("bob@localhost"), reason="please")
    mediated = await asyncio.wait_for(bob.invites.get(), TIMEOUT)
    assert str(mediated["from"]) == ROOM
    assert str(mediated["muc"]["invite"]["from"]) == "alice@localhost"
    await bob.peer.close()
    await alice.peer.close()


async def test_a_persistent_room_keeps_config_subject_and_archive_across_a_restart(
    server: ServerProcess,
) -> None:
    alice = await _muc(server, "alice")
    await alice.join("Alice")
    await alice.configure(persistentroom=True, roomname="The lobby")
    alice.muc.set_subject(SlixJID(ROOM), "Plans for Friday")
    for i in range(3):
        alice.client.send_message(mto=SlixJID(ROOM), mbody=f"m{i}", mtype="groupchat")
    await alice.next_groupchat("m2")
    await alice.peer.close()
    server.restart()
    bob = await _muc(server, "bob")
    info = await bob.client.plugin["xep_0030"].get_info(jid=SlixJID(ROOM), timeout=TIMEOUT)
    features = set(info["disco_info"]["features"])
    assert {"muc_persistent", "urn:xmpp:mam:2", "http://jabber.org/protocol/muc"} <= features
    _, subject, _, _ = await bob.join("Bob")
    assert subject["subject"] == "Plans for Friday"
    mam = bob.client.plugin["xep_0313"]
    results = [m async for m in mam.iterate(jid=SlixJID(ROOM), rsm={"max": 10})]
    bodies = [str(r["mam_result"]["forwarded"]["stanza"]["body"]) for r in results]
    assert bodies == ["m0", "m1", "m2"]
    items = await bob.client.plugin["xep_0030"].get_items(
        jid=SlixJID("conference.localhost"), timeout=TIMEOUT
    )
    assert [(str(j), name) for j, _, name in items["disco_items"]["items"]] == [(ROOM, "The lobby")]
    await bob.peer.close()


def test_raw_groupchat_to_a_room_not_joined_is_not_acceptable(server: ServerProcess) -> None:
    peer = raw_login(server, "dave")
    peer.send(f"<message to='{ROOM}' type='groupchat' id='g1'><body>hi</body></message>")
    reply = peer.read_until("</message>")
    assert b'type="error"' in reply or b"type='error'" in reply
    assert b"item-not-found" in reply  # no such room yet
    peer.received = b""
    peer.send(f"<presence to='{ROOM}/Dave'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    assert b'status code="201"' in peer.read_until("</message>")  # created; the subject came last
    peer.received = b""
    peer.send(f"<message to='{ROOM}/Nobody' type='chat' id='p1'><body>psst</body></message>")
    assert b"item-not-found" in peer.read_until("</message>")
    peer.received = b""
    peer.send(f"<presence to='{ROOM}/   '/>")
    assert b"jid-malformed" in peer.read_until("</presence>")
    peer.close()
