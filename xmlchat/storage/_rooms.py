"""Room database work (XEP-0045 persistent rooms) for :class:`~xmlchat.storage.sqlite.SqliteStorage`.

Like :mod:`xmlchat.storage._queries`: connection first, storage worker thread
only, one transaction per public operation. A room is one row; its
configuration and affiliations are JSON objects (read and written whole).
"""

from __future__ import annotations

import json
import sqlite3

from xmlchat.jid import JID
from xmlchat.storage._queries import transaction
from xmlchat.storage.base import StoredRoom


def save_room(conn: sqlite3.Connection, room: StoredRoom) -> None:
    affiliations = {str(jid): affiliation for jid, affiliation in room.affiliations.items()}
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO rooms (jid, service, config, affiliations, subject, subject_by)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(room.jid),
                room.jid.domain,
                json.dumps(dict(room.config), sort_keys=True),
                json.dumps(affiliations, sort_keys=True),
                room.subject,
                room.subject_by,
            ),
        )


def delete_room(conn: sqlite3.Connection, jid: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM rooms WHERE jid = ?", (jid,)).rowcount > 0


def load_rooms(conn: sqlite3.Connection, service: str | None) -> list[StoredRoom]:
    columns = "jid, config, affiliations, subject, subject_by"
    if service is None:
        rows = conn.execute(f"SELECT {columns} FROM rooms ORDER BY jid")
    else:
        rows = conn.execute(f"SELECT {columns} FROM rooms WHERE service = ? ORDER BY jid", (service,))
    return [
        StoredRoom(
            JID.parse(jid),
            json.loads(config),
            {JID.parse(k): v for k, v in json.loads(affiliations).items()},
            subject,
            subject_by,
        )
        for jid, config, affiliations, subject, subject_by in rows
    ]
