"""The PostgreSQL store: what SQLite keeps, shared by every node of a cluster.

psycopg 3's async driver with a connection pool (``psycopg_pool``): each call
takes a connection, runs in one transaction, and gives it back. PBKDF2 for new
SCRAM keys runs in a thread, as with SQLite, so logins never stall the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, TypeVar

from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from xmlchat.jid import JID
from xmlchat.storage import _archive_sql as sql
from xmlchat.storage import scram
from xmlchat.storage._group_commit import SWEEP_EVERY
from xmlchat.storage._offline import DUPLICATE, QUEUE_FULL
from xmlchat.storage.base import (
    BLOCKLIST_LIMIT,
    SUBSCRIPTIONS,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    DuplicateMessage,
    MessageOrigin,
    OfflineMessage,
    OfflineQueueFull,
    PageRequest,
    RosterChange,
    RosterItem,
    ScramCredentials,
    StoredRoom,
    blocking_items,
    check_archive_prefs,
    check_room,
    require_user_address,
)
from xmlchat.storage.personal import PepItem, PepNode, check_pep_node
from xmlchat.storage.postgres import archive as aq
from xmlchat.storage.postgres import personal as pq
from xmlchat.storage.postgres import queries as q
from xmlchat.storage.postgres.migrations import migrate

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Seconds to wait for the database at start, and for a free pooled connection.
CONNECT_TIMEOUT = 10.0


class PostgresStorage:
    """Open with ``await PostgresStorage.open(url)``; ``await close()`` when done.

    Implements :class:`xmlchat.storage.interfaces.Storage`; the contracts are
    documented there. ``url`` is a libpq connection string; a schema other than
    ``public`` is chosen in it, e.g. ``?options=-csearch_path%3Dchat``.
    """

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[TupleRow]], scram_iterations: int
    ) -> None:
        self._pool = pool
        self._iterations = scram_iterations
        self._decoy = scram.make_decoy(scram_iterations)
        self._closed = False
        # Offline messages queued since the last commit started (group commit),
        # and the task committing them, one batch at a time so ids follow call order.
        self._offline_writes: list[tuple[q.OfflineWrite, asyncio.Future[int]]] = []
        self._swept = 0.0  # loop time of the last sweep of expired (sender, id) records
        self._offline_batches: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, url: str, scram_iterations: int = 4096, pool_size: int = 10) -> PostgresStorage:
        """Migrate the schema, then open a pool of up to ``pool_size`` connections."""
        scram.require_iterations(scram_iterations)
        conn = await AsyncConnection.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT))
        async with conn:
            version = await migrate(conn)
        pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=CONNECT_TIMEOUT
        )
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        log.info("storage: PostgreSQL %s (schema %d)", _where(url), version)
        return cls(pool, scram_iterations)

    async def close(self) -> None:
        if self._closed:
            return
        self._start_offline_batch()
        await asyncio.gather(*self._offline_batches, return_exceptions=True)
        self._closed = True
        await self._pool.close()

    async def _run(
        self, fn: Callable[Concatenate[q.Conn, P], Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._closed:
            raise RuntimeError("storage is closed")
        async with self._pool.connection() as conn:
            return await fn(conn, *args, **kwargs)

    # -- accounts -------------------------------------------------------------

    async def create_user(self, jid: JID, password: str) -> None:
        key = _user_key(jid)
        keys = await asyncio.to_thread(scram.derive_all, password, self._iterations)
        await self._run(q.create_user, key, jid.domain, keys)

    async def set_password(self, jid: JID, password: str) -> None:
        key = _user_key(jid)
        keys = await asyncio.to_thread(scram.derive_all, password, self._iterations)
        await self._run(q.set_scram, key, keys)

    async def delete_user(self, jid: JID) -> bool:
        return await self._run(q.delete_user, _key(jid))

    async def user_exists(self, jid: JID) -> bool:
        return await self._run(q.user_exists, _key(jid))

    async def list_users(self, host: str | None = None) -> list[JID]:
        return await self._run(q.list_users, host)

    async def count_users(self) -> int:
        return await self._run(q.count_users)

    async def get_scram(self, jid: JID, mechanism: str) -> ScramCredentials | None:
        return await self._run(q.get_scram, _key(jid), mechanism)

    async def check_password(self, jid: JID, password: str) -> bool:
        stored = await self.get_scram(jid, scram.CHECK_MECHANISM)
        return await asyncio.to_thread(scram.password_matches, password, stored, self._decoy)

    # -- offline messages (XEP-0160) -----------------------------------------

    async def store_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None = None,
    ) -> int:
        if received.tzinfo is None:
            raise ValueError("received must be timezone-aware")
        if self._closed:
            raise RuntimeError("storage is closed")
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._offline_writes.append(((_key(to), stanza, received.astimezone(UTC), limit, origin), waiter))
        if len(self._offline_writes) == 1:
            asyncio.get_running_loop().call_soon(self._start_offline_batch)
        message_id = await waiter
        if message_id == QUEUE_FULL:
            raise OfflineQueueFull(str(to.bare))
        if message_id == DUPLICATE:
            raise DuplicateMessage(origin)
        return message_id

    def _start_offline_batch(self) -> None:
        """Commit what this turn queued, unless a commit is running: that one
        takes what gathered meanwhile next (one transaction per commit time,
        not per turn: the storage/_group_commit.py rule)."""
        running = any(not task.done() for task in self._offline_batches)
        if self._offline_writes and not running:
            task = asyncio.create_task(self._commit_offline())
            self._offline_batches.add(task)
            task.add_done_callback(self._offline_batches.discard)

    async def _commit_offline(self) -> None:
        """Group commit: one transaction for everything queued, again until
        nothing is; each caller still waits for its commit before it acks,
        and ids follow call order (one batch at a time)."""
        while self._offline_writes:
            batch, self._offline_writes = self._offline_writes, []
            now = asyncio.get_running_loop().time()
            sweep = now - self._swept > SWEEP_EVERY and any(write[4] for write, _ in batch)
            if sweep:
                self._swept = now
            try:
                ids = await self._run(q.store_offline_batch, [write for write, _ in batch], sweep)
            except Exception as e:  # every waiter hears it; the task itself goes on
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(e)
                continue
            for (_, waiter), message_id in zip(batch, ids, strict=True):
                if not waiter.done():  # else the caller stopped waiting; the write stands
                    waiter.set_result(message_id)

    async def fetch_offline(
        self, to: JID, after_id: int = 0, limit: int | None = None
    ) -> list[OfflineMessage]:
        return await self._run(q.fetch_offline, _key(to), after_id, limit)

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        await self._run(q.delete_offline, _key(to), up_to_id)

    async def delete_offline_ids(self, to: JID, ids: Sequence[int]) -> None:
        if ids:
            await self._run(q.delete_offline_ids, _key(to), list(ids))

    async def count_offline(self, to: JID | None = None) -> int:
        return await self._run(q.count_offline, None if to is None else _key(to))

    # -- roster (RFC 6121 §2), versioned (§2.6) --------------------------------

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]:
        return await self._run(q.get_roster, _key(user))

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None:
        return await self._run(q.get_roster_item, _key(user), _key(contact))

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        if item.subscription not in SUBSCRIPTIONS:
            raise ValueError(f"invalid subscription {item.subscription!r}")
        return await self._run(q.put_roster_item, _key(user), item)

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        return await self._run(q.delete_roster_item, _key(user), _key(contact))

    async def apply_roster_changes(self, changes: Sequence[RosterChange]) -> dict[JID, int]:
        return await self._run(q.apply_roster_changes, list(changes))

    async def add_subscription_request(self, user: JID, contact: JID, stanza: bytes) -> None:
        await self._run(q.add_subscription_request, _key(user), _key(contact), stanza)

    async def get_subscription_requests(self, user: JID) -> list[tuple[JID, bytes]]:
        return await self._run(q.get_subscription_requests, _key(user))

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        await self._run(q.delete_subscription_request, _key(user), _key(contact))

    # -- blocklist (XEP-0191) ----------------------------------------------------

    async def get_blocklist(self, user: JID) -> list[JID]:
        return await self._run(aq.get_blocklist, _key(user))

    async def block(
        self, user: JID, jids: Sequence[JID], *, limit: int = BLOCKLIST_LIMIT
    ) -> list[JID]:
        added = await self._run(aq.block, _key(user), [str(j) for j in jids], limit)
        return [JID.parse(item) for item in added]

    async def unblock(self, user: JID, jids: Sequence[JID]) -> list[JID]:
        removed = await self._run(aq.unblock, _key(user), [str(j) for j in jids])
        return [JID.parse(item) for item in removed]

    async def unblock_all(self, user: JID) -> list[JID]:
        return await self._run(aq.unblock_all, _key(user))

    async def is_blocked(self, user: JID, contact: JID) -> bool:
        candidates = [str(item) for item in blocking_items(contact)]
        return await self._run(aq.is_blocked, _key(user), candidates)

    # -- message archive (XEP-0313) ----------------------------------------------

    async def archive_message(
        self, user: JID, with_: JID, stanza: bytes, stamp: datetime, *, outgoing: bool
    ) -> str:
        when = sql.micros(stamp)
        return await self._run(aq.archive_message, _key(user), _key(with_), stanza, when, outgoing)

    async def query_archive(self, user: JID, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
        if page.max < 0:
            raise ValueError("max must not be negative")
        return await self._run(aq.query_archive, _key(user), query, page)

    async def count_archive(self, user: JID, query: ArchiveQuery | None = None) -> int:
        return await self._run(aq.count_archive, _key(user), query or ArchiveQuery())

    async def expire_archive(self, older_than: datetime) -> int:
        return await self._run(aq.expire_archive, sql.micros(older_than))

    async def get_archive_prefs(self, user: JID) -> ArchivePrefs:
        return await self._run(aq.get_prefs, _key(user))

    async def set_archive_prefs(self, user: JID, prefs: ArchivePrefs) -> ArchivePrefs:
        stored = check_archive_prefs(prefs)
        await self._run(aq.set_prefs, _key(user), stored)
        return stored

    # -- persistent rooms (XEP-0045) -----------------------------------------------

    async def save_room(self, room: StoredRoom) -> None:
        await self._run(pq.save_room, check_room(room))

    async def delete_room(self, room: JID) -> bool:
        return await self._run(pq.delete_room, _key(room))

    async def load_rooms(self, service: str | None = None) -> list[StoredRoom]:
        return await self._run(pq.load_rooms, service)

    # -- documents (XEP-0049, XEP-0054) and PEP (XEP-0163) -------------------------

    async def get_document(self, user: JID, key: str) -> bytes | None:
        return await self._run(pq.get_document, _key(user), key)

    async def put_document(self, user: JID, key: str, data: bytes | None) -> None:
        await self._run(pq.put_document, _key(user), key, data)

    async def get_pep_node(self, user: JID, node: str) -> PepNode | None:
        return await self._run(pq.get_pep_node, _key(user), node)

    async def list_pep_nodes(self, user: JID) -> list[PepNode]:
        return await self._run(pq.list_pep_nodes, _key(user))

    async def put_pep_node(self, user: JID, node: PepNode) -> None:
        await self._run(pq.put_pep_node, _key(user), check_pep_node(node))

    async def delete_pep_node(self, user: JID, node: str) -> bool:
        return await self._run(pq.delete_pep_node, _key(user), node)

    async def publish_pep_item(self, user: JID, node: str, item: PepItem) -> None:
        await self._run(pq.publish_pep_item, _key(user), node, item)

    async def get_pep_items(
        self, user: JID, node: str, *, ids: Sequence[str] = (), limit: int | None = None
    ) -> list[PepItem]:
        return await self._run(pq.get_pep_items, _key(user), node, list(ids), limit)

    async def retract_pep_item(self, user: JID, node: str, item_id: str) -> bool:
        return await self._run(pq.retract_pep_item, _key(user), node, item_id)


def _key(jid: JID) -> str:
    return str(jid.bare)


def _user_key(jid: JID) -> str:
    return str(require_user_address(jid))


def _where(url: str) -> str:
    """The URL without a password, for the log."""
    params = conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
