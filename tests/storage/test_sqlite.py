"""What only the SQLite store has: a file, a worker thread, schema migrations.

The behaviour the backends share is tested against each in the other files here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from storage.common import ALICE, BOB, CAROL, PASSWORD, T0

from xmlchat.storage import RosterItem, SchemaTooNew, SqliteStorage, migrations
from xmlchat.storage.migrations import MIGRATIONS, migrate

# -- opening, closing, migrations ------------------------------------------------

async def test_open_creates_parent_dir_in_wal_mode(db_path: Path) -> None:
    st = await SqliteStorage.open(db_path)
    await st.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)

def _storage_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("xmlchat-sqlite")}

async def test_close_stops_the_worker_threads_and_is_idempotent(db_path: Path) -> None:
    before = _storage_threads()
    st = await SqliteStorage.open(db_path)
    await st.user_exists(ALICE)
    assert len(_storage_threads() - before) == 2  # the writer and the reader
    await st.close()
    await st.close()
    assert not _storage_threads() - before
    with pytest.raises(RuntimeError):
        await st.user_exists(ALICE)

async def test_data_survives_reopen(db_path: Path) -> None:
    st = await SqliteStorage.open(db_path)
    await st.create_user(ALICE, PASSWORD)
    await st.put_roster_item(ALICE, RosterItem(BOB, "Bob", "both", groups=("Friends",)))
    await st.store_offline(ALICE, b"<message/>", T0, limit=10)
    await st.close()

    st = await SqliteStorage.open(db_path)
    try:
        assert await st.check_password(ALICE, PASSWORD)
        items, version = await st.get_roster(ALICE)
        assert items == [RosterItem(BOB, "Bob", "both", groups=("Friends",))]
        assert version == 1
        assert [m.stanza for m in await st.fetch_offline(ALICE)] == [b"<message/>"]
    finally:
        await st.close()

def _schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()

def test_migrate_from_empty_is_idempotent() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(conn) == len(MIGRATIONS)
    schema = _schema(conn)
    assert migrate(conn) == len(MIGRATIONS)
    assert _schema(conn) == schema

async def test_reopen_keeps_schema(db_path: Path) -> None:
    for _ in range(2):
        st = await SqliteStorage.open(db_path)
        await st.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        names = {name for name, _ in _schema(conn)}
    assert {"users", "scram", "offline", "roster", "roster_version", "blocklist"} <= names

async def test_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaTooNew):
        await SqliteStorage.open(db_path)

async def test_password_never_stored_in_plaintext(db_path: Path) -> None:
    secret = "plaintext-canary-Ünïcode"
    st = await SqliteStorage.open(db_path)
    await st.create_user(ALICE, secret)
    await st.create_user(BOB, "first")
    await st.set_password(BOB, secret)
    files = sorted(db_path.parent.iterdir())
    assert any(f.name.endswith("-wal") for f in files)  # the WAL is checked too
    await st.close()
    for data in [f.read_bytes() for f in files if f.exists()] + [db_path.read_bytes()]:
        for encoded in (secret.encode(), secret.encode("utf-16-le"), secret.encode("latin-1")):
            assert encoded not in data


async def test_blocklist_survives_reopen(db_path: Path) -> None:
    st = await SqliteStorage.open(db_path)
    await st.block(ALICE, [BOB.with_resource("phone"), CAROL])
    await st.close()

    st = await SqliteStorage.open(db_path)
    try:
        assert await st.get_blocklist(ALICE) == [BOB.with_resource("phone"), CAROL]
        assert await st.is_blocked(ALICE, CAROL.with_resource("any"))
    finally:
        await st.close()


async def test_migration_from_schema_1_keeps_the_data(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database as xmlchat wrote it before blocklists (schema 1), with a bit of everything.
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:1])
    st = await SqliteStorage.open(db_path)
    await st.create_user(ALICE, PASSWORD)
    await st.put_roster_item(ALICE, RosterItem(BOB, "Bob", "both", groups=("Friends",)))
    await st.store_offline(ALICE, b"<message/>", T0, limit=10)
    await st.add_subscription_request(ALICE, CAROL, b"<s/>")
    await st.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "blocklist" not in {name for name, _ in _schema(conn)}
    monkeypatch.undo()

    st = await SqliteStorage.open(db_path)
    try:
        assert await st.check_password(ALICE, PASSWORD)
        assert await st.get_roster(ALICE) == ([RosterItem(BOB, "Bob", "both", groups=("Friends",))], 1)
        assert [m.stanza for m in await st.fetch_offline(ALICE)] == [b"<message/>"]
        assert await st.get_subscription_requests(ALICE) == [(CAROL, b"<s/>")]
        assert await st.block(ALICE, [BOB]) == [BOB]
        assert await st.delete_user(ALICE)
        assert await st.get_blocklist(ALICE) == []
    finally:
        await st.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_offline_writes_of_one_loop_turn_share_one_transaction(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: a burst of messages costs one commit, not one each."""
    from xmlchat.storage import _offline

    batches: list[int] = []
    real = _offline.apply_batch

    def counting(conn: Any, recent: Any, writes: list[Any], deletes: list[Any], sweep: bool) -> list[int]:
        batches.append(len(writes))
        return real(conn, recent, writes, deletes, sweep)

    monkeypatch.setattr(_offline, "apply_batch", counting)
    st = await SqliteStorage.open(db_path)
    try:
        await asyncio.gather(*(st.store_offline(ALICE, b"<m/>", T0, 100) for _ in range(20)))
        await st.store_offline(ALICE, b"<m/>", T0, 100)
    finally:
        await st.close()
    assert batches == [20, 1]


async def test_writes_queued_while_a_commit_runs_share_the_next_commit(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit proper: while one transaction is on the worker thread,
    the writes of every later loop turn gather into the next one, instead of
    one transaction per turn queued behind it (a quiet server's turns are
    short: per-turn commits cost ~250 µs of SQLite work per message)."""
    import threading

    from polling import wait_for

    from xmlchat.storage import _offline

    batches: list[int] = []
    release = threading.Event()
    real = _offline.apply_batch

    def slow_first(conn: Any, recent: Any, writes: list[Any], deletes: list[Any], sweep: bool) -> list[int]:
        batches.append(len(writes))
        if len(batches) == 1:
            release.wait(5)  # the first commit is still running while more arrive
        return real(conn, recent, writes, deletes, sweep)

    monkeypatch.setattr(_offline, "apply_batch", slow_first)
    told: list[int] = []
    st = await SqliteStorage.open(db_path)
    try:
        st.queue_offline(ALICE, b"<m/>", T0, 100, None, lambda i, e: told.append(i))
        await wait_for(lambda: len(batches) == 1, 5, what="the first commit to start")
        for _ in range(5):  # five more turns of the loop, one write each
            st.queue_offline(ALICE, b"<m/>", T0, 100, None, lambda i, e: told.append(i))
            await asyncio.sleep(0)
        release.set()
        await wait_for(lambda: len(told) == 6, 5, what="the commits")
    finally:
        release.set()
        await st.close()
    assert batches == [1, 5]
    assert told == sorted(told) and len(set(told)) == 6


async def test_queued_writes_share_a_commit_and_are_told_in_order(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """queue_offline (the pipelined path): never told before it returns, then
    in the order queued, with increasing ids; a re-send is told as such."""
    from polling import wait_for

    from xmlchat.storage import DuplicateMessage, MessageOrigin, _offline

    batches: list[int] = []
    real = _offline.apply_batch

    def counting(conn: Any, recent: Any, writes: list[Any], deletes: list[Any], sweep: bool) -> list[int]:
        batches.append(len(writes))
        return real(conn, recent, writes, deletes, sweep)

    monkeypatch.setattr(_offline, "apply_batch", counting)
    told: list[tuple[int, int, BaseException | None]] = []
    st = await SqliteStorage.open(db_path)
    try:
        for n in range(10):
            origin = MessageOrigin("bob@example.com", "same" if n in (3, 7) else f"m{n}", 3600.0)
            st.queue_offline(ALICE, b"<m/>", T0, 100, origin, lambda i, e, n=n: told.append((n, i, e)))
        assert told == []
        await wait_for(lambda: len(told) == 10, 5, what="the commit")
    finally:
        await st.close()
    assert batches == [10]
    assert [n for n, _, _ in told] == list(range(10))
    assert isinstance(told[7][2], DuplicateMessage) and told[7][1] == 0
    ids = [i for n, i, e in told if n != 7]
    assert all(e is None for n, _, e in told if n != 7) and ids == sorted(ids) and len(set(ids)) == 9


async def test_a_batch_bigger_than_a_statement_keeps_each_write_with_its_id(db_path: Path) -> None:
    """A batch is inserted and deleted a run of rows per statement
    (_offline.CHUNKS): 341 = 256 + 64 + 16 + 4 + 1, every size once; each
    write's id must still name its own stanza, in the order queued, and a
    delete names the owner too."""
    from polling import wait_for

    from xmlchat.storage import MessageOrigin
    from xmlchat.storage.base import UNLIMITED

    told: dict[int, int] = {}
    st = await SqliteStorage.open(db_path)
    try:
        for n in range(341):
            origin = MessageOrigin("bob@example.com", f"m{n}", 3600.0)
            stanza = b"<m%d/>" % n
            st.queue_offline(ALICE, stanza, T0, UNLIMITED, origin, lambda i, e, n=n: told.setdefault(n, i))
        await wait_for(lambda: len(told) == 341, 5, what="the commit")
        stored = {m.id: m.stanza for m in await st.fetch_offline(ALICE)}
        assert [stored[told[n]] for n in range(341)] == [b"<m%d/>" % n for n in range(341)]
        await st.delete_offline_ids(BOB, [told[1]])  # not bob's: stays
        await st.delete_offline_ids(ALICE, [told[n] for n in range(0, 341, 2)])
        left = [m.stanza for m in await st.fetch_offline(ALICE)]
        assert left == [b"<m%d/>" % n for n in range(1, 341, 2)]
    finally:
        await st.close()
