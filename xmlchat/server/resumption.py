"""XEP-0198 §5: sessions a client may resume, by resumption id.

An XMPP connection that enabled resumable stream management registers here.
When it is lost (not closed by the client or the server), its session stays
in the router, available, for ``delivery.resume_timeout`` seconds: messages
for it are queued on the detached connection, and a new stream of the same
user that presents the id takes the session over (``<resumed/>``), with
whatever its client had not acknowledged sent again. When the time runs out
the session ends; its unacknowledged messages stay in the store for the
next login (they were stored before their senders were acknowledged).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class Resumptions(Generic[C]):
    """Connections by resumption id, and the timers of detached ones."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._by_id: dict[str, C] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def register(self, resume_id: str, connection: C) -> None:
        """``connection`` now carries the session known as ``resume_id``."""
        self._by_id[resume_id] = connection

    def detached(self, resume_id: str, expire: Callable[[], Awaitable[None]]) -> None:
        """The connection was lost: ``expire()`` unless resumed in time."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        def fire() -> None:
            self._timers.pop(resume_id, None)
            self._by_id.pop(resume_id, None)
            task = asyncio.ensure_future(expire())
            tasks.add(task)  # held until done
            task.add_done_callback(tasks.discard)

        self._timers[resume_id] = loop.call_later(self.timeout, fire)

    def find(self, resume_id: str) -> C | None:
        """The connection of ``resume_id``; None if unknown or expired."""
        return self._by_id.get(resume_id)

    def claim(self, resume_id: str) -> None:
        """The session is being resumed: its timer stops."""
        timer = self._timers.pop(resume_id, None)
        if timer is not None:
            timer.cancel()

    def forget(self, resume_id: str) -> None:
        timer = self._timers.pop(resume_id, None)
        if timer is not None:
            timer.cancel()
        self._by_id.pop(resume_id, None)
