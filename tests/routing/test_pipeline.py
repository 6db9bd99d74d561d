"""routing/pipeline.py: a connection's messages overlap only where that keeps their order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from xmlchat.routing.pipeline import in_order, ordered


class GroupCommit:
    """A store's group commit: the writes queued in one turn share one batch."""

    def __init__(self) -> None:
        self.queued: list[str] = []
        self.batches: list[list[str]] = []
        self._waiters: list[asyncio.Future[None]] = []

    async def write(self, item: str) -> None:
        loop = asyncio.get_running_loop()
        if not self.queued:
            loop.call_soon(self._commit)
        self.queued.append(item)
        waiter = loop.create_future()
        self._waiters.append(waiter)
        await waiter

    def _commit(self) -> None:
        self.batches.append(self.queued)
        self.queued = []
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set_result(None)


Call = Callable[[], Awaitable[None]]


def message(store: GroupCommit, name: str, done: list[str], lookup: float = 0.0) -> Call:
    async def handle() -> None:
        if lookup:
            await asyncio.sleep(lookup)  # a filter that reads the store first
        ordered()
        await store.write(name)
        done.append(name)

    return handle


async def test_messages_that_reach_the_store_at_once_share_one_commit_in_order() -> None:
    store, done = GroupCommit(), list[str]()
    await in_order([message(store, f"m{i}", done) for i in range(10)])
    assert store.batches == [[f"m{i}" for i in range(10)]]
    assert done == [f"m{i}" for i in range(10)]


async def test_a_message_that_waits_first_is_not_overtaken() -> None:
    """Started together, m1 and m2 would reach the store before m0."""
    store, done = GroupCommit(), list[str]()
    slow = message(store, "m0", done, lookup=0.02)
    await in_order([slow, message(store, "m1", done), message(store, "m2", done)])
    assert [item for batch in store.batches for item in batch] == ["m0", "m1", "m2"]
    assert done == ["m0", "m1", "m2"]


async def test_a_call_that_never_says_it_is_ordered_runs_alone() -> None:
    events: list[str] = []

    async def other(name: str) -> None:
        events.append(f"{name} start")
        await asyncio.sleep(0)
        events.append(f"{name} end")

    await in_order([lambda: other("a"), lambda: other("b")])
    assert events == ["a start", "a end", "b start", "b end"]


async def test_a_failure_is_raised_after_every_call_ran() -> None:
    store, done = GroupCommit(), list[str]()

    async def fails() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await in_order([message(store, "m0", done), fails, message(store, "m2", done)])
    assert done == ["m0", "m2"]
