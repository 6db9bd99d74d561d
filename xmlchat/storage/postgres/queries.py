"""Accounts, offline messages and rosters for :class:`~xmlchat.storage.postgres.PostgresStorage`.

Every function takes a pooled connection first; the store runs each call in
one transaction (the pool commits when the call returns, rolls back if it
raises). Several nodes share the database, so limits that count rows before
adding some take a per-user advisory lock first (:func:`lock_user`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from psycopg import AsyncConnection, errors
from psycopg.rows import TupleRow

from xmlchat.jid import JID
from xmlchat.storage._offline import DUPLICATE, QUEUE_FULL
from xmlchat.storage._sql_store import USER_TABLES
from xmlchat.storage.base import (
    UNLIMITED,
    DeleteRosterItem,
    MessageOrigin,
    NoSuchUser,
    OfflineMessage,
    PutRosterItem,
    RosterChange,
    RosterItem,
    ScramCredentials,
    UserExists,
    checked_roster_changes,
)

Conn = AsyncConnection[TupleRow]


async def lock_user(conn: Conn, purpose: str, jid: str) -> None:
    """Serialise, across nodes, the transactions that count then add ``jid``'s
    rows of one kind; released at commit."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{purpose}:{jid}",))


async def scalar(conn: Conn, query: str, args: Sequence[object] = ()) -> object:
    cur = await conn.execute(query.encode(), args)
    row = await cur.fetchone()
    return None if row is None else row[0]


# -- accounts -------------------------------------------------------------------


async def create_user(conn: Conn, jid: str, host: str, keys: list[ScramCredentials]) -> None:
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO users (jid, host) VALUES (%s, %s)", (jid, host))
    except errors.UniqueViolation:
        raise UserExists(jid) from None
    await _write_scram(conn, jid, keys)


async def set_scram(conn: Conn, jid: str, keys: list[ScramCredentials]) -> None:
    if not await user_exists(conn, jid):
        raise NoSuchUser(jid)
    await _write_scram(conn, jid, keys)


async def _write_scram(conn: Conn, jid: str, keys: list[ScramCredentials]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO scram (jid, mechanism, salt, iterations, stored_key, server_key)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (jid, mechanism) DO UPDATE SET"
            " salt = excluded.salt, iterations = excluded.iterations,"
            " stored_key = excluded.stored_key, server_key = excluded.server_key",
            [(jid, k.mechanism, k.salt, k.iterations, k.stored_key, k.server_key) for k in keys],
        )


async def delete_user(conn: Conn, jid: str) -> bool:
    cur = await conn.execute("DELETE FROM users WHERE jid = %s", (jid,))
    existed = cur.rowcount > 0
    for table in USER_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE jid = %s".encode(), (jid,))
    return existed


async def user_exists(conn: Conn, jid: str) -> bool:
    return await scalar(conn, "SELECT 1 FROM users WHERE jid = %s", (jid,)) is not None


async def list_users(conn: Conn, host: str | None) -> list[JID]:
    # COLLATE "C": sorted as Python sorts the strings, whatever the database's locale.
    if host is None:
        cur = await conn.execute('SELECT jid FROM users ORDER BY jid COLLATE "C"')
    else:
        domain = JID.parse(host).domain
        cur = await conn.execute('SELECT jid FROM users WHERE host = %s ORDER BY jid COLLATE "C"', (domain,))
    return [JID.parse(jid) for (jid,) in await cur.fetchall()]


async def count_users(conn: Conn) -> int:
    return int(str(await scalar(conn, "SELECT count(*) FROM users")))


async def get_scram(conn: Conn, jid: str, mechanism: str) -> ScramCredentials | None:
    cur = await conn.execute(
        "SELECT salt, iterations, stored_key, server_key FROM scram WHERE jid = %s AND mechanism = %s",
        (jid, mechanism),
    )
    row = await cur.fetchone()
    return None if row is None else ScramCredentials(mechanism, *row)


# -- offline messages (XEP-0160) -------------------------------------------------


# One message for the offline queue: (jid, stanza, received, limit, origin).
OfflineWrite = tuple[str, bytes, datetime, int, MessageOrigin | None]


async def store_offline_batch(conn: Conn, writes: list[OfflineWrite], sweep: bool = False) -> list[int]:
    """Group commit: each message's id in call order, :data:`QUEUE_FULL` where
    its recipient's queue is full (the limit counts the batch's own writes), or
    :data:`DUPLICATE` where its origin was seen within its window (as SQLite's
    ``_offline.apply_batch``, in the same transaction). ``sweep``: also forget
    (sender, id) records past the widest window.

    The recipients' locks, taken in one order on every node so two batches
    cannot deadlock, also keep each recipient's ids in commit order: a replay
    paging by id never passes a message that commits later with a smaller id.
    """
    queued: dict[str, int] = {}
    for jid in sorted({write[0] for write in writes}):
        await lock_user(conn, "offline", jid)
    now = time.time()
    oldest_window = 0.0
    ids: list[int] = []
    for jid, stanza, received, limit, origin in writes:
        if origin is not None:
            oldest_window = max(oldest_window, origin.window)
            if not await _claim(conn, origin, now):
                ids.append(DUPLICATE)
                continue
        if limit < UNLIMITED:  # no count for a user online (the common case)
            if jid not in queued:
                queued[jid] = await count_offline(conn, jid)
            if queued[jid] >= limit:
                if origin is not None:  # refused, so never taken: a re-send is new
                    await conn.execute(
                        "DELETE FROM recent_ids WHERE sender = %s AND id = %s", (origin.sender, origin.id)
                    )
                ids.append(QUEUE_FULL)
                continue
            queued[jid] += 1
        new_id = await scalar(
            conn, "INSERT INTO offline (jid, stanza, received) VALUES (%s, %s, %s) RETURNING id",
            (jid, stanza, received),
        )
        ids.append(int(str(new_id)))
    if sweep and oldest_window:
        await conn.execute("DELETE FROM recent_ids WHERE at < %s", (now - oldest_window,))
    return ids


async def _claim(conn: Conn, origin: MessageOrigin, now: float) -> bool:
    """Record ``origin``; False if it was recorded within its window (a re-send).
    Another node's concurrent claim of the same key waits for its commit."""
    key = (origin.sender, origin.id)
    cur = await conn.execute(
        "INSERT INTO recent_ids (sender, id, at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", (*key, now)
    )
    if cur.rowcount:
        return True  # the common case: one statement
    at = await scalar(conn, "SELECT at FROM recent_ids WHERE sender = %s AND id = %s FOR UPDATE", key)
    if at is not None and float(str(at)) >= now - origin.window:
        return False
    await conn.execute(
        "INSERT INTO recent_ids (sender, id, at) VALUES (%s, %s, %s)"
        " ON CONFLICT (sender, id) DO UPDATE SET at = excluded.at", (*key, now)
    )
    return True


async def fetch_offline(conn: Conn, jid: str, after_id: int, limit: int | None) -> list[OfflineMessage]:
    cur = await conn.execute(
        "SELECT id, stanza, received FROM offline WHERE jid = %s AND id > %s ORDER BY id LIMIT %s",
        (jid, after_id, limit),
    )
    return [OfflineMessage(i, bytes(s), r.astimezone(UTC)) for i, s, r in await cur.fetchall()]


async def delete_offline(conn: Conn, jid: str, up_to_id: int) -> None:
    await conn.execute("DELETE FROM offline WHERE jid = %s AND id <= %s", (jid, up_to_id))


async def delete_offline_ids(conn: Conn, jid: str, ids: list[int]) -> None:
    await conn.execute("DELETE FROM offline WHERE jid = %s AND id = ANY(%s)", (jid, ids))


async def count_offline(conn: Conn, jid: str | None) -> int:
    if jid is None:
        count = await scalar(conn, "SELECT count(*) FROM offline")
    else:
        count = await scalar(conn, "SELECT count(*) FROM offline WHERE jid = %s", (jid,))
    assert isinstance(count, int)
    return count


# -- rosters (RFC 6121 §2), versioned (§2.6) --------------------------------------

_ROSTER_COLUMNS: Final = "contact, name, subscription, ask, approved, groups"


def _roster_item(row: TupleRow) -> RosterItem:
    contact, name, subscription, ask, approved, groups = row
    return RosterItem(JID.parse(contact), name, subscription, ask, approved, tuple(groups))


async def get_roster(conn: Conn, jid: str) -> tuple[list[RosterItem], int]:
    # One snapshot for the items and the version.
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cur = await conn.execute(
        f'SELECT {_ROSTER_COLUMNS} FROM roster WHERE jid = %s ORDER BY contact COLLATE "C"'.encode(), (jid,)
    )
    items = [_roster_item(row) for row in await cur.fetchall()]
    return items, await roster_version(conn, jid)


async def get_roster_item(conn: Conn, jid: str, contact: str) -> RosterItem | None:
    cur = await conn.execute(
        f"SELECT {_ROSTER_COLUMNS} FROM roster WHERE jid = %s AND contact = %s".encode(), (jid, contact)
    )
    row = await cur.fetchone()
    return None if row is None else _roster_item(row)


async def put_roster_item(conn: Conn, jid: str, item: RosterItem) -> int:
    await _put_item(conn, jid, item)
    return await _bump_roster_version(conn, jid)


async def delete_roster_item(conn: Conn, jid: str, contact: str) -> int:
    if not await _delete_item(conn, jid, contact):
        return await roster_version(conn, jid)
    return await _bump_roster_version(conn, jid)


async def apply_roster_changes(conn: Conn, changes: Sequence[RosterChange]) -> dict[JID, int]:
    """Checked as they are written: a bad change rolls back the whole call."""
    changed: dict[str, bool] = {}
    for change in checked_roster_changes(changes):
        jid = str(change.user.bare)
        if isinstance(change, PutRosterItem):
            await _put_item(conn, jid, change.item)
            changed[jid] = True
        elif isinstance(change, DeleteRosterItem):
            changed[jid] = await _delete_item(conn, jid, str(change.contact.bare))
        else:
            await delete_subscription_request(conn, jid, str(change.contact.bare))
    return {
        JID.parse(jid): await (_bump_roster_version(conn, jid) if bump else roster_version(conn, jid))
        for jid, bump in changed.items()
    }


async def _put_item(conn: Conn, jid: str, item: RosterItem) -> None:
    await conn.execute(
        f"INSERT INTO roster (jid, {_ROSTER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (jid, contact) DO UPDATE SET name = excluded.name,"
        " subscription = excluded.subscription, ask = excluded.ask,"
        " approved = excluded.approved, groups = excluded.groups".encode(),
        (jid, str(item.jid.bare), item.name, item.subscription, item.ask, item.approved, list(item.groups)),
    )


async def _delete_item(conn: Conn, jid: str, contact: str) -> bool:
    cur = await conn.execute("DELETE FROM roster WHERE jid = %s AND contact = %s", (jid, contact))
    return cur.rowcount > 0


async def roster_version(conn: Conn, jid: str) -> int:
    version = await scalar(conn, "SELECT version FROM roster_version WHERE jid = %s", (jid,))
    return 0 if version is None else int(str(version))


async def _bump_roster_version(conn: Conn, jid: str) -> int:
    version = await scalar(
        conn,
        "INSERT INTO roster_version (jid, version) VALUES (%s, 1)"
        " ON CONFLICT (jid) DO UPDATE SET version = roster_version.version + 1 RETURNING version",
        (jid,),
    )
    return int(str(version))


# -- pending inbound subscription requests (RFC 6121 §3.1.3) ---------------------


async def add_subscription_request(conn: Conn, jid: str, contact: str, stanza: bytes) -> None:
    await conn.execute(
        "INSERT INTO subscription_requests (jid, contact, stanza) VALUES (%s, %s, %s)"
        " ON CONFLICT (jid, contact) DO UPDATE SET stanza = excluded.stanza",
        (jid, contact, stanza),
    )


async def get_subscription_requests(conn: Conn, jid: str) -> list[tuple[JID, bytes]]:
    cur = await conn.execute(
        "SELECT contact, stanza FROM subscription_requests WHERE jid = %s ORDER BY seq", (jid,)
    )
    return [(JID.parse(contact), bytes(stanza)) for contact, stanza in await cur.fetchall()]


async def delete_subscription_request(conn: Conn, jid: str, contact: str) -> None:
    await conn.execute("DELETE FROM subscription_requests WHERE jid = %s AND contact = %s", (jid, contact))
