"""Offline-queue work for :class:`~xmlchat.storage.sqlite.SqliteStorage`, on
its worker thread: the group commit of one event-loop turn, and the reads.

Every message for a local account passes through here before its sender is
acknowledged (docs/delivery.md), so the batch is the hot path: one
transaction for the writes and deletes of one turn, with the (sender, id)
records against re-sends (looked up in memory, logged in that same
transaction: storage/_recent.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from xmlchat.storage._recent import RecentIds, digest
from xmlchat.storage.base import UNLIMITED, MessageOrigin, OfflineMessage

# The statement sizes of a batch's rows (see _chunks); 3 * 256 variables
# stay far below SQLite's limit (999 before 3.32).
CHUNKS: Final = (256, 64, 16, 4, 1)
T = TypeVar("T")

# What a write in the batch came to, besides its new id.
QUEUE_FULL: Final = -1
DUPLICATE: Final = 0  # ids start at 1


@dataclass(frozen=True, slots=True)
class OfflineWrite:
    jid: str
    stanza: bytes
    received: str  # ISO 8601, UTC
    limit: int
    origin: MessageOrigin | None


def apply_batch(
    conn: sqlite3.Connection,
    recent: RecentIds,
    writes: list[OfflineWrite],
    deletes: list[tuple[str, list[int]]],
    sweep: bool = False,
) -> list[int]:
    """Group commit: the offline writes and deletes of one event-loop turn in
    one transaction. Each write gets its id, :data:`QUEUE_FULL` when its
    recipient's queue is full (the limit counts the batch's own earlier
    writes), or :data:`DUPLICATE` when its origin was seen within its window.
    ``sweep``: also forget (sender, id) records past the widest window."""
    if any(w.origin for w in writes):
        recent.load(conn)  # once, before its first lookup
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        _delete_settled(conn, deletes)
        ids, accepted, records = _admit(conn, recent, writes, now)
        if accepted:
            last = _insert(conn, "offline (jid, stanza, received)", accepted)
            # AUTOINCREMENT in one transaction on the only connection: consecutive ids.
            first = last - len(accepted)
            ids = [i if i <= DUPLICATE else first + i for i in ids]
        logged = _insert(conn, "recent_ids (sender, id, at)", list(records.values())) if records else 0
        if sweep:
            _sweep(conn, recent, writes, now)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    recent.committed(records, now, logged)
    return ids


def _sweep(conn: sqlite3.Connection, recent: RecentIds, writes: list[OfflineWrite], now: float) -> None:
    """Forget the (sender, id) records past the widest window of this batch's
    writes, in memory and in the log (whose rowids follow time)."""
    widest = max((w.origin.window for w in writes if w.origin is not None), default=0.0)
    if widest and (expired := recent.expire(now - widest)):
        conn.execute("DELETE FROM recent_ids WHERE rowid <= ?", (expired,))


def _delete_settled(conn: sqlite3.Connection, deletes: list[tuple[str, list[int]]]) -> None:
    gone = [(jid, i) for jid, message_ids in deletes for i in message_ids]
    for chunk in _chunks(gone):
        # Each id with its owner's jid (a wrong id never deletes another
        # user's message), looked up by the primary key.
        pairs = ", ".join(["(?, ?)"] * len(chunk))
        conn.execute(
            f"DELETE FROM offline WHERE id IN (SELECT o.id FROM (VALUES {pairs}) AS v"
            " CROSS JOIN offline AS o ON o.id = v.column2 AND o.jid = v.column1)",
            _flat(chunk),
        )


def _admit(
    conn: sqlite3.Connection, recent: RecentIds, writes: list[OfflineWrite], now: float
) -> tuple[list[int], list[tuple[str, bytes, str]], dict[int, tuple[str, str, float]]]:
    """Which writes are stored: each one's place among the accepted (or why
    not), the rows to insert, and the (sender, id) records they add, by digest."""
    ids: list[int] = []
    accepted: list[tuple[str, bytes, str]] = []
    records: dict[int, tuple[str, str, float]] = {}
    queued: dict[str, int] = {}
    for write in writes:
        origin, key = write.origin, 0
        if origin is not None:
            key = digest(origin)
            if key in records or recent.seen(key, now - origin.window):
                ids.append(DUPLICATE)
                continue
        if write.limit < UNLIMITED:  # no count for a user online
            if write.jid not in queued:
                queued[write.jid] = count_offline(conn, write.jid)
            if queued[write.jid] >= write.limit:
                ids.append(QUEUE_FULL)  # refused, so not recorded: a re-send is new
                continue
            queued[write.jid] += 1
        if origin is not None:
            records[key] = (origin.sender, origin.id, now)
        accepted.append((write.jid, write.stanza, write.received))
        ids.append(len(accepted))  # its place among the accepted, for now
    return ids, accepted, records


def _insert(conn: sqlite3.Connection, into: str, rows: Sequence[tuple[object, ...]]) -> int:
    """Insert ``rows`` (of 3 values) into ``into``, a run per statement; the last rowid."""
    last = 0
    for chunk in _chunks(rows):
        values = ", ".join(["(?, ?, ?)"] * len(chunk))
        last = conn.execute(f"INSERT INTO {into} VALUES {values}", _flat(chunk)).lastrowid or 0
    return last


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in runs of :data:`CHUNKS` sizes, the largest first. One
    statement per run, not per row: each statement is one ``sqlite3_step``,
    and around each the worker thread gives up the GIL and must win it back
    from the busy event loop (up to the switch interval, 5 ms, each time), so
    a transaction of N rows by ``executemany`` held its commit, and every
    sender's ack, N times as long. Few sizes: their statements stay cached."""
    start = 0
    for size in CHUNKS:
        while len(items) - start >= size:
            yield items[start : start + size]
            start += size


def _flat(rows: Sequence[tuple[object, ...]]) -> list[object]:
    return [value for row in rows for value in row]


def fetch_offline(conn: sqlite3.Connection, jid: str, after_id: int, limit: int) -> list[OfflineMessage]:
    """``limit`` -1: all (SQLite's LIMIT -1)."""
    rows = conn.execute(
        "SELECT id, stanza, received FROM offline WHERE jid = ? AND id > ? ORDER BY id LIMIT ?",
        (jid, after_id, limit),
    )
    return [OfflineMessage(i, s, datetime.fromisoformat(r)) for i, s, r in rows]


def delete_offline(conn: sqlite3.Connection, jid: str, up_to_id: int) -> None:
    conn.execute("DELETE FROM offline WHERE jid = ? AND id <= ?", (jid, up_to_id))


def count_offline(conn: sqlite3.Connection, jid: str | None) -> int:
    if jid is None:
        row = conn.execute("SELECT count(*) FROM offline").fetchone()
    else:
        row = conn.execute("SELECT count(*) FROM offline WHERE jid = ?", (jid,)).fetchone()
    return int(row[0])
