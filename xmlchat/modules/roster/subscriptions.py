"""Presence subscriptions (RFC 6121 §3, Appendix A), shared by both protocols.

What each subscription stanza does to the owner's and the contact's states is
the pair of tables in :mod:`~xmlchat.modules.roster.states`. Every user is
local, so "routing" a subscription stanza is processing it as inbound for the
other user right away. Where the states live: ``subscription`` and ``ask``
(pending out) on the roster item; *pending in* is a stored subscription
request, re-delivered at each initial presence until answered (§3.1.3);
pre-approvals (§3.4, stream feature ``urn:xmpp:features:pre-approval``) are
the item's ``approved`` flag.

**Native users** cannot answer a subscription request (their protocol has no
such stanza; its contacts are mutual and immediate). So when a request reaches
a user who has a session without full XMPP online — when it arrives, or at
their next login — the server approves it on their behalf and makes the
relation mutual (``both`` on both sides), exactly as the native
``<contact-add>`` does (:meth:`Subscriptions.make_mutual`). A user logged in
only over XMPP answers for themselves. ``docs/native-protocol.md`` ("Presence
and contacts") says the same.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.presence_fanout import share, withdraw
from xmlchat.modules.roster.book import RosterBook, RosterBookStore
from xmlchat.modules.roster.states import INBOUND, OUTBOUND, SubState, SubType
from xmlchat.routing.api import OnInitialPresence, Registration, StreamFeature
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import from_bytes, make, to_bytes
from xmlchat.storage import (
    DeleteRosterItem,
    DeleteSubscriptionRequest,
    PutRosterItem,
    RosterChange,
    RosterItem,
)

PREAPPROVAL_NS: Final = "urn:xmpp:features:pre-approval"  # §3.4.1


def subscription_stanza(type_: SubType, sender: JID, to: JID) -> etree._Element:
    """A server-generated subscription stanza between two bare JIDs."""
    return make("presence", {"type": type_, "from": str(sender.bare), "to": str(to.bare)})


class Subscriptions:
    name = "subscriptions"

    def __init__(self, ctx: ModuleContext[RosterBookStore], book: RosterBook) -> None:
        self.ctx = ctx
        self.book = book

    def setup(self) -> list[Registration]:
        return [
            StreamFeature(PREAPPROVAL_NS, "sub"),
            # Before the messages module hands over stored messages, as ever.
            OnInitialPresence(self.pending_requests, priority=10),
        ]

    async def remove_item(self, user: JID, contact: JID) -> None:
        """§2.5.2: removing an item ends the subscriptions both ways, as if the
        user had sent 'unsubscribe' and 'unsubscribed'."""
        item, pending_in = await self.book.load(user, contact)
        if item is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"{contact} is not in your roster")  # §2.5.3
        state = SubState.of(item, pending_in)
        # The user's side in one transaction: a request left behind would come
        # back at the next login for an item that is gone. The contact's side
        # follows as inbound stanzas, as from the contact's own server.
        changes: list[RosterChange] = [DeleteRosterItem(user, contact)]
        if pending_in:
            changes.append(DeleteSubscriptionRequest(user, contact))
        await self.book.apply(changes)
        if state.owner_sees_contact or state.pending_out:
            await self._inbound(
                contact, user, "unsubscribe", subscription_stanza("unsubscribe", user, contact)
            )
        if state.contact_sees_owner or state.pending_in:
            await self._inbound(
                contact, user, "unsubscribed", subscription_stanza("unsubscribed", user, contact)
            )
        if state.contact_sees_owner:
            withdraw(self.ctx, user, contact)  # §3.2.2

    async def make_mutual(self, user: JID, contact: JID) -> None:
        """The native protocol's contact-add: both sides subscribed (``both``) at
        once — the team-app model the native spec documents — then presence
        exchanged as after an approved subscription (RFC 6121 §3.1.5)."""
        async with self.book.lock:
            await self._make_mutual(user, contact)

    async def remove_mutual(self, user: JID, contact: JID) -> None:
        """The native protocol's contact-remove: both roster items go, each side
        sees the other go offline (RFC 6121 §3.2 / §3.3 effects)."""
        async with self.book.lock:
            saw: dict[tuple[JID, JID], bool] = {}
            changes: list[RosterChange] = []
            for owner, other in _both_sides(user, contact):
                item, pending_in = await self.book.load(owner, other)
                saw[(owner, other)] = SubState.of(item, pending_in).owner_sees_contact
                if pending_in:
                    changes.append(DeleteSubscriptionRequest(owner, other))
                if item is not None:
                    changes.append(DeleteRosterItem(owner, other))
            await self.book.apply(changes)  # both sides, or neither
            for owner, other in _both_sides(user, contact):
                if saw[(owner, other)]:
                    withdraw(self.ctx, other, owner)

    async def _make_mutual(self, user: JID, contact: JID) -> None:
        changes: list[RosterChange] = []
        for owner, other in _both_sides(user, contact):
            current, pending_in = await self.book.load(owner, other)
            if pending_in:
                changes.append(DeleteSubscriptionRequest(owner, other))
            new = dataclasses.replace(
                current or RosterItem(other), subscription="both", ask=False, approved=False
            )
            if new != current:
                changes.append(PutRosterItem(owner, new))
        await self.book.apply(changes)  # both sides, or neither
        share(self.ctx, user, contact)
        share(self.ctx, contact, user)

    async def subscription_out(self, user: JID, contact: JID, type_: SubType, stanza: etree._Element) -> None:
        """A subscription stanza one of ``user``'s XMPP resources sent to ``contact``
        (both bare, both local, not the same)."""
        # §3.1.2 (and §3.2.1, §3.3.1): the user's server stamps the bare JIDs.
        stanza.set("from", str(user))
        stanza.set("to", str(contact))
        async with self.book.lock:
            await self._outbound(user, contact, type_, stanza)

    async def pending_requests(self, session: Session) -> None:
        """At initial presence (or a native login): the stored inbound requests.
        An XMPP session gets each again until answered (§3.1.3); for a native
        session the server approves them (see the module docstring)."""
        store = self.book.store
        user = session.jid.bare
        # Most logins find none: say so without the roster lock, which would make
        # every login in the process wait for the one before (a login storm then
        # piles up whole connections behind it, and the stored messages replayed
        # after this hook wait with them). Safe: the session is available
        # already, so a request stored after this read is delivered to it live.
        if not await store.get_subscription_requests(user):
            return
        async with self.book.lock:
            requests = await store.get_subscription_requests(user)
            stamp = datetime.now(UTC)
            for contact, data in requests:
                item = await store.get_roster_item(user, contact)
                if not SubState.of(item, True).pending_in:
                    await store.delete_subscription_request(user, contact)  # answered already
                elif not session.capabilities.full_xmpp:
                    await self._approve_for_native(user, contact)
                else:
                    self.ctx.deliver(session, from_bytes(data), stamp)

    async def _outbound(self, user: JID, contact: JID, type_: SubType, stanza: etree._Element) -> None:
        item, pending_in = await self.book.load(user, contact)
        state = SubState.of(item, pending_in)
        new = OUTBOUND[type_].get(state)
        if type_ == "subscribed" and new is None and not state.contact_sees_owner:
            # §3.4.2: approving before being asked is a pre-approval; it is
            # remembered on the item (created if need be) and not routed.
            if item is None or not item.approved:
                await self.book.put(user, dataclasses.replace(item or RosterItem(contact), approved=True))
            return
        if type_ == "unsubscribed" and new is None and item is not None and item.approved:
            # §3.4: 'unsubscribed' cancels a pre-approval.
            await self.book.put(user, dataclasses.replace(item, approved=False))
            return
        if new is not None:
            await self._change(user, contact, item, state, new)
        # Routed in every other case (the contact's side decides by its own
        # state, so a repeated request or a stale roster heals).
        await self._inbound(contact, user, type_, stanza)
        if type_ == "subscribed" and new is not None:
            share(self.ctx, user, contact)  # §3.1.5: the new subscriber gets our presence
        elif type_ == "unsubscribed" and state.contact_sees_owner:
            withdraw(self.ctx, user, contact)  # §3.2.2: and no longer sees us

    async def _inbound(self, owner: JID, sender: JID, type_: SubType, stanza: etree._Element) -> bool:
        """``owner`` receives a subscription stanza from ``sender`` (A.3);
        returns whether the owner's state changed."""
        if owner.domain not in self.ctx.hosts or owner.local is None:
            return False  # no federation: nobody here to tell
        store = self.book.store
        if not await store.user_exists(owner):
            if type_ == "subscribe":
                # §3.1.3: no such contact: the server answers 'unsubscribed'.
                await self._inbound(
                    sender, owner, "unsubscribed", subscription_stanza("unsubscribed", owner, sender)
                )
            return False
        item, pending_in = await self.book.load(owner, sender)
        state = SubState.of(item, pending_in)
        if type_ == "subscribe":
            if state.contact_sees_owner:
                # §3.1.3: already approved: the server answers 'subscribed' itself.
                reply = subscription_stanza("subscribed", owner, sender)
                if await self._inbound(sender, owner, "subscribed", reply):
                    share(self.ctx, owner, sender)
                return False
            await store.add_subscription_request(owner, sender, to_bytes(stanza))
            if item is not None and item.approved:
                # §3.4.2: pre-approved: approve now, as if the owner had.
                await self._outbound(
                    owner, sender, "subscribed", subscription_stanza("subscribed", owner, sender)
                )
                return True
            answers_for_owner = self.ctx.sessions.sessions_of(owner)
            if any(not s.capabilities.full_xmpp and s.available for s in answers_for_owner):
                await self._approve_for_native(owner, sender)
                return True
        new = INBOUND[type_].get(state)
        if new is None:
            return False  # A.3: no state change, nothing delivered
        if type_ != "subscribe":  # (subscribe stored the request above: pending in)
            await self._change(owner, sender, item, state, new)
        self.book.deliver_available(owner, stanza)
        if type_ == "unsubscribe" and state.contact_sees_owner:
            withdraw(self.ctx, owner, sender)  # §3.3.3
        return True

    async def _approve_for_native(self, owner: JID, requester: JID) -> None:
        """A native user cannot answer ``requester``'s request: approve it and
        make the relation mutual, as a native contact-add would."""
        self.book.deliver_available(requester, subscription_stanza("subscribed", owner, requester))
        await self._make_mutual(owner, requester)

    async def _change(
        self, owner: JID, contact: JID, item: RosterItem | None, old: SubState, new: SubState
    ) -> None:
        """Store a state transition, the answered request and the item together;
        push the item when its visible part changed."""
        changes: list[RosterChange] = []
        if old.pending_in and not new.pending_in:
            changes.append(DeleteSubscriptionRequest(owner, contact))
        # The item holds subscription and pending out; pending in alone is the
        # stored request, not part of the item (§3.1.3), and is not pushed.
        if (old.subscription, old.pending_out) != (new.subscription, new.pending_out):
            current = item or RosterItem(contact)
            # A granted subscription makes a pre-approval moot (§3.4).
            approved = current.approved and not new.contact_sees_owner
            changed = dataclasses.replace(
                current, subscription=new.subscription, ask=new.pending_out, approved=approved
            )
            changes.append(PutRosterItem(owner, changed))
        await self.book.apply(changes)


def _both_sides(user: JID, contact: JID) -> list[tuple[JID, JID]]:
    """(owner, other) for each roster of a mutual change; one roster names an
    item once, even were the two the same."""
    return list(dict.fromkeys(((user, contact), (contact, user))))
