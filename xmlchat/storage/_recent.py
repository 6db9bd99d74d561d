"""The (sender, id) of recent messages for :class:`~xmlchat.storage.sqlite.SqliteStorage`:
a log on disk, an index in memory.

A re-send must be recognised across a crash (docs/delivery.md, "Re-sends"),
so each record is committed in the transaction of its message. As a table
keyed by (sender, id) that cost ~15 µs per record, three times the rest of the
message's store work: the key is random, so every insert dirtied another page
of a B-tree that every commit then wrote to the WAL. Appended to a log (rowid
order, no index) a record costs ~1 µs; the lookup is a dict, rebuilt from the
log when the store opens. Only one process writes an SQLite store, so the
dict sees every record. (PostgreSQL, shared by the nodes of a cluster, keeps
the keyed table: a node must see the others' records.)

The dict holds a 128-bit digest of (sender, id), not the strings: about 100
bytes per record within the window. Everything here runs on the store's
worker thread; the dict changes only once the transaction that wrote the
records committed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import deque
from collections.abc import Iterable
from typing import Final

from xmlchat.storage.base import MessageOrigin

# Records read per group when the log is loaded (one expiry entry each).
LOAD_GROUP: Final = 1000


def digest(origin: MessageOrigin) -> int:
    """128 bits: two different (sender, id) never share one in practice."""
    key = f"{origin.sender}\0{origin.id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "big")


class RecentIds:
    """When each recent (sender, id) was first stored, by digest."""

    def __init__(self) -> None:
        self._at: dict[int, float] = {}
        # (newest time, last rowid, digests) per committed group of records,
        # oldest first: what expires together.
        self._groups: deque[tuple[float, int, list[int]]] = deque()
        self._loaded = False

    def __len__(self) -> int:
        return len(self._at)

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the log once (the first batch does it, on the worker thread)."""
        if self._loaded:
            return
        self._loaded = True
        rows = conn.execute("SELECT rowid, sender, id, at FROM recent_ids ORDER BY rowid")
        while group := rows.fetchmany(LOAD_GROUP):
            keys = [digest(MessageOrigin(sender, id_, 0.0)) for _, sender, id_, _ in group]
            for key, (_, _, _, at) in zip(keys, group, strict=True):
                self._at[key] = max(at, self._at.get(key, at))
            self._groups.append((max(row[3] for row in group), group[-1][0], keys))

    def seen(self, key: int, since: float) -> bool:
        """Recorded at or after ``since``: a re-send."""
        return self._at.get(key, float("-inf")) >= since

    def committed(self, keys: Iterable[int], at: float, last_rowid: int) -> None:
        """The records of ``keys``, written at ``at`` up to ``last_rowid``, are committed."""
        group = list(keys)
        if group:
            for key in group:
                self._at[key] = at
            self._groups.append((at, last_rowid, group))

    def expire(self, before: float) -> int:
        """Forget the groups all older than ``before``; the last rowid of the
        log that may go with them (0: none)."""
        last = 0
        while self._groups and self._groups[0][0] < before:
            _, last, keys = self._groups.popleft()
            for key in keys:
                if self._at.get(key, before) < before:  # not recorded again since
                    del self._at[key]
        return last
