"""Writes that belong together land together (issue 10): a native mutual contact
add or remove changes both rosters and the pending requests in one store
transaction; a subscription change or an item removal writes the item and
forgets the answered request in one; roster pushes go out only once committed.

The store here fails the n-th roster write it is asked for, as a crash between
two writes would; a batch of writes that reaches it fails whole, as a
transaction that never committed does (``tests/storage`` shows each backend
really rolls back).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from lxml import etree
from modules.blocking_world import ALICE, BOB, World
from modules.fakes import Recorder

from xmlchat.jid import JID
from xmlchat.modules.roster.book import ITEM, QUERY
from xmlchat.modules.roster.contacts import ADD, REMOVE, request
from xmlchat.routing.session import Session
from xmlchat.stanza import make
from xmlchat.storage import MemoryStorage, RosterChange, RosterItem

SECOND_WRITE = 2  # fail_at = writes + SECOND_WRITE: the second write from then on fails


class Crash(Exception):
    """The store went away in the middle of a change."""


class FailingStore(MemoryStorage):
    """Counts roster writes (items and pending requests) and fails the
    ``fail_at``-th; until armed it never fails."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_at: int | None = None
        self.writes = 0

    def _write(self, count: int = 1) -> None:
        if self.fail_at is not None and self.writes + count >= self.fail_at:
            raise Crash(f"write {self.fail_at} failed")
        self.writes += count

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        self._write()
        return await super().put_roster_item(user, item)

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        self._write()
        return await super().delete_roster_item(user, contact)

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        self._write()
        await super().delete_subscription_request(user, contact)

    async def apply_roster_changes(self, changes: Sequence[RosterChange]) -> dict[JID, int]:
        self._write(len(changes))  # all of them, or (a rollback) none
        return await super().apply_roster_changes(changes)


def roster_pushes(recorder: Recorder) -> list[tuple[str, str, str]]:
    """(ver, contact, subscription) of each roster push received."""
    return [
        (str(s[0].get("ver")), str(item.get("jid")), str(item.get("subscription")))
        for s in recorder.stanzas
        if s.tag == "{jabber:client}iq" and s.get("type") == "set" and s[0].tag == QUERY
        for item in s[0]
    ]


async def interested(world: World, full: str) -> tuple[Session, Recorder]:
    """An XMPP resource that asked for its roster, so it gets pushes (RFC 6121 §2.1.6)."""
    session, recorder = await world.login(full)
    iq = make("iq", {"type": "get", "id": "roster"})
    etree.SubElement(iq, QUERY)
    await world.send(session, iq)
    return session, recorder


async def contacts_iq(world: World, session: Session, tag: str, contact: str) -> None:
    """What the native front end does for <contact-add>/<contact-remove>."""
    iq = make("iq", {"type": "set", "id": "contacts"})
    iq.append(request(tag, contact))
    await world.hub.call_iq(session, iq)


async def snapshot(store: MemoryStorage) -> list[object]:
    return [
        await store.get_roster(ALICE),
        await store.get_roster(BOB),
        await store.get_subscription_requests(ALICE),
        await store.get_subscription_requests(BOB),
    ]


async def _world(before: str) -> tuple[World, FailingStore]:
    """alice and bob as ``before`` says: strangers, alice asked bob (his answer
    pending), or mutual contacts."""
    store = FailingStore()
    world = World(store=store)
    await world.users("alice@localhost", "bob@localhost")
    if before == "asked":
        await store.put_roster_item(ALICE, RosterItem(BOB, ask=True))
        await store.add_subscription_request(BOB, ALICE, b"<presence type='subscribe'/>")
    elif before == "mutual":
        await world.befriend(ALICE, BOB)
    return world, store


@pytest.mark.parametrize(
    ("before", "tag"),
    [("strangers", ADD), ("asked", ADD), ("mutual", REMOVE), ("asked", REMOVE)],
)
async def test_a_failed_write_leaves_neither_roster_changed(before: str, tag: str) -> None:
    world, store = await _world(before)
    _, alice_xmpp = await interested(world, "alice@localhost/laptop")
    _, bob_xmpp = await interested(world, "bob@localhost/phone")
    native, _ = await world.login("alice@localhost/native", native=True)
    unchanged = await snapshot(store)
    pushed = len(roster_pushes(alice_xmpp)), len(roster_pushes(bob_xmpp))

    store.fail_at = store.writes + SECOND_WRITE
    with pytest.raises(Crash):
        await contacts_iq(world, native, tag, "bob")

    assert await snapshot(store) == unchanged
    # Nothing was committed, so nothing was pushed (RFC 6121 §2.1.6).
    assert (len(roster_pushes(alice_xmpp)), len(roster_pushes(bob_xmpp))) == pushed


async def test_a_mutual_add_pushes_the_committed_versions_to_interested_resources() -> None:
    world, store = await _world("asked")
    _, alice_xmpp = await interested(world, "alice@localhost/laptop")
    _, bob_xmpp = await interested(world, "bob@localhost/phone")
    _, bob_idle = await world.login("bob@localhost/idle")  # never asked: no pushes
    native, _ = await world.login("alice@localhost/native", native=True)

    await contacts_iq(world, native, ADD, "bob")

    (_, alice_ver), (_, bob_ver) = await store.get_roster(ALICE), await store.get_roster(BOB)
    assert roster_pushes(alice_xmpp) == [(str(alice_ver), "bob@localhost", "both")]
    assert roster_pushes(bob_xmpp) == [(str(bob_ver), "alice@localhost", "both")]
    assert roster_pushes(bob_idle) == []
    assert await store.get_subscription_requests(BOB) == []  # answered by the add

    await contacts_iq(world, native, REMOVE, "bob")
    (_, alice_ver), (_, bob_ver) = await store.get_roster(ALICE), await store.get_roster(BOB)
    assert roster_pushes(alice_xmpp)[1:] == [(str(alice_ver), "bob@localhost", "remove")]
    assert roster_pushes(bob_xmpp)[1:] == [(str(bob_ver), "alice@localhost", "remove")]


async def test_an_approval_changes_the_item_and_answers_the_request_together() -> None:
    """RFC 6121 §3.1.5: bob approves alice's request; the stored request (his
    'pending in') goes with his item's change, or stays with it."""
    world, store = await _world("asked")
    bob, bob_xmpp = await interested(world, "bob@localhost/phone")
    unchanged = await snapshot(store)
    pushed = len(roster_pushes(bob_xmpp))

    store.fail_at = store.writes + SECOND_WRITE
    with pytest.raises(Crash):
        await world.send(bob, make("presence", {"type": "subscribed", "to": "alice@localhost"}))
    assert await snapshot(store) == unchanged
    assert len(roster_pushes(bob_xmpp)) == pushed

    store.fail_at = None  # the client tries again
    await world.send(bob, make("presence", {"type": "subscribed", "to": "alice@localhost"}))
    (_, bob_ver) = await store.get_roster(BOB)
    assert roster_pushes(bob_xmpp)[pushed:] == [(str(bob_ver), "alice@localhost", "from")]
    assert await store.get_subscription_requests(BOB) == []
    assert await store.get_roster(ALICE) == ([RosterItem(BOB, subscription="to")], 2)


async def test_removing_an_item_forgets_its_request_together() -> None:
    """RFC 6121 §2.5.2: bob removes alice, who asked him; her request must not
    outlive the item (it would be offered again at his next login, §3.1.3)."""
    world, store = await _world("asked")
    await store.put_roster_item(BOB, RosterItem(ALICE, "Al"))
    bob, bob_xmpp = await interested(world, "bob@localhost/phone")
    unchanged = await snapshot(store)
    pushed = len(roster_pushes(bob_xmpp))

    def remove() -> etree._Element:
        iq = make("iq", {"type": "set", "id": "rm"})
        etree.SubElement(iq, QUERY).append(
            etree.Element(ITEM, jid="alice@localhost", subscription="remove")
        )
        return iq

    store.fail_at = store.writes + SECOND_WRITE
    with pytest.raises(Crash):
        await world.send(bob, remove())
    assert await snapshot(store) == unchanged
    assert len(roster_pushes(bob_xmpp)) == pushed

    store.fail_at = None
    await world.send(bob, remove())
    (_, bob_ver) = await store.get_roster(BOB)
    assert roster_pushes(bob_xmpp)[pushed:] == [(str(bob_ver), "alice@localhost", "remove")]
    assert await store.get_subscription_requests(BOB) == []
    # §3.2: bob's server told alice 'unsubscribed': her request is over too.
    assert await store.get_roster(ALICE) == ([RosterItem(BOB)], 2)
