"""apply_roster_changes: several roster and subscription-request writes in one
transaction, all or nothing, against every backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from storage.common import ALICE, BOB, CAROL

from xmlchat.jid import JID
from xmlchat.storage import (
    DeleteRosterItem,
    DeleteSubscriptionRequest,
    PutRosterItem,
    RosterChange,
    RosterItem,
    SqliteStorage,
    Storage,
)

REQUEST = b"<presence type='subscribe'/>"


async def _state(storage: Storage) -> list[object]:
    """Everything the changes below could touch."""
    state: list[object] = []
    for user in (ALICE, BOB, CAROL):
        state += [await storage.get_roster(user), await storage.get_subscription_requests(user)]
    return state


async def _alice_asked_bob(storage: Storage) -> None:
    """alice asked bob for a subscription; bob has not answered (RFC 6121 §3.1)."""
    assert await storage.put_roster_item(ALICE, RosterItem(BOB, ask=True)) == 1
    await storage.add_subscription_request(BOB, ALICE, REQUEST)
    await storage.add_subscription_request(BOB, CAROL, b"<carol/>")


def _make_mutual() -> list[RosterChange]:
    return [
        PutRosterItem(ALICE, RosterItem(BOB, subscription="both")),
        DeleteSubscriptionRequest(BOB, ALICE),
        PutRosterItem(BOB.with_resource("phone"), RosterItem(ALICE.with_resource("x"), "Al", "both")),
    ]


async def test_changes_land_together_with_one_version_bump_per_roster(storage: Storage) -> None:
    await _alice_asked_bob(storage)
    versions = await storage.apply_roster_changes(_make_mutual())

    assert versions == {ALICE: 2, BOB: 1}  # bare keys; each roster bumped once
    assert await storage.get_roster(ALICE) == ([RosterItem(BOB, subscription="both")], 2)
    assert await storage.get_roster(BOB) == ([RosterItem(ALICE, "Al", "both")], 1)
    assert await storage.get_subscription_requests(BOB) == [(CAROL, b"<carol/>")]


async def test_deletes_bump_only_rosters_that_changed(storage: Storage) -> None:
    await storage.apply_roster_changes(_make_mutual())
    changes: list[RosterChange] = [
        DeleteRosterItem(ALICE, BOB),
        DeleteRosterItem(BOB, ALICE),
        DeleteRosterItem(CAROL, ALICE),  # carol has no such item: version as it was
    ]
    assert await storage.apply_roster_changes(changes) == {ALICE: 2, BOB: 2, CAROL: 0}
    assert await storage.get_roster(ALICE) == ([], 2)
    assert await storage.get_roster(BOB) == ([], 2)
    assert await storage.get_roster(CAROL) == ([], 0)


async def test_requests_alone_bump_no_roster(storage: Storage) -> None:
    await _alice_asked_bob(storage)
    changes = [DeleteSubscriptionRequest(BOB, ALICE), DeleteSubscriptionRequest(CAROL, ALICE)]
    assert await storage.apply_roster_changes(changes) == {}
    assert await storage.apply_roster_changes([]) == {}
    assert await storage.get_subscription_requests(BOB) == [(CAROL, b"<carol/>")]
    assert await storage.get_roster(BOB) == ([], 0)
    assert (await storage.get_roster(ALICE))[1] == 1


@pytest.mark.parametrize(
    "bad",
    [
        PutRosterItem(CAROL, RosterItem(ALICE, subscription="remove")),  # not a state (§2.1.2.5)
        PutRosterItem(ALICE, RosterItem(CAROL)),  # alice's roster already has a change
        DeleteRosterItem(BOB.with_resource("r"), CAROL),  # bob's too, named by a full JID
    ],
    ids=["bad-subscription", "second-item-change", "second-item-change-full-jid"],
)
async def test_an_invalid_change_after_valid_ones_changes_nothing(
    storage: Storage, bad: RosterChange
) -> None:
    await _alice_asked_bob(storage)
    before = await _state(storage)
    with pytest.raises(ValueError):
        await storage.apply_roster_changes([*_make_mutual(), bad])
    assert await _state(storage) == before

    # The store is still usable (no transaction left open), and nothing was half kept.
    assert await storage.apply_roster_changes(_make_mutual()) == {ALICE: 2, BOB: 1}


async def test_concurrent_calls_are_serialized(storage: Storage) -> None:
    contacts = [JID(f"c{i}", "example.com") for i in range(20)]
    versions = await asyncio.gather(
        *(storage.apply_roster_changes([PutRosterItem(ALICE, RosterItem(c))]) for c in contacts)
    )
    assert sorted(v[ALICE] for v in versions) == list(range(1, 21))
    items, version = await storage.get_roster(ALICE)
    assert (len(items), version) == (20, 20)


# -- SQLite: the database itself fails in the middle ----------------------------------

async def test_sqlite_rolls_back_when_the_database_fails_mid_transaction(db_path: Path) -> None:
    storage = await SqliteStorage.open(db_path)
    try:
        await _alice_asked_bob(storage)
        # Another connection makes bob's roster refuse the write; the changes
        # before it in the call are already made on the worker's connection.
        with sqlite3.connect(db_path) as other:
            other.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON roster WHEN NEW.jid = 'bob@example.com'"
                " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
        before = await _state(storage)
        with pytest.raises(sqlite3.DatabaseError, match="disk on fire"):
            await storage.apply_roster_changes(_make_mutual())
        assert await _state(storage) == before
    finally:
        await storage.close()
