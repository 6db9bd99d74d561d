"""Blocklists (XEP-0191) and message archives (XEP-0313) for
:class:`~xmlchat.storage.postgres.PostgresStorage`; like :mod:`.queries`, one
transaction per call, connection first. The archive's SQL is SQLite's
(:mod:`xmlchat.storage._archive_sql`), with PostgreSQL's parameter mark.
"""

from __future__ import annotations

from typing import Final

from psycopg import errors

from xmlchat.jid import JID
from xmlchat.storage import _archive_sql as sql
from xmlchat.storage.base import (
    ArchiveIdNotFound,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    BlocklistFull,
    PageRequest,
    new_archive_id,
)
from xmlchat.storage.postgres.queries import Conn, lock_user, scalar

MARK: Final = "%s"

# -- blocklists (XEP-0191) ------------------------------------------------------------


async def get_blocklist(conn: Conn, jid: str) -> list[JID]:
    cur = await conn.execute('SELECT item FROM blocklist WHERE jid = %s ORDER BY item COLLATE "C"', (jid,))
    return [JID.parse(item) for (item,) in await cur.fetchall()]


async def block(conn: Conn, jid: str, items: list[str], limit: int) -> list[str]:
    await lock_user(conn, "blocklist", jid)  # the count holds until the insert commits
    cur = await conn.execute("SELECT item FROM blocklist WHERE jid = %s", (jid,))
    held = {item for (item,) in await cur.fetchall()}
    new = [item for item in dict.fromkeys(items) if item not in held]
    if len(held) + len(new) > limit:
        raise BlocklistFull(jid)
    async with conn.cursor() as insert:
        await insert.executemany(
            "INSERT INTO blocklist (jid, item) VALUES (%s, %s)", [(jid, item) for item in new]
        )
    return new


async def unblock(conn: Conn, jid: str, items: list[str]) -> list[str]:
    cur = await conn.execute(
        "DELETE FROM blocklist WHERE jid = %s AND item = ANY(%s) RETURNING item", (jid, items)
    )
    gone = {item for (item,) in await cur.fetchall()}
    return [item for item in dict.fromkeys(items) if item in gone]


async def unblock_all(conn: Conn, jid: str) -> list[JID]:
    cur = await conn.execute("DELETE FROM blocklist WHERE jid = %s RETURNING item", (jid,))
    return sorted((JID.parse(item) for (item,) in await cur.fetchall()), key=str)


async def is_blocked(conn: Conn, jid: str, candidates: list[str]) -> bool:
    found = await scalar(
        conn, "SELECT 1 FROM blocklist WHERE jid = %s AND item = ANY(%s) LIMIT 1", (jid, candidates)
    )
    return found is not None


# -- message archives (XEP-0313) -------------------------------------------------------


async def archive_message(
    conn: Conn, jid: str, with_jid: str, stanza: bytes, stamp: int, outgoing: bool
) -> str:
    for _ in range(sql.ID_ATTEMPTS):
        archive_id = new_archive_id()
        try:
            async with conn.transaction():  # a savepoint: a collision undoes only itself
                await conn.execute(
                    "INSERT INTO archive (id, jid, with_jid, stamp, outgoing, stanza)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (archive_id, jid, with_jid, stamp, outgoing, stanza),
                )
        except errors.UniqueViolation:
            continue
        return archive_id
    raise RuntimeError("could not allocate a unique archive id")


async def query_archive(conn: Conn, jid: str, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
    # One snapshot: the count and the rows see the same archive.
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    seqs = await _seqs(conn, jid, sql.bound_ids(query, page))
    where = sql.query_filter(jid, query, seqs, MARK)
    text, args = sql.page_select(sql.page_window(where, page, seqs, MARK), page, MARK)
    cur = await conn.execute(text.encode(), args)
    rows: list[sql.Row] = await cur.fetchall()
    complete = len(rows) <= page.max
    rows = rows[: page.max]
    if page.backwards:
        rows.reverse()
    count = await _count(conn, where)
    first_index = await _count(conn, sql.before_seq(where, rows[0][0], MARK)) if rows else None
    return ArchivePage([sql.message(row) for row in rows], count, first_index, complete)


async def count_archive(conn: Conn, jid: str, query: ArchiveQuery) -> int:
    seqs = await _seqs(conn, jid, sql.bound_ids(query))
    return await _count(conn, sql.query_filter(jid, query, seqs, MARK))


async def expire_archive(conn: Conn, older_than: int) -> int:
    cur = await conn.execute("DELETE FROM archive WHERE stamp < %s", (older_than,))
    return cur.rowcount


async def get_prefs(conn: Conn, jid: str) -> ArchivePrefs:
    fallback = await scalar(conn, "SELECT fallback FROM archive_prefs WHERE jid = %s", (jid,))
    if fallback is None:
        return ArchivePrefs()
    cur = await conn.execute(
        'SELECT contact, rule FROM archive_rules WHERE jid = %s ORDER BY contact COLLATE "C"', (jid,)
    )
    rules = await cur.fetchall()
    always = tuple(JID.parse(contact) for contact, rule in rules if rule == "always")
    never = tuple(JID.parse(contact) for contact, rule in rules if rule == "never")
    return ArchivePrefs(fallback, always, never)  # type: ignore[arg-type]  # the CHECK constraint


async def set_prefs(conn: Conn, jid: str, prefs: ArchivePrefs) -> None:
    rules = [(jid, str(c), "always") for c in prefs.always] + [(jid, str(c), "never") for c in prefs.never]
    await conn.execute(
        "INSERT INTO archive_prefs (jid, fallback) VALUES (%s, %s)"
        " ON CONFLICT (jid) DO UPDATE SET fallback = excluded.fallback",
        (jid, prefs.default),
    )
    await conn.execute("DELETE FROM archive_rules WHERE jid = %s", (jid,))
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO archive_rules (jid, contact, rule) VALUES (%s, %s, %s)", rules)


async def _seqs(conn: Conn, jid: str, archive_ids: list[str]) -> dict[str, int]:
    seqs: dict[str, int] = {}
    for archive_id in archive_ids:
        seq = await scalar(conn, "SELECT seq FROM archive WHERE id = %s AND jid = %s", (archive_id, jid))
        if seq is None:
            raise ArchiveIdNotFound(archive_id)
        seqs[archive_id] = int(str(seq))
    return seqs


async def _count(conn: Conn, clauses: sql.Clauses) -> int:
    text, args = sql.count_select(clauses)
    return int(str(await scalar(conn, text, args)))
