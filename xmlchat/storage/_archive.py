"""Message archive database work (XEP-0313) for :class:`~xmlchat.storage.sqlite.SqliteStorage`.

Like :mod:`xmlchat.storage._queries`: connection first, storage worker thread
only, one transaction per public operation. ``jid`` is the owner's bare JID.
Stamps are kept as integer microseconds since the epoch, so time filters and
expiry compare numbers, never strings of varying precision.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Final

from xmlchat.jid import JID
from xmlchat.storage._queries import transaction
from xmlchat.storage.base import (
    ArchivedMessage,
    ArchiveIdNotFound,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    PageRequest,
    new_archive_id,
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_COLUMNS: Final = "seq, id, with_jid, stanza, stamp, outgoing"
# A fresh id colliding with a stored one is a 2^-96 event; retry rather than fail.
_ID_ATTEMPTS: Final = 5

Row = tuple[int, str, str, bytes, int, int]


def micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("archive times must be timezone-aware")
    return (when - _EPOCH) // _MICROSECOND


def _from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def archive_message(
    conn: sqlite3.Connection, jid: str, with_jid: str, stanza: bytes, stamp: int, outgoing: bool
) -> str:
    for _ in range(_ID_ATTEMPTS):
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
        where, args = _filter(conn, jid, query)
        window, window_args = list(where), list(args)
        for bound, op in ((page.after, ">"), (page.before, "<")):
            if bound is not None:
                window.append(f"seq {op} ?")
                window_args.append(_seq(conn, jid, bound))
        order = "DESC" if page.backwards else "ASC"
        rows: list[Row] = conn.execute(
            f"SELECT {_COLUMNS} FROM archive WHERE {' AND '.join(window)} ORDER BY seq {order} LIMIT ?",
            (*window_args, page.max + 1),
        ).fetchall()
        complete = len(rows) <= page.max
        rows = rows[: page.max]
        if page.backwards:
            rows.reverse()
        count = _count(conn, where, args)
        first_index = _count(conn, [*where, "seq < ?"], [*args, rows[0][0]]) if rows else None
    return ArchivePage([_message(row) for row in rows], count, first_index, complete)


def count_archive(conn: sqlite3.Connection, jid: str, query: ArchiveQuery) -> int:
    with transaction(conn, "DEFERRED"):
        where, args = _filter(conn, jid, query)
        return _count(conn, where, args)


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


def _filter(conn: sqlite3.Connection, jid: str, query: ArchiveQuery) -> tuple[list[str], list[object]]:
    where: list[str] = ["jid = ?"]
    args: list[object] = [jid]
    if query.with_ is not None:
        where.append("with_jid = ?")
        args.append(str(query.with_.bare))
    if query.start is not None:
        where.append("stamp >= ?")
        args.append(micros(query.start))
    if query.end is not None:
        where.append("stamp <= ?")
        args.append(micros(query.end))
    if query.ids is not None:
        where.append(f"id IN ({', '.join('?' * len(query.ids))})" if query.ids else "0")
        args.extend(query.ids)
    for bound, op in ((query.after_id, ">"), (query.before_id, "<")):
        if bound is not None:
            where.append(f"seq {op} ?")
            args.append(_seq(conn, jid, bound))
    return where, args


def _seq(conn: sqlite3.Connection, jid: str, archive_id: str) -> int:
    row = conn.execute("SELECT seq FROM archive WHERE id = ? AND jid = ?", (archive_id, jid)).fetchone()
    if row is None:
        raise ArchiveIdNotFound(archive_id)
    return int(row[0])


def _count(conn: sqlite3.Connection, where: list[str], args: list[object]) -> int:
    row = conn.execute(f"SELECT count(*) FROM archive WHERE {' AND '.join(where)}", args).fetchone()
    return int(row[0])


def _message(row: Row) -> ArchivedMessage:
    _, archive_id, with_jid, stanza, stamp, outgoing = row
    with_ = JID.parse(with_jid)
    return ArchivedMessage(archive_id, with_, bytes(stanza), _from_micros(stamp), bool(outgoing))
