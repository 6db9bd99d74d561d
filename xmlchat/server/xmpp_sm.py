"""XEP-0198 stream management on the XMPP connection: acknowledgements, the
in-order worker that hands the client's stanzas to the hub, and resumption
(§5, with the registry in :mod:`xmlchat.server.resumption`).

The counting itself (h, ``<r/>``, ``<a/>``) is the sans-IO core's
(:mod:`xmlchat.protocol.xmpp.sm`); this is what needs the event loop: waiting
for an ``<a/>``, a worker task, a session that outlives its connection.
"""

from __future__ import annotations

import abc
import asyncio
import ssl
from collections import deque
from typing import Any

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.protocol import xmpp
from xmlchat.protocol.xmpp.sm import MODULUS, Resumable, covers
from xmlchat.server.waiting import Signal
from xmlchat.server.xmpp_login import XmppLogin


class XmppStreamManagement(XmppLogin):
    """What XEP-0198 adds to a connection; a plain stream never uses it."""

    __slots__ = ("_acked", "_background", "_detached", "_ended_on_purpose", "_inbox", "_resume_id",
                 "_taken_over", "_unacked", "_unstored", "_worker")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set whenever the client's acknowledged count moves.
        self._acked = Signal()
        # Once stream management is on, the hub gets the client's stanzas from
        # this queue, in order, so the read loop keeps reading: a replay
        # waiting in drained() for an <a/> must not stop the <a/> being read.
        self._inbox: asyncio.Queue[xmpp.Event | None] | None = None
        self._unstored = False  # a message could not be stored: h stops there
        self._worker: asyncio.Task[None] | None = None
        # §5, with resumption: the stanzas the client has not acknowledged,
        # oldest first, to send again on a resumed stream.
        self._resume_id: str | None = None
        self._unacked: deque[etree._Element] | None = None
        self._detached = False  # lost, waiting to be resumed (the session lives on)
        self._taken_over = False  # resumed by another connection: not ours any more
        self._ended_on_purpose = False  # by the client (</stream>) or by the server
        self._background: set[asyncio.Task[None]] = set()

    @abc.abstractmethod
    async def _perform(self, event: xmpp.Event) -> list[xmpp.Event]:
        """Perform one event of the core (the worker's, once stream management is on)."""

    def _send(self, stanza: etree._Element) -> None:
        if self._unacked is not None:
            self._unacked.append(stanza)
        if self._detached:
            return  # queued for the resumption
        self.core.send_stanza(stanza)
        self.flush()

    def close(self, error: StreamError) -> None:
        self._ended_on_purpose = True  # conflict, shutdown, a stuck client: no resumption
        if self._detached:
            self._resume_end()
            return
        super().close(error)

    # ---- acknowledgements (§4)

    @property
    def acknowledges(self) -> bool:
        return self.core.sm is not None

    async def drained(self) -> bool:
        if self._detached:
            return False  # nothing is read now; a resumed stream sends it again
        return await self._drained()

    async def _drained(self) -> bool:
        """With XEP-0198, "taken" means acknowledged: ask with ``<r/>`` and wait
        until the client's h covers every stanza written so far (§4)."""
        sm = self.core.sm
        if sm is None:
            return await super().drained()
        target = sm.sent
        if covers(sm.acked, target):
            return True  # the client has them all, even if the connection is gone since
        sm.request()  # after the stanzas it must cover, so its <a/> does
        self.flush()
        self.flush_now()
        while not covers(sm.acked, target):
            if self.closing or self.transport.is_closing():
                return False
            self._acked.clear()
            await self._acked.wait()
        return True

    def _acknowledged(self) -> None:
        """The client's h moved (an ``<a/>``)."""
        self._trim_unacked()
        self._acked.set()

    # ---- the in-order worker

    def _enabled(self, resume_id: str | None) -> None:
        self.log.info("stream management enabled%s", " (resumable)" if resume_id else "")
        if resume_id is not None and self.ctx.resumptions is not None:
            self._resume_id, self._unacked = resume_id, deque()
            self.ctx.resumptions.register(resume_id, self)
        self._start_worker()

    def _start_worker(self) -> None:
        self._inbox = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(self._inbox), name=f"{self.id}-inbox")

    async def _work(self, inbox: asyncio.Queue[xmpp.Event | None]) -> None:
        """The client's stanzas, in order, once stream management is on."""
        while (event := await inbox.get()) is not None:
            try:
                await self._perform(event)
            except (ConnectionError, ssl.SSLError, TimeoutError):
                return
            except Exception:
                self.log.exception("internal error")
                self.close(StreamError(StreamCondition.INTERNAL_SERVER_ERROR))
                return
            if isinstance(event, xmpp.StanzaIn) and self.core.sm is not None:
                # Handled (a message: stored, which may come later: routing.pipeline),
                # and so everything before it: h may count it then.
                self.pipeline.after(self._handled)

    def _handled(self) -> None:
        if self._unstored:
            return  # h never counts what was not stored, nor anything after it
        if (sm := self.core.sm) is not None:
            sm.stanza_handled()
            self.flush()

    def store_failed(self, error: Exception) -> None:
        self._unstored = True  # never counted in h, nor anything after it
        super().store_failed(error)

    async def _stop_worker(self) -> None:
        """The connection ended: what the client sent before it went still
        reaches the hub, as without stream management."""
        self._acked.set()  # a drained() waiting for an <a/> sees the end
        if self._inbox is not None and self._worker is not None:
            self._inbox.put_nowait(None)
            await self._worker

    # ---- resumption (§5)

    def _trim_unacked(self) -> None:
        """Forget what the client's h now covers: the queue keeps sent - acked."""
        sm, unacked = self.core.sm, self._unacked
        if sm is None or unacked is None:
            return
        keep = (sm.sent - sm.acked) % MODULUS
        while len(unacked) > keep:
            unacked.popleft()

    def _resume(self, previd: str, h: int) -> list[xmpp.Event]:
        """Take over the session ``previd`` names, if it is this user's."""
        registry = self.ctx.resumptions
        old = registry.find(previd) if registry is not None else None
        old_sm = old.core.sm if old is not None else None
        if old is None or old is self or old.session is None or old_sm is None or registry is None:
            self.log.info("resumption of an unknown session refused")
            return self.core.resumed(None, previd)
        if old.session.bare != self.core.user:
            self.log.warning("resumption of another user's session refused")
            return self.core.resumed(None, previd)
        registry.claim(previd)
        session = old.session
        events = self.core.resumed(Resumable(session.jid, old_sm.handled), previd)
        old.hand_over()
        # The session's messages come here from now on (a module holds the Session).
        self.session, session.transport, session.write = session, self, self.write
        self._resume_id, self._unacked = previd, deque()
        registry.register(previd, self)
        self._start_worker()
        # §5: what the client had not handled, then what waited while detached.
        pending = old._unacked or deque()
        for _ in range(min(len(pending), (h - old_sm.acked) % MODULUS)):
            pending.popleft()
        self.log.info("resumed %s; sending %d unacknowledged stanza(s) again", session.jid, len(pending))
        for stanza in pending:
            self._send(stanza)
        return events

    def hand_over(self) -> None:
        """Another connection resumed this one's session: stop, without ending it."""
        self._taken_over = True
        self._detached = False
        if not self.closing:  # not yet seen to be lost (a half-open TCP connection)
            self.closing = True
            self.transport.abort()

    def _detach(self) -> bool:
        """The connection is lost, not ended: keep the session waiting to be
        resumed (§5), if it is resumable; whether it was kept."""
        registry = self.ctx.resumptions
        if self._resume_id is None or registry is None or self._ended_on_purpose:
            return False
        self._detached = True
        self.log.info("detached; resumable for %g s", registry.timeout)
        registry.detached(self._resume_id, self._expire)
        return True

    async def _expire(self) -> None:
        """Not resumed in time: the session ends (its unacknowledged messages stay stored)."""
        if self._detached and self.session is not None:
            self._detached = False
            self.log.info("resumption of %s timed out; session ended", self.session.jid)
            await self.ctx.hub.close_session(self.session)
            self.session = None  # see Connection._release_session

    def _resume_end(self) -> None:
        """A detached session ended early (replaced, or the server stops)."""
        if self._resume_id is not None and self.ctx.resumptions is not None:
            self.ctx.resumptions.forget(self._resume_id)
        task = asyncio.ensure_future(self._expire())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
