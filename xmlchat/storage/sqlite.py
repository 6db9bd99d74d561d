"""The SQLite store: accounts, offline messages (XEP-0160), rosters (RFC 6121), rooms (XEP-0045).

Database work runs on two dedicated threads, each owning its connection
(_threads.py): every write on the writer, in order, each call one
transaction; reads on a reader beside it, so commits never queue behind
them. The event loop never blocks on disk. PBKDF2 for new SCRAM keys is CPU
work, not database work: it runs in the loop's default executor so a burst
of logins does not queue reads.

A cancelled call still finishes on its thread (a started transaction
commits); only the awaiting coroutine stops waiting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from xmlchat.jid import JID
from xmlchat.storage import _archive, _blocklist, _personal, _queries, _rooms, scram
from xmlchat.storage import _offline as oq
from xmlchat.storage._group_commit import GroupCommit
from xmlchat.storage._sql_store import SqlStore
from xmlchat.storage._threads import StoreThreads
from xmlchat.storage.base import (
    MessageOrigin,
    NoSuchUser,
    OfflineMessage,
    OfflineQueueFull,
    RosterItem,
    ScramCredentials,
    UserExists,
    bare_key,
)

__all__ = [
    "NoSuchUser",
    "OfflineMessage",
    "OfflineQueueFull",
    "RosterItem",
    "ScramCredentials",
    "SqliteStorage",
    "UserExists",
]

P = ParamSpec("P")
T = TypeVar("T")


class SqliteStorage(SqlStore):
    """Open with ``await SqliteStorage.open(path)``; ``await close()`` when done.

    Implements :class:`xmlchat.storage.interfaces.Storage`; the contracts are
    documented there, the methods SQLite shares with PostgreSQL are in
    :class:`~xmlchat.storage._sql_store.SqlStore`.
    """

    accounts = rosters = _queries
    blocklists = _blocklist
    archives = _archive
    rooms = _rooms
    personal = _personal

    def __init__(self, threads: StoreThreads, scram_iterations: int) -> None:
        super().__init__(scram_iterations)
        self._threads = threads
        # Offline writes and deletes queued in this turn of the event loop (group commit).
        self._offline = GroupCommit(threads.writer, threads.conn)

    @classmethod
    async def open(
        cls, path: Path, scram_iterations: int = 4096, synchronous: str = "normal"
    ) -> SqliteStorage:
        """Open (creating the file and its parent directory) and migrate the database.
        ``synchronous``: "normal" survives a killed process, "full" a power cut too."""
        scram.require_iterations(scram_iterations)
        return cls(await StoreThreads.open(Path(path), synchronous), scram_iterations)

    async def close(self) -> None:
        """Close the connections (checkpointing the WAL) and stop their threads."""
        if self._closed:
            return
        self._offline.flush()  # before the connection closes behind it
        try:
            await self._threads.close()
        finally:
            self._closed = True

    async def _run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A write (or a read that must keep its place among the writes), on the writer."""
        if self._closed:
            raise RuntimeError("storage is closed")
        return await self._threads.write(fn, *args, **kwargs)

    async def _read(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A read, on the reader: it sees every write submitted before it."""
        if self._closed:
            raise RuntimeError("storage is closed")
        return await self._threads.read(fn, *args, **kwargs)

    # -- offline messages (XEP-0160) -----------------------------------------

    async def store_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None = None,
    ) -> int:
        """Queue ``stanza``; returns its id. Raises :class:`OfflineQueueFull`, or
        :class:`DuplicateMessage` for a re-send of ``origin`` within its window."""
        return await self._offline.write(self._write(to, stanza, received, limit, origin))

    def queue_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None,
        done: Callable[[int, BaseException | None], None],
    ) -> None:
        """:meth:`store_offline` without waiting: the write joins this turn's
        commit at once; ``done`` gets its id once committed, or the exception
        (:class:`~.interfaces.QueuedOfflineStore`)."""
        self._offline.enqueue(self._write(to, stanza, received, limit, origin), done)

    def _write(
        self, to: JID, stanza: bytes, received: datetime, limit: int, origin: MessageOrigin | None
    ) -> oq.OfflineWrite:
        if received.tzinfo is None:
            raise ValueError("received must be timezone-aware")
        if self._closed:
            raise RuntimeError("storage is closed")
        if received.tzinfo is not UTC:
            received = received.astimezone(UTC)
        return oq.OfflineWrite(str(to.bare), stanza, received.isoformat(), limit, origin)

    async def delete_offline_ids(self, to: JID, ids: Sequence[int]) -> None:
        """Delete these of ``to``'s messages (the client acknowledged them); the
        delete shares the next commit of writes (see _group_commit.py)."""
        if self._closed:
            raise RuntimeError("storage is closed")
        if ids:
            await self._offline.delete((bare_key(to), list(ids)))

    async def fetch_offline(
        self, to: JID, after_id: int = 0, limit: int | None = None
    ) -> list[OfflineMessage]:
        """Oldest first, ids > ``after_id``, at most ``limit``; nothing is deleted.
        On the writer, not the reader: it must see the writes and deletes
        queued before it, and a batch that commits after it must settle after
        it (the inbox leaves a message stored while its session replays,
        trusting the replay's next read to find it)."""
        with self._offline.read_in_order():  # a delete queued before this read goes before it
            return await self._run(oq.fetch_offline, bare_key(to), after_id, -1 if limit is None else limit)

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        """Delete ``to``'s messages with ids <= ``up_to_id``, once they are delivered."""
        self._offline.flush()
        await self._run(oq.delete_offline, bare_key(to), up_to_id)

    async def count_offline(self, to: JID | None = None) -> int:
        """Messages waiting for ``to``, or for everyone when None."""
        self._offline.flush()
        return await self._run(oq.count_offline, None if to is None else bare_key(to))
