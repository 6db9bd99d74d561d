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
  ``show``/``status``, priority 0 (:meth:`Presence.broadcast_available`).
* **Subsequent presence** (§4.4): broadcast and echo, nothing more.
* **Unavailable** (§4.5): explicit, or when the session ends cleanly or not
  (``Server.session_ended`` calls :meth:`Presence.broadcast_unavailable`).
* **Directed presence** (§4.6): delivered to the address given; unless a
  subscription already covers it, the address is remembered and gets
  unavailable presence when the session goes unavailable (§4.6.3). Native
  sessions get directed presence only from users they see (their protocol has
  no notion of it; their presence is the contacts' online/offline).
* **Subscription stanzas** go to :meth:`Roster.subscription_out`.
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
from collections.abc import Iterable
from copy import deepcopy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.base import OnSessionEnded, Registration
from xmlchat.modules.roster import SUBSCRIPTION_TYPES, SubType
from xmlchat.server.session import Session, XmppSession
from xmlchat.stanza import CLIENT_NS, make

if TYPE_CHECKING:
    from xmlchat.server.app import Server

_SENDS_TO_CONTACT = frozenset({"from", "both"})
_RECEIVES_FROM_CONTACT = frozenset({"to", "both"})


def available_presence(session: Session) -> etree._Element:
    """The session's current presence (a copy), from its full JID."""
    last = session.last_presence
    presence = make("presence") if last is None else deepcopy(last)
    presence.set("from", str(session.jid))
    return presence


class Presence:
    name = "presence"

    def __init__(self, server: Server) -> None:
        self.server = server
        # §4.6.3: where each session sent directed presence that no subscription
        # covers. Weak: a session that is gone is forgotten with it.
        self._directed: weakref.WeakKeyDictionary[Session, set[JID]] = weakref.WeakKeyDictionary()

    def setup(self) -> list[Registration]:
        return [OnSessionEnded(self._session_ended)]

    async def handle(self, session: XmppSession, presence: etree._Element, to: JID | None) -> None:
        """Presence from an XMPP client (RFC 6121 §3, §4); ``from`` is stamped."""
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

    async def _available(self, session: XmppSession, presence: etree._Element) -> None:
        initial = not session.available
        if initial:
            self.server.messages.hold(session)  # no live message overtakes a stored one
        session.presence_priority = _priority(presence)
        session.available_presence = presence
        try:
            await self._broadcast(session, initial)
            if initial:
                await self.server.roster.pending_requests(session)  # §3.1.3
        finally:
            if initial:
                await self.server.messages.deliver_offline(session)  # XEP-0160

    async def broadcast_available(self, session: Session) -> None:
        """A native login: initial presence, and the stored subscription
        requests answered on the user's behalf (see the roster module)."""
        await self._broadcast(session, initial=True)
        await self.server.roster.pending_requests(session)

    async def _broadcast(self, session: Session, initial: bool) -> None:
        """Tell subscribed contacts and our other resources (§4.2.2, §4.4.2);
        on initial presence, also tell us who of them is here (§4.2.3: the
        probes, answered from the router since every contact is local)."""
        router = self.server.router
        items, _ = await self.server.storage.get_roster(session.jid.bare)
        stamp = datetime.now(UTC)
        for item in items:
            if item.subscription in _SENDS_TO_CONTACT:
                presence = available_presence(session)
                presence.set("to", str(item.jid))
                for peer in router.sessions_of(item.jid):
                    if peer.available:
                        peer.deliver(presence, stamp)
        own_resources = [s for s in router.sessions_of(session.jid.bare) if s.available and s is not session]
        for own in own_resources:
            mine = available_presence(session)
            mine.set("to", str(own.jid))
            own.deliver(mine, stamp)
        if session.protocol == "xmpp":
            # §4.2.2: the sender's own presence comes back to it, too.
            echo = available_presence(session)
            echo.set("to", str(session.jid))
            session.deliver(echo, stamp)
        if not initial:
            return
        self._send_presence_of(own_resources, [session], stamp)
        for item in items:
            if item.subscription in _RECEIVES_FROM_CONTACT:
                self._send_presence_of(router.sessions_of(item.jid), [session], stamp)

    async def _unavailable(self, session: XmppSession, presence: etree._Element) -> None:
        if session.available:
            session.available_presence = None
            await self.broadcast_unavailable(session, presence)
        else:
            self._unavailable_to_directed(session, presence)

    async def broadcast_unavailable(self, session: Session, presence: etree._Element | None = None) -> None:
        """§4.5.2: unavailable presence to subscribed contacts, our other
        resources and every address we sent directed presence to (§4.6.3).
        ``presence`` is the client's own (it may carry a status)."""
        router = self.server.router
        items, _ = await self.server.storage.get_roster(session.jid.bare)
        recipients: dict[Session, str] = {}
        for item in items:
            if item.subscription in _SENDS_TO_CONTACT:
                for peer in router.sessions_of(item.jid):
                    if peer.available:
                        recipients[peer] = str(item.jid)
        for own in router.sessions_of(session.jid.bare):
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
            peer.deliver(stanza, stamp)

    async def _session_ended(self, session: Session) -> None:
        if not session.available:
            # Directed presence sent without broadcast presence still ends (§4.6.3);
            # an available session's goes out with broadcast_unavailable next.
            self._unavailable_to_directed(session, None)

    # ---- directed presence (§4.6)

    async def _directed_presence(self, session: XmppSession, presence: etree._Element, to: JID) -> None:
        if to.domain not in self.server.config.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {to.domain}")
        if to.local is None:
            return  # presence to the server itself: nothing to deliver
        user = session.jid.bare
        storage = self.server.storage
        if to.bare != user:
            item = await storage.get_roster_item(user, to.bare)
            if item is None or item.subscription not in _SENDS_TO_CONTACT:
                targets = self._directed.setdefault(session, set())
                if presence.get("type") is None:
                    targets.add(to)
                else:
                    # Unavailable to an address ends directed presence there (§4.6.3).
                    targets -= {t for t in targets if t == to or (to.is_bare and t.bare == to)}
        stamp = datetime.now(UTC)
        for peer in self._receivers(to):
            if peer.protocol == "native" and to.bare != user:
                # Native sessions see presence from users they see, nobody else.
                item = await storage.get_roster_item(peer.jid.bare, user)
                if item is None or item.subscription not in _RECEIVES_FROM_CONTACT:
                    continue
            peer.deliver(presence, stamp)

    def _receivers(self, to: JID) -> list[Session]:
        """A full JID: that connected resource; a bare JID: its available resources
        (RFC 6121 §8.5.2.1.2, §8.5.3.1)."""
        router = self.server.router
        if to.resource is not None:
            target = router.get(to)
            return [] if target is None else [target]
        return [s for s in router.sessions_of(to) if s.available]

    # ---- probes (§4.3) and errors

    async def _probe(self, session: XmppSession, to: JID | None) -> None:
        if to is None or to.domain not in self.server.config.hosts or to.local is None:
            return
        contact, user = to.bare, session.jid.bare
        if contact != user:
            item = await self.server.storage.get_roster_item(user, contact)
            if item is None or item.subscription not in _RECEIVES_FROM_CONTACT:
                return  # §4.3.2: presence is not revealed
        stamp = datetime.now(UTC)
        peers = [s for s in self.server.router.sessions_of(contact) if s is not session]
        if not self._send_presence_of(peers, [session], stamp):
            # §4.3.2: no available resource: the "last unavailable presence",
            # which we do not keep beyond its type.
            gone = make("presence", {"type": "unavailable", "from": str(contact), "to": str(session.jid)})
            session.deliver(gone, stamp)

    def _route_error(self, presence: etree._Element, to: JID | None) -> None:
        """A presence error goes where it is addressed and is never answered
        (RFC 6120 §8.3.1)."""
        if to is None or to.domain not in self.server.config.hosts:
            return
        stamp = datetime.now(UTC)
        for peer in self._receivers(to):
            if peer.protocol == "xmpp":
                peer.deliver(presence, stamp)

    # ---- subscriptions (§3): the roster module keeps the states

    async def _subscription(
        self, session: XmppSession, presence: etree._Element, to: JID | None, type_: SubType
    ) -> None:
        if to is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"presence of type {type_} needs a 'to'")
        contact = to.bare  # §3.1.2: handled as if addressed to the bare JID
        if contact.domain not in self.server.config.hosts:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, f"unknown domain {contact.domain}")
        if contact.local is None or contact == session.jid.bare:
            return  # the server and oneself have no subscription states
        await self.server.roster.subscription_out(session.jid.bare, contact, type_, presence)

    # ---- helpers the roster module uses on subscription changes

    def share(self, sender: JID, receiver: JID) -> None:
        """The presence of each of ``sender``'s available resources, to each of
        ``receiver``'s (after an approval, §3.1.5, or a native contact-add)."""
        receivers = [s for s in self.server.router.sessions_of(receiver) if s.available]
        self._send_presence_of(self.server.router.sessions_of(sender), receivers, datetime.now(UTC))

    def withdraw(self, sender: JID, receiver: JID) -> None:
        """Unavailable presence from each of ``sender``'s available resources to
        each of ``receiver``'s, when a subscription ends (§3.2.2, §3.3.3)."""
        router = self.server.router
        stamp = datetime.now(UTC)
        for peer in router.sessions_of(receiver):
            if not peer.available:
                continue
            for own in router.sessions_of(sender):
                if own.available:
                    gone = make(
                        "presence", {"type": "unavailable", "from": str(own.jid), "to": str(peer.jid)}
                    )
                    peer.deliver(gone, stamp)

    def _send_presence_of(self, senders: Iterable[Session], receivers: list[Session], stamp: datetime) -> int:
        """Each available sender's current presence to each receiver; returns
        how many senders were available."""
        count = 0
        for sender in senders:
            if not sender.available:
                continue
            count += 1
            for receiver in receivers:
                presence = available_presence(sender)
                presence.set("to", str(receiver.jid))
                receiver.deliver(presence, stamp)
        return count


def _priority(presence: etree._Element) -> int:
    """RFC 6121 §4.7.2.3: an integer in -128..127, 0 when absent or invalid."""
    text = presence.findtext(f"{{{CLIENT_NS}}}priority")
    try:
        value = int(text) if text is not None else 0
    except ValueError:
        return 0
    return max(-128, min(127, value))
