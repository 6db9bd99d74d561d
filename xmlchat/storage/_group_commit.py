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

The hand-back is on every durable message's round trip: the writer thread,
as the last thing it does for a batch, wakes the loop once with the batch's
settle (one call_soon_threadsafe), which tells each write in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
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
        self._batches = 0  # batches submitted so far
        # For each offline read on the writer whose caller has not resumed yet:
        # how many batches were submitted before it (read_in_order).
        self._reading: list[int] = []

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

    @contextmanager
    def read_in_order(self) -> Iterator[None]:
        """Around an offline read submitted to the writer: it runs after what
        is pending (flushed first), and the batches submitted after it are
        told only once its caller has its answer. The inbox relies on that
        (SqliteStorage.fetch_offline). Their settle comes straight from the
        writer thread, one hop, while an awaited read's answer takes two
        (run_in_executor's copy to its future, then the task's wake-up), so
        a batch that finds such a read unanswered waits a turn and looks again."""
        self.flush()
        before = self._batches
        self._reading.append(before)
        try:
            yield
        finally:
            self._reading.remove(before)

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
        # Not run_in_executor: its asyncio future, chained to the executor's,
        # costs a wake-up of the loop that only copies the outcome across, and
        # the settle then waited one more turn as that future's done callback.
        self._committing += 1
        self._batches += 1
        settle = partial(self._settle, loop, self._batches, writes, deletes)
        self._executor.submit(batch).add_done_callback(partial(_wake, loop, settle))

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        number: int,
        writes: list[tuple[oq.OfflineWrite, Written]],
        deletes: list[tuple[Delete, asyncio.Future[int]]],
        results: list[int],
        failure: BaseException | None,
    ) -> None:
        """On the loop: tell the batch's writes and deletes their outcome, in order."""
        if self._reading and min(self._reading) < number:  # a read before it is not answered yet
            loop.call_soon(self._settle, loop, number, writes, deletes, results, failure)
            return
        self._committing -= 1
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


def _wake(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[list[int], BaseException | None], None],
    job: Future[list[int]],
) -> None:
    """On the writer thread (or the loop's, if the batch was done before this
    was added), the last thing done for a batch: wake the loop once to settle
    it. Batches settle in the order they ran: one writer thread, and the loop
    runs call_soon_threadsafe's callbacks in the order they came."""
    failure = job.exception()
    with suppress(RuntimeError):  # the loop is closed: nobody is left waiting
        loop.call_soon_threadsafe(settle, [] if failure is not None else job.result(), failure)


def _resolve(waiter: asyncio.Future[int], result: int, failure: BaseException | None) -> None:
    if waiter.done():
        return  # the caller stopped waiting; the write stands
    if failure is not None:
        waiter.set_exception(failure)
    else:
        waiter.set_result(result)
