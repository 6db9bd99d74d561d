"""SQLite's (sender, id) records against re-sends: a log on disk, an index in
memory (xmlchat/storage/_recent.py). The behaviour every backend shares is in
test_offline_delivery.py; here what is SQLite's own: the migration from the
keyed table, and what expires."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from storage.common import ALICE, T0

from xmlchat.storage import (
    DuplicateMessage,
    MessageOrigin,
    SqliteStorage,
    _group_commit,
    _offline,
    migrations,
)
from xmlchat.storage._recent import RecentIds, digest
from xmlchat.storage.migrations import MIGRATIONS


def _origin(id_: str, window: float = 60.0) -> MessageOrigin:
    return MessageOrigin("bob@example.com", id_, window)


def _log(path: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(path) as conn:
        return [(i, at) for i, at in conn.execute("SELECT id, at FROM recent_ids ORDER BY rowid")]


async def test_records_of_the_keyed_table_still_catch_re_sends_after_the_migration(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:6])  # recent_ids keyed by (sender, id)
    await (await SqliteStorage.open(db_path)).close()
    monkeypatch.undo()
    with sqlite3.connect(db_path) as conn:  # as schema 6's code recorded m1
        conn.execute("INSERT INTO recent_ids (sender, id, at) VALUES ('bob@example.com', 'm1', ?)",
                     (time.time(),))

    st = await SqliteStorage.open(db_path)
    try:
        with pytest.raises(DuplicateMessage):
            await st.store_offline(ALICE, b"<m1/>", T0, 10, _origin("m1", 3600.0))
        assert await st.store_offline(ALICE, b"<m2/>", T0, 10, _origin("m2", 3600.0)) > 0
    finally:
        await st.close()
    assert [i for i, _ in _log(db_path)] == ["m1", "m2"]
    with sqlite3.connect(db_path) as conn:  # a log: no key, no index to keep up
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE tbl_name = 'recent_ids'"
                            " AND type = 'index'").fetchone()[0] == 0


async def test_a_record_past_its_window_leaves_memory_and_the_log(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(_offline, "time", SimpleNamespace(time=lambda: clock[0]))
    monkeypatch.setattr(_group_commit, "SWEEP_EVERY", 0.0)  # every batch sweeps
    st = await SqliteStorage.open(db_path)
    try:
        await st.store_offline(ALICE, b"<m1/>", T0, 10, _origin("m1"))
        clock[0] = 1059.0
        with pytest.raises(DuplicateMessage):
            await st.store_offline(ALICE, b"<m1/>", T0, 10, _origin("m1"))
        clock[0] = 1061.0  # m1's window is over: m2's batch sweeps it away
        await st.store_offline(ALICE, b"<m2/>", T0, 10, _origin("m2"))
        assert _log(db_path) == [("m2", 1061.0)]
        assert await st.store_offline(ALICE, b"<m1/>", T0, 10, _origin("m1")) > 0  # new again
        assert _log(db_path) == [("m2", 1061.0), ("m1", 1061.0)]
    finally:
        await st.close()

    st = await SqliteStorage.open(db_path)  # what the log holds is what a restart knows
    try:
        clock[0] = 1100.0
        for id_ in ("m1", "m2"):
            with pytest.raises(DuplicateMessage):
                await st.store_offline(ALICE, b"<m/>", T0, 10, _origin(id_))
    finally:
        await st.close()


def test_a_key_recorded_again_outlives_its_first_record() -> None:
    recent = RecentIds()
    key = digest(_origin("m1"))
    recent.committed([key], 100.0, 1)
    recent.committed([key], 150.0, 2)  # stored again (its first window was shorter)
    assert recent.expire(120.0) == 1  # the log may drop rowid 1 ...
    assert recent.seen(key, 140.0)  # ... but the key stays, as recorded at 150
    assert recent.expire(200.0) == 2 and not recent.seen(key, 0.0) and len(recent) == 0
