"""The roster and presence subscriptions (RFC 6121 §2, §3), shared by both protocols.

**Roster** (§2): ``jabber:iq:roster`` get and set from XMPP clients. A get makes
the resource *interested* (§2.1.6); every change is pushed to the owner's
interested resources with the new version (§2.6, advertised with the
``urn:xmpp:features:rosterver`` stream feature). A roster set may change only
the name and groups; the subscription attribute is ignored unless it is
``remove`` (§2.1.2.5), which also ends the subscriptions both ways (§2.5.2).

**Subscriptions** (§3, Appendix A): the nine states of a contact, seen from the
roster owner, are :class:`SubState`; what each subscription stanza does to
them is two tables, :data:`OUTBOUND` (the owner sent it) and :data:`INBOUND`
(the owner received it). Every user is local, so "routing" a subscription
stanza is processing it as inbound for the other user right away. Where the
states live: ``subscription`` and ``ask`` (pending out) on the roster item;
*pending in* is a stored subscription request
(``storage.add_subscription_request``), re-delivered at each initial presence
until answered (§3.1.3); pre-approvals (§3.4, stream feature
``urn:xmpp:features:pre-approval``) are the item's ``approved`` flag.

**Native users** cannot answer a subscription request (their protocol has no
such stanza; its contacts are mutual and immediate). So when a request reaches
a user who has a native session online — when it arrives, or at their next
login — the server approves it on their behalf and makes the relation mutual
(``both`` on both sides), exactly as the native ``<contact-add>`` does
(:meth:`Roster.make_mutual`). A user logged in only over XMPP answers for
themselves. ``docs/native-protocol.md`` ("Presence and contacts") says the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
from copy import deepcopy
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Final, Literal, cast

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.base import IqHandler, Registration, StreamFeature
from xmlchat.server.session import Session, XmppSession
from xmlchat.stanza import from_bytes, make, new_id, to_bytes
from xmlchat.storage import RosterItem

if TYPE_CHECKING:
    from xmlchat.server.app import Server

ROSTER_NS: Final = "jabber:iq:roster"
QUERY: Final = f"{{{ROSTER_NS}}}query"
ITEM: Final = f"{{{ROSTER_NS}}}item"
GROUP: Final = f"{{{ROSTER_NS}}}group"
ROSTERVER_NS: Final = "urn:xmpp:features:rosterver"  # §2.6.1
PREAPPROVAL_NS: Final = "urn:xmpp:features:pre-approval"  # §3.4.1

# §2.3.3 leaves the limits to the server: no useful name or group is longer
# than a whole JID part may be (RFC 7622 §3.1: 1023 octets).
MAX_NAME_LENGTH: Final = 1023
MAX_GROUP_LENGTH: Final = 1023

SubType = Literal["subscribe", "subscribed", "unsubscribe", "unsubscribed"]
SUBSCRIPTION_TYPES: Final[frozenset[str]] = frozenset(
    {"subscribe", "subscribed", "unsubscribe", "unsubscribed"}
)


class SubState(Enum):
    """RFC 6121 Appendix A.1: a contact's state in the owner's roster, as
    (subscription, pending out, pending in)."""

    NONE = ("none", False, False)
    NONE_PENDING_OUT = ("none", True, False)
    NONE_PENDING_IN = ("none", False, True)
    NONE_PENDING_OUT_IN = ("none", True, True)
    TO = ("to", False, False)
    TO_PENDING_IN = ("to", False, True)
    FROM = ("from", False, False)
    FROM_PENDING_OUT = ("from", True, False)
    BOTH = ("both", False, False)

    @classmethod
    def of(cls, item: RosterItem | None, pending_in: bool) -> SubState:
        subscription = "none" if item is None else item.subscription
        pending_out = item is not None and item.ask
        # Pending out needs no 'to' yet, pending in no 'from' yet: stale flags
        # beside a granted subscription mean nothing (A.1 has no such states).
        pending_out = pending_out and subscription in ("none", "from")
        pending_in = pending_in and subscription in ("none", "to")
        return cls((subscription, pending_out, pending_in))

    @property
    def subscription(self) -> str:
        return self.value[0]

    @property
    def pending_out(self) -> bool:
        return self.value[1]

    @property
    def pending_in(self) -> bool:
        return self.value[2]

    @property
    def contact_sees_owner(self) -> bool:
        """The contact receives the owner's presence (``from``/``both``)."""
        return self.subscription in ("from", "both")

    @property
    def owner_sees_contact(self) -> bool:
        """The owner receives the contact's presence (``to``/``both``)."""
        return self.subscription in ("to", "both")


S = SubState

# RFC 6121 A.2: the owner SENT this stanza to the contact. Missing: no state change.
OUTBOUND: Final[dict[str, dict[SubState, SubState]]] = {
    "subscribe": {  # A.2.1
        S.NONE: S.NONE_PENDING_OUT,
        S.NONE_PENDING_IN: S.NONE_PENDING_OUT_IN,
        S.FROM: S.FROM_PENDING_OUT,
    },
    "unsubscribe": {  # A.2.2
        S.NONE_PENDING_OUT: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_IN,
        S.TO: S.NONE,
        S.TO_PENDING_IN: S.NONE_PENDING_IN,
        S.FROM_PENDING_OUT: S.FROM,
        S.BOTH: S.FROM,
    },
    "subscribed": {  # A.2.3 (other states: pre-approval, §3.4)
        S.NONE_PENDING_IN: S.FROM,
        S.NONE_PENDING_OUT_IN: S.FROM_PENDING_OUT,
        S.TO_PENDING_IN: S.BOTH,
    },
    "unsubscribed": {  # A.2.4
        S.NONE_PENDING_IN: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_OUT,
        S.TO_PENDING_IN: S.TO,
        S.FROM: S.NONE,
        S.FROM_PENDING_OUT: S.NONE_PENDING_OUT,
        S.BOTH: S.TO,
    },
}

# RFC 6121 A.3: the owner RECEIVED this stanza from the contact. Missing: no
# state change, and then the stanza is not delivered either.
INBOUND: Final[dict[str, dict[SubState, SubState]]] = {
    "subscribe": {  # A.3.1 (from/both: the server answers 'subscribed', §3.1.3)
        S.NONE: S.NONE_PENDING_IN,
        S.NONE_PENDING_OUT: S.NONE_PENDING_OUT_IN,
        S.TO: S.TO_PENDING_IN,
    },
    "unsubscribe": {  # A.3.2
        S.NONE_PENDING_IN: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_OUT,
        S.TO_PENDING_IN: S.TO,
        S.FROM: S.NONE,
        S.FROM_PENDING_OUT: S.NONE_PENDING_OUT,
        S.BOTH: S.TO,
    },
    "subscribed": {  # A.3.3
        S.NONE_PENDING_OUT: S.TO,
        S.NONE_PENDING_OUT_IN: S.TO_PENDING_IN,
        S.FROM_PENDING_OUT: S.BOTH,
    },
    "unsubscribed": {  # A.3.4
        S.NONE_PENDING_OUT: S.NONE,
        S.NONE_PENDING_OUT_IN: S.NONE_PENDING_IN,
        S.TO: S.NONE,
        S.TO_PENDING_IN: S.NONE_PENDING_IN,
        S.FROM_PENDING_OUT: S.FROM,
        S.BOTH: S.FROM,
    },
}


def item_element(item: RosterItem, remove: bool = False) -> etree._Element:
    el = etree.Element(ITEM, jid=str(item.jid), nsmap={None: ROSTER_NS})
    el.set("subscription", "remove" if remove else item.subscription)
    if item.name:
        el.set("name", item.name)
    if item.ask and not remove:
        el.set("ask", "subscribe")
    if item.approved and not remove:
        el.set("approved", "true")  # §3.4
    for group in item.groups:
        etree.SubElement(el, GROUP).text = group
    return el


def subscription_stanza(type_: SubType, sender: JID, to: JID) -> etree._Element:
    """A server-generated subscription stanza between two bare JIDs."""
    return make("presence", {"type": type_, "from": str(sender.bare), "to": str(to.bare)})


class Roster:
    name = "roster"

    def __init__(self, server: Server) -> None:
        self.server = server
        # Subscription changes read and write both users' rosters across awaits:
        # one at a time, so two of them never interleave (they are rare).
        self._lock = asyncio.Lock()

    def setup(self) -> list[Registration]:
        return [
            IqHandler("get", QUERY, self._get),
            IqHandler("set", QUERY, self._set),
            StreamFeature(ROSTERVER_NS, "ver"),
            StreamFeature(PREAPPROVAL_NS, "sub"),
        ]

    # ---- jabber:iq:roster (§2)

    async def _get(self, session: Session, iq: etree._Element) -> etree._Element | None:
        _own_roster_only(session, iq)
        # Iq handlers only ever run for XMPP sessions (see dispatch).
        cast(XmppSession, session).roster_requested = True  # §2.1.6: now interested
        items, version = await self.server.storage.get_roster(session.jid.bare)
        if iq[0].get("ver") == str(version):
            # §2.6.3: the client's copy is current: an empty result, and any
            # later change comes as a push.
            return None
        query = etree.Element(QUERY, ver=str(version), nsmap={None: ROSTER_NS})
        for item in items:
            query.append(item_element(item))
        return query

    async def _set(self, session: Session, iq: etree._Element) -> etree._Element | None:
        _own_roster_only(session, iq)
        user = session.jid.bare
        contact, remove, name, groups = _parse_set(iq[0])
        if contact == user:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "you need no roster item for yourself")
        async with self._lock:
            if remove:
                await self._remove_item(user, contact)
                return None
            # §2.4.2: only name and groups change; subscription, ask and approved
            # are the server's (§2.1.2).
            current = await self.server.storage.get_roster_item(user, contact) or RosterItem(contact)
            await self.put(user, dataclasses.replace(current, name=name, groups=groups))
        return None

    async def _remove_item(self, user: JID, contact: JID) -> None:
        """§2.5.2: removing an item ends the subscriptions both ways, as if the
        user had sent 'unsubscribe' and 'unsubscribed'."""
        item, pending_in = await self._load(user, contact)
        if item is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"{contact} is not in your roster")  # §2.5.3
        state = SubState.of(item, pending_in)
        await self.remove(user, contact)
        if pending_in:
            await self.server.storage.delete_subscription_request(user, contact)
        if state.owner_sees_contact or state.pending_out:
            await self._inbound(
                contact, user, "unsubscribe", subscription_stanza("unsubscribe", user, contact)
            )
        if state.contact_sees_owner or state.pending_in:
            await self._inbound(
                contact, user, "unsubscribed", subscription_stanza("unsubscribed", user, contact)
            )
        if state.contact_sees_owner:
            self.server.presence.withdraw(user, contact)  # §3.2.2

    # ---- roster primitives (callers hold the lock for read-modify-write)

    async def put(self, user: JID, item: RosterItem) -> None:
        version = await self.server.storage.put_roster_item(user, item)
        self.push(user, item_element(item), version)

    async def remove(self, user: JID, contact: JID) -> None:
        version = await self.server.storage.delete_roster_item(user, contact)
        self.push(user, item_element(RosterItem(contact), remove=True), version)

    def push(self, user: JID, item: etree._Element, version: int) -> None:
        """RFC 6121 §2.1.6: a roster push to each interested resource, with the
        roster version the change produced (§2.6)."""
        stamp = datetime.now(UTC)
        for session in self.server.router.sessions_of(user):
            if not session.interested:
                continue
            # No 'from': a push comes from the user's own account (§2.1.6).
            iq = make("iq", {"type": "set", "id": f"push-{new_id()}", "to": str(session.jid)})
            query = etree.SubElement(iq, QUERY, ver=str(version), nsmap={None: ROSTER_NS})
            query.append(deepcopy(item))
            session.deliver(iq, stamp)

    # ---- the native protocol's contacts: mutual and immediate

    async def make_mutual(self, user: JID, contact: JID) -> None:
        """The native protocol's contact-add: both sides subscribed (``both``) at
        once — the team-app model the native spec documents — then presence
        exchanged as after an approved subscription (RFC 6121 §3.1.5)."""
        async with self._lock:
            await self._make_mutual(user, contact)

    async def remove_mutual(self, user: JID, contact: JID) -> None:
        """The native protocol's contact-remove: both roster items go, each side
        sees the other go offline (RFC 6121 §3.2 / §3.3 effects)."""
        async with self._lock:
            storage = self.server.storage
            saw: dict[tuple[JID, JID], bool] = {}
            for owner, other in ((user, contact), (contact, user)):
                item, pending_in = await self._load(owner, other)
                saw[(owner, other)] = SubState.of(item, pending_in).owner_sees_contact
                if pending_in:
                    await storage.delete_subscription_request(owner, other)
                if item is not None:
                    await self.remove(owner, other)
            for owner, other in ((user, contact), (contact, user)):
                if saw[(owner, other)]:
                    self.server.presence.withdraw(other, owner)

    async def _make_mutual(self, user: JID, contact: JID) -> None:
        storage = self.server.storage
        for owner, other in ((user, contact), (contact, user)):
            current, pending_in = await self._load(owner, other)
            if pending_in:
                await storage.delete_subscription_request(owner, other)
            new = dataclasses.replace(
                current or RosterItem(other), subscription="both", ask=False, approved=False
            )
            if new != current:
                await self.put(owner, new)
        self.server.presence.share(user, contact)
        self.server.presence.share(contact, user)

    # ---- subscriptions (§3)

    async def subscription_out(self, user: JID, contact: JID, type_: SubType, stanza: etree._Element) -> None:
        """A subscription stanza one of ``user``'s XMPP resources sent to ``contact``
        (both bare, both local, not the same)."""
        # §3.1.2 (and §3.2.1, §3.3.1): the user's server stamps the bare JIDs.
        stanza.set("from", str(user))
        stanza.set("to", str(contact))
        async with self._lock:
            await self._outbound(user, contact, type_, stanza)

    async def pending_requests(self, session: Session) -> None:
        """At initial presence (or a native login): the stored inbound requests.
        An XMPP session gets each again until answered (§3.1.3); for a native
        session the server approves them (see the module docstring)."""
        storage = self.server.storage
        user = session.jid.bare
        async with self._lock:
            requests = await storage.get_subscription_requests(user)
            stamp = datetime.now(UTC)
            for contact, data in requests:
                item = await storage.get_roster_item(user, contact)
                if not SubState.of(item, True).pending_in:
                    await storage.delete_subscription_request(user, contact)  # answered already
                elif session.protocol == "native":
                    await self._approve_for_native(user, contact)
                else:
                    session.deliver(from_bytes(data), stamp)

    async def _outbound(self, user: JID, contact: JID, type_: SubType, stanza: etree._Element) -> None:
        item, pending_in = await self._load(user, contact)
        state = SubState.of(item, pending_in)
        new = OUTBOUND[type_].get(state)
        presence = self.server.presence
        if type_ == "subscribed" and new is None and not state.contact_sees_owner:
            # §3.4.2: approving before being asked is a pre-approval; it is
            # remembered on the item (created if need be) and not routed.
            if item is None or not item.approved:
                await self.put(user, dataclasses.replace(item or RosterItem(contact), approved=True))
            return
        if type_ == "unsubscribed" and new is None and item is not None and item.approved:
            # §3.4: 'unsubscribed' cancels a pre-approval.
            await self.put(user, dataclasses.replace(item, approved=False))
            return
        if new is not None:
            await self._change(user, contact, item, state, new)
        # Routed in every other case (the contact's side decides by its own
        # state, so a repeated request or a stale roster heals).
        await self._inbound(contact, user, type_, stanza)
        if type_ == "subscribed" and new is not None:
            presence.share(user, contact)  # §3.1.5: the new subscriber gets our presence
        elif type_ == "unsubscribed" and state.contact_sees_owner:
            presence.withdraw(user, contact)  # §3.2.2: and no longer sees us

    async def _inbound(self, owner: JID, sender: JID, type_: SubType, stanza: etree._Element) -> bool:
        """``owner`` receives a subscription stanza from ``sender`` (A.3);
        returns whether the owner's state changed."""
        if owner.domain not in self.server.config.hosts or owner.local is None:
            return False  # no federation: nobody here to tell
        storage = self.server.storage
        if not await storage.user_exists(owner):
            if type_ == "subscribe":
                # §3.1.3: no such contact: the server answers 'unsubscribed'.
                await self._inbound(
                    sender, owner, "unsubscribed", subscription_stanza("unsubscribed", owner, sender)
                )
            return False
        item, pending_in = await self._load(owner, sender)
        state = SubState.of(item, pending_in)
        if type_ == "subscribe":
            if state.contact_sees_owner:
                # §3.1.3: already approved: the server answers 'subscribed' itself.
                reply = subscription_stanza("subscribed", owner, sender)
                if await self._inbound(sender, owner, "subscribed", reply):
                    self.server.presence.share(owner, sender)
                return False
            await storage.add_subscription_request(owner, sender, to_bytes(stanza))
            if item is not None and item.approved:
                # §3.4.2: pre-approved: approve now, as if the owner had.
                await self._outbound(
                    owner, sender, "subscribed", subscription_stanza("subscribed", owner, sender)
                )
                return True
            if any(s.protocol == "native" and s.available for s in self.server.router.sessions_of(owner)):
                await self._approve_for_native(owner, sender)
                return True
        new = INBOUND[type_].get(state)
        if new is None:
            return False  # A.3: no state change, nothing delivered
        if type_ != "subscribe":  # (subscribe stored the request above: pending in)
            await self._change(owner, sender, item, state, new)
        self._deliver_available(owner, stanza)
        if type_ == "unsubscribe" and state.contact_sees_owner:
            self.server.presence.withdraw(owner, sender)  # §3.3.3
        return True

    async def _approve_for_native(self, owner: JID, requester: JID) -> None:
        """A native user cannot answer ``requester``'s request: approve it and
        make the relation mutual, as a native contact-add would."""
        self._deliver_available(requester, subscription_stanza("subscribed", owner, requester))
        await self._make_mutual(owner, requester)

    async def _change(
        self, owner: JID, contact: JID, item: RosterItem | None, old: SubState, new: SubState
    ) -> None:
        """Store a state transition; push the item when its visible part changed."""
        if old.pending_in and not new.pending_in:
            await self.server.storage.delete_subscription_request(owner, contact)
        if (old.subscription, old.pending_out) == (new.subscription, new.pending_out):
            return  # only 'pending in' changed: not part of the roster item (§3.1.3)
        current = item or RosterItem(contact)
        # A granted subscription makes a pre-approval moot (§3.4).
        approved = current.approved and not new.contact_sees_owner
        await self.put(
            owner,
            dataclasses.replace(
                current, subscription=new.subscription, ask=new.pending_out, approved=approved
            ),
        )

    async def _load(self, owner: JID, contact: JID) -> tuple[RosterItem | None, bool]:
        """The owner's item for the contact, and whether a request from the contact waits."""
        storage = self.server.storage
        item = await storage.get_roster_item(owner, contact)
        requests = await storage.get_subscription_requests(owner)
        return item, any(jid == contact.bare for jid, _ in requests)

    def _deliver_available(self, owner: JID, stanza: etree._Element) -> None:
        """Subscription stanzas go to each available resource (§3.1.3, §3.1.6, …);
        native sessions simply have no form for them."""
        stamp = datetime.now(UTC)
        for session in self.server.router.sessions_of(owner):
            if session.available:
                session.deliver(stanza, stamp)


def _own_roster_only(session: Session, iq: etree._Element) -> None:
    """A roster iq is for the account's own roster: no 'to', or the own bare JID."""
    to = iq.get("to")
    if to is not None and JID.parse(to) != session.jid.bare:
        raise StanzaError(StanzaCondition.FORBIDDEN, "only your own roster")


def _parse_set(query: etree._Element) -> tuple[JID, bool, str | None, tuple[str, ...]]:
    """(contact, remove?, name, groups) of a roster set, checked per §2.3.3."""
    items = query.findall(ITEM)
    if len(items) != 1:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "a roster set carries exactly one item")
    item = items[0]
    try:
        contact = JID.parse(item.get("jid", ""))
    except InvalidJID:
        raise StanzaError(StanzaCondition.JID_MALFORMED, "bad item jid") from None
    if contact.resource is not None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "roster items are bare JIDs")
    if item.get("subscription") == "remove":
        return contact, True, None, ()  # any other value is ignored (§2.1.2.5)
    name = item.get("name") or None
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "name too long")
    groups = [group.text or "" for group in item.findall(GROUP)]
    if len(set(groups)) != len(groups):
        raise StanzaError(StanzaCondition.BAD_REQUEST, "duplicate group")
    if any(not group for group in groups):
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "empty group name")
    if any(len(group) > MAX_GROUP_LENGTH for group in groups):
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "group name too long")
    return contact, False, name, tuple(groups)
