"""Message routing for local users (RFC 6121 §8.5) and offline storage (XEP-0160).

Both protocols send through :meth:`Messages.route`: a native ``<message>`` is
translated to an XMPP ``<message type='chat'>`` at its front end, so one set
of rules decides who receives it. The recipient side's hook chain
(:class:`~xmlchat.routing.api.RouteFilter`, e.g. blocking) runs before any
session or the offline store is chosen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.routing.api import (
    AdminCommand,
    AdminCommandError,
    ModuleContext,
    OnInitialPresence,
    OnSessionEnded,
    Registration,
    StanzaHandler,
)
from xmlchat.routing.session import Session
from xmlchat.stanza import body_text, from_bytes, to_bytes
from xmlchat.storage import AccountStore, OfflineQueueFull, OfflineStore

Outcome = Literal["delivered", "stored", "dropped"]

# Stored messages replayed between two waits for the client to read them:
# about 100 KB to 1 MB, well under the send buffer's limit.
REPLAY_PAGE = 100
# Bytes waiting in a session's send buffer past which it is behind: its new
# messages go to the store until it has caught up (a quarter of the default
# send-buffer limit, so the connection is never cut for messages).
BEHIND_BYTES = 1024 * 1024

# RFC 6121 §8.5.2.1.1 / §8.5.2.2: message types stored when nobody is online.
_STORED_TYPES = frozenset({"chat", "normal"})


class MessageStore(OfflineStore, AccountStore, Protocol):
    """The offline queue, and whether an account exists (§8.5.1)."""


class Messages:
    name = "messages"

    def __init__(self, ctx: ModuleContext[MessageStore]) -> None:
        self.ctx = ctx
        # Sessions catching up from the store after falling behind: their
        # messages are stored, not written, and the catch-up replays them in
        # the order accepted.
        self._catching_up: set[Session] = set()
        # Sessions receiving their stored messages at login: live ones wait
        # here meanwhile (they are few, and the replay is quick), so nothing
        # overtakes a stored message.
        self._held: dict[Session, list[tuple[etree._Element, datetime]]] = {}
        # The catch-up running for each account: one at a time, since each
        # deletes what it replayed.
        self._replaying: dict[JID, asyncio.Task[None]] = {}

    def setup(self) -> list[Registration]:
        return [
            StanzaHandler("message", self._from_session),
            # XEP-0160: stored messages go out at initial presence; live ones are
            # held back from before the session is routable as available.
            OnInitialPresence(self._initial_catch_up, prepare=self.hold),
            OnSessionEnded(self._ended),
            AdminCommand("queue", self.queue),
        ]

    async def _from_session(
        self, session: Session, message: etree._Element, to: JID | None, stamp: datetime
    ) -> None:
        if to is None:
            # RFC 6120 §10.3.1: no 'to' means the sender's own bare JID.
            message.set("to", str(session.jid.bare))
        await self.route(message, stamp)

    async def route(self, stanza: etree._Element, stamp: datetime | None = None) -> Outcome:
        """Deliver a message whose ``from`` is already stamped by the server.

        Raises StanzaError when the sender must be told it failed; the front
        end answers (XMPP: an error stanza, §8.3; native: ``<error>``).
        """
        outcome = await self._route(stanza, stamp or datetime.now(UTC))
        self.ctx.metrics.routed(outcome)
        return outcome

    async def _route(self, stanza: etree._Element, stamp: datetime) -> Outcome:
        to = _recipient(stanza, self.ctx.hosts)
        type_ = stanza.get("type", "normal")
        routed = await self.ctx.to_account(stanza, to.bare)
        if routed is None:
            return "dropped"
        sessions = self.ctx.sessions
        if not to.is_bare:
            session = sessions.get(to)
            if session is not None:
                return await self._to_sessions(to, [session], routed, stamp, type_)
            if type_ == "groupchat":  # §8.5.3.2.1
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        available = sessions.available_sessions(to)
        if type_ == "groupchat":  # §8.5.2.1.1: groupchat to a bare JID is an error
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if available:
            return await self._to_sessions(to, available, routed, stamp, type_)
        return await self._offline(to, type_, routed, stamp)

    async def _to_sessions(
        self, to: JID, sessions: list[Session], stanza: etree._Element, stamp: datetime, type_: str
    ) -> Outcome:
        """Write to the sessions keeping up; store once for those behind (the
        sender's ack waits for the store), to be replayed as they read."""
        behind = [s for s in sessions if self._behind(s)] if type_ in _STORED_TYPES else []
        for session in sessions:
            if session in behind:
                continue
            held = self._held.get(session)
            if held is not None:
                held.append((stanza, stamp))
            else:
                self.ctx.deliver(session, stanza, stamp)
        if not behind:
            return "delivered"
        await self.store(to.bare, stanza, stamp)
        for session in behind:
            if session not in self._catching_up:
                self._start_catch_up(session)  # it caught up while we stored: once more
        return "delivered"  # to an online session, through the store

    async def _offline(self, to: JID, type_: str, stanza: etree._Element, stamp: datetime) -> Outcome:
        if type_ == "error":
            return "dropped"  # never store or bounce errors (§8.3.1, loops)
        if not await self.ctx.store.user_exists(to.bare):
            # §8.5.1: service-unavailable, the same answer as for a user who
            # blocks us, so existence leaks no more than the RFC allows.
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "no such user")
        if type_ not in _STORED_TYPES:
            return "dropped"  # headline: §8.5.2.2.1
        await self.store(to.bare, stanza, stamp)
        return "stored"

    async def store(self, to: JID, stanza: etree._Element, stamp: datetime) -> None:
        limit = self.ctx.limits.max_offline_messages
        try:
            await self.ctx.store.store_offline(to, to_bytes(stanza), stamp, limit)
        except OfflineQueueFull:
            self.ctx.metrics.limit_hit("offline_queue")
            raise StanzaError(
                StanzaCondition.RESOURCE_CONSTRAINT, "the recipient's offline queue is full"
            ) from None

    async def queue(self, args: Mapping[str, Any]) -> list[dict[str, str]]:
        """The admin channel's ``queue JID``: what waits in the store for an
        account, oldest first (``limit``, default 100), without taking it."""
        try:
            user = JID.user(str(args.get("jid", "")), self.ctx.domain).bare
        except InvalidJID as e:
            raise AdminCommandError(str(e)) from None
        if not await self.ctx.store.user_exists(user):
            raise AdminCommandError(f"no such user {user}")
        page = await self.ctx.store.fetch_offline(user, limit=int(args.get("limit", REPLAY_PAGE)))
        return [_queued(item.stanza, item.received) for item in page]

    def hold(self, session: Session) -> None:
        """Keep live messages for ``session`` back until its stored ones are
        out. Called before the session is routable as available, so nothing
        overtakes a stored message in the gap."""
        self._held.setdefault(session, [])

    def _behind(self, session: Session) -> bool:
        if session in self._catching_up:
            return True
        if session in self._held or session.transport.backlog <= BEHIND_BYTES:
            return False
        self.ctx.log.info("%s: behind, its messages wait in the store", session.jid)
        self._start_catch_up(session)
        return True

    def _start_catch_up(self, session: Session) -> None:
        self._catching_up.add(session)
        if self._replay_running(session.bare):
            return  # the running replay reads the store to its end
        self._spawn_replay(session, self._catch_up(session))

    def _replay_running(self, bare: JID) -> bool:
        running = self._replaying.get(bare)
        return running is not None and not running.done()

    def _spawn_replay(self, session: Session, replay: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(replay)
        self._replaying[session.bare] = task
        task.add_done_callback(lambda done: self._forget(session.bare, done))

    def _forget(self, bare: JID, task: asyncio.Task[None]) -> None:
        if self._replaying.get(bare) is task:
            del self._replaying[bare]
        # Another session of the account that fell behind meanwhile waited its turn.
        waiting = next((s for s in self._catching_up if s.bare == bare), None)
        if waiting is not None:
            self._catching_up.discard(waiting)
            self._start_catch_up(waiting)

    async def _initial_catch_up(self, session: Session) -> None:
        """Start the login replay beside the session's reading loop: a client
        that acknowledges what it reads (native receipts, XEP-0198) must be
        read while the replay waits for it. Live messages stay held until
        the replay is done, so the order holds."""
        if self._replay_running(session.bare):
            # Another session of the account is taking what is stored: this one
            # starts with what comes next (XEP-0160 gives stored messages once).
            self._release(session)
            return
        self._spawn_replay(session, self._replay_then_release(session))

    async def replayed(self, account: JID) -> None:
        """Wait until the replay running for ``account`` (if any) is over."""
        running = self._replaying.get(account.bare)
        if running is not None:
            await asyncio.wait({running})

    async def _replay_then_release(self, session: Session) -> None:
        try:
            await self._catch_up(session)
        except Exception:
            self.ctx.log.exception("%s: replay failed; the rest stays stored", session.jid)
        finally:
            self._release(session)

    def _release(self, session: Session) -> None:
        for stanza, stamp in self._held.pop(session, []):
            self.ctx.deliver(session, stanza, stamp)

    async def _catch_up(self, session: Session) -> None:
        """Hand ``session`` what waits in the store, oldest first, a page at a
        time: each page goes out, then the client must take it (the transport
        drains), then it is deleted. A connection lost mid-way leaves the
        rest stored for the next login."""
        store = self.ctx.store
        bare = session.bare
        after, delivered, offline = 0, 0, 0
        started = datetime.now(UTC)
        try:
            if not await self._taken(session):  # what was written before it fell behind
                return
            while page := await store.fetch_offline(bare, after_id=after, limit=REPLAY_PAGE):
                for item in page:
                    self.ctx.deliver(session, from_bytes(item.stanza), item.received, delayed=True)
                if not await self._taken(session):
                    return  # gone: this page and the rest stay stored
                after = page[-1].id
                await store.delete_offline(bare, after)
                delivered += len(page)
                offline += sum(1 for item in page if item.received < started)
        finally:
            self._catching_up.discard(session)
            if offline:  # XEP-0160: what waited while the user was away
                self.ctx.log.info("%s: delivered %d offline message(s)", session.jid, offline)
            if delivered > offline:
                self.ctx.log.debug("%s: caught up on %d message(s)", session.jid, delivered - offline)

    async def _taken(self, session: Session) -> bool:
        """Wait until the client has read what was written; one that reads
        nothing for ``limits.stuck_timeout`` seconds is disconnected."""
        try:
            return await asyncio.wait_for(session.transport.drained(), self.ctx.limits.stuck_timeout)
        except TimeoutError:
            session.close(StreamError(StreamCondition.CONNECTION_TIMEOUT, "not reading"))
            return False

    async def _ended(self, session: Session) -> None:
        self._catching_up.discard(session)
        self._held.pop(session, None)


def _queued(stanza: bytes, received: datetime) -> dict[str, str]:
    message = from_bytes(stanza)
    return {
        "received": received.isoformat(timespec="seconds"),
        "from": message.get("from", ""),
        "type": message.get("type", "normal"),
        "body": body_text(message) or "",
    }


def _recipient(stanza: etree._Element, hosts: frozenset[str]) -> JID:
    try:
        to = JID.parse(stanza.get("to", ""))
    except InvalidJID:
        raise StanzaError(StanzaCondition.JID_MALFORMED, "bad recipient address") from None
    if to.domain not in hosts:
        # No server-to-server federation (yet): RFC 6120 §10.4.3.
        raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {to.domain}")
    if to.local is None:
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "the server does not take messages")
    return to
