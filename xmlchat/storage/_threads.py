"""The SQLite store's two threads: the writer and a reader, each with its own connection.

SQLite in WAL mode lets one connection read beside the one that writes. Every
write, and the group commit of offline messages (_group_commit.py), runs on
the writer thread in the order submitted; the other reads run on the reader
thread. So a message's commit, which its sender's ack waits for, never queues
behind reads: a login leaves several (roster, blocklist, vCard, subscription
requests), and after a storm of logins thousands of them used to stand
ahead of the first commits (docs/performance/analysis.md).

What a read sees: it first waits for the last write submitted before it
through :meth:`StoreThreads.write` (the writer runs them in order, so for all
of them), so it never sees an older state than the single writer thread gave
it; like any concurrent caller, it may see a write submitted after it. The
group commit submits its batches to the writer's executor itself, so reads
do not wait for those: the tables they write (offline messages, re-send
records) are read on the writer only (see SqliteStorage.fetch_offline),
where the group commit's pending writes and deletes are flushed first and
the inbox relies on their place in the writer's order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from xmlchat.storage import _queries as q

P = ParamSpec("P")
T = TypeVar("T")

Job = Callable[Concatenate[sqlite3.Connection, P], T]


class StoreThreads:
    def __init__(
        self,
        writer: ThreadPoolExecutor,
        conn: sqlite3.Connection,
        reader: ThreadPoolExecutor,
        read_conn: sqlite3.Connection,
    ) -> None:
        self.writer, self.conn = writer, conn
        self._reader, self._read_conn = reader, read_conn
        self._tail: asyncio.Future[Any] | None = None  # the last write submitted

    @classmethod
    async def open(cls, path: Path, synchronous: str) -> StoreThreads:
        """Open and migrate the database on the writer, then open the reader."""
        loop = asyncio.get_running_loop()
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xmlchat-sqlite")
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xmlchat-sqlite-read")
        try:
            conn = await loop.run_in_executor(writer, q.connect, path, synchronous)
            try:
                read_conn = await loop.run_in_executor(reader, q.connect_reader, path)
            except BaseException:
                await loop.run_in_executor(writer, conn.close)
                raise
        except BaseException:
            writer.shutdown(wait=False)
            reader.shutdown(wait=False)
            raise
        return cls(writer, conn, reader, read_conn)

    def write(self, fn: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Run ``fn`` on the writer thread, after every job submitted before it."""
        job = asyncio.get_running_loop().run_in_executor(self.writer, partial(fn, self.conn, *args, **kwargs))
        self._tail = job
        return job

    async def read(self, fn: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the reader thread once the writes submitted before it are done."""
        tail = self._tail
        if tail is not None and not tail.done():
            await asyncio.wait((tail,))  # its outcome is its caller's, not this read's
        call = partial(fn, self._read_conn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._reader, call)

    async def close(self) -> None:
        """Close the reader, then the writer (the last connection checkpoints the WAL)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._reader, self._read_conn.close)
            await loop.run_in_executor(self.writer, q.close, self.conn)
        finally:
            self._reader.shutdown(wait=True)
            self.writer.shutdown(wait=True)
