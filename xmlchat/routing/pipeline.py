"""A connection's messages handled side by side, with their effects in order.

A client that sends ten messages in one packet used to have them handled one
after the other: each waited for the store's commit of the one before (the
sender's ack waits for it, docs/delivery.md), so ten messages cost ten
commits, ten acks written one at a time and ten deliveries written one at a
time. :func:`in_order` starts them together instead, so they share one group
commit and their acks and deliveries leave in one write per connection
(``Connection.send`` coalesces the writes of one turn of the event loop).

RFC 6120 §10.1 still holds: stanzas are processed in the order received.
Each call runs up to the point where its module calls :func:`ordered` (the
messages module: just before it queues the message for the store, after the
filters that may still refuse it) before the next call starts, and the next
starts at once only if that point was reached without waiting for anything.
Otherwise the next call waits until the previous has finished, as before. So
calls that overlap have queued their store writes in order within one turn,
share one commit, and resume from it in order; anything else (a lookup in the
store, a relay, a handler that never calls :func:`ordered`) keeps them one
after the other.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["in_order", "ordered"]


class _Gate:
    """Whether the call it belongs to has reached :func:`ordered`."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False


_GATE: contextvars.ContextVar[_Gate | None] = contextvars.ContextVar("xmlchat_pipeline_gate", default=None)


def ordered() -> None:
    """Called by a module where the stanza being handled can no longer be
    overtaken by the next one: nothing from here on waits for anything
    before its effects are queued (e.g. a message's store write)."""
    gate = _GATE.get()
    if gate is not None:
        gate.open = True


async def in_order(calls: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Run ``calls`` (a connection's consecutive messages) overlapped where
    that keeps their order (see the module's docstring); wait for all of them,
    then raise the first failure, if any."""
    if len(calls) == 1:
        await calls[0]()
        return
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    previous: _Previous = None
    for call in calls:
        gate = _Gate()
        context = contextvars.copy_context()
        context.run(_GATE.set, gate)
        task = loop.create_task(_after(previous, call), context=context)
        tasks.append(task)
        previous = (gate, task)
    await asyncio.wait(tasks)
    for task in tasks:
        task.result()


_Previous = tuple[_Gate, asyncio.Task[None]] | None


async def _after(previous: _Previous, call: Callable[[], Awaitable[object]]) -> None:
    # The tasks' first steps run back to back in one turn of the event loop:
    # the previous call has had its first step by now, and its gate is open
    # only if that step reached ordered().
    if previous is not None and not previous[0].open:
        await asyncio.wait((previous[1],))
    await call()
