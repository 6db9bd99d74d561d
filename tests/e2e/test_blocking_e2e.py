"""XEP-0191 blocking end to end: slixmpp (its xep_0191 plugin) and the native
client against the real server, one list for both protocols.

Every wait has a deadline. "Nothing else arrived" is read after a round trip
on the same connection (a blocklist get): the server writes to one connection
in order, so what was sent before the answer has been received by then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ServerProcess
from e2e.xmpp_helpers import TIMEOUT, XmppPeer, connect
from slixmpp import JID as SlixJID
from slixmpp.stanza import Iq, Message

from xmlchat.client.native import NativeClient, PresenceUpdate, ServerError

ALICE, BOB, CAROL = "alice@localhost", "bob@localhost", "carol@localhost"
BLOCKED = "{urn:xmpp:blocking:errors}blocked"


async def _next(queue: asyncio.Queue[Any], wanted: Callable[[Any], bool] = lambda _: True) -> Any:
    """The next item of ``queue`` that is ``wanted``; the others before it are dropped."""
    async with asyncio.timeout(TIMEOUT):
        while not wanted(item := await queue.get()):
            pass
        return item


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


@dataclass
class XmppUser:
    """A slixmpp client with the XEP-0191 plugin, its pushes and its message errors."""

    peer: XmppPeer
    pushes: asyncio.Queue[tuple[str, list[str]]] = field(default_factory=asyncio.Queue)
    errors: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)

    @property
    def blocking(self) -> Any:
        return self.peer.client.plugin["xep_0191"]

    async def blocklist(self) -> list[str]:
        """A get: the list, and this resource gets pushes from now on (§3.3)."""
        result: Iq = await self.blocking.get_blocked(timeout=TIMEOUT)
        return sorted(item.get("jid", "") for item in result.xml.iter("{urn:xmpp:blocking}item"))

    def send(self, to: str, body: str) -> None:
        self.peer.client.send_message(mto=SlixJID(to), mbody=body, mtype="chat")

    async def error(self) -> tuple[str, bool]:
        """The next message error: its condition, and whether it has XEP-0191's <blocked/>."""
        error: Message = await _next(self.errors)
        return str(error["error"]["condition"]), error.xml.find(
            f"{{jabber:client}}error/{BLOCKED}"
        ) is not None

    async def received(self) -> list[str]:
        """The bodies of every chat message received so far (after a round trip)."""
        await self.blocklist()
        return [str(m["body"]) for m in _drain(self.peer.messages)]


async def xmpp_user(server: ServerProcess, user: str, resource: str, presence: bool = True) -> XmppUser:
    peer = await connect(server, user, resource=resource, presence=presence)
    blocker = XmppUser(peer)
    peer.client.register_plugin("xep_0191")
    for event, tag in (("blocked", "block"), ("unblocked", "unblock")):
        peer.client.add_event_handler(event, _push_handler(blocker.pushes, tag))
    peer.client.add_event_handler("message_error", blocker.errors.put_nowait)
    return blocker


def _push_handler(queue: asyncio.Queue[tuple[str, list[str]]], tag: str) -> Callable[[Iq], None]:
    def handle(iq: Iq) -> None:
        queue.put_nowait(
            (tag, sorted(item.get("jid", "") for item in iq.xml.iter("{urn:xmpp:blocking}item")))
        )

    return handle


@dataclass
class NativeUser:
    client: NativeClient
    presence: asyncio.Queue[PresenceUpdate] = field(default_factory=asyncio.Queue)
    pushes: asyncio.Queue[list[str]] = field(default_factory=asyncio.Queue)

    async def sees(self, user: str, online: bool) -> None:
        await _next(self.presence, lambda p: p.user == user and p.online == online)

    async def received(self) -> list[str]:
        await self.client.blocklist()  # a round trip: everything before it is in
        return [m.body for m in _drain(self.client.incoming)]

    async def refused(self, to: str, body: str) -> str:
        with pytest.raises(ServerError) as failure:
            await self.client.send(to, body)
        return failure.value.condition


async def native_user(server: ServerProcess, user: str) -> NativeUser:
    native = NativeUser(NativeClient(user, f"{user}pw", port=server.ports["native"], ssl=server.client_ssl()))
    native.client.reconnect = False
    native.client.on_presence = native.presence.put_nowait
    native.client.on_blocklist = native.pushes.put_nowait
    await native.client.start()
    # The client asks for the list after login (the answer comes here):
    # from then on this session gets pushes.
    await _next(native.pushes)
    return native


@asynccontextmanager
async def closing(*users: XmppUser | NativeUser) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for user in users:
            if isinstance(user, XmppUser):
                await user.peer.close()
            else:
                await user.client.close()


async def test_xmpp_user_blocks_native_user(server: ServerProcess) -> None:
    alice = await xmpp_user(server, "alice", "laptop")
    alice_native = await native_user(server, "alice")
    bob = await native_user(server, "bob")
    async with closing(alice, alice_native, bob):
        assert await alice.blocklist() == []
        await bob.client.add_contact("alice")  # mutual: each sees the other
        await bob.sees(ALICE, online=True)
        await alice.peer.next_presence("available", BOB)

        await alice.blocking.block([SlixJID(BOB)], timeout=TIMEOUT)
        assert await _next(alice.pushes) == ("block", [BOB])  # §3.3: the requester too
        assert await _next(alice_native.pushes) == [BOB]  # made over XMPP, seen natively
        assert await alice_native.client.blocklist() == [BOB]
        await bob.sees(ALICE, online=False)  # both alice's resources hide
        await alice.peer.next_presence("unavailable", BOB)

        assert await bob.refused("alice", "let me in") == "service-unavailable"
        alice.send(BOB, "blocked you")
        assert await alice.error() == ("not-acceptable", True)
        assert await alice_native.refused("bob", "from the other protocol") == "not-acceptable"
        assert await bob.client.blocklist() == []  # bob's own list is untouched
        alice.peer.send_presence(pstatus="busy")  # a broadcast while blocked reaches bob not
        assert await alice.blocklist() == [BOB]  # a round trip: the broadcast is done
        assert await bob.received() == []
        assert [p for p in _drain(bob.presence) if p.user == ALICE] == []

        await alice.blocking.unblock([SlixJID(BOB)], timeout=TIMEOUT)
        assert await _next(alice.pushes) == ("unblock", [BOB])
        assert await _next(alice_native.pushes) == []
        await bob.sees(ALICE, online=True)
        await alice.peer.next_presence("available", BOB)

        await bob.client.send("alice", "after the unblock")
        assert await alice.received() == ["after the unblock"]
        assert await alice_native.received() == ["after the unblock"]
        assert await bob.received() == []
        assert _drain(alice.pushes) == [] and _drain(alice_native.pushes) == []
        assert _drain(alice.errors) == []


async def test_native_user_blocks_xmpp_user(server: ServerProcess) -> None:
    alice = await native_user(server, "alice")
    alice_laptop = await xmpp_user(server, "alice", "laptop")
    bob = await xmpp_user(server, "bob", "desk")
    async with closing(alice, alice_laptop, bob):
        assert await alice_laptop.blocklist() == []
        await alice.client.add_contact("bob")
        await alice.sees(BOB, online=True)
        await presence_from_each(bob, "available", alice)

        assert await alice.client.block("bob") == [BOB]
        assert await _next(alice_laptop.pushes) == ("block", [BOB])  # an XMPP push after a native block
        assert await alice_laptop.blocklist() == [BOB]
        await alice.sees(BOB, online=False)
        await presence_from_each(bob, "unavailable", alice)

        bob.send(ALICE, "are you there?")
        assert await bob.error() == ("service-unavailable", False)  # §3.3: no hint of the block
        assert await alice.refused("bob", "hi bob") == "not-acceptable"
        alice_laptop.send(BOB, "hi from the laptop")
        assert await alice_laptop.error() == ("not-acceptable", True)
        assert await bob.blocklist() == []

        assert await alice.client.unblock() == []  # unblock all (§3.5)
        assert await _next(alice_laptop.pushes) == ("unblock", [])
        await alice.sees(BOB, online=True)
        await presence_from_each(bob, "available", alice)

        bob.send(ALICE, "hello again")
        await alice.client.send("bob", "welcome back")
        assert await alice.received() == ["hello again"]
        assert await alice_laptop.received() == ["hello again"]
        assert await bob.received() == ["welcome back"]
        assert _drain(alice.pushes) == []  # its own changes came as answers, not pushes
        assert _drain(bob.errors) == [] and _drain(alice_laptop.errors) == []


async def presence_from_each(receiver: XmppUser, type_: str, alice: NativeUser) -> None:
    """Presence of ``type_`` from both of alice's resources, in either order."""
    expected = {f"{ALICE}/laptop", str(alice.client.address)}
    seen: set[str] = set()
    while seen != expected:
        presence = await receiver.peer.next_presence(type_, ALICE)
        seen.add(str(presence["from"]))
        assert seen <= expected


async def test_message_stored_before_the_block_is_not_delivered(server: ServerProcess) -> None:
    bob = await native_user(server, "bob")
    carol = await xmpp_user(server, "carol", "desk")
    async with closing(bob, carol):
        await bob.client.send("alice", "bob, before the block")  # acked: stored
        carol.send(ALICE, "carol, before the block")
        assert await carol.received() == []  # carol's message was taken, not refused
        assert _drain(carol.errors) == []

        # A session that never sends presence gets no stored messages (XEP-0160).
        alice = await xmpp_user(server, "alice", "laptop", presence=False)
        async with closing(alice):
            await alice.blocking.block([SlixJID(BOB)], timeout=TIMEOUT)
            assert await alice.received() == []
            alice.peer.send_presence()
            first: Message = await _next(alice.peer.messages)
            assert str(first["body"]) == "carol, before the block"
            assert await alice.received() == []  # and nothing else: bob's was dropped

        # Offline, the stored list decides: bob is refused, nothing is stored.
        assert await bob.refused("alice", "bob, while blocked") == "service-unavailable"
        alice_again = await native_user(server, "alice")
        async with closing(alice_again):
            assert await alice_again.received() == []
            assert await alice_again.client.blocklist() == [BOB]
        assert await bob.received() == []
