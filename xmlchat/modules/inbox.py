"""Each session's inbox: every stored message handed over in order, and
deleted from the store only once the client has taken it.

Every chat message for a local account is committed to the store before its
sender is acknowledged (:mod:`xmlchat.modules.messages`). An :class:`Inboxes`
then hands it to the recipient's sessions, one of two ways:

* **live**: written at once to a session that keeps up;
* **pumped**: read back from the store, a page at a time, by the session's
  worker: at login (XEP-0160's replay) and while the session is behind (more
  than :data:`BEHIND_BYTES` waiting in its send buffer).

Either way the session's *cursor* moves to the message's store id, so
nothing is handed twice to one session, and the id joins the session's
*unsettled* ids. The worker waits until the transport says the client took
them (``drained()``: the client's acknowledgement with native receipts or
XEP-0198, else the kernel's) and deletes them from the store in one go. A
session that ends first leaves them stored for its next login.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import from_bytes
from xmlchat.storage import OfflineStore

# Stored messages handed over between two waits for the client to take them:
# about 100 KB to 1 MB, well under the send buffer's limit.
REPLAY_PAGE: Final = 100
# Bytes waiting in a session's send buffer past which it is behind: its new
# messages stay in the store until its worker pumps them (a quarter of the
# default send-buffer limit, so the connection is never cut for messages).
BEHIND_BYTES: Final = 1024 * 1024
# Seconds a live session's inbox gathers handed messages before it settles
# them: deleting is on nobody's critical path, and every settle costs a wait
# for the client (an <r/> with XEP-0198), a timer and a store write. 0.05 s
# cost about 150 µs of CPU a settle, ~13 messages each in the closed-loop
# benchmark (docs/delivery.md, "What this costs"); 0.2 s gathers 3-4 times as many.
SETTLE_DELAY: Final = 0.2


@dataclass(eq=False)
class _Inbox:
    cursor: int = 0  # the highest store id handed to the session
    pumping: bool = False  # the worker reads the store (login replay, or behind)
    behind: bool = False  # pumping because it fell behind (not for its login replay)
    unsettled: list[int] = field(default_factory=list)  # handed, not yet taken
    taking: list[int] = field(default_factory=list)  # handed, the worker waits for them
    # Handed to a session this one replaced, whose client acknowledges nothing:
    # deleted before this one reads the store (see Inboxes.close).
    forget: list[int] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    replayed: int = 0  # messages stored before the session started, for the log


class Inboxes:
    def __init__(self, ctx: ModuleContext[OfflineStore]) -> None:
        self.ctx = ctx
        self._inboxes: dict[Session, _Inbox] = {}
        # The sessions with an inbox, by account: asked at every settle.
        self._by_account: dict[JID, set[Session]] = {}
        # Sessions of each account still settling their end (close()): a replay
        # waits for them, or it would hand out what they are about to delete.
        self._ending: dict[JID, set[asyncio.Future[None]]] = {}

    def open(self, session: Session, replay: bool) -> None:
        """Give ``session`` an inbox before it is routable as available, so no
        live message overtakes a stored one. ``replay``: it starts with what
        is stored (XEP-0160), unless another session of the account is online
        already; then it starts where that one is (stored messages go to one
        session, and those are the other's, handed and not yet taken)."""
        others = [b.cursor for b in self._others(session)]
        box = self._inbox(session)
        if others:
            box.cursor = max(box.cursor, *others)
        elif replay:
            box.pumping = True

    async def start(self, session: Session) -> None:
        """Start the replay :meth:`open` prepared (beside the session's reading
        loop: a client that acknowledges what it reads must be read meanwhile)."""
        box = self._inboxes.get(session)
        if box is not None and box.pumping:
            self._wake(session, box)

    async def close(self, session: Session) -> None:
        """The session ended. What it was handed and did not acknowledge stays
        stored, for its next login (a client that acknowledges drops a repeat
        by its id). A client that acknowledges nothing was handed it when it
        was written to its connection: that is deleted, as it would have been."""
        box = self._inboxes.pop(session, None)
        account = self._by_account.get(session.bare)
        if account is not None:
            account.discard(session)
            if not account:
                del self._by_account[session.bare]
        if box is None:
            return
        ending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ending.setdefault(session.bare, set()).add(ending)
        try:
            await self._settle_end(session, box)
        finally:
            ending.set_result(None)
            waiting = self._ending[session.bare]
            waiting.discard(ending)
            if not waiting:
                del self._ending[session.bare]

    async def _settle_end(self, session: Session, box: _Inbox) -> None:
        if box.worker is not None:
            # Its last wait ends with the connection: what the client confirmed
            # before it went is deleted now, before a next login reads the store.
            await asyncio.wait({box.worker})
        handed = self._settled(session, box.taking + box.unsettled)
        if not handed:
            return
        # Acknowledged at the very end (the last receipt came with the close)?
        # The connection is gone, so the answer comes at once.
        if session.transport.acknowledges and not await self._taken(session):
            return
        await self.ctx.store.delete_offline_ids(session.bare, handed)

    def offer(self, session: Session, message_id: int, stanza: etree._Element, stamp: datetime) -> None:
        """Message ``message_id``, just committed to the store, for ``session``."""
        if not session.routed:
            return  # it ended (or was replaced) while the message was being stored
        box = self._inboxes.get(session)
        if box is None:  # not available yet: only what is sent to it from now on
            box = self._inbox(session)
        if box.pumping or message_id <= box.cursor:
            return  # the worker reads it from the store (or has already)
        if session.transport.backlog > BEHIND_BYTES:
            self.ctx.log.info("%s: behind, its messages wait in the store", session.jid)
            box.pumping = box.behind = True
        else:
            box.cursor = message_id
            box.unsettled.append(message_id)
            self.ctx.deliver(session, stanza, stamp)
        self._wake(session, box)

    def keeping_up(self, session: Session) -> bool:
        """Whether a message for ``session`` could be written to it now."""
        box = self._inboxes.get(session)
        return (box is None or not box.pumping) and session.transport.backlog <= BEHIND_BYTES

    async def idle(self, jid: JID) -> None:
        """Wait until the workers of ``jid``'s sessions (a bare JID: all the
        account's) have nothing left to hand over or settle."""
        while workers := [
            box.worker
            for s in self._by_account.get(jid.bare, ())
            if (box := self._inboxes[s]).worker is not None and (s.jid == jid or s.bare == jid)
        ]:
            await asyncio.wait(workers)

    def _inbox(self, session: Session) -> _Inbox:
        box = self._inboxes.get(session)
        if box is None:
            box = self._inboxes[session] = _Inbox()
            mine = self._by_account.setdefault(session.bare, set())
            # A session of the same resource that this one replaced (RFC 6120
            # §7.7.2.2) ends without the session-ended hooks: its inbox ends here.
            for stale in [s for s in mine if s.jid == session.jid]:
                mine.discard(stale)
                old = self._inboxes.pop(stale)
                if not stale.transport.acknowledges:
                    box.forget += old.taking + old.unsettled
            mine.add(session)
        return box

    def _others(self, session: Session) -> list[_Inbox]:
        """The inboxes of the account's other current sessions (one replaced
        by a newer login of its resource, RFC 6120 §7.7.2.2, is not)."""
        mine = self._by_account.get(session.bare, ())
        if not mine or (len(mine) == 1 and session in mine):
            return []  # the common case: this session alone
        current = self.ctx.sessions.get
        return [self._inboxes[s] for s in mine if s is not session and current(s.jid) is s]

    def _wake(self, session: Session, box: _Inbox) -> None:
        if box.worker is None:
            box.worker = asyncio.create_task(self._work(session, box))

    async def _work(self, session: Session, box: _Inbox) -> None:
        try:
            await self._pump_and_settle(session, box)
        except Exception:
            self.ctx.log.exception("%s: delivery failed; the rest stays stored", session.jid)
        finally:
            box.worker = None
            if box.replayed:  # XEP-0160: what waited while the user was away
                self.ctx.log.info("%s: delivered %d offline message(s)", session.jid, box.replayed)
                box.replayed = 0

    async def _pump_and_settle(self, session: Session, box: _Inbox) -> None:
        store = self.ctx.store
        # Handed to a connection that went away while the session lives on
        # (XEP-0198 resumption sends them again): wait for them once more.
        box.unsettled[:0], box.taking = box.taking, []
        if box.forget:
            forget, box.forget = box.forget, []
            await store.delete_offline_ids(session.bare, forget)
        while self._inboxes.get(session) is box:
            behind = box.pumping and session.transport.backlog > BEHIND_BYTES
            if box.unsettled or behind:  # first what was handed: a session behind waits here
                if not box.pumping:
                    # Live: nobody waits for a delete, so gather a few before asking
                    # the client and the store (one wait and one delete for many).
                    await asyncio.sleep(SETTLE_DELAY)
                box.taking, box.unsettled = box.unsettled, []
                if not await self._taken(session):
                    return  # gone: close() decides what stays stored
                taken, box.taking = box.taking, []
                await store.delete_offline_ids(session.bare, self._settled(session, taken))
                continue
            if not box.pumping:
                return  # the finally clears box.worker before anything else runs
            if ending := self._ending.get(session.bare):
                await asyncio.wait(ending)  # the account's sessions that just ended settle first
            page = await store.fetch_offline(session.bare, after_id=box.cursor, limit=REPLAY_PAGE)
            box.pumping = bool(page)
            box.behind = box.behind and box.pumping
            self._hand_over(session, box, [(m.id, from_bytes(m.stanza), m.received) for m in page])

    def _settled(self, session: Session, taken: list[int]) -> list[int]:
        """Of the ids ``session`` took, those no other session of the account
        still has to read from the store: one that fell behind. (A session in
        its login replay gets what is stored when it reads: not what another
        session of the user was handed before it came.)"""
        floor = min((b.cursor for b in self._others(session) if b.behind), default=None)
        return taken if floor is None else [i for i in taken if i <= floor]

    def _hand_over(
        self, session: Session, box: _Inbox, page: list[tuple[int, etree._Element, datetime]]
    ) -> None:
        for message_id, stanza, received in page:
            if message_id <= box.cursor:
                continue
            box.cursor = message_id
            box.unsettled.append(message_id)
            if received < box.started:
                box.replayed += 1
            self.ctx.deliver(session, stanza, received, delayed=True)

    async def _taken(self, session: Session) -> bool:
        """Wait until the client has taken what was written; one that takes
        nothing for ``limits.stuck_timeout`` seconds is disconnected."""
        try:
            async with asyncio.timeout(self.ctx.limits.stuck_timeout):  # no task per wait
                return await session.transport.drained()
        except TimeoutError:
            session.close(StreamError(StreamCondition.CONNECTION_TIMEOUT, "not reading"))
            return False
