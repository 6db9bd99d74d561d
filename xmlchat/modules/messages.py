"""Message routing for local users (RFC 6121 §8.5) and offline storage (XEP-0160).

Both protocols send through :meth:`Messages.route`: a native ``<message>`` is
translated to an XMPP ``<message type='chat'>`` first, so one set of rules
decides who receives it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.base import Registration
from xmlchat.server.session import Session
from xmlchat.stanza import from_bytes, to_bytes
from xmlchat.storage import OfflineQueueFull

if TYPE_CHECKING:
    from xmlchat.server.app import Server

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "stored", "dropped"]

# RFC 6121 §8.5.2.1.1 / §8.5.2.2: message types stored when nobody is online.
_STORED_TYPES = frozenset({"chat", "normal"})


class Messages:
    name = "messages"

    def __init__(self, server: Server) -> None:
        self.server = server
        # Sessions receiving their stored messages: live ones wait here meanwhile,
        # so the client sees everything in the order the server accepted it.
        self._replaying: dict[Session, list[tuple[etree._Element, datetime]]] = {}

    def setup(self) -> list[Registration]:
        return []

    async def route(self, stanza: etree._Element, stamp: datetime | None = None) -> Outcome:
        """Deliver a message whose ``from`` is already stamped by the server.

        Raises StanzaError when the sender must be told it failed; the caller
        answers (XMPP: an error stanza, §8.3; native: ``<error>``).
        """
        outcome = await self._route(stanza, stamp)
        self.server.metrics.routed(outcome)
        return outcome

    async def _route(self, stanza: etree._Element, stamp: datetime | None) -> Outcome:
        stamp = stamp or datetime.now(UTC)
        try:
            to = JID.parse(stanza.get("to", ""))
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "bad recipient address") from None
        type_ = stanza.get("type", "normal")
        if to.domain not in self.server.config.hosts:
            # No server-to-server federation (yet): RFC 6120 §10.4.3.
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {to.domain}")
        if to.local is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "the server does not take messages")
        router = self.server.router
        if not to.is_bare:
            session = router.get(to)
            if session is not None:
                self._deliver(session, stanza, stamp)
                return "delivered"
            if type_ == "groupchat":  # §8.5.3.2.1
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        sessions = router.available_sessions(to)
        if type_ == "groupchat":  # §8.5.2.1.1: groupchat to a bare JID is an error
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if sessions:
            for session in sessions:
                self._deliver(session, stanza, stamp)
            return "delivered"
        if type_ == "error":
            return "dropped"  # never store or bounce errors (§8.3.1, loops)
        if not await self.server.storage.user_exists(to.bare):
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
            session.deliver(stanza, stamp)

    async def store(self, to: JID, stanza: etree._Element, stamp: datetime) -> None:
        limit = self.server.config.limits.max_offline_messages
        try:
            await self.server.storage.store_offline(to, to_bytes(stanza), stamp, limit)
        except OfflineQueueFull:
            raise StanzaError(
                StanzaCondition.RESOURCE_CONSTRAINT, "the recipient's offline queue is full"
            ) from None

    def hold(self, session: Session) -> None:
        """Keep live messages for ``session`` back until :meth:`deliver_offline`
        has handed it the stored ones. Call it before the session becomes
        routable, so nothing overtakes a stored message in the gap."""
        self._replaying.setdefault(session, [])

    async def deliver_offline(self, session: Session) -> int:
        """Hand ``session`` its stored messages, oldest first, then delete them,
        then what was held back meanwhile (XEP-0160: at initial presence)."""
        storage = self.server.storage
        self.hold(session)
        stored = []
        try:
            stored = await storage.fetch_offline(session.jid.bare)
            for item in stored:
                session.deliver(from_bytes(item.stanza), item.received, delayed=True)
            if stored:
                await storage.delete_offline(session.jid.bare, stored[-1].id)
                log.info("%s: delivered %d offline message(s)", session.jid, len(stored))
        finally:
            for stanza, stamp in self._replaying.pop(session):
                session.deliver(stanza, stamp)
        return len(stored)
