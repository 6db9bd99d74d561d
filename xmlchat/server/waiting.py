"""Small waiting primitives for what every connection holds."""

from __future__ import annotations

import asyncio

__all__ = ["Signal"]


class Signal:
    """asyncio.Event's set, clear and wait, without the Event's deque of
    waiters (760 bytes, for every connection) until somebody waits."""

    __slots__ = ("_set", "_waiter")

    def __init__(self, set_: bool = False) -> None:
        self._set = set_
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)  # a waiter cancelled leaves it to the others
