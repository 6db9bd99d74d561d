"""Offline messages, rosters, subscription requests and delete_user, against both
backends (see conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from storage.common import ALICE, BOB, CAROL, PASSWORD, T0

from xmlchat.storage import OfflineQueueFull, RosterItem, Storage

# -- offline messages -----------------------------------------------------------------

async def test_offline_fifo_and_delete_up_to(storage: Storage) -> None:
    ids = [
        await storage.store_offline(ALICE, f"<m{i}/>".encode(), T0 + timedelta(seconds=i), 10)
        for i in range(3)
    ]
    await storage.store_offline(BOB, b"<other/>", T0, 10)
    assert ids == sorted(ids)
    messages = await storage.fetch_offline(ALICE)
    assert [m.stanza for m in messages] == [b"<m0/>", b"<m1/>", b"<m2/>"]
    assert [m.id for m in messages] == ids
    assert messages[1].received == T0 + timedelta(seconds=1)
    assert messages[1].received.tzinfo is not None
    assert await storage.fetch_offline(ALICE) == messages  # fetching does not delete

    await storage.delete_offline(ALICE, ids[1])
    assert [m.id for m in await storage.fetch_offline(ALICE)] == [ids[2]]
    assert await storage.count_offline(ALICE) == 1
    assert await storage.count_offline(BOB) == 1
    assert await storage.count_offline() == 2

async def test_offline_pages_after_an_id(storage: Storage) -> None:
    """A replay reads a page at a time: ids after the last one it handed out."""
    ids = [await storage.store_offline(ALICE, f"<m{i}/>".encode(), T0, 10) for i in range(5)]
    first = await storage.fetch_offline(ALICE, limit=2)
    assert [m.id for m in first] == ids[:2]
    second = await storage.fetch_offline(ALICE, after_id=first[-1].id, limit=2)
    assert [m.id for m in second] == ids[2:4]
    rest = await storage.fetch_offline(ALICE, after_id=second[-1].id)
    assert [m.stanza for m in rest] == [b"<m4/>"]
    assert await storage.fetch_offline(ALICE, after_id=ids[-1]) == []

async def test_offline_received_is_stored_as_utc(storage: Storage) -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    await storage.store_offline(ALICE, b"<m/>", local, 10)
    (message,) = await storage.fetch_offline(ALICE)
    assert message.received == T0 and message.received.utcoffset() == timedelta(0)
    with pytest.raises(ValueError):
        await storage.store_offline(ALICE, b"<m/>", datetime(2024, 5, 1), 10)

async def test_offline_limit(storage: Storage) -> None:
    for _ in range(3):
        await storage.store_offline(ALICE, b"<m/>", T0, limit=3)
    with pytest.raises(OfflineQueueFull):
        await storage.store_offline(ALICE, b"<m/>", T0, limit=3)
    assert await storage.count_offline(ALICE) == 3
    await storage.store_offline(BOB, b"<m/>", T0, limit=3)  # per user

async def test_offline_limit_holds_under_concurrency(storage: Storage) -> None:
    results = await asyncio.gather(
        *(storage.store_offline(ALICE, b"<m/>", T0, limit=5) for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 5
    assert sum(isinstance(r, OfflineQueueFull) for r in results) == 15

async def test_offline_ids_are_not_reused(storage: Storage) -> None:
    first = await storage.store_offline(ALICE, b"<m/>", T0, 10)
    await storage.delete_offline(ALICE, first)
    assert await storage.store_offline(ALICE, b"<m/>", T0, 10) > first

# -- roster -----------------------------------------------------------------------

async def test_roster_upsert_and_versions(storage: Storage) -> None:
    assert await storage.get_roster(ALICE) == ([], 0)
    assert await storage.put_roster_item(ALICE, RosterItem(BOB, ask=True)) == 1
    updated = RosterItem(BOB, "Bob", "to", approved=True, groups=("Work", "Friends"))
    assert await storage.put_roster_item(ALICE, updated) == 2
    assert await storage.put_roster_item(ALICE, RosterItem(CAROL.with_resource("x"))) == 3

    items, version = await storage.get_roster(ALICE)
    assert items == [updated, RosterItem(CAROL)]  # sorted by contact; stored bare
    assert version == 3
    assert await storage.get_roster_item(ALICE, BOB) == updated
    assert await storage.get_roster_item(ALICE, ALICE) is None
    assert await storage.get_roster(BOB) == ([], 0)  # rosters are per user

async def test_roster_delete(storage: Storage) -> None:
    await storage.put_roster_item(ALICE, RosterItem(BOB))
    assert await storage.delete_roster_item(ALICE, BOB) == 2
    assert await storage.delete_roster_item(ALICE, BOB) == 2  # nothing changed
    assert await storage.get_roster(ALICE) == ([], 2)

async def test_roster_rejects_unknown_subscription(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.put_roster_item(ALICE, RosterItem(BOB, subscription="remove"))

# -- subscription requests ------------------------------------------------------------

async def test_subscription_requests(storage: Storage) -> None:
    await storage.add_subscription_request(ALICE, BOB, b"<presence type='subscribe'/>")
    await storage.add_subscription_request(ALICE, CAROL, b"<carol/>")
    await storage.add_subscription_request(ALICE, BOB.with_resource("r"), b"<again/>")
    assert await storage.get_subscription_requests(ALICE) == [
        (BOB, b"<again/>"),
        (CAROL, b"<carol/>"),
    ]
    await storage.delete_subscription_request(ALICE, BOB)
    assert await storage.get_subscription_requests(ALICE) == [(CAROL, b"<carol/>")]
    assert await storage.get_subscription_requests(BOB) == []

# -- delete_user cascades -------------------------------------------------------------

async def test_delete_user_removes_everything_of_theirs(storage: Storage) -> None:
    for jid in (ALICE, BOB):
        await storage.create_user(jid, PASSWORD)
        await storage.put_roster_item(jid, RosterItem(CAROL))
        await storage.store_offline(jid, b"<m/>", T0, 10)
        await storage.add_subscription_request(jid, CAROL, b"<s/>")
        await storage.block(jid, [CAROL])

    assert await storage.delete_user(ALICE)
    assert await storage.get_scram(ALICE, "SCRAM-SHA-256") is None
    assert await storage.get_roster(ALICE) == ([], 0)
    assert await storage.fetch_offline(ALICE) == []
    assert await storage.get_subscription_requests(ALICE) == []
    assert await storage.get_blocklist(ALICE) == []

    assert await storage.check_password(BOB, PASSWORD)
    assert (await storage.get_roster(BOB))[1] == 1
    assert await storage.count_offline() == 1
    assert len(await storage.get_subscription_requests(BOB)) == 1
    assert await storage.get_blocklist(BOB) == [CAROL]


async def test_a_burst_of_offline_writes_keeps_order_and_the_limit(storage: Storage) -> None:
    """Concurrent writes (one event-loop turn: one transaction on SQLite) get
    ascending ids in call order, and the limit counts the burst's own writes."""
    results = await asyncio.gather(
        *(storage.store_offline(ALICE, f"<m{i}/>".encode(), T0, 10) for i in range(15)),
        return_exceptions=True,
    )
    ids = [r for r in results if isinstance(r, int)]
    assert ids == sorted(ids) and len(ids) == 10
    assert all(isinstance(r, OfflineQueueFull) for r in results[10:])
    stored = await storage.fetch_offline(ALICE)
    assert [m.stanza for m in stored] == [f"<m{i}/>".encode() for i in range(10)]
