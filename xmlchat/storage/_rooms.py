"""Room database work (XEP-0045 persistent rooms) for :class:`~xmlchat.storage.sqlite.SqliteStorage`.

Like :mod:`xmlchat.storage._queries`: connection first, storage worker thread
only, one transaction per public operation. A room is one row; its
configuration and affiliations are JSON objects (read and written whole,
as PostgreSQL does: :func:`~xmlchat.storage._sql_store.room_values`).
"""

from __future__ import annotations

import sqlite3

from xmlchat.storage._queries import transaction
from xmlchat.storage._sql_store import ROOM_COLUMNS, room_values, stored_room
from xmlchat.storage.base import StoredRoom


def save_room(conn: sqlite3.Connection, room: StoredRoom) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO rooms (jid, service, config, affiliations, subject, subject_by)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            room_values(room),
        )


def delete_room(conn: sqlite3.Connection, jid: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM rooms WHERE jid = ?", (jid,)).rowcount > 0


def load_rooms(conn: sqlite3.Connection, service: str | None) -> list[StoredRoom]:
    if service is None:
        rows = conn.execute(f"SELECT {ROOM_COLUMNS} FROM rooms ORDER BY jid")
    else:
        rows = conn.execute(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE service = ? ORDER BY jid", (service,))
    return [stored_room(row) for row in rows]
