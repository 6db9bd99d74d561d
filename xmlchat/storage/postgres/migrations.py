"""PostgreSQL schema migrations, counted in a small table of applied versions.

Append new scripts to :data:`MIGRATIONS`; never edit one that has shipped.
Several nodes may start at once against one database: the first takes a
transaction-scoped advisory lock and migrates, the others wait on the lock and
then find nothing left to do. Each script commits together with its row in
``xmlchat_migrations``, so a failed step leaves the previous version.
"""

from __future__ import annotations

from typing import Final

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from xmlchat.storage.migrations import SchemaTooNew

# Any constant unlikely to be used by another application sharing the database.
MIGRATION_LOCK: Final = 0x786D6C63  # "xmlc"

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: what SQLite's migrations 1-3 hold: accounts, SCRAM keys, offline
    # messages, rosters, subscription requests, blocklists, archives.
    """
    CREATE TABLE users (
        jid     TEXT PRIMARY KEY,           -- bare JID, str() form
        host    TEXT NOT NULL,              -- its domainpart, for list_users(host)
        created TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX users_host ON users (host);

    CREATE TABLE scram (
        jid        TEXT NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
        mechanism  TEXT NOT NULL,
        salt       BYTEA NOT NULL,
        iterations INTEGER NOT NULL,
        stored_key BYTEA NOT NULL,
        server_key BYTEA NOT NULL,
        PRIMARY KEY (jid, mechanism)
    );

    -- An identity never hands out an id twice, so delete_offline(up_to_id)
    -- cannot remove a message stored after the fetch it answers.
    CREATE TABLE offline (
        id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        jid      TEXT NOT NULL,             -- recipient bare JID
        stanza   BYTEA NOT NULL,
        received TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX offline_jid ON offline (jid, id);

    CREATE TABLE roster (
        jid          TEXT NOT NULL,
        contact      TEXT NOT NULL,
        name         TEXT,
        subscription TEXT NOT NULL DEFAULT 'none'
                     CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask          BOOLEAN NOT NULL DEFAULT false,
        approved     BOOLEAN NOT NULL DEFAULT false,
        groups       TEXT[] NOT NULL DEFAULT '{}',
        PRIMARY KEY (jid, contact)
    );

    -- RFC 6121 §2.6: one version per roster, bumped on every change.
    CREATE TABLE roster_version (
        jid     TEXT PRIMARY KEY,
        version BIGINT NOT NULL
    );

    -- seq keeps a request's place when it is repeated.
    CREATE TABLE subscription_requests (
        seq     BIGINT GENERATED ALWAYS AS IDENTITY,
        jid     TEXT NOT NULL,
        contact TEXT NOT NULL,
        stanza  BYTEA NOT NULL,
        PRIMARY KEY (jid, contact)
    );

    CREATE TABLE blocklist (
        jid  TEXT NOT NULL,
        item TEXT NOT NULL,                 -- blocked JID as given: bare, full or domain
        PRIMARY KEY (jid, item)
    );

    CREATE TABLE archive (
        seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id       TEXT NOT NULL UNIQUE,      -- archive id = XEP-0359 stanza-id
        jid      TEXT NOT NULL,
        with_jid TEXT NOT NULL,
        stamp    BIGINT NOT NULL,           -- microseconds since the epoch, UTC
        outgoing BOOLEAN NOT NULL,
        stanza   BYTEA NOT NULL
    );
    CREATE INDEX archive_jid ON archive (jid, seq);
    CREATE INDEX archive_with ON archive (jid, with_jid, seq);
    CREATE INDEX archive_stamp ON archive (stamp);

    CREATE TABLE archive_prefs (
        jid      TEXT PRIMARY KEY,
        fallback TEXT NOT NULL CHECK (fallback IN ('always', 'never', 'roster'))
    );

    CREATE TABLE archive_rules (
        jid     TEXT NOT NULL,
        contact TEXT NOT NULL,
        rule    TEXT NOT NULL CHECK (rule IN ('always', 'never')),
        PRIMARY KEY (jid, contact)
    );
    """,
    # 2: per-account XML documents (XEP-0049, XEP-0054) and PEP nodes (XEP-0163).
    """
    CREATE TABLE documents (
        jid  TEXT NOT NULL,
        key  TEXT NOT NULL,                 -- 'vcard', 'private:<namespace>'
        data BYTEA NOT NULL,
        PRIMARY KEY (jid, key)
    );

    CREATE TABLE pep_nodes (
        jid       TEXT NOT NULL,
        node      TEXT NOT NULL,
        access    TEXT NOT NULL CHECK (access IN ('presence', 'open', 'whitelist')),
        max_items INTEGER NOT NULL CHECK (max_items >= 1),
        persist   BOOLEAN NOT NULL,
        PRIMARY KEY (jid, node)
    );

    -- seq orders a node's items: the newest has the largest.
    CREATE TABLE pep_items (
        seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        jid       TEXT NOT NULL,
        node      TEXT NOT NULL,
        item_id   TEXT NOT NULL,
        payload   BYTEA NOT NULL,
        published TIMESTAMPTZ NOT NULL,
        UNIQUE (jid, node, item_id)
    );
    CREATE INDEX pep_items_node ON pep_items (jid, node, seq);
    """,
    # 3: the (sender, id) of recent messages, to store a client's re-send once
    # (SQLite's migration 5).
    """
    CREATE TABLE recent_ids (
        sender TEXT NOT NULL,               -- who sent it (docs/delivery.md, "Re-sends")
        id     TEXT NOT NULL,               -- the sender's message id
        at     DOUBLE PRECISION NOT NULL,   -- when it was first stored, seconds since the epoch
        PRIMARY KEY (sender, id)
    );
    CREATE INDEX recent_ids_at ON recent_ids (at);
    """,
    # 4: persistent XEP-0045 rooms, occupants never stored (SQLite's migration 6).
    """
    CREATE TABLE rooms (
        jid          TEXT PRIMARY KEY,      -- room bare JID
        service      TEXT NOT NULL,         -- its domainpart, for load_rooms(service)
        config       TEXT NOT NULL,         -- JSON object: muc#roomconfig field -> value
        affiliations TEXT NOT NULL,         -- JSON object: bare JID -> affiliation
        subject      TEXT NOT NULL,
        subject_by   TEXT NOT NULL          -- the nickname that set it
    );
    CREATE INDEX rooms_service ON rooms (service);
    """,
)


async def schema_version(conn: AsyncConnection[TupleRow]) -> int:
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM xmlchat_migrations")
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def migrate(conn: AsyncConnection[TupleRow]) -> int:
    """Apply every pending script in order; returns the resulting version.
    ``conn`` must be in autocommit mode; each script is its own transaction."""
    while True:
        async with conn.transaction():
            # The lock first: CREATE TABLE IF NOT EXISTS is not safe against a
            # concurrent one (both may find no table, and one fails).
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS xmlchat_migrations"
                " (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = await schema_version(conn)
            if current > len(MIGRATIONS):
                raise SchemaTooNew(f"database schema {current} is newer than {len(MIGRATIONS)}")
            if current == len(MIGRATIONS):
                return current
            await conn.execute(MIGRATIONS[current].encode())
            await conn.execute("INSERT INTO xmlchat_migrations (version) VALUES (%s)", (current + 1,))
