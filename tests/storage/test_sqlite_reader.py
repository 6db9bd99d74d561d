"""The SQLite store's reader thread: reads beside the writer, never behind it,
and never seeing less than the one writer thread would have shown them.

Each test holds one of the two threads on a ``threading.Event`` to force the
ordering it is about; nothing here waits on a sleep.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from storage.common import ALICE, BOB, PASSWORD, T0

from xmlchat.storage import RosterItem, SqliteStorage
from xmlchat.storage import _offline as oq
from xmlchat.storage import _queries as q

TIMEOUT = 5.0


@pytest.fixture
async def st(db_path: Path) -> AsyncIterator[SqliteStorage]:
    store = await SqliteStorage.open(db_path)
    try:
        await store.create_user(ALICE, PASSWORD)
        yield store
    finally:
        await store.close()


def _hold(st: SqliteStorage, thread: str, release: threading.Event) -> asyncio.Future[Any]:
    """Keep ``thread`` ("reader" or "writer") busy until ``release`` is set."""
    executor = st._threads.writer if thread == "writer" else st._threads._reader
    return asyncio.get_running_loop().run_in_executor(executor, release.wait, TIMEOUT)


async def test_a_commit_does_not_wait_for_the_reads_before_it(st: SqliteStorage) -> None:
    """The point of the reader: a login's reads no longer stand ahead of a
    message's commit (which its sender's ack waits for)."""
    release = threading.Event()
    held = _hold(st, "reader", release)
    read = asyncio.ensure_future(st.get_roster(ALICE))
    try:
        message_id = await asyncio.wait_for(st.store_offline(ALICE, b"<m/>", T0, 100), TIMEOUT)
        assert not read.done()  # it is still behind the held reader
    finally:
        release.set()
        await held
    assert await read == ([], 0)
    assert [m.id for m in await st.fetch_offline(ALICE)] == [message_id]


async def test_a_read_does_not_wait_for_a_commit(st: SqliteStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = oq.apply_batch

    def slow(conn: sqlite3.Connection, *args: Any) -> list[int]:
        release.wait(TIMEOUT)
        return real(conn, *args)

    monkeypatch.setattr(oq, "apply_batch", slow)
    stored = asyncio.ensure_future(st.store_offline(ALICE, b"<m/>", T0, 100))
    try:
        assert await asyncio.wait_for(st.user_exists(ALICE), TIMEOUT)
        assert not stored.done()
    finally:
        release.set()
    assert await stored > 0


async def test_a_read_sees_every_write_submitted_before_it(st: SqliteStorage) -> None:
    """As on one thread: a write whose caller has not been answered yet is
    still seen by a read that comes after it. Here the reader is free and the
    write waits behind a held writer; the reader is released only by a job
    queued behind the read, so a read that did not wait for the write would
    have run first and missed it."""
    release = threading.Event()
    held = _hold(st, "writer", release)
    write = asyncio.ensure_future(st.put_roster_item(ALICE, RosterItem(BOB, "Bob")))
    await asyncio.sleep(0)  # the write is submitted, behind the held job
    read = asyncio.ensure_future(st.get_roster_item(ALICE, BOB))
    await asyncio.sleep(0)  # the read is either on the reader or waiting for the write
    await asyncio.get_running_loop().run_in_executor(st._threads._reader, release.set)
    await held
    assert await write == 1
    assert await asyncio.wait_for(read, TIMEOUT) == RosterItem(BOB, "Bob")


async def test_a_message_queued_for_a_user_logging_in_is_replayed_once(st: SqliteStorage) -> None:
    """A message queued for an offline user, not yet committed, when that
    user's login reads the offline queue: the read sees it (the read goes
    after the pending group commit), and the next read, after its id, does not."""
    told: list[int] = []
    st.queue_offline(ALICE, b"<m/>", T0, 100, None, lambda i, e: told.append(i))
    page = await st.fetch_offline(ALICE)
    assert [m.stanza for m in page] == [b"<m/>"]
    assert told == [page[0].id]
    assert await st.fetch_offline(ALICE, after_id=page[0].id) == []


async def test_a_commit_after_a_replay_read_is_told_after_it(st: SqliteStorage) -> None:
    """The inbox leaves a message stored while its session replays, trusting
    the replay's next read to find it, and goes live once a read finds none.
    So a message whose commit comes after a replay's read must be told
    after that read's answer: the offline reads keep their place in the
    writer's order. (Held, the reader could not answer a read sent to it
    until the write was told.)"""
    release = threading.Event()
    held = _hold(st, "reader", release)
    events: list[tuple[str, int]] = []

    async def replay() -> None:
        events.append(("read", len(await st.fetch_offline(ALICE))))

    def written(message_id: int, error: BaseException | None) -> None:
        events.append(("written", message_id))
        release.set()

    reading = asyncio.ensure_future(replay())
    await asyncio.sleep(0)  # the read is submitted
    st.queue_offline(ALICE, b"<m/>", T0, 100, None, written)
    try:
        await asyncio.wait_for(reading, TIMEOUT)
        await _until(lambda: len(events) == 2)
    finally:
        release.set()
        await held
    assert [kind for kind, _ in events] == ["read", "written"] and events[0] == ("read", 0)


async def test_the_reader_refuses_writes(st: SqliteStorage) -> None:
    """A write sent to the reader by mistake fails instead of racing the writer."""
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await st._threads.read(q.put_roster_item, str(ALICE), RosterItem(BOB))


async def _until(predicate: Callable[[], bool]) -> None:
    from polling import wait_for

    await wait_for(predicate, TIMEOUT)
