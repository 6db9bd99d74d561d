"""Group commit for :class:`~xmlchat.storage.sqlite.SqliteStorage`'s offline queue.

Every message is stored before its sender's ack (docs/delivery.md), so the
writes of one turn of the event loop share one transaction on the store's
worker thread, each caller waiting for the commit that holds its own write.
While a transaction is on the worker thread, the writes of the turns that
follow gather into the next one, sent when it settles: one transaction per
commit time, not per turn (a quiet server's turns are short and a
transaction's fixed cost, BEGIN, COMMIT and the WAL pages it writes, would
otherwise be paid for each one or two messages).
Deletes (what clients acknowledged) wait on nobody's critical path: they join
the next batch of writes, or go alone after :data:`DELETE_DELAY`. A read must
not see what was deleted before it, so it calls :meth:`GroupCommit.flush`
first (one worker thread: jobs run in the order queued).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Final, TypeVar

from xmlchat.storage import _offline as oq
from xmlchat.storage._recent import RecentIds
from xmlchat.storage.base import DuplicateMessage, OfflineQueueFull

# Seconds a delete waits for writes to share their transaction.
DELETE_DELAY: Final = 0.005
# Seconds between two sweeps of expired (sender, id) records (a walk of what
# expired, in memory and in the log), rather than a little at every commit.
SWEEP_EVERY: Final = 60.0

T = TypeVar("T")
Delete = tuple[str, list[int]]  # (jid key, ids)
# Told a write's outcome once its commit is done: (its id, None) or (0, why not).
Written = Callable[[int, BaseException | None], None]


class GroupCommit:
    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self._executor, self._conn = executor, conn
        self._writes: list[tuple[oq.OfflineWrite, Written]] = []
        self._deletes: list[tuple[Delete, asyncio.Future[int]]] = []
        self._soon = False  # a commit is scheduled for the end of this turn
        self._committing = 0  # transactions of this queue on the worker thread
        self._later: asyncio.TimerHandle | None = None  # one for deletes alone
        self._swept = float("-inf")  # when expired (sender, id) records were last forgotten
        self._recent = RecentIds()  # used on the worker thread only

    async def write(self, write: oq.OfflineWrite) -> int:
        """The write's id; raises :class:`OfflineQueueFull` or :class:`DuplicateMessage`."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.enqueue(write, partial(_resolve, waiter))
        return await waiter

    def enqueue(self, write: oq.OfflineWrite, done: Written) -> None:
        """Queue ``write`` for this turn's commit without waiting; ``done`` is
        called with its outcome once committed (no future, no extra callback
        per message: a burst is the hot path). The calls of one store come in
        the order of the writes (one worker thread, one ``settle`` per
        commit, in order), which a caller may rely on."""
        self._writes.append((write, done))
        if not self._soon:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._turn_ended)

    def _turn_ended(self) -> None:
        self._soon = False
        if not self._committing:
            self.flush()
        # else: the running transaction's settle sends what gathered meanwhile

    async def delete(self, delete: Delete) -> None:
        await self._queue(self._deletes, delete, DELETE_DELAY)

    async def _queue(self, queue: list[tuple[T, asyncio.Future[int]]], item: T, delay: float) -> int:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        queue.append((item, waiter))
        if delay == 0.0 and not self._soon:
            self._soon = True
            loop.call_soon(self.flush)
        elif self._later is None:
            self._later = loop.call_later(delay, self.flush)
        return await waiter

    def flush(self) -> None:
        """Queue what is pending as one transaction, now."""
        self._soon = False
        if self._later is not None:
            self._later.cancel()
            self._later = None
        writes, self._writes = self._writes, []
        deletes, self._deletes = self._deletes, []
        if not writes and not deletes:
            return
        loop = asyncio.get_running_loop()
        sweep = loop.time() - self._swept > SWEEP_EVERY and any(w.origin for w, _ in writes)
        if sweep:
            self._swept = loop.time()
        batch = partial(
            oq.apply_batch, self._conn, self._recent, [w for w, _ in writes], [d for d, _ in deletes], sweep
        )
        job = loop.run_in_executor(self._executor, batch)
        self._committing += 1

        def settle(done: asyncio.Future[list[int]]) -> None:
            self._committing -= 1
            failure = done.exception()
            results = [] if failure is not None else done.result()
            for index, (write, written) in enumerate(writes):
                try:
                    if failure is not None:
                        written(0, failure)
                    elif results[index] == oq.QUEUE_FULL:
                        written(0, OfflineQueueFull(write.jid))
                    elif results[index] == oq.DUPLICATE:
                        written(0, DuplicateMessage(write.origin))
                    else:
                        written(results[index], None)
                except Exception as e:  # one caller's failure is not the others'
                    loop.call_exception_handler({"message": "offline write callback", "exception": e})
            for _, waiter in deletes:
                _resolve(waiter, 0, failure)
            if self._writes and not self._committing:
                self.flush()  # what gathered while this one ran, in order after it

        job.add_done_callback(settle)


def _resolve(waiter: asyncio.Future[int], result: int, failure: BaseException | None) -> None:
    if waiter.done():
        return  # the caller stopped waiting; the write stands
    if failure is not None:
        waiter.set_exception(failure)
    else:
        waiter.set_result(result)
