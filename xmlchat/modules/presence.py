"""Presence broadcast (RFC 6121 §4) between a user and their roster contacts.

A native login is an available presence with no ``show``/``status`` and
priority 0; a native logout is unavailable presence. Who sees whom follows the
roster's subscription states (RFC 6121 §2.1.2.5): a contact with ``from`` or
``both`` receives our presence; one with ``to`` or ``both`` sends us theirs.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.base import Registration
from xmlchat.server.session import Session, XmppSession
from xmlchat.stanza import CLIENT_NS, make

if TYPE_CHECKING:
    from xmlchat.server.app import Server

_SENDS_TO_CONTACT = frozenset({"from", "both"})
_RECEIVES_FROM_CONTACT = frozenset({"to", "both"})


def available_presence(session: Session) -> etree._Element:
    last = session.last_presence
    presence = make("presence") if last is None else deepcopy(last)
    presence.set("from", str(session.jid))
    return presence


class Presence:
    name = "presence"

    def __init__(self, server: Server) -> None:
        self.server = server

    def setup(self) -> list[Registration]:
        return []

    async def handle(self, session: XmppSession, presence: etree._Element, to: JID | None) -> None:
        """Presence from an XMPP client (RFC 6121 §4)."""
        type_ = presence.get("type")
        if to is not None:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "directed presence")
        if type_ is None:
            await self._available(session, presence)
        elif type_ == "unavailable":
            if session.available:
                session.available_presence = None
                await self.broadcast_unavailable(session)
        else:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, f"presence type {type_}")

    async def _available(self, session: XmppSession, presence: etree._Element) -> None:
        initial = not session.available
        session.presence_priority = _priority(presence)
        session.available_presence = presence
        await self.broadcast_available(session)
        # RFC 6121 §4.2.2: the sender gets its own presence back, too.
        own = available_presence(session)
        own.set("to", str(session.jid))
        session.deliver(own, datetime.now(UTC))
        if initial:
            # XEP-0160: stored messages go out at initial presence.
            await self.server.messages.deliver_offline(session)

    async def broadcast_available(self, session: Session) -> None:
        """Tell subscribed contacts (and our other resources) we are here, and
        tell us which of our contacts are (RFC 6121 §4.2.2, §4.2.3 probes
        answered from the router, since every contact is local)."""
        router, storage = self.server.router, self.server.storage
        items, _ = await storage.get_roster(session.jid.bare)
        stamp = datetime.now(UTC)
        for item in items:
            if item.subscription in _SENDS_TO_CONTACT:
                presence = available_presence(session)
                presence.set("to", str(item.jid))
                for peer in router.sessions_of(item.jid):
                    if peer.available:
                        peer.deliver(presence, stamp)
            if item.subscription in _RECEIVES_FROM_CONTACT:
                for peer in router.sessions_of(item.jid):
                    if peer.available and peer is not session:
                        presence = available_presence(peer)
                        presence.set("to", str(session.jid))
                        session.deliver(presence, stamp)
        for own in router.sessions_of(session.jid.bare):
            if own is not session and own.available:
                mine = available_presence(session)
                mine.set("to", str(own.jid))
                own.deliver(mine, stamp)
                theirs = available_presence(own)
                theirs.set("to", str(session.jid))
                session.deliver(theirs, stamp)

    async def broadcast_unavailable(self, session: Session) -> None:
        router, storage = self.server.router, self.server.storage
        items, _ = await storage.get_roster(session.jid.bare)
        stamp = datetime.now(UTC)
        targets = [item.jid for item in items if item.subscription in _SENDS_TO_CONTACT]
        targets.append(session.jid.bare)
        for target in targets:
            presence = make("presence", {"type": "unavailable", "from": str(session.jid), "to": str(target)})
            for peer in router.sessions_of(target):
                if peer.available and peer is not session:
                    peer.deliver(presence, stamp)


def _priority(presence: etree._Element) -> int:
    """RFC 6121 §4.7.2.3: an integer in -128..127, 0 when absent or invalid."""
    text = presence.findtext(f"{{{CLIENT_NS}}}priority")
    try:
        value = int(text) if text is not None else 0
    except ValueError:
        return 0
    return max(-128, min(127, value))
