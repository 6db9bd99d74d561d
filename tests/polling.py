"""Waiting on an observable outcome with a deadline, instead of sleeping and hoping.

A fixed sleep is either too short on a loaded machine (a flaky failure) or too
long everywhere else; polling a predicate returns as soon as it holds and fails
loudly when it never does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 5.0, *, interval: float = 0.01, what: str = ""
) -> None:
    """Return once ``predicate()`` is true; raise TimeoutError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"still false after {timeout} s: {what or predicate.__name__}")
        await asyncio.sleep(interval)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0, *, interval: float = 0.05, what: str = ""
) -> None:
    """:func:`wait_for` for a predicate that must itself do I/O (try a login, send a request)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"still false after {timeout} s: {what or predicate.__name__}")
        await asyncio.sleep(interval)
