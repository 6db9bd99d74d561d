"""Documents (XEP-0049 private storage, the XEP-0054 vCard), PEP nodes
(XEP-0163) and persistent rooms (XEP-0045) for :class:`~xmlchat.storage.postgres.PostgresStorage`; like
:mod:`.queries`, one transaction per call, connection first."""

from __future__ import annotations

from datetime import UTC
from typing import Final

from psycopg.rows import TupleRow

from xmlchat.storage._sql_store import ROOM_COLUMNS, room_values, stored_room
from xmlchat.storage.base import StoredRoom
from xmlchat.storage.personal import PepItem, PepNode
from xmlchat.storage.postgres.queries import Conn, lock_user, scalar

_NODE_COLUMNS: Final = "node, access, max_items, persist"


async def get_document(conn: Conn, jid: str, key: str) -> bytes | None:
    data = await scalar(conn, "SELECT data FROM documents WHERE jid = %s AND key = %s", (jid, key))
    return data if data is None or isinstance(data, bytes) else bytes(memoryview(data))  # type: ignore[arg-type]


async def put_document(conn: Conn, jid: str, key: str, data: bytes | None) -> None:
    if data is None:
        await conn.execute("DELETE FROM documents WHERE jid = %s AND key = %s", (jid, key))
        return
    await conn.execute(
        "INSERT INTO documents (jid, key, data) VALUES (%s, %s, %s)"
        " ON CONFLICT (jid, key) DO UPDATE SET data = excluded.data",
        (jid, key, data),
    )


async def get_pep_node(conn: Conn, jid: str, node: str) -> PepNode | None:
    cur = await conn.execute(
        f"SELECT {_NODE_COLUMNS} FROM pep_nodes WHERE jid = %s AND node = %s".encode(), (jid, node)
    )
    row = await cur.fetchone()
    return None if row is None else _node(row)


async def list_pep_nodes(conn: Conn, jid: str) -> list[PepNode]:
    cur = await conn.execute(
        f'SELECT {_NODE_COLUMNS} FROM pep_nodes WHERE jid = %s ORDER BY node COLLATE "C"'.encode(), (jid,)
    )
    return [_node(row) for row in await cur.fetchall()]


async def put_pep_node(conn: Conn, jid: str, node: PepNode) -> None:
    await lock_user(conn, "pep", jid)
    await conn.execute(
        "INSERT INTO pep_nodes (jid, node, access, max_items, persist) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (jid, node) DO UPDATE SET access = excluded.access,"
        " max_items = excluded.max_items, persist = excluded.persist",
        (jid, node.name, node.access, node.max_items, node.persist),
    )
    await _trim(conn, jid, node.name, node.kept)


async def delete_pep_node(conn: Conn, jid: str, node: str) -> bool:
    await lock_user(conn, "pep", jid)
    cur = await conn.execute("DELETE FROM pep_nodes WHERE jid = %s AND node = %s", (jid, node))
    await conn.execute("DELETE FROM pep_items WHERE jid = %s AND node = %s", (jid, node))
    return cur.rowcount > 0


async def publish_pep_item(conn: Conn, jid: str, node: str, item: PepItem) -> None:
    # The lock keeps two publishes to one node (on two nodes of a cluster) from
    # trimming each other's item.
    await lock_user(conn, "pep", jid)
    config = await get_pep_node(conn, jid, node)
    if config is None:
        raise KeyError(node)
    # Delete then insert: a republished id becomes the newest (a new seq).
    await conn.execute(
        "DELETE FROM pep_items WHERE jid = %s AND node = %s AND item_id = %s", (jid, node, item.id)
    )
    await conn.execute(
        "INSERT INTO pep_items (jid, node, item_id, payload, published) VALUES (%s, %s, %s, %s, %s)",
        (jid, node, item.id, item.payload, item.published.astimezone(UTC)),
    )
    await _trim(conn, jid, node, config.kept)


async def get_pep_items(conn: Conn, jid: str, node: str, ids: list[str], limit: int | None) -> list[PepItem]:
    where = "jid = %s AND node = %s"
    args: list[object] = [jid, node]
    if ids:
        where += " AND item_id = ANY(%s)"
        args.append(ids)
    cur = await conn.execute(
        f"SELECT item_id, payload, published FROM pep_items WHERE {where}"
        " ORDER BY seq DESC LIMIT %s".encode(),
        (*args, limit),
    )
    return [PepItem(i, bytes(p), when.astimezone(UTC)) for i, p, when in await cur.fetchall()]


async def retract_pep_item(conn: Conn, jid: str, node: str, item_id: str) -> bool:
    cur = await conn.execute(
        "DELETE FROM pep_items WHERE jid = %s AND node = %s AND item_id = %s", (jid, node, item_id)
    )
    return cur.rowcount > 0


async def _trim(conn: Conn, jid: str, node: str, keep: int) -> None:
    await conn.execute(
        "DELETE FROM pep_items WHERE jid = %s AND node = %s AND seq NOT IN"
        " (SELECT seq FROM pep_items WHERE jid = %s AND node = %s ORDER BY seq DESC LIMIT %s)",
        (jid, node, jid, node, keep),
    )


def _node(row: TupleRow) -> PepNode:
    name, access, max_items, persist = row
    return PepNode(name, access, max_items, persist)


# -- persistent rooms (XEP-0045) ---------------------------------------------------


async def save_room(conn: Conn, room: StoredRoom) -> None:
    await conn.execute(
        "INSERT INTO rooms (jid, service, config, affiliations, subject, subject_by)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (jid) DO UPDATE SET service = excluded.service,"
        " config = excluded.config, affiliations = excluded.affiliations,"
        " subject = excluded.subject, subject_by = excluded.subject_by",
        room_values(room),
    )


async def delete_room(conn: Conn, jid: str) -> bool:
    cur = await conn.execute("DELETE FROM rooms WHERE jid = %s", (jid,))
    return cur.rowcount > 0


async def load_rooms(conn: Conn, service: str | None) -> list[StoredRoom]:
    select = f"SELECT {ROOM_COLUMNS} FROM rooms"
    if service is None:
        cur = await conn.execute(f'{select} ORDER BY jid COLLATE "C"'.encode())
    else:
        cur = await conn.execute(f'{select} WHERE service = %s ORDER BY jid COLLATE "C"'.encode(), (service,))
    return [stored_room(row) for row in await cur.fetchall()]
