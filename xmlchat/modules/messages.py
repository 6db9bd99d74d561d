"""Message routing (RFC 6121 §8.5), durable before the sender's ack.

Both protocols send through :meth:`Messages.route`: a native ``<message>`` is
translated to an XMPP ``<message type='chat'>`` at its front end, so one set
of rules decides who receives it. The recipient side's hook chain
(:class:`~xmlchat.routing.api.RouteFilter`, e.g. blocking) runs before any
session or the store is chosen.

A chat or normal message for an existing account is committed to the store
first, whether its recipient is online or not (group commit keeps that cheap:
one transaction per event-loop turn), so when ``route`` returns, the sender
may be acknowledged: the message survives the server being killed. The
recipient's sessions then get it through their inboxes (:mod:`.inbox`), which
delete it once a client has taken it. The same commit records the sender's
message id, so a re-send within ``delivery.dedupe_window`` is acknowledged
and not delivered again (docs/delivery.md). In a cluster the store is shared:
sessions on other nodes get it relayed with its store id, and their node's
inboxes delete it once its client took it; if no node takes it, it stays
stored for the next login (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, Protocol

from lxml import etree

from xmlchat.config import Delivery
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.inbox import BEHIND_BYTES, REPLAY_PAGE, Inboxes
from xmlchat.routing.api import (
    AdminCommand,
    AdminCommandError,
    OnInitialPresence,
    OnRelayedMessage,
    OnSessionEnded,
    Registration,
    StanzaHandler,
)
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.pipeline import PIPELINE, drain
from xmlchat.routing.session import Session
from xmlchat.stanza import body_text, from_bytes, is_assigned_id, to_bytes
from xmlchat.storage import (
    UNLIMITED,
    AccountStore,
    DuplicateMessage,
    MessageOrigin,
    OfflineQueueFull,
    OfflineStore,
)
from xmlchat.xml.writer import known

__all__ = ["BEHIND_BYTES", "REPLAY_PAGE", "MessageStore", "Messages"]

# "pending": pipelined, the outcome is counted once the message is stored.
Outcome = Literal["delivered", "stored", "dropped", "duplicate", "pending"]

# RFC 6121 §8.5.2.1.1 / §8.5.2.2: message types stored when nobody is online.
_STORED_TYPES = frozenset({"chat", "normal"})


class MessageStore(OfflineStore, AccountStore, Protocol):
    """The offline queue, and whether an account exists (§8.5.1)."""


class Messages:
    name = "messages"

    def __init__(self, ctx: ModuleContext[MessageStore], delivery: Delivery | None = None) -> None:
        self.ctx = ctx
        self.delivery = delivery or Delivery()
        self.inboxes = Inboxes(ctx)

    def setup(self) -> list[Registration]:
        return [
            StanzaHandler("message", self._from_session),
            # XEP-0160: stored messages go out at initial presence; the inbox is
            # opened before the session is routable as available.
            OnInitialPresence(self.inboxes.start, prepare=self._opening),
            OnSessionEnded(self._ended),
            OnRelayedMessage(self._relayed),
            AdminCommand("queue", self.queue),
        ]

    async def _from_session(
        self, session: Session, message: etree._Element, to: JID | None, stamp: datetime
    ) -> None:
        if to is None:
            # RFC 6120 §10.3.1: no 'to' means the sender's own bare JID.
            message.set("to", str(session.jid.bare))
        # Messages.route's body, one coroutine fewer for every message a client sends.
        outcome = await self._route(message, stamp, self._origin(session, message), pipelined=True)
        if outcome != "pending":
            self.ctx.metrics.routed(outcome)

    def _origin(self, session: Session, message: etree._Element) -> MessageOrigin | None:
        """Who re-sends under the same id: a native client's user (its library
        re-sends after a reconnect, on any resource), an XMPP client's full JID
        (XEP-0198 resumption keeps it; ids are only unique per client). None
        for an id the server assigned: a re-send of that message comes with
        another, so recording it would only cost a store write per message."""
        id_ = message.get("id")
        window = self.delivery.dedupe_window
        if not id_ or window <= 0 or is_assigned_id(id_):
            return None
        sender = session.jid if session.capabilities.full_xmpp else session.bare
        # With a digest of the body: a client that reuses ids (a counter from 1
        # at each start) sends a different text under an old id, a re-send the same.
        digest = hashlib.blake2b((body_text(message) or "").encode(), digest_size=8).hexdigest()
        return MessageOrigin(str(sender), f"{id_} {digest}", window)

    async def route(
        self,
        stanza: etree._Element,
        stamp: datetime | None = None,
        origin: MessageOrigin | None = None,
        pipelined: bool = False,
    ) -> Outcome:
        """Deliver a message whose ``from`` is already stamped by the server.

        Raises StanzaError when the sender must be told it failed; the front
        end answers (XMPP: an error stanza, §8.3; native: ``<error>``).
        ``pipelined``: a client's message, which may be left to the client
        task's pipeline once its write is queued (:mod:`xmlchat.routing.pipeline`;
        the outcome is then "pending").
        """
        outcome = await self._route(stanza, stamp or datetime.now(UTC), origin, pipelined)
        if outcome != "pending":
            self.ctx.metrics.routed(outcome)
        return outcome

    async def _route(
        self, stanza: etree._Element, stamp: datetime, origin: MessageOrigin | None, pipelined: bool
    ) -> Outcome:
        to = _recipient(stanza, self.ctx.hosts)
        type_ = stanza.get("type", "normal")
        routed = await self.ctx.to_account(stanza, to.bare)
        if routed is None:
            return "dropped"
        sessions = self.ctx.sessions
        if not to.is_bare:
            session = sessions.get(to)
            if session is not None:
                return await self._to_sessions(to, [session], routed, stamp, type_, origin, pipelined)
            if type_ == "groupchat":  # §8.5.3.2.1
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        available = sessions.available_sessions(to)
        if type_ == "groupchat":  # §8.5.2.1.1: groupchat to a bare JID is an error
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if available:
            return await self._to_sessions(to, available, routed, stamp, type_, origin, pipelined)
        return await self._offline(to, type_, routed, stamp, origin)

    async def _to_sessions(
        self,
        to: JID,
        sessions: list[Session],
        stanza: etree._Element,
        stamp: datetime,
        type_: str,
        origin: MessageOrigin | None,
        pipelined: bool = False,
    ) -> Outcome:
        """Stored first (the sender's ack waits for the commit), then offered to
        each session's inbox, here or (relayed with its store id) on its node;
        other types are written as they come. The store keeps it until a
        client took it: if no node takes it, it waits for the next login."""
        remote = [s for s in sessions if s.node is not None]
        local = [s for s in sessions if s.node is None] if remote else sessions
        if type_ not in _STORED_TYPES or (
            not remote and not self.delivery.durable and all(self.inboxes.keeping_up(s) for s in local)
        ):
            await drain()  # after what this client has in flight (RFC 6120 §10.1)
            for session in local:
                self.ctx.deliver(session, stanza, stamp)
            taken = await self._relay(remote, stanza, stamp, None) if remote else 0
            return "delivered" if local or taken else "dropped"
        # No queue limit for a user online: its sessions take what is stored as
        # they acknowledge it, and one that takes nothing is disconnected.
        pipeline = PIPELINE.get() if pipelined and not remote else None
        queue = getattr(self.ctx.store, "queue_offline", None)
        if pipeline is not None and queue is not None:
            # Queued for this turn's commit; offered once stored, the ack after
            # that (the client's task goes on with its next stanza meanwhile).
            data = to_bytes(stanza)
            done = pipeline.defer(partial(self._stored_for, local, stanza, data, stamp, origin))
            try:
                queue(to.bare, data, stamp, UNLIMITED, origin, done)
            except Exception as e:  # not queued (the store is closing): no ack
                done(0, e)
            return "pending"
        await drain()
        message_id = await self.store(to.bare, stanza, stamp, origin, limit=UNLIMITED)
        if message_id is None:
            return "duplicate"
        for session in local:
            self.inboxes.offer(session, message_id, stanza, stamp)
        if local or await self._to_remote(to, remote, stanza, stamp, message_id):
            return "delivered"
        return "stored"

    def _stored_for(
        self,
        local: list[Session],
        stanza: etree._Element,
        data: bytes,
        stamp: datetime,
        origin: MessageOrigin | None,
        message_id: int,
        error: BaseException | None,
    ) -> None:
        """A pipelined message's write is committed: offer it to ``local``.
        ``data``: the stored bytes, the same element serialised, which its
        delivery writes rather than serialising it again (nothing changed it
        meanwhile: only the pipeline held it)."""
        if isinstance(error, DuplicateMessage):
            self.ctx.log.debug("a re-send (%s): acknowledged again, not delivered", origin)
            self.ctx.metrics.routed("duplicate")
            return
        if error is not None:
            raise error  # the front end answers (no ack)
        known(stanza, data)
        try:
            for session in local:
                self.inboxes.offer(session, message_id, stanza, stamp)
        finally:
            known(None)
        self.ctx.metrics.routed("delivered")

    async def _to_remote(
        self, to: JID, remote: list[Session], stanza: etree._Element, stamp: datetime, message_id: int
    ) -> bool:
        """Relay a stored message to the nodes of ``remote``. If none took it
        (a node died, or the sessions left meanwhile), whoever of the user is
        available now gets it (they may have logged in again elsewhere)."""
        tried: set[Session] = set()
        while remote:
            if await self._relay(remote, stanza, stamp, message_id):
                return True
            tried.update(remote)
            now = [s for s in self.ctx.sessions.available_sessions(to.bare) if s not in tried]
            for session in (s for s in now if s.node is None):
                self.inboxes.offer(session, message_id, stanza, stamp)
            if any(s.node is None for s in now):
                return True
            remote = now
        return False

    async def _relay(
        self, remote: list[Session], stanza: etree._Element, stamp: datetime, message_id: int | None
    ) -> int:
        by_node: dict[str, list[Session]] = {}
        for session in remote:
            by_node.setdefault(session.node or "", []).append(session)
        relays = (
            self.ctx.relay(node, sessions, stanza, stamp, message_id) for node, sessions in by_node.items()
        )
        return sum(await asyncio.gather(*relays))

    async def _relayed(
        self, sessions: list[Session], stanza: etree._Element, stamp: datetime, message_id: int | None
    ) -> int:
        """A message another node routed to sessions here (its route filters
        ran there): with its store id, into their inboxes; else written."""
        for session in sessions:
            if message_id is None:
                self.ctx.deliver(session, stanza, stamp)
            else:
                self.inboxes.offer(session, message_id, stanza, stamp)
        return len(sessions)

    async def _offline(
        self, to: JID, type_: str, stanza: etree._Element, stamp: datetime, origin: MessageOrigin | None
    ) -> Outcome:
        if type_ == "error":
            return "dropped"  # never store or bounce errors (§8.3.1, loops)
        if not await self.ctx.store.user_exists(to.bare):
            # §8.5.1: service-unavailable, the same answer as for a user who
            # blocks us, so existence leaks no more than the RFC allows.
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "no such user")
        if type_ not in _STORED_TYPES:
            return "dropped"  # headline: §8.5.2.2.1
        if await self.store(to.bare, stanza, stamp, origin) is None:
            return "duplicate"
        return "stored"

    async def store(
        self,
        to: JID,
        stanza: etree._Element,
        stamp: datetime,
        origin: MessageOrigin | None = None,
        limit: int | None = None,
    ) -> int | None:
        """Commit ``stanza`` for ``to``; its store id, or None for a re-send.
        ``limit``: messages ``to`` may have waiting (default: the offline limit)."""
        if limit is None:
            limit = self.ctx.limits.max_offline_messages
        try:
            return await self.ctx.store.store_offline(to, to_bytes(stanza), stamp, limit, origin)
        except DuplicateMessage:
            self.ctx.log.debug("a re-send (%s): acknowledged again, not delivered", origin)
            return None
        except OfflineQueueFull:
            self.ctx.metrics.limit_hit("offline_queue")
            raise StanzaError(
                StanzaCondition.RESOURCE_CONSTRAINT, "the recipient's offline queue is full"
            ) from None

    async def queue(self, args: Mapping[str, Any]) -> list[dict[str, str]]:
        """The admin channel's ``queue JID``: what waits in the store for an
        account, oldest first (``limit``, default 100), without taking it.
        With durable delivery that includes what its sessions were handed and
        have not yet acknowledged."""
        try:
            user = JID.user(str(args.get("jid", "")), self.ctx.domain).bare
        except InvalidJID as e:
            raise AdminCommandError(str(e)) from None
        if not await self.ctx.store.user_exists(user):
            raise AdminCommandError(f"no such user {user}")
        page = await self.ctx.store.fetch_offline(user, limit=int(args.get("limit", REPLAY_PAGE)))
        return [_queued(item.stanza, item.received) for item in page]

    def _opening(self, session: Session) -> None:
        self.inboxes.open(session, replay=True)

    async def replayed(self, account: JID) -> None:
        """Wait until the inboxes of ``account`` (bare: all its sessions) are idle."""
        await self.inboxes.idle(account)

    async def _ended(self, session: Session) -> None:
        await self.inboxes.close(session)


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
