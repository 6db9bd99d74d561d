"""Blocklist database work (XEP-0191) for :class:`~xmlchat.storage.sqlite.SqliteStorage`.

Like :mod:`xmlchat.storage._queries`: connection first, storage worker thread
only, one transaction per public operation. ``jid`` is the owner's bare JID and
items are JIDs in string form, as given.
"""

from __future__ import annotations

import sqlite3

from xmlchat.jid import JID
from xmlchat.storage._queries import transaction
from xmlchat.storage.base import BlocklistFull


def get_blocklist(conn: sqlite3.Connection, jid: str) -> list[JID]:
    rows = conn.execute("SELECT item FROM blocklist WHERE jid = ? ORDER BY item", (jid,))
    return [JID.parse(item) for (item,) in rows]


def block(conn: sqlite3.Connection, jid: str, items: list[str], limit: int) -> list[str]:
    with transaction(conn):
        # Checked inside the write transaction: another process sharing the file
        # cannot add rows between the count and the insert.
        new = [item for item in dict.fromkeys(items) if not _has(conn, jid, item)]
        if _count(conn, jid) + len(new) > limit:
            raise BlocklistFull(jid)
        conn.executemany(
            "INSERT INTO blocklist (jid, item) VALUES (?, ?)", [(jid, item) for item in new]
        )
    return new


def unblock(conn: sqlite3.Connection, jid: str, items: list[str]) -> list[str]:
    removed: list[str] = []
    with transaction(conn):
        for item in dict.fromkeys(items):
            cur = conn.execute("DELETE FROM blocklist WHERE jid = ? AND item = ?", (jid, item))
            if cur.rowcount > 0:
                removed.append(item)
    return removed


def unblock_all(conn: sqlite3.Connection, jid: str) -> list[JID]:
    with transaction(conn):
        items = get_blocklist(conn, jid)
        conn.execute("DELETE FROM blocklist WHERE jid = ?", (jid,))
    return items


def is_blocked(conn: sqlite3.Connection, jid: str, candidates: list[str]) -> bool:
    marks = ", ".join("?" * len(candidates))
    row = conn.execute(
        f"SELECT 1 FROM blocklist WHERE jid = ? AND item IN ({marks}) LIMIT 1",
        (jid, *candidates),
    ).fetchone()
    return row is not None


def _has(conn: sqlite3.Connection, jid: str, item: str) -> bool:
    row = conn.execute("SELECT 1 FROM blocklist WHERE jid = ? AND item = ?", (jid, item))
    return row.fetchone() is not None


def _count(conn: sqlite3.Connection, jid: str) -> int:
    return int(conn.execute("SELECT count(*) FROM blocklist WHERE jid = ?", (jid,)).fetchone()[0])
