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
from xmlchat.storage import scram
from xmlchat.storage._group_commit import SWEEP_EVERY
from xmlchat.storage._offline import DUPLICATE, QUEUE_FULL
from xmlchat.storage._sql_store import SqlStore
from xmlchat.storage.base import DuplicateMessage, MessageOrigin, OfflineMessage, OfflineQueueFull, bare_key
from xmlchat.storage.postgres import archive as archive_queries
from xmlchat.storage.postgres import personal as personal_queries
from xmlchat.storage.postgres import queries as q
from xmlchat.storage.postgres.migrations import migrate

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Seconds to wait for the database at start, and for a free pooled connection.
CONNECT_TIMEOUT = 10.0


class PostgresStorage(SqlStore):
    """Open with ``await PostgresStorage.open(url)``; ``await close()`` when done.

    Implements :class:`xmlchat.storage.interfaces.Storage`; the contracts are
    documented there, the methods PostgreSQL shares with SQLite are in
    :class:`~xmlchat.storage._sql_store.SqlStore`. ``url`` is a libpq
    connection string; a schema other than ``public`` is chosen in it, e.g.
    ``?options=-csearch_path%3Dchat``.
    """

    accounts = rosters = q
    blocklists = archives = archive_queries
    rooms = personal = personal_queries

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[TupleRow]], scram_iterations: int
    ) -> None:
        super().__init__(scram_iterations)
        self._pool = pool
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

    # One pool serves reads and writes alike.
    _read = _run

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
        self._offline_writes.append(((bare_key(to), stanza, received.astimezone(UTC), limit, origin), waiter))
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
        return await self._run(q.fetch_offline, bare_key(to), after_id, limit)

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        await self._run(q.delete_offline, bare_key(to), up_to_id)

    async def delete_offline_ids(self, to: JID, ids: Sequence[int]) -> None:
        if ids:
            await self._run(q.delete_offline_ids, bare_key(to), list(ids))

    async def count_offline(self, to: JID | None = None) -> int:
        return await self._run(q.count_offline, None if to is None else bare_key(to))


def _where(url: str) -> str:
    """The URL without a password, for the log."""
    params = conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
