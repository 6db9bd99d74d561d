"""Database work for :class:`~xmlchat.storage.sqlite.SqliteStorage`.

Every function here takes the connection first and runs on the storage worker
thread only; each public operation is one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from xmlchat.jid import JID
from xmlchat.storage._sql_store import USER_TABLES
from xmlchat.storage.base import (
    DeleteRosterItem,
    NoSuchUser,
    PutRosterItem,
    RosterChange,
    RosterItem,
    ScramCredentials,
    UserExists,
    checked_roster_changes,
)
from xmlchat.storage.migrations import migrate

log = logging.getLogger(__name__)

# Another process (``xmlchat adduser`` beside a running server) may hold the write lock.
BUSY_TIMEOUT_MS: Final = 5000

# storage.synchronous: the PRAGMA each setting means (a fixed table, never user text in SQL).
SYNCHRONOUS: Final = {"normal": "NORMAL", "full": "FULL"}


def connect(path: Path, synchronous: str = "normal") -> sqlite3.Connection:
    """Open and migrate. ``synchronous``: "normal" (WAL: durable at each
    checkpoint, so a killed process loses nothing but a power cut may lose the
    last commits) or "full" (each commit reaches the disk before it returns)."""
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: autocommit; we issue BEGIN/COMMIT ourselves.
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[synchronous]}")
        conn.execute("PRAGMA foreign_keys = ON")
        version = migrate(conn)
    except BaseException:
        conn.close()
        raise
    log.info("storage: opened %s (schema %d)", path, version)
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """A second connection, for reads only, beside the one :func:`connect`
    opened and migrated: in WAL mode it reads while the other writes, and
    sees what was committed before each of its statements began."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")  # a write sent here by mistake fails loudly
    except BaseException:
        conn.close()
        raise
    return conn


def close(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA optimize")
    conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def create_user(
    conn: sqlite3.Connection, jid: str, host: str, keys: list[ScramCredentials]
) -> None:
    with transaction(conn):
        try:
            conn.execute(
                "INSERT INTO users (jid, host, created) VALUES (?, ?, ?)", (jid, host, _now())
            )
        except sqlite3.IntegrityError:
            raise UserExists(jid) from None
        _write_scram(conn, jid, keys)


def set_scram(conn: sqlite3.Connection, jid: str, keys: list[ScramCredentials]) -> None:
    with transaction(conn):
        if not user_exists(conn, jid):
            raise NoSuchUser(jid)
        _write_scram(conn, jid, keys)


def _write_scram(conn: sqlite3.Connection, jid: str, keys: list[ScramCredentials]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO scram"
        " (jid, mechanism, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?)",
        [(jid, k.mechanism, k.salt, k.iterations, k.stored_key, k.server_key) for k in keys],
    )


def delete_user(conn: sqlite3.Connection, jid: str) -> bool:
    with transaction(conn):
        existed = conn.execute("DELETE FROM users WHERE jid = ?", (jid,)).rowcount > 0
        for table in USER_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE jid = ?", (jid,))
    return existed


def user_exists(conn: sqlite3.Connection, jid: str) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE jid = ?", (jid,)).fetchone() is not None


def list_users(conn: sqlite3.Connection, host: str | None) -> list[JID]:
    if host is None:
        rows = conn.execute("SELECT jid FROM users ORDER BY jid")
    else:
        domain = JID.parse(host).domain
        rows = conn.execute("SELECT jid FROM users WHERE host = ? ORDER BY jid", (domain,))
    return [JID.parse(jid) for (jid,) in rows]


def get_scram(conn: sqlite3.Connection, jid: str, mechanism: str) -> ScramCredentials | None:
    row = conn.execute(
        "SELECT salt, iterations, stored_key, server_key FROM scram"
        " WHERE jid = ? AND mechanism = ?",
        (jid, mechanism),
    ).fetchone()
    return None if row is None else ScramCredentials(mechanism, *row)


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


_ROSTER_COLUMNS: Final = "contact, name, subscription, ask, approved, groups"


def _roster_item(
    contact: str, name: str | None, subscription: str, ask: int, approved: int, groups: str
) -> RosterItem:
    return RosterItem(
        JID.parse(contact), name, subscription, bool(ask), bool(approved), tuple(json.loads(groups))
    )


def get_roster(conn: sqlite3.Connection, jid: str) -> tuple[list[RosterItem], int]:
    with transaction(conn, "DEFERRED"):
        rows = conn.execute(
            f"SELECT {_ROSTER_COLUMNS} FROM roster WHERE jid = ? ORDER BY contact", (jid,)
        ).fetchall()
        version = _roster_version(conn, jid)
    return [_roster_item(*row) for row in rows], version


def get_roster_item(conn: sqlite3.Connection, jid: str, contact: str) -> RosterItem | None:
    row = conn.execute(
        f"SELECT {_ROSTER_COLUMNS} FROM roster WHERE jid = ? AND contact = ?", (jid, contact)
    ).fetchone()
    return None if row is None else _roster_item(*row)


def put_roster_item(conn: sqlite3.Connection, jid: str, item: RosterItem) -> int:
    with transaction(conn):
        _put_item(conn, jid, item)
        return _bump_roster_version(conn, jid)


def delete_roster_item(conn: sqlite3.Connection, jid: str, contact: str) -> int:
    with transaction(conn):
        if not _delete_item(conn, jid, contact):
            return _roster_version(conn, jid)
        return _bump_roster_version(conn, jid)


def apply_roster_changes(conn: sqlite3.Connection, changes: Sequence[RosterChange]) -> dict[JID, int]:
    """Checked as they are written: a bad change rolls back those before it."""
    changed: dict[str, bool] = {}
    with transaction(conn):
        for change in checked_roster_changes(changes):
            jid = str(change.user.bare)
            if isinstance(change, PutRosterItem):
                _put_item(conn, jid, change.item)
                changed[jid] = True
            elif isinstance(change, DeleteRosterItem):
                changed[jid] = _delete_item(conn, jid, str(change.contact.bare))
            else:
                delete_subscription_request(conn, jid, str(change.contact.bare))
        return {
            JID.parse(jid): _bump_roster_version(conn, jid) if bump else _roster_version(conn, jid)
            for jid, bump in changed.items()
        }


def _put_item(conn: sqlite3.Connection, jid: str, item: RosterItem) -> None:
    values = (
        jid,
        str(item.jid.bare),
        item.name,
        item.subscription,
        item.ask,
        item.approved,
        json.dumps(list(item.groups)),
    )
    conn.execute(
        f"INSERT OR REPLACE INTO roster (jid, {_ROSTER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def _delete_item(conn: sqlite3.Connection, jid: str, contact: str) -> bool:
    cur = conn.execute("DELETE FROM roster WHERE jid = ? AND contact = ?", (jid, contact))
    return cur.rowcount > 0


def _roster_version(conn: sqlite3.Connection, jid: str) -> int:
    row = conn.execute("SELECT version FROM roster_version WHERE jid = ?", (jid,)).fetchone()
    return 0 if row is None else int(row[0])


def _bump_roster_version(conn: sqlite3.Connection, jid: str) -> int:
    conn.execute(
        "INSERT INTO roster_version (jid, version) VALUES (?, 1)"
        " ON CONFLICT (jid) DO UPDATE SET version = version + 1",
        (jid,),
    )
    return _roster_version(conn, jid)


def add_subscription_request(
    conn: sqlite3.Connection, jid: str, contact: str, stanza: bytes
) -> None:
    conn.execute(
        "INSERT INTO subscription_requests (jid, contact, stanza) VALUES (?, ?, ?)"
        " ON CONFLICT (jid, contact) DO UPDATE SET stanza = excluded.stanza",
        (jid, contact, stanza),
    )


def get_subscription_requests(conn: sqlite3.Connection, jid: str) -> list[tuple[JID, bytes]]:
    rows = conn.execute(
        "SELECT contact, stanza FROM subscription_requests WHERE jid = ? ORDER BY rowid", (jid,)
    )
    return [(JID.parse(contact), stanza) for contact, stanza in rows]


def delete_subscription_request(conn: sqlite3.Connection, jid: str, contact: str) -> None:
    conn.execute("DELETE FROM subscription_requests WHERE jid = ? AND contact = ?", (jid, contact))
