"""Document and PEP database work (XEP-0049, XEP-0054, XEP-0163) for
:class:`~xmlchat.storage.sqlite.SqliteStorage`.

Like :mod:`xmlchat.storage._queries`: connection first, storage worker thread
only, one transaction per public operation; ``jid`` is the owner's bare JID.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from xmlchat.storage._queries import transaction
from xmlchat.storage.personal import PepItem, PepNode

_NODE_COLUMNS = "node, access, max_items, persist"


def get_document(conn: sqlite3.Connection, jid: str, key: str) -> bytes | None:
    row = conn.execute("SELECT data FROM documents WHERE jid = ? AND key = ?", (jid, key)).fetchone()
    return None if row is None else bytes(row[0])


def put_document(conn: sqlite3.Connection, jid: str, key: str, data: bytes | None) -> None:
    with transaction(conn):
        if data is None:
            conn.execute("DELETE FROM documents WHERE jid = ? AND key = ?", (jid, key))
        else:
            conn.execute(
                "INSERT INTO documents (jid, key, data) VALUES (?, ?, ?)"
                " ON CONFLICT (jid, key) DO UPDATE SET data = excluded.data",
                (jid, key, data),
            )


def get_pep_node(conn: sqlite3.Connection, jid: str, node: str) -> PepNode | None:
    row = conn.execute(
        f"SELECT {_NODE_COLUMNS} FROM pep_nodes WHERE jid = ? AND node = ?", (jid, node)
    ).fetchone()
    return None if row is None else _node(row)


def list_pep_nodes(conn: sqlite3.Connection, jid: str) -> list[PepNode]:
    rows = conn.execute(f"SELECT {_NODE_COLUMNS} FROM pep_nodes WHERE jid = ? ORDER BY node", (jid,))
    return [_node(row) for row in rows]


def put_pep_node(conn: sqlite3.Connection, jid: str, node: PepNode) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO pep_nodes (jid, node, access, max_items, persist) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (jid, node) DO UPDATE SET access = excluded.access,"
            " max_items = excluded.max_items, persist = excluded.persist",
            (jid, node.name, node.access, node.max_items, int(node.persist)),
        )
        _trim(conn, jid, node.name, node.kept)


def delete_pep_node(conn: sqlite3.Connection, jid: str, node: str) -> bool:
    with transaction(conn):
        existed = conn.execute("DELETE FROM pep_nodes WHERE jid = ? AND node = ?", (jid, node)).rowcount > 0
        conn.execute("DELETE FROM pep_items WHERE jid = ? AND node = ?", (jid, node))
    return existed


def publish_pep_item(conn: sqlite3.Connection, jid: str, node: str, item: PepItem) -> None:
    with transaction(conn):
        config = get_pep_node(conn, jid, node)
        if config is None:
            raise KeyError(node)
        # Delete then insert: a republished id becomes the newest (a new seq).
        conn.execute("DELETE FROM pep_items WHERE jid = ? AND node = ? AND item_id = ?", (jid, node, item.id))
        conn.execute(
            "INSERT INTO pep_items (jid, node, item_id, payload, published) VALUES (?, ?, ?, ?, ?)",
            (jid, node, item.id, item.payload, item.published.astimezone(UTC).isoformat()),
        )
        _trim(conn, jid, node, config.kept)


def get_pep_items(
    conn: sqlite3.Connection, jid: str, node: str, ids: list[str], limit: int | None
) -> list[PepItem]:
    where = "jid = ? AND node = ?"
    args: list[object] = [jid, node]
    if ids:
        where += f" AND item_id IN ({', '.join('?' * len(ids))})"
        args += ids
    rows = conn.execute(
        f"SELECT item_id, payload, published FROM pep_items WHERE {where} ORDER BY seq DESC LIMIT ?",
        (*args, -1 if limit is None else limit),  # LIMIT -1: SQLite's "no limit"
    )
    return [PepItem(item_id, bytes(payload), datetime.fromisoformat(when)) for item_id, payload, when in rows]


def retract_pep_item(conn: sqlite3.Connection, jid: str, node: str, item_id: str) -> bool:
    with transaction(conn):
        cur = conn.execute(
            "DELETE FROM pep_items WHERE jid = ? AND node = ? AND item_id = ?", (jid, node, item_id)
        )
    return cur.rowcount > 0


def _trim(conn: sqlite3.Connection, jid: str, node: str, keep: int) -> None:
    conn.execute(
        "DELETE FROM pep_items WHERE jid = ? AND node = ? AND seq NOT IN"
        " (SELECT seq FROM pep_items WHERE jid = ? AND node = ? ORDER BY seq DESC LIMIT ?)",
        (jid, node, jid, node, keep),
    )


def _node(row: tuple[str, str, int, int]) -> PepNode:
    name, access, max_items, persist = row
    return PepNode(name, access, max_items, bool(persist))  # type: ignore[arg-type]
