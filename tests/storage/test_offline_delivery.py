"""What durable delivery asks of the offline store, on both backends (see
conftest.py): deletes by id, and a sender's re-send recognised by its
(sender, id) within a window, in the same commit as the write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from storage.common import ALICE, BOB, T0

from xmlchat.storage import DuplicateMessage, MessageOrigin, OfflineQueueFull, SqliteStorage, Storage


async def test_delete_by_ids_leaves_the_others(storage: Storage) -> None:
    ids = [await storage.store_offline(ALICE, f"<m{i}/>".encode(), T0, 10) for i in range(4)]
    other = await storage.store_offline(BOB, b"<b/>", T0, 10)
    await storage.delete_offline_ids(ALICE, [ids[0], ids[2], other, 10_000])  # BOB's id is not ALICE's
    assert [m.id for m in await storage.fetch_offline(ALICE)] == [ids[1], ids[3]]
    assert await storage.count_offline(BOB) == 1
    await storage.delete_offline_ids(ALICE, [])
    assert await storage.count_offline(ALICE) == 2


async def test_a_resend_within_the_window_is_refused_and_stores_nothing(storage: Storage) -> None:
    first = MessageOrigin("alice@localhost", "m1 digest", 60.0)
    await storage.store_offline(BOB, b"<m/>", T0, 10, first)
    with pytest.raises(DuplicateMessage):
        await storage.store_offline(BOB, b"<m/>", T0, 10, first)
    # Another id, or the same id from another sender, is a new message.
    await storage.store_offline(BOB, b"<m/>", T0, 10, MessageOrigin("alice@localhost", "m2 digest", 60.0))
    await storage.store_offline(BOB, b"<m/>", T0, 10, MessageOrigin("carol@localhost", "m1 digest", 60.0))
    assert await storage.count_offline(BOB) == 3


async def test_a_resend_in_the_same_commit_is_caught(storage: Storage) -> None:
    """Group commit: both copies in one transaction, the second sees the first."""
    origin = MessageOrigin("alice@localhost", "m1", 60.0)
    results = await asyncio.gather(
        *(storage.store_offline(BOB, b"<m/>", T0, 10, origin) for _ in range(3)), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, DuplicateMessage) for r in results) == 2


async def test_after_the_window_the_same_id_is_a_new_message(storage: Storage) -> None:
    await storage.store_offline(BOB, b"<m/>", T0, 10, MessageOrigin("alice@localhost", "m1", 60.0))
    # A zero-second window: the first copy is already older than it.
    await storage.store_offline(BOB, b"<m/>", T0, 10, MessageOrigin("alice@localhost", "m1", 0.0))
    assert await storage.count_offline(BOB) == 2


async def test_a_refused_message_leaves_no_id_behind(storage: Storage) -> None:
    """A message refused for a full queue was never taken: sent again, it is new."""
    await storage.store_offline(BOB, b"<m/>", T0, 1)
    origin = MessageOrigin("alice@localhost", "m9", 60.0)
    with pytest.raises(OfflineQueueFull):
        await storage.store_offline(BOB, b"<m/>", T0, 1, origin)
    assert await storage.store_offline(BOB, b"<m/>", T0, 2, origin) > 0


async def test_resends_are_recognised_after_a_restart(db_path: Path) -> None:
    origin = MessageOrigin("alice@localhost", "m1", 3600.0)
    first = await SqliteStorage.open(db_path)
    await first.store_offline(BOB, b"<m/>", T0, 10, origin)
    await first.close()
    again = await SqliteStorage.open(db_path)
    try:
        with pytest.raises(DuplicateMessage):
            await again.store_offline(BOB, b"<m/>", T0, 10, origin)
    finally:
        await again.close()


@pytest.mark.parametrize(("setting", "pragma"), [("normal", 1), ("full", 2)])
async def test_synchronous_setting(db_path: Path, setting: str, pragma: int) -> None:
    storage = await SqliteStorage.open(db_path, synchronous=setting)
    try:
        level = await storage._run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
    finally:
        await storage.close()
    assert level == pragma  # SQLite: 1 NORMAL, 2 FULL


async def test_an_unknown_synchronous_setting_is_refused(db_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        await SqliteStorage.open(db_path, synchronous="off")
    assert not db_path.exists()  # refused before anything was created


async def test_a_read_sees_the_deletes_asked_before_it(storage: Storage) -> None:
    """Deletes wait a little for writes to share their commit; a fetch or count
    asked after them must still not see what they delete (a login's replay
    right after a session ended would show it again)."""
    ids = [await storage.store_offline(ALICE, f"<m{i}/>".encode(), T0, 10) for i in range(2)]
    deleting = storage.delete_offline_ids(ALICE, [ids[0]])
    reads = storage.fetch_offline(ALICE), storage.count_offline(ALICE)
    _, page, count = await asyncio.gather(deleting, *reads)
    assert [m.id for m in page] == [ids[1]]
    assert count == 1
