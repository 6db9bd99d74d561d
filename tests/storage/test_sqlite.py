"""The SQLite store, end to end through its async API on a real file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import scramp

from xmlchat.jid import JID
from xmlchat.storage import (
    NoSuchUser,
    OfflineQueueFull,
    RosterItem,
    SchemaTooNew,
    SqliteStorage,
    UserExists,
)
from xmlchat.storage.migrations import MIGRATIONS, migrate

ALICE = JID.parse("alice@example.com")
BOB = JID.parse("bob@example.com")
CAROL = JID.parse("carol@other.example")
PASSWORD = "correct horse battery staple"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

AuthFn = Callable[[str], tuple[bytes, bytes, bytes, int]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "xmlchat.sqlite3"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[SqliteStorage]:
    st = await SqliteStorage.open(db_path)
    yield st
    await st.close()


# -- opening, closing, migrations ------------------------------------------------


async def test_open_creates_parent_dir_in_wal_mode(db_path: Path) -> None:
    st = await SqliteStorage.open(db_path)
    await st.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def _storage_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("xmlchat-sqlite")}


async def test_close_stops_the_worker_thread_and_is_idempotent(db_path: Path) -> None:
    before = _storage_threads()
    st = await SqliteStorage.open(db_path)
    await st.user_exists(ALICE)
    assert len(_storage_threads() - before) == 1
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
    assert {"users", "scram", "offline", "roster", "roster_version"} <= names


async def test_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaTooNew):
        await SqliteStorage.open(db_path)


async def test_too_few_iterations_are_refused(db_path: Path) -> None:
    with pytest.raises(ValueError):
        await SqliteStorage.open(db_path, scram_iterations=1000)


# -- accounts ---------------------------------------------------------------------


async def test_create_duplicate_delete(storage: SqliteStorage) -> None:
    assert not await storage.user_exists(ALICE)
    await storage.create_user(ALICE, PASSWORD)
    assert await storage.user_exists(ALICE)
    assert await storage.user_exists(ALICE.with_resource("phone"))  # looked up as bare
    with pytest.raises(UserExists):
        await storage.create_user(JID.parse("ALICE@Example.com"), "other")
    assert await storage.delete_user(ALICE)
    assert not await storage.delete_user(ALICE)
    assert not await storage.user_exists(ALICE)


async def test_account_needs_a_localpart(storage: SqliteStorage) -> None:
    with pytest.raises(ValueError):
        await storage.create_user(JID.parse("example.com"), PASSWORD)
    assert not await storage.user_exists(JID.parse("example.com"))


async def test_list_users_sorted_and_by_host(storage: SqliteStorage) -> None:
    for jid in (CAROL, BOB, ALICE):
        await storage.create_user(jid, PASSWORD)
    assert await storage.list_users() == [ALICE, BOB, CAROL]
    assert await storage.list_users("example.com") == [ALICE, BOB]
    assert await storage.list_users("Other.Example") == [CAROL]
    assert await storage.list_users("nowhere.example") == []


async def test_check_password(storage: SqliteStorage) -> None:
    await storage.create_user(ALICE, PASSWORD)
    assert await storage.check_password(ALICE, PASSWORD)
    assert not await storage.check_password(ALICE, PASSWORD + "!")
    assert not await storage.check_password(BOB, PASSWORD)
    assert not await storage.check_password(ALICE, "bad\x00password")  # SASLprep rejects


async def test_set_password(storage: SqliteStorage) -> None:
    await storage.create_user(ALICE, PASSWORD)
    await storage.set_password(ALICE, "new one")
    assert await storage.check_password(ALICE, "new one")
    assert not await storage.check_password(ALICE, PASSWORD)
    with pytest.raises(NoSuchUser):
        await storage.set_password(BOB, "x")


async def test_iterations_from_config(db_path: Path) -> None:
    st = await SqliteStorage.open(db_path, scram_iterations=5000)
    try:
        await st.create_user(ALICE, PASSWORD)
        creds = await st.get_scram(ALICE, "SCRAM-SHA-1")
        assert creds is not None and creds.iterations == 5000
        assert await st.get_scram(ALICE, "SCRAM-SHA-512") is None
        assert await st.get_scram(BOB, "SCRAM-SHA-1") is None
    finally:
        await st.close()


def _scram_exchange(mechanism: str, password: str, auth_fn: AuthFn) -> None:
    server = scramp.ScramMechanism(mechanism).make_server(auth_fn)
    client = scramp.ScramClient([mechanism], "alice", password)
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())  # verifies ServerSignature


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
async def test_stored_keys_complete_a_scram_exchange(storage: SqliteStorage, mechanism: str) -> None:
    await storage.create_user(ALICE, PASSWORD)
    creds = await storage.get_scram(ALICE, mechanism)
    assert creds is not None and creds.mechanism == mechanism

    def auth_fn(username: str) -> tuple[bytes, bytes, bytes, int]:
        assert username == "alice"
        return creds.salt, creds.stored_key, creds.server_key, creds.iterations

    _scram_exchange(mechanism, PASSWORD, auth_fn)
    with pytest.raises(scramp.ScramException):
        _scram_exchange(mechanism, "wrong", auth_fn)


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


# -- offline messages -----------------------------------------------------------------


async def test_offline_fifo_and_delete_up_to(storage: SqliteStorage) -> None:
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


async def test_offline_received_is_stored_as_utc(storage: SqliteStorage) -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    await storage.store_offline(ALICE, b"<m/>", local, 10)
    (message,) = await storage.fetch_offline(ALICE)
    assert message.received == T0 and message.received.utcoffset() == timedelta(0)
    with pytest.raises(ValueError):
        await storage.store_offline(ALICE, b"<m/>", datetime(2024, 5, 1), 10)


async def test_offline_limit(storage: SqliteStorage) -> None:
    for _ in range(3):
        await storage.store_offline(ALICE, b"<m/>", T0, limit=3)
    with pytest.raises(OfflineQueueFull):
        await storage.store_offline(ALICE, b"<m/>", T0, limit=3)
    assert await storage.count_offline(ALICE) == 3
    await storage.store_offline(BOB, b"<m/>", T0, limit=3)  # per user


async def test_offline_limit_holds_under_concurrency(storage: SqliteStorage) -> None:
    results = await asyncio.gather(
        *(storage.store_offline(ALICE, b"<m/>", T0, limit=5) for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 5
    assert sum(isinstance(r, OfflineQueueFull) for r in results) == 15


async def test_offline_ids_are_not_reused(storage: SqliteStorage) -> None:
    first = await storage.store_offline(ALICE, b"<m/>", T0, 10)
    await storage.delete_offline(ALICE, first)
    assert await storage.store_offline(ALICE, b"<m/>", T0, 10) > first


# -- roster -----------------------------------------------------------------------


async def test_roster_upsert_and_versions(storage: SqliteStorage) -> None:
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


async def test_roster_delete(storage: SqliteStorage) -> None:
    await storage.put_roster_item(ALICE, RosterItem(BOB))
    assert await storage.delete_roster_item(ALICE, BOB) == 2
    assert await storage.delete_roster_item(ALICE, BOB) == 2  # nothing changed
    assert await storage.get_roster(ALICE) == ([], 2)


async def test_roster_rejects_unknown_subscription(storage: SqliteStorage) -> None:
    with pytest.raises(ValueError):
        await storage.put_roster_item(ALICE, RosterItem(BOB, subscription="remove"))


# -- subscription requests ------------------------------------------------------------


async def test_subscription_requests(storage: SqliteStorage) -> None:
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


async def test_delete_user_removes_everything_of_theirs(storage: SqliteStorage) -> None:
    for jid in (ALICE, BOB):
        await storage.create_user(jid, PASSWORD)
        await storage.put_roster_item(jid, RosterItem(CAROL))
        await storage.store_offline(jid, b"<m/>", T0, 10)
        await storage.add_subscription_request(jid, CAROL, b"<s/>")

    assert await storage.delete_user(ALICE)
    assert await storage.get_scram(ALICE, "SCRAM-SHA-256") is None
    assert await storage.get_roster(ALICE) == ([], 0)
    assert await storage.fetch_offline(ALICE) == []
    assert await storage.get_subscription_requests(ALICE) == []

    assert await storage.check_password(BOB, PASSWORD)
    assert (await storage.get_roster(BOB))[1] == 1
    assert await storage.count_offline() == 1
    assert len(await storage.get_subscription_requests(BOB)) == 1
