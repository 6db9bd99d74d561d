"""Pipelined durable acknowledgements: a client's burst of messages shares one
commit, and their acks go out together, still in order.

A chat message is acknowledged only once it is stored (docs/delivery.md).
Awaited one message at a time, a client that sends ten at once costs ten
commits, ten wake-ups and ten writes of one ack each. Instead the front end
gives the task that handles a client's stanzas a :class:`Pipeline`
(:data:`PIPELINE`): the messages module queues each message's write
(:class:`~xmlchat.storage.QueuedOfflineStore`) and hands the rest of its work
(offering it to the recipient's inboxes) to the pipeline as a continuation;
the front end goes on with the next stanza and acknowledges this one when its
continuation has run (no future and no task per message: the store calls the
continuation from its commit's callback) (:meth:`Pipeline.take`, :meth:`Pipeline.after`).

Order is kept without a wait per message: the store resolves its writes in
the order they were queued, so the continuations, and the acks they release,
run in the client's order. Whatever is not pipelined (another type of
stanza, a message not stored) first waits for what is (:func:`drain`), so it
cannot overtake it (RFC 6120 §10.1). A front end reads on meanwhile, up to a
bound, and drains before a shutdown closes the stream, so each stored message
gets its ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any

from xmlchat.errors import StanzaError

# Called with None (done) or the exception the continuation raised.
Completion = Callable[[Exception | None], None]
# A continuation, and what the store calls when the write is done: (result, None) or (_, why not).
Then = Callable[[Any, BaseException | None], None]


class Deferred:
    """One pipelined stanza: its continuation, then its front end's completion."""

    __slots__ = ("_followers", "_pipeline", "_then", "completion")

    def __init__(self, pipeline: Pipeline, then: Then) -> None:
        self._pipeline, self._then = pipeline, then
        self.completion: Completion | None = None  # set by the front end after the handler returns
        self._followers: list[Callable[[], None]] | None = None

    def resolve(self, result: Any, failure: BaseException | None) -> None:
        """The write is done: run the continuation, then the completion."""
        error: Exception | None = None
        try:
            self._then(result, failure)
        except Exception as e:  # the front end answers it (a stanza error, or closes)
            error = e
        try:
            if self.completion is not None:
                self.completion(error)
            for follower in self._followers or ():
                follower()
        finally:
            self._pipeline._finished(self)


class Pipeline:
    """The stanzas of one client in flight between their write and their ack."""

    __slots__ = ("_failed", "_flush", "_idle", "_last", "_pending", "_taken")

    def __init__(
        self, failed: Callable[[Exception], None] | None = None, flush: Callable[[], None] | None = None
    ) -> None:
        """``failed``: what the front end does when a message could not be
        stored (no ack: it ends the stream); ``flush``: writes its answers."""
        self._failed, self._flush = failed, flush
        self._pending = 0
        self._last: Deferred | None = None  # the newest one still pending
        self._taken: Deferred | None = None  # deferred by the stanza being handled
        self._idle: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def detach(self) -> None:
        """The front end ended: forget its callbacks. They are its bound
        methods, and it holds this pipeline: a cycle only the garbage
        collector would free, which the server runs rarely ([runtime]
        gc_threshold). What is still deferred settles with nobody to tell."""
        self._failed = self._flush = None

    @property
    def pending(self) -> int:
        """Deferred stanzas whose continuation has not run yet."""
        return self._pending

    def defer(self, then: Then) -> Then:
        """Defer the rest of the stanza being handled: returns the callback to
        give the store, which runs ``then`` with the write's outcome. The
        store must call it after those deferred before it, never before
        this returns (:class:`~xmlchat.storage.QueuedOfflineStore`)."""
        item = Deferred(self, then)
        self._pending += 1
        self._last = self._taken = item
        return item.resolve

    def take(self) -> Deferred | None:
        """What the stanza just handled deferred (None: it is done); the front
        end sets its ``completion`` to acknowledge it."""
        item, self._taken = self._taken, None
        return item

    def answer(
        self,
        ok: Callable[[], None] | None,
        refuse: Callable[[StanzaError], None],
        refused: StanzaError | None = None,
    ) -> None:
        """Answer the stanza just handled once it is done with: now, or once
        the write it queued is committed, after those before it: ``ok()``
        (a native ack), ``refuse(error)``, or ``failed`` if it was not stored."""
        item = self.take()
        if item is None and not self._pending:
            self._answer(ok, refuse, refused, None)  # the front end flushes
        elif item is None:
            self.after(partial(self._answer_later, ok, refuse, refused, None))
        else:
            item.completion = partial(self._answer_later, ok, refuse, refused)

    def _answer(
        self,
        ok: Callable[[], None] | None,
        refuse: Callable[[StanzaError], None],
        refused: StanzaError | None,
        error: Exception | None,
    ) -> None:
        if (error := refused or error) is None:
            if ok is not None:
                ok()
        elif isinstance(error, StanzaError):
            refuse(error)
        elif self._failed is not None:
            self._failed(error)

    def _answer_later(
        self,
        ok: Callable[[], None] | None,
        refuse: Callable[[StanzaError], None],
        refused: StanzaError | None,
        error: Exception | None,
    ) -> None:
        self._answer(ok, refuse, refused, error)
        if self._flush is not None:
            self._flush()

    def after(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything deferred so far has run (now if nothing is)."""
        last = self._last
        if last is None:
            callback()
        elif last._followers is None:
            last._followers = [callback]
        else:
            last._followers.append(callback)

    async def drain(self) -> None:
        """Wait until everything deferred so far has run."""
        while self._pending:
            if self._idle is None:
                self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)

    def _finished(self, item: Deferred) -> None:
        self._pending -= 1
        if self._last is item:
            self._last = None
        if not self._pending and self._idle is not None:
            if not self._idle.done():
                self._idle.set_result(None)
            self._idle = None


# The pipeline of the task handling a client's stanzas (None: not pipelined).
PIPELINE: ContextVar[Pipeline | None] = ContextVar("xmlchat_pipeline", default=None)


async def drain() -> None:
    """Let what the current client has in flight run first (RFC 6120 §10.1)."""
    pipeline = PIPELINE.get()
    if pipeline is not None and pipeline._pending:
        await pipeline.drain()
