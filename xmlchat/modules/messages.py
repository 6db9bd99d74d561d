"""Message routing for local users (RFC 6121 §8.5) and offline storage (XEP-0160).

Both protocols send through :meth:`Messages.route`: a native ``<message>`` is
translated to an XMPP ``<message type='chat'>`` at its front end, so one set
of rules decides who receives it. The recipient side's hook chain
(:class:`~xmlchat.routing.api.RouteFilter`, e.g. blocking) runs before any
session or the offline store is chosen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, Protocol

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.routing.api import ModuleContext, OnInitialPresence, Registration, StanzaHandler
from xmlchat.routing.session import Session
from xmlchat.stanza import from_bytes, to_bytes
from xmlchat.storage import AccountStore, OfflineQueueFull, OfflineStore

Outcome = Literal["delivered", "stored", "dropped"]

# Stored messages replayed between two waits for the client to read them:
# about 100 KB to 1 MB, well under the send buffer's limit.
REPLAY_PAGE = 100

# RFC 6121 §8.5.2.1.1 / §8.5.2.2: message types stored when nobody is online.
_STORED_TYPES = frozenset({"chat", "normal"})


class MessageStore(OfflineStore, AccountStore, Protocol):
    """The offline queue, and whether an account exists (§8.5.1)."""


class Messages:
    name = "messages"

    def __init__(self, ctx: ModuleContext[MessageStore]) -> None:
        self.ctx = ctx
        # Sessions receiving their stored messages: live ones wait here meanwhile,
        # so the client sees everything in the order the server accepted it.
        self._replaying: dict[Session, list[tuple[etree._Element, datetime]]] = {}

    def setup(self) -> list[Registration]:
        return [
            StanzaHandler("message", self._from_session),
            # XEP-0160: stored messages go out at initial presence; live ones
            # are held from before the session is routable as available.
            OnInitialPresence(self.deliver_offline, prepare=self.hold),
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
                self._deliver(session, routed, stamp)
                return "delivered"
            if type_ == "groupchat":  # §8.5.3.2.1
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        available = sessions.available_sessions(to)
        if type_ == "groupchat":  # §8.5.2.1.1: groupchat to a bare JID is an error
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if available:
            for session in available:
                self._deliver(session, routed, stamp)
            return "delivered"
        return await self._offline(to, type_, routed, stamp)

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

    def _deliver(self, session: Session, stanza: etree._Element, stamp: datetime) -> None:
        waiting = self._replaying.get(session)
        if waiting is not None:
            waiting.append((stanza, stamp))
        else:
            self.ctx.deliver(session, stanza, stamp)

    async def store(self, to: JID, stanza: etree._Element, stamp: datetime) -> None:
        limit = self.ctx.limits.max_offline_messages
        try:
            await self.ctx.store.store_offline(to, to_bytes(stanza), stamp, limit)
        except OfflineQueueFull:
            raise StanzaError(
                StanzaCondition.RESOURCE_CONSTRAINT, "the recipient's offline queue is full"
            ) from None

    def hold(self, session: Session) -> None:
        """Keep live messages for ``session`` back until :meth:`deliver_offline`
        has handed it the stored ones. Called before the session is routable
        as available, so nothing overtakes a stored message in the gap."""
        self._replaying.setdefault(session, [])

    async def deliver_offline(self, session: Session) -> None:
        """Hand ``session`` its stored messages, oldest first, a page at a
        time, then what was held back meanwhile (XEP-0160: at initial presence).

        Flow control: after each page the replay waits until the client has
        taken it (the transport drained), and only then deletes it from the
        store. A backlog of any size never overflows the send buffer, and a
        connection lost mid-replay leaves the rest stored for the next login.
        """
        store = self.ctx.store
        bare = session.bare
        self.hold(session)
        delivered = 0
        try:
            after = 0
            while page := await store.fetch_offline(bare, after_id=after, limit=REPLAY_PAGE):
                for item in page:
                    self.ctx.deliver(session, from_bytes(item.stanza), item.received, delayed=True)
                if not await session.transport.drained():
                    return  # gone: this page and the rest stay stored
                after = page[-1].id
                await store.delete_offline(bare, after)
                delivered += len(page)
            if delivered:
                self.ctx.log.info("%s: delivered %d offline message(s)", session.jid, delivered)
        finally:
            for stanza, stamp in self._replaying.pop(session):
                self.ctx.deliver(session, stanza, stamp)


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
