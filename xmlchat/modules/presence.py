"""Presence (RFC 6121 §4) between a user, their own resources and their contacts.

Who sees whom follows the roster (§2.1.2.5): a contact with ``from`` or
``both`` receives the user's presence; one with ``to`` or ``both`` sends the
user theirs. Every contact is local, so probes (§4.3) are answered from the
router at once: at initial presence the user gets the current presence of
each available resource of each contact it is subscribed to.

* **Initial presence** (§4.2): broadcast to contacts and to the user's own
  available resources, echoed to the sender, then the contacts' presence, the
  stored subscription requests (§3.1.3, :mod:`~xmlchat.modules.roster`) and
  the stored messages (XEP-0160). A native login is initial presence with no
  ``show``/``status``, priority 0: its front end sends ``<presence/>``.
* **Subsequent presence** (§4.4): broadcast and echo, nothing more.
* **Unavailable** (§4.5): explicit, or when the session ends cleanly or not
  (an :class:`~xmlchat.routing.api.OnSessionEnded` hook).
* **Directed presence** (§4.6): delivered to the address given; unless a
  subscription already covers it, the address is remembered and gets
  unavailable presence when the session goes unavailable (§4.6.3). Sessions
  without full XMPP (native) get directed presence only from users they see
  (their protocol has no notion of it; their presence is the contacts'
  online/offline).
* **Subscription stanzas** go to :meth:`Subscriptions.subscription_out`.
* **Probes from clients** (§4.3) are answered as the server's own: the
  contact's current presence when the user is subscribed to it, or an
  unavailable presence when it has no available resource; nothing otherwise
  (§4.3.2 makes the ``unsubscribed`` answer a SHOULD; we leave subscription
  states alone on a probe).

Presence of type ``error`` from a client is routed to its address and never
answered. Negative priority (§4.7.2.3) changes nothing here: the router skips
such resources for messages to the bare JID.
"""

from __future__ import annotations

import weakref
from copy import deepcopy
from datetime import UTC, datetime
from typing import Protocol, cast

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.presence_fanout import available_presence, send_presence_of
from xmlchat.modules.roster import SUBSCRIPTION_TYPES, Subscriptions, SubType
from xmlchat.routing.api import OnSessionEnded, Registration, StanzaHandler
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import CLIENT_NS, make
from xmlchat.storage import RosterItem

_SENDS_TO_CONTACT = frozenset({"from", "both"})
_RECEIVES_FROM_CONTACT = frozenset({"to", "both"})


class PresenceStore(Protocol):
    """Who sees whom: the roster, read-only."""

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]: ...

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None: ...


class Presence:
    name = "presence"

    def __init__(self, ctx: ModuleContext[PresenceStore], subscriptions: Subscriptions) -> None:
        self.ctx = ctx
        self.subscriptions = subscriptions
        # §4.6.3: where each session sent directed presence that no subscription
        # covers. Weak: a session that is gone is forgotten with it.
        self._directed: weakref.WeakKeyDictionary[Session, set[JID]] = weakref.WeakKeyDictionary()

    def setup(self) -> list[Registration]:
        return [StanzaHandler("presence", self.handle), OnSessionEnded(self._session_ended)]

    async def handle(
        self, session: Session, presence: etree._Element, to: JID | None, stamp: datetime | None = None
    ) -> None:
        """Presence from a client (RFC 6121 §3, §4); ``from`` is stamped."""
        type_ = presence.get("type")
        if type_ in SUBSCRIPTION_TYPES:
            await self._subscription(session, presence, to, cast(SubType, type_))
        elif type_ == "probe":
            await self._probe(session, to)
        elif type_ == "error":
            self._route_error(presence, to)
        elif to is None:
            if type_ is None:
                await self._available(session, presence)
            else:
                await self._unavailable(session, presence)
        else:
            await self._directed_presence(session, presence, to)

    # ---- broadcast presence (§4.2, §4.4, §4.5)

    async def _available(self, session: Session, presence: etree._Element) -> None:
        initial = not session.available
        if initial:
            self.ctx.prepare_available(session)  # e.g. no live message overtakes a stored one
        session.priority = _priority(presence)
        session.available_presence = presence
        try:
            await self._broadcast(session, initial)
        finally:
            if initial:
                # §3.1.3 stored subscription requests, XEP-0160 stored messages.
                await self.ctx.presence_became_available(session)

    async def _broadcast(self, session: Session, initial: bool) -> None:
        """Tell subscribed contacts and our other resources (§4.2.2, §4.4.2);
        on initial presence, also tell us who of them is here (§4.2.3: the
        probes, answered from the router since every contact is local)."""
        sessions = self.ctx.sessions
        items, _ = await self.ctx.store.get_roster(session.jid.bare)
        stamp = datetime.now(UTC)
        for item in items:
            if item.subscription in _SENDS_TO_CONTACT:
                presence = available_presence(session)
                presence.set("to", str(item.jid))
                for peer in sessions.sessions_of(item.jid):
                    if peer.available:
                        self.ctx.deliver(peer, presence, stamp)
        own_resources = [
            s for s in sessions.sessions_of(session.jid.bare) if s.available and s is not session
        ]
        for own in own_resources:
            mine = available_presence(session)
            mine.set("to", str(own.jid))
            self.ctx.deliver(own, mine, stamp)
        if session.capabilities.full_xmpp:
            # §4.2.2: the sender's own presence comes back to it, too.
            echo = available_presence(session)
            echo.set("to", str(session.jid))
            self.ctx.deliver(session, echo, stamp)
        if not initial:
            return
        send_presence_of(self.ctx, own_resources, [session], stamp)
        for item in items:
            if item.subscription in _RECEIVES_FROM_CONTACT:
                send_presence_of(self.ctx, sessions.sessions_of(item.jid), [session], stamp)

    async def _unavailable(self, session: Session, presence: etree._Element) -> None:
        if session.available:
            session.available_presence = None
            await self.broadcast_unavailable(session, presence)
        else:
            self._unavailable_to_directed(session, presence)

    async def broadcast_unavailable(self, session: Session, presence: etree._Element | None = None) -> None:
        """§4.5.2: unavailable presence to subscribed contacts, our other
        resources and every address we sent directed presence to (§4.6.3).
        ``presence`` is the client's own (it may carry a status)."""
        sessions = self.ctx.sessions
        items, _ = await self.ctx.store.get_roster(session.jid.bare)
        recipients: dict[Session, str] = {}
        for item in items:
            if item.subscription in _SENDS_TO_CONTACT:
                for peer in sessions.sessions_of(item.jid):
                    if peer.available:
                        recipients[peer] = str(item.jid)
        for own in sessions.sessions_of(session.jid.bare):
            if own.available and own is not session:
                recipients[own] = str(own.jid)
        for target in self._directed.pop(session, set()):
            for peer in self._receivers(target):
                recipients.setdefault(peer, str(target))
        self._send_unavailable(session, presence, recipients)

    def _unavailable_to_directed(self, session: Session, presence: etree._Element | None) -> None:
        recipients: dict[Session, str] = {}
        for target in self._directed.pop(session, set()):
            for peer in self._receivers(target):
                recipients.setdefault(peer, str(target))
        self._send_unavailable(session, presence, recipients)

    def _send_unavailable(
        self, session: Session, presence: etree._Element | None, recipients: dict[Session, str]
    ) -> None:
        stamp = datetime.now(UTC)
        base = make("presence") if presence is None else deepcopy(presence)
        base.set("type", "unavailable")
        base.set("from", str(session.jid))
        for peer, to in recipients.items():
            stanza = deepcopy(base)
            stanza.set("to", to)
            self.ctx.deliver(peer, stanza, stamp)

    async def _session_ended(self, session: Session) -> None:
        """§4.5: a session that ends is unavailable, cleanly closed or not.
        Directed presence sent without broadcast presence ends too (§4.6.3)."""
        if session.available:
            await self.broadcast_unavailable(session)
        else:
            self._unavailable_to_directed(session, None)

    # ---- directed presence (§4.6)

    async def _directed_presence(self, session: Session, presence: etree._Element, to: JID) -> None:
        if to.domain not in self.ctx.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {to.domain}")
        if to.local is None:
            return  # presence to the server itself: nothing to deliver
        user = session.jid.bare
        store = self.ctx.store
        if to.bare != user:
            item = await store.get_roster_item(user, to.bare)
            if item is None or item.subscription not in _SENDS_TO_CONTACT:
                targets = self._directed.setdefault(session, set())
                if presence.get("type") is None:
                    targets.add(to)
                else:
                    # Unavailable to an address ends directed presence there (§4.6.3).
                    targets -= {t for t in targets if t == to or (to.is_bare and t.bare == to)}
        stamp = datetime.now(UTC)
        for peer in self._receivers(to):
            if not peer.capabilities.full_xmpp and to.bare != user:
                # Native sessions see presence from users they see, nobody else.
                item = await store.get_roster_item(peer.jid.bare, user)
                if item is None or item.subscription not in _RECEIVES_FROM_CONTACT:
                    continue
            self.ctx.deliver(peer, presence, stamp)

    def _receivers(self, to: JID) -> list[Session]:
        """A full JID: that connected resource; a bare JID: its available resources
        (RFC 6121 §8.5.2.1.2, §8.5.3.1)."""
        sessions = self.ctx.sessions
        if to.resource is not None:
            target = sessions.get(to)
            return [] if target is None else [target]
        return [s for s in sessions.sessions_of(to) if s.available]

    # ---- probes (§4.3) and errors

    async def _probe(self, session: Session, to: JID | None) -> None:
        if to is None or to.domain not in self.ctx.hosts or to.local is None:
            return
        contact, user = to.bare, session.jid.bare
        if contact != user:
            item = await self.ctx.store.get_roster_item(user, contact)
            if item is None or item.subscription not in _RECEIVES_FROM_CONTACT:
                return  # §4.3.2: presence is not revealed
        stamp = datetime.now(UTC)
        peers = [s for s in self.ctx.sessions.sessions_of(contact) if s is not session]
        if not send_presence_of(self.ctx, peers, [session], stamp):
            # §4.3.2: no available resource: the "last unavailable presence",
            # which we do not keep beyond its type.
            gone = make("presence", {"type": "unavailable", "from": str(contact), "to": str(session.jid)})
            self.ctx.deliver(session, gone, stamp)

    def _route_error(self, presence: etree._Element, to: JID | None) -> None:
        """A presence error goes where it is addressed and is never answered
        (RFC 6120 §8.3.1)."""
        if to is None or to.domain not in self.ctx.hosts:
            return
        stamp = datetime.now(UTC)
        for peer in self._receivers(to):
            if peer.capabilities.full_xmpp:
                self.ctx.deliver(peer, presence, stamp)

    # ---- subscriptions (§3): the roster module keeps the states

    async def _subscription(
        self, session: Session, presence: etree._Element, to: JID | None, type_: SubType
    ) -> None:
        if to is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"presence of type {type_} needs a 'to'")
        contact = to.bare  # §3.1.2: handled as if addressed to the bare JID
        if contact.domain not in self.ctx.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {contact.domain}")
        if contact.local is None or contact == session.jid.bare:
            return  # the server and oneself have no subscription states
        await self.subscriptions.subscription_out(session.jid.bare, contact, type_, presence)


def _priority(presence: etree._Element) -> int:
    """RFC 6121 §4.7.2.3: an integer in -128..127, 0 when absent or invalid."""
    text = presence.findtext(f"{{{CLIENT_NS}}}priority")
    try:
        value = int(text) if text is not None else 0
    except ValueError:
        return 0
    return max(-128, min(127, value))
