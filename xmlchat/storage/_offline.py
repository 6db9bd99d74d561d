"""Offline-queue work for :class:`~xmlchat.storage.sqlite.SqliteStorage`, on
its worker thread: the group commit of one event-loop turn, and the reads.

Every message for a local account passes through here before its sender is
acknowledged (docs/delivery.md), so the batch is the hot path: one
transaction for the writes and deletes of one turn, and the (sender, id)
check against re-sends inside that same transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

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
    writes: list[OfflineWrite],
    deletes: list[tuple[str, list[int]]],
    sweep: bool = False,
) -> list[int]:
    """Group commit: the offline writes and deletes of one event-loop turn in
    one transaction. Each write gets its id, :data:`QUEUE_FULL` when its
    recipient's queue is full (the limit counts the batch's own earlier
    writes), or :data:`DUPLICATE` when its origin was seen within its window.
    ``sweep``: also forget (sender, id) records past the widest window."""
    ids: list[int] = []
    queued: dict[str, int] = {}
    accepted: list[tuple[str, bytes, str]] = []
    now = time.time()
    oldest_window = max((w.origin.window for w in writes if w.origin is not None), default=0.0)
    conn.execute("BEGIN IMMEDIATE")
    try:
        gone = [(jid, i) for jid, message_ids in deletes for i in message_ids]  # what sessions settled
        for chunk in _chunks(gone):
            # Each id with its owner's jid (a wrong id never deletes another
            # user's message), looked up by the primary key.
            pairs = ", ".join(["(?, ?)"] * len(chunk))
            conn.execute(
                f"DELETE FROM offline WHERE id IN (SELECT o.id FROM (VALUES {pairs}) AS v"
                " CROSS JOIN offline AS o ON o.id = v.column2 AND o.jid = v.column1)",
                _flat(chunk),
            )
        claimed = _claim_all(conn, writes, now)
        if claimed and all(w.limit >= UNLIMITED for w in writes):
            # The common case: no re-send, every recipient online (no count).
            accepted = [(w.jid, w.stanza, w.received) for w in writes]
            ids = list(range(1, len(writes) + 1))
        else:
            for write in writes:
                origin = write.origin
                if origin is not None and not claimed and not _claim(conn, origin, now):
                    ids.append(DUPLICATE)
                    continue
                if write.limit < UNLIMITED:  # no count for a user online
                    if write.jid not in queued:
                        queued[write.jid] = count_offline(conn, write.jid)
                    if queued[write.jid] >= write.limit:
                        if origin is not None:  # refused, so never taken: a re-send is new
                            _forget(conn, origin)
                        ids.append(QUEUE_FULL)
                        continue
                    queued[write.jid] += 1
                accepted.append((write.jid, write.stanza, write.received))
                ids.append(len(accepted))  # its place among the accepted, for now
        if accepted:
            last = 0
            for chunk in _chunks(accepted):
                rows = ", ".join(["(?, ?, ?)"] * len(chunk))
                sql = f"INSERT INTO offline (jid, stanza, received) VALUES {rows}"
                last = conn.execute(sql, _flat(chunk)).lastrowid or 0
            # AUTOINCREMENT in one transaction on the only connection: consecutive ids.
            first = last - len(accepted)
            ids = [i if i <= DUPLICATE else first + i for i in ids]
        if sweep and oldest_window:  # the index on 'at' keeps it cheap
            conn.execute("DELETE FROM recent_ids WHERE at < ?", (now - oldest_window,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return ids


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


def _claim_all(conn: sqlite3.Connection, writes: list[OfflineWrite], now: float) -> bool:
    """Record every write's origin in one statement, if none was recorded
    before (nor twice in the batch); else record none, and return False (the
    caller then checks them one by one)."""
    keys = [(w.origin.sender, w.origin.id, now) for w in writes if w.origin is not None]
    if not keys:
        return True
    before = conn.total_changes
    conn.execute("SAVEPOINT claim")
    for chunk in _chunks(keys):
        rows = ", ".join(["(?, ?, ?)"] * len(chunk))
        conn.execute(f"INSERT OR IGNORE INTO recent_ids (sender, id, at) VALUES {rows}", _flat(chunk))
    if conn.total_changes - before == len(keys):
        conn.execute("RELEASE claim")
        return True
    conn.execute("ROLLBACK TO claim")
    conn.execute("RELEASE claim")
    return False


def _claim(conn: sqlite3.Connection, origin: MessageOrigin, now: float) -> bool:
    """Record ``origin``; False if it was recorded within its window (a re-send)."""
    key = (origin.sender, origin.id)
    claimed = conn.execute("INSERT OR IGNORE INTO recent_ids (sender, id, at) VALUES (?, ?, ?)", (*key, now))
    if claimed.rowcount:
        return True  # the common case: one statement
    row = conn.execute("SELECT at FROM recent_ids WHERE sender = ? AND id = ?", key).fetchone()
    if float(row[0]) >= now - origin.window:
        return False
    conn.execute("UPDATE recent_ids SET at = ? WHERE sender = ? AND id = ?", (now, *key))
    return True


def _forget(conn: sqlite3.Connection, origin: MessageOrigin) -> None:
    conn.execute("DELETE FROM recent_ids WHERE sender = ? AND id = ?", (origin.sender, origin.id))


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
