"""Copy an SQLite store into an empty PostgreSQL one (``xmlchat migrate-storage``).

Rows are copied as they are, SCRAM keys included (passwords are never known),
offline and archive ids kept, so a client's archive paging and a pending
replay carry on across the move. Everything lands in one PostgreSQL
transaction: a failed copy leaves the target as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection

from xmlchat.storage._sql_store import USER_TABLES
from xmlchat.storage.postgres.migrations import migrate
from xmlchat.storage.sqlite import SqliteStorage


def _flag(value: int) -> bool:
    return bool(value)


def _groups(value: str) -> list[str]:
    return list(json.loads(value))


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    order: str  # SQLite's order, so PostgreSQL's identities follow it
    convert: dict[str, Callable[[Any], Any]]
    identity: str | None = None  # an identity column whose values are copied
    rows: str | None = None  # what to select instead of the table's rows (same columns)


TABLES: Final = (
    Table("users", ("jid", "host", "created"), "jid", {}),
    Table("scram", ("jid", "mechanism", "salt", "iterations", "stored_key", "server_key"), "jid", {}),
    Table("offline", ("id", "jid", "stanza", "received"), "id", {}, identity="id"),
    # So a client's re-send after the move is still recognised (docs/delivery.md).
    # SQLite's is a log (storage/_recent.py): a (sender, id) stored again past
    # its window has two rows there, one key in PostgreSQL, the newest time.
    Table(
        "recent_ids", ("sender", "id", "at"), "sender, id", {},
        rows="SELECT sender, id, max(at) FROM recent_ids GROUP BY sender, id",
    ),
    Table(
        "roster",
        ("jid", "contact", "name", "subscription", "ask", "approved", "groups"),
        "jid, contact",
        {"ask": _flag, "approved": _flag, "groups": _groups},
    ),
    Table("roster_version", ("jid", "version"), "jid", {}),
    # A new seq in rowid order keeps each user's requests in their order.
    Table("subscription_requests", ("jid", "contact", "stanza"), "rowid", {}),
    Table("blocklist", ("jid", "item"), "jid, item", {}),
    Table(
        "archive",
        ("seq", "id", "jid", "with_jid", "stamp", "outgoing", "stanza"),
        "seq",
        {"outgoing": _flag},
        identity="seq",
    ),
    Table("archive_prefs", ("jid", "fallback"), "jid", {}),
    Table("archive_rules", ("jid", "contact", "rule"), "jid, contact", {}),
    Table("documents", ("jid", "key", "data"), "jid, key", {}),
    Table("rooms", ("jid", "service", "config", "affiliations", "subject", "subject_by"), "jid", {}),
    Table("pep_nodes", ("jid", "node", "access", "max_items", "persist"), "jid, node", {"persist": _flag}),
    Table(
        "pep_items", ("seq", "jid", "node", "item_id", "payload", "published"), "seq", {}, identity="seq"
    ),
)


class TargetNotEmpty(RuntimeError):
    """The PostgreSQL database already holds xmlchat data; nothing was copied."""


async def copy_sqlite_to_postgres(sqlite_path: Path, url: str) -> dict[str, int]:
    """Rows copied per table. ``sqlite_path`` is first brought to the current
    schema; no server may be using it meanwhile."""
    if not sqlite_path.exists():
        raise FileNotFoundError(f"no SQLite store at {sqlite_path}")
    await (await SqliteStorage.open(sqlite_path)).close()  # migrate it to the schema copied here
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    counts: dict[str, int] = {}
    try:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            await migrate(conn)
            async with conn.transaction():
                await _require_empty(conn)
                for table in TABLES:
                    counts[table.name] = await _copy(source, conn, table)
    finally:
        source.close()
    return counts


async def _require_empty(conn: AsyncConnection[Any]) -> None:
    for name in ("users", *USER_TABLES):
        cur = await conn.execute(f"SELECT EXISTS (SELECT 1 FROM {name})".encode())
        row = await cur.fetchone()
        if row is not None and row[0]:
            raise TargetNotEmpty(f"the target already has rows in {name}")


async def _copy(source: sqlite3.Connection, conn: AsyncConnection[Any], table: Table) -> int:
    columns = ", ".join(table.columns)
    count = 0
    cur = conn.cursor()
    # COPY writes identity columns as given, as INSERT ... OVERRIDING SYSTEM VALUE would.
    async with cur.copy(f"COPY {table.name} ({columns}) FROM STDIN".encode()) as copy:
        for row in _rows(source, table):
            await copy.write_row(row)
            count += 1
    if table.identity is not None:
        # The next id PostgreSQL hands out follows every id SQLite ever gave,
        # deleted ones included (AUTOINCREMENT's high-water mark): ids are never reused.
        row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)).fetchone()
        if row is not None and row[0] > 0:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{table.identity}'), %s)".encode(),
                (row[0],),
            )
    return count


def _rows(source: sqlite3.Connection, table: Table) -> Iterator[tuple[Any, ...]]:
    select = table.rows or f"SELECT {', '.join(table.columns)} FROM {table.name}"
    query = f"{select} ORDER BY {table.order}"
    converters = [table.convert.get(column) for column in table.columns]
    for row in source.execute(query):
        yield tuple(value if fn is None else fn(value) for fn, value in zip(converters, row, strict=True))
