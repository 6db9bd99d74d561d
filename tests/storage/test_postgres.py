"""What only the PostgreSQL store has: a migration table shared by every node,
limits that hold across nodes, and the copy from an SQLite data directory.

The behaviour every backend shares is tested against each in the other files here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from storage.common import ALICE, BOB, CAROL, PASSWORD, T0

from xmlchat.config import load as load_config
from xmlchat.storage import (
    ArchiveQuery,
    DuplicateMessage,
    MessageOrigin,
    OfflineQueueFull,
    PageRequest,
    RosterItem,
    SchemaTooNew,
    SqliteStorage,
)
from xmlchat.storage.postgres import PostgresStorage
from xmlchat.storage.postgres.migrations import MIGRATIONS


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM xmlchat_migrations ORDER BY version")]


async def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStorage.open(postgres_url) for _ in range(3)))
    for store in stores:
        await store.close()
    assert _versions(postgres_url) == list(range(1, len(MIGRATIONS) + 1))
    await (await PostgresStorage.open(postgres_url)).close()
    assert _versions(postgres_url) == list(range(1, len(MIGRATIONS) + 1))


async def test_newer_schema_is_refused(postgres_url: str) -> None:
    await (await PostgresStorage.open(postgres_url)).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO xmlchat_migrations (version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(SchemaTooNew):
        await PostgresStorage.open(postgres_url)


async def test_offline_limit_holds_across_nodes(postgres_url: str) -> None:
    # Two nodes' stores writing to one recipient at once: the count and the
    # insert must not interleave, or the queue would pass its limit.
    nodes = [await PostgresStorage.open(postgres_url, pool_size=4) for _ in range(2)]
    try:
        writes = [nodes[i % 2].store_offline(ALICE, b"<m/>", T0, limit=5) for i in range(20)]
        results = await asyncio.gather(*writes, return_exceptions=True)
        stored = [r for r in results if isinstance(r, int)]
        assert len(stored) == 5
        assert all(isinstance(r, OfflineQueueFull) for r in results if not isinstance(r, int))
        assert [m.id for m in await nodes[0].fetch_offline(ALICE)] == sorted(stored)
    finally:
        for node in nodes:
            await node.close()


async def test_a_resend_through_another_node_is_stored_once(postgres_url: str) -> None:
    # A client reconnects to another node and sends again under the same id,
    # both nodes at once or one after the other (and after a restart): the
    # (sender, id) table is the database's, so one of them stores it.
    origin = MessageOrigin("alice@localhost", "m1 digest", 3600.0)
    nodes = [await PostgresStorage.open(postgres_url, pool_size=2) for _ in range(2)]
    try:
        writes = [node.store_offline(BOB, b"<m/>", T0, 10, origin) for node in nodes]
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["DuplicateMessage", "int"]
    finally:
        for node in nodes:
            await node.close()
    again = await PostgresStorage.open(postgres_url)
    try:
        with pytest.raises(DuplicateMessage):
            await again.store_offline(BOB, b"<m/>", T0, 10, origin)
        assert await again.count_offline(BOB) == 1
    finally:
        await again.close()


async def _sqlite_with_everything(path: Path) -> tuple[list[int], list[str]]:
    """A bit of every kind of row; the offline and archive ids."""
    st = await SqliteStorage.open(path)
    try:
        await st.create_user(ALICE, PASSWORD)
        await st.create_user(BOB, "bobpw")
        friend = RosterItem(BOB, "Bob", "both", approved=True, groups=("Friends", "Work"))
        await st.put_roster_item(ALICE, friend)
        await st.put_roster_item(ALICE, RosterItem(CAROL, None, "none", ask=True))
        await st.add_subscription_request(BOB, CAROL, b"<presence type='subscribe'/>")
        await st.add_subscription_request(BOB, ALICE, b"<presence type='subscribe' id='2'/>")
        ids = [await st.store_offline(BOB, f"<m>{i}</m>".encode(), T0, limit=10) for i in range(3)]
        await st.store_offline(ALICE, b"<gone/>", T0, limit=10)
        # Recorded twice in SQLite's log: stored again once its (tiny) window passed.
        for window in (1e-9, 1e-9):
            await st.store_offline(ALICE, b"<again/>", T0, 10, MessageOrigin("bob@localhost", "r1", window))
        await st.delete_offline(ALICE, ids[-1] + 1)  # the highest id is deleted, not forgotten
        await st.block(ALICE, [CAROL.with_resource("phone")])
        archived = [
            await st.archive_message(
                ALICE, BOB, f"<m>{i}</m>".encode(), T0 + timedelta(seconds=i), outgoing=i % 2 == 0
            )
            for i in range(4)
        ]
        return ids, archived
    finally:
        await st.close()


def _migrate_storage(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmlchat", "migrate-storage", "--from", str(data_dir), "--to", url],
        capture_output=True, text=True, timeout=60, check=False,
    )


async def test_migrate_storage_copies_a_data_directory(tmp_path: Path, postgres_url: str) -> None:
    data_dir = tmp_path / "data"
    offline_ids, archive_ids = await _sqlite_with_everything(data_dir / load_config(env={}).storage.path)

    result = _migrate_storage(data_dir, postgres_url)
    assert result.returncode == 0, result.stderr
    assert "users: 2 rows" in result.stdout

    st = await PostgresStorage.open(postgres_url)
    try:
        assert await st.check_password(ALICE, PASSWORD)  # the SCRAM keys came over as they were
        assert not await st.check_password(ALICE, "bobpw")
        assert await st.list_users() == [ALICE, BOB]
        assert await st.get_roster(ALICE) == (
            [RosterItem(BOB, "Bob", "both", approved=True, groups=("Friends", "Work")),
             RosterItem(CAROL, None, "none", ask=True)],
            2,
        )
        assert [c for c, _ in await st.get_subscription_requests(BOB)] == [CAROL, ALICE]
        offline = await st.fetch_offline(BOB)
        assert [m.id for m in offline] == offline_ids
        assert offline[0].received == T0
        assert await st.store_offline(BOB, b"<new/>", T0, limit=10) > max(offline_ids) + 1
        assert await st.get_blocklist(ALICE) == [CAROL.with_resource("phone")]
        with pytest.raises(DuplicateMessage):  # its record came over (one row for the two)
            await st.store_offline(ALICE, b"<again/>", T0, 10, MessageOrigin("bob@localhost", "r1", 3600.0))
        page = await st.query_archive(ALICE, ArchiveQuery(after_id=archive_ids[0]), PageRequest(max=10))
        assert [m.id for m in page.messages] == archive_ids[1:]
        assert [m.outgoing for m in page.messages] == [False, True, False]
    finally:
        await st.close()

    again = _migrate_storage(data_dir, postgres_url)
    assert again.returncode == 1
    assert "already has rows" in again.stderr


def test_migrate_storage_refuses_a_directory_a_server_holds(tmp_path: Path, postgres_url: str) -> None:
    from xmlchat.server.datadir import DataDirLock

    data_dir = tmp_path / "data"
    asyncio.run(_sqlite_with_everything(data_dir / "xmlchat.sqlite3"))
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        result = _migrate_storage(data_dir, postgres_url)
    finally:
        lock.release()
    assert result.returncode == 1
    assert "another xmlchat server" in result.stderr


def test_storage_url_shorthand() -> None:
    config = load_config(env={"XMLCHAT_STORAGE_URL": "postgresql://db/chat"})
    assert config.storage.url == "postgresql://db/chat"


def test_storage_string_is_short_for_its_url(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('storage = "postgresql://db/chat"\n')
    config = load_config(path, env={})
    assert config.storage.url == "postgresql://db/chat"
    assert config.storage.scram_iterations == 4096


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_backup_and_restore_name_pg_dump_when_the_store_is_postgresql(tmp_path: Path, command: str) -> None:
    # They copy an SQLite file; with storage.url there is none to copy.
    result = subprocess.run(
        [sys.executable, "-m", "xmlchat", command, str(tmp_path / "copy.sqlite3"), "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XMLCHAT_STORAGE_URL": "postgresql://127.0.0.1/none"},
    )
    assert result.returncode == 1
    assert "pg_dump" in result.stderr


def test_storage_string_combines_with_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('storage = "postgresql://db/chat"\n')
    config = load_config(path, env={"XMLCHAT_STORAGE_POOL_SIZE": "3"})
    assert (config.storage.url, config.storage.pool_size) == ("postgresql://db/chat", 3)


async def test_writes_queued_while_a_commit_runs_share_the_next_commit(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As SQLite's group commit: the writes of the turns that follow a running
    transaction go together in the next one, not one transaction per turn."""
    from polling import wait_for

    from xmlchat.storage.postgres import queries

    batches: list[int] = []
    release = asyncio.Event()
    real = queries.store_offline_batch

    async def slow_first(
        conn: queries.Conn, writes: list[queries.OfflineWrite], sweep: bool = False
    ) -> list[int]:
        batches.append(len(writes))
        if len(batches) == 1:
            await release.wait()  # the first commit is still running while more arrive
        return await real(conn, writes, sweep)

    monkeypatch.setattr(queries, "store_offline_batch", slow_first)
    store = await PostgresStorage.open(postgres_url)
    try:
        first = asyncio.create_task(store.store_offline(ALICE, b"<m/>", T0, 100))
        await wait_for(lambda: len(batches) == 1, 5, what="the first commit to start")
        later = []
        for _ in range(5):  # five more turns of the loop, one write each
            later.append(asyncio.create_task(store.store_offline(ALICE, b"<m/>", T0, 100)))
            await asyncio.sleep(0)
        release.set()
        ids = [await first, *[await task for task in later]]
    finally:
        release.set()
        await store.close()
    assert batches == [1, 5]
    assert ids == sorted(ids) and len(set(ids)) == 6
