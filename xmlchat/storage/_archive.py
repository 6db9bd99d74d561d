"""Message archive database work (XEP-0313) for :class:`~xmlchat.storage.sqlite.SqliteStorage`.

Like :mod:`xmlchat.storage._queries`: connection first, storage worker thread
only, one transaction per public operation. ``jid`` is the owner's bare JID.
Stamps are kept as integer microseconds since the epoch, so time filters and
expiry compare numbers, never strings of varying precision.
"""

from __future__ import annotations

import sqlite3

from xmlchat.jid import JID
from xmlchat.storage import _archive_sql as sql
from xmlchat.storage._archive_sql import micros as micros
from xmlchat.storage._queries import transaction
from xmlchat.storage.base import (
    ArchiveIdNotFound,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    PageRequest,
    new_archive_id,
)


def archive_message(
    conn: sqlite3.Connection, jid: str, with_jid: str, stanza: bytes, stamp: int, outgoing: bool
) -> str:
    for _ in range(sql.ID_ATTEMPTS):
        archive_id = new_archive_id()
        try:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO archive (id, jid, with_jid, stamp, outgoing, stanza)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (archive_id, jid, with_jid, stamp, int(outgoing), stanza),
                )
        except sqlite3.IntegrityError:
            continue
        return archive_id
    raise RuntimeError("could not allocate a unique archive id")


def query_archive(conn: sqlite3.Connection, jid: str, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
    # One read transaction: the count and the rows see the same archive.
    with transaction(conn, "DEFERRED"):
        seqs = _seqs(conn, jid, sql.bound_ids(query, page))
        where = sql.query_filter(jid, query, seqs, "?")
        rows: list[sql.Row] = conn.execute(
            *sql.page_select(sql.page_window(where, page, seqs, "?"), page, "?")
        ).fetchall()
        complete = len(rows) <= page.max
        rows = rows[: page.max]
        if page.backwards:
            rows.reverse()
        count = _count(conn, where)
        first_index = _count(conn, sql.before_seq(where, rows[0][0], "?")) if rows else None
    return ArchivePage([sql.message(row) for row in rows], count, first_index, complete)


def count_archive(conn: sqlite3.Connection, jid: str, query: ArchiveQuery) -> int:
    with transaction(conn, "DEFERRED"):
        seqs = _seqs(conn, jid, sql.bound_ids(query))
        return _count(conn, sql.query_filter(jid, query, seqs, "?"))


def expire_archive(conn: sqlite3.Connection, older_than: int) -> int:
    with transaction(conn):
        return conn.execute("DELETE FROM archive WHERE stamp < ?", (older_than,)).rowcount


def get_prefs(conn: sqlite3.Connection, jid: str) -> ArchivePrefs:
    row = conn.execute("SELECT fallback FROM archive_prefs WHERE jid = ?", (jid,)).fetchone()
    if row is None:
        return ArchivePrefs()
    rules = conn.execute(
        "SELECT contact, rule FROM archive_rules WHERE jid = ? ORDER BY contact", (jid,)
    ).fetchall()
    always = tuple(JID.parse(contact) for contact, rule in rules if rule == "always")
    never = tuple(JID.parse(contact) for contact, rule in rules if rule == "never")
    return ArchivePrefs(row[0], always, never)


def set_prefs(conn: sqlite3.Connection, jid: str, prefs: ArchivePrefs) -> None:
    rules = [(jid, str(c), "always") for c in prefs.always] + [(jid, str(c), "never") for c in prefs.never]
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO archive_prefs (jid, fallback) VALUES (?, ?)", (jid, prefs.default)
        )
        conn.execute("DELETE FROM archive_rules WHERE jid = ?", (jid,))
        conn.executemany("INSERT INTO archive_rules (jid, contact, rule) VALUES (?, ?, ?)", rules)


def _seqs(conn: sqlite3.Connection, jid: str, archive_ids: list[str]) -> dict[str, int]:
    seqs: dict[str, int] = {}
    for archive_id in archive_ids:
        row = conn.execute("SELECT seq FROM archive WHERE id = ? AND jid = ?", (archive_id, jid)).fetchone()
        if row is None:
            raise ArchiveIdNotFound(archive_id)
        seqs[archive_id] = int(row[0])
    return seqs


def _count(conn: sqlite3.Connection, clauses: sql.Clauses) -> int:
    row = conn.execute(*sql.count_select(clauses)).fetchone()
    return int(row[0])
