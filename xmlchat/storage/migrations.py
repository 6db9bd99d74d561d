"""Schema migrations: ``PRAGMA user_version`` counts the scripts already applied.

Append new scripts to :data:`MIGRATIONS`; never edit one that has shipped.
Each runs in its own transaction together with the ``user_version`` bump
(the header field is transactional in SQLite), so a failed step leaves the
database at the previous version.
"""

from __future__ import annotations

import sqlite3
from typing import Final

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: accounts, SCRAM keys, offline messages, rosters, pending subscription requests.
    """
    CREATE TABLE users (
        jid     TEXT PRIMARY KEY,           -- bare JID, str() form
        host    TEXT NOT NULL,              -- its domainpart, for list_users(host)
        created TEXT NOT NULL               -- ISO 8601, UTC
    ) WITHOUT ROWID;
    CREATE INDEX users_host ON users (host);

    CREATE TABLE scram (
        jid        TEXT NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
        mechanism  TEXT NOT NULL,           -- 'SCRAM-SHA-1' | 'SCRAM-SHA-256'
        salt       BLOB NOT NULL,
        iterations INTEGER NOT NULL,
        stored_key BLOB NOT NULL,
        server_key BLOB NOT NULL,
        PRIMARY KEY (jid, mechanism)
    ) WITHOUT ROWID;

    -- AUTOINCREMENT: ids never come back, so delete_offline(up_to_id) cannot
    -- remove a message stored after the fetch it answers.
    CREATE TABLE offline (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        jid      TEXT NOT NULL,             -- recipient bare JID
        stanza   BLOB NOT NULL,
        received TEXT NOT NULL              -- ISO 8601, UTC
    );
    CREATE INDEX offline_jid ON offline (jid, id);

    CREATE TABLE roster (
        jid          TEXT NOT NULL,         -- owner bare JID
        contact      TEXT NOT NULL,         -- contact bare JID
        name         TEXT,
        subscription TEXT NOT NULL DEFAULT 'none'
                     CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask          INTEGER NOT NULL DEFAULT 0,
        approved     INTEGER NOT NULL DEFAULT 0,
        groups       TEXT NOT NULL DEFAULT '[]',   -- JSON array of group names
        PRIMARY KEY (jid, contact)
    ) WITHOUT ROWID;

    -- RFC 6121 §2.6: one version per roster, bumped on every change.
    CREATE TABLE roster_version (
        jid     TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE subscription_requests (
        jid     TEXT NOT NULL,              -- the local user asked
        contact TEXT NOT NULL,              -- who asked
        stanza  BLOB NOT NULL,
        UNIQUE (jid, contact)
    );
    """,
    # 2: blocklists (XEP-0191).
    """
    CREATE TABLE blocklist (
        jid     TEXT NOT NULL,              -- owner bare JID
        item    TEXT NOT NULL,              -- blocked JID as given: bare, full or domain
        PRIMARY KEY (jid, item)
    ) WITHOUT ROWID;
    """,
    # 3: message archives (XEP-0313) and archiving preferences.
    """
    -- seq is archive order; AUTOINCREMENT so an expired row's seq never returns
    -- and a client's after-id paging cannot skip or repeat a message.
    CREATE TABLE archive (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        id       TEXT NOT NULL UNIQUE,      -- archive id = XEP-0359 stanza-id
        jid      TEXT NOT NULL,             -- owner bare JID
        with_jid TEXT NOT NULL,             -- the other party, bare
        stamp    INTEGER NOT NULL,          -- microseconds since the epoch, UTC
        outgoing INTEGER NOT NULL,          -- 1: the owner sent it
        stanza   BLOB NOT NULL
    );
    -- A page: the owner's messages in archive order, with one contact or all.
    CREATE INDEX archive_jid ON archive (jid, seq);
    CREATE INDEX archive_with ON archive (jid, with_jid, seq);
    -- Retention: every user's oldest messages.
    CREATE INDEX archive_stamp ON archive (stamp);

    CREATE TABLE archive_prefs (
        jid      TEXT PRIMARY KEY,          -- owner bare JID
        fallback TEXT NOT NULL CHECK (fallback IN ('always', 'never', 'roster'))
    ) WITHOUT ROWID;

    CREATE TABLE archive_rules (
        jid     TEXT NOT NULL,              -- owner bare JID
        contact TEXT NOT NULL,              -- bare JID
        rule    TEXT NOT NULL CHECK (rule IN ('always', 'never')),
        PRIMARY KEY (jid, contact)
    ) WITHOUT ROWID;
    """,
    # 4: per-account XML documents (XEP-0049, XEP-0054) and PEP nodes (XEP-0163).
    """
    CREATE TABLE documents (
        jid     TEXT NOT NULL,              -- owner bare JID
        key     TEXT NOT NULL,              -- 'vcard', 'private:<namespace>'
        data    BLOB NOT NULL,
        PRIMARY KEY (jid, key)
    ) WITHOUT ROWID;

    CREATE TABLE pep_nodes (
        jid       TEXT NOT NULL,            -- owner bare JID
        node      TEXT NOT NULL,
        access    TEXT NOT NULL CHECK (access IN ('presence', 'open', 'whitelist')),
        max_items INTEGER NOT NULL CHECK (max_items >= 1),
        persist   INTEGER NOT NULL,
        PRIMARY KEY (jid, node)
    ) WITHOUT ROWID;

    -- seq orders a node's items: the newest has the largest.
    CREATE TABLE pep_items (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        jid       TEXT NOT NULL,
        node      TEXT NOT NULL,
        item_id   TEXT NOT NULL,
        payload   BLOB NOT NULL,
        published TEXT NOT NULL,            -- ISO 8601, UTC
        UNIQUE (jid, node, item_id)
    );
    CREATE INDEX pep_items_node ON pep_items (jid, node, seq);
    """,
    # 5: the (sender, id) of recent messages, to store a client's re-send once.
    """
    CREATE TABLE recent_ids (
        sender TEXT NOT NULL,               -- who sent it (docs/delivery.md, "Re-sends")
        id     TEXT NOT NULL,               -- the sender's message id
        at     REAL NOT NULL,               -- when it was first stored, seconds since the epoch
        PRIMARY KEY (sender, id)
    ) WITHOUT ROWID;
    CREATE INDEX recent_ids_at ON recent_ids (at);
    """,
    # 6: persistent XEP-0045 rooms (occupants are never stored).
    """
    CREATE TABLE rooms (
        jid          TEXT PRIMARY KEY,      -- room bare JID
        service      TEXT NOT NULL,         -- its domainpart, for load_rooms(service)
        config       TEXT NOT NULL,         -- JSON object: muc#roomconfig field -> value
        affiliations TEXT NOT NULL,         -- JSON object: bare JID -> affiliation
        subject      TEXT NOT NULL,
        subject_by   TEXT NOT NULL          -- the nickname that set it
    ) WITHOUT ROWID;
    CREATE INDEX rooms_service ON rooms (service);
    """,
    # 7: the (sender, id) records as a log, appended in rowid order with no key
    # or index; the lookup is in memory (storage/_recent.py says why).
    """
    CREATE TABLE recent_log (
        sender TEXT NOT NULL,               -- who sent it (docs/delivery.md, "Re-sends")
        id     TEXT NOT NULL,               -- the sender's message id
        at     REAL NOT NULL                -- when it was stored, seconds since the epoch
    );
    INSERT INTO recent_log (sender, id, at) SELECT sender, id, at FROM recent_ids ORDER BY at;
    DROP TABLE recent_ids;
    ALTER TABLE recent_log RENAME TO recent_ids;
    """,
)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer xmlchat than this one."""


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every pending script in order; returns the resulting version.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise SchemaTooNew(f"database schema {current} is newer than {len(MIGRATIONS)}")
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        _apply(conn, script, version)
    return schema_version(conn)


def _apply(conn: sqlite3.Connection, script: str, version: int) -> None:
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
