"""The roster primitives the roster, subscription and contact modules share:
reading an item with its pending request, writing it, and pushing the change
(RFC 6121 §2.1.6, with the version it produced, §2.6).

Writes that belong together (two users' items in a mutual change, an item
and the pending request it answers) go to the store as one transaction
(:meth:`RosterBook.apply`), so a crash between them cannot leave one side
changed. Subscription changes still read before they write, across awaits, so
:attr:`RosterBook.lock` makes them one at a time in this process (they are rare).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from copy import deepcopy
from datetime import UTC, datetime
from typing import Final, Protocol

from lxml import etree

from xmlchat.jid import JID
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import make, new_id
from xmlchat.storage import (
    AccountStore,
    DeleteRosterItem,
    PutRosterItem,
    RosterChange,
    RosterItem,
    RosterStore,
)

ROSTER_NS: Final = "jabber:iq:roster"
QUERY: Final = f"{{{ROSTER_NS}}}query"
ITEM: Final = f"{{{ROSTER_NS}}}item"
GROUP: Final = f"{{{ROSTER_NS}}}group"


class RosterBookStore(RosterStore, AccountStore, Protocol):
    """Rosters, pending requests, and whether an account exists."""


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


class RosterBook:
    def __init__(self, ctx: ModuleContext[RosterBookStore]) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.lock = asyncio.Lock()
        # §2.1.6: resources that requested the roster get pushes.
        self._interested: weakref.WeakSet[Session] = weakref.WeakSet()

    def interested(self, session: Session) -> None:
        self._interested.add(session)

    async def load(self, owner: JID, contact: JID) -> tuple[RosterItem | None, bool]:
        """The owner's item for the contact, and whether a request from the contact waits."""
        item = await self.store.get_roster_item(owner, contact)
        requests = await self.store.get_subscription_requests(owner)
        return item, any(jid == contact.bare for jid, _ in requests)

    async def put(self, user: JID, item: RosterItem) -> None:
        version = await self.store.put_roster_item(user, item)
        self.push(user, item_element(item), version)

    async def apply(self, changes: Sequence[RosterChange]) -> None:
        """Write ``changes`` in one transaction, all or none, then push each item
        change with the version its roster got: only what was committed is
        pushed (RFC 6121 §2.1.6, §2.6)."""
        if not changes:
            return
        versions = await self.store.apply_roster_changes(changes)
        for change in changes:
            if isinstance(change, PutRosterItem):
                self.push(change.user, item_element(change.item), versions[change.user.bare])
            elif isinstance(change, DeleteRosterItem):
                removed = item_element(RosterItem(change.contact), remove=True)
                self.push(change.user, removed, versions[change.user.bare])

    def push(self, user: JID, item: etree._Element, version: int) -> None:
        """RFC 6121 §2.1.6: a roster push to each interested resource, with the
        roster version the change produced (§2.6)."""
        stamp = datetime.now(UTC)
        for session in self.ctx.sessions.sessions_of(user):
            if session not in self._interested:
                continue
            # No 'from': a push comes from the user's own account (§2.1.6).
            iq = make("iq", {"type": "set", "id": f"push-{new_id()}", "to": str(session.jid)})
            query = etree.SubElement(iq, QUERY, ver=str(version), nsmap={None: ROSTER_NS})
            query.append(deepcopy(item))
            self.ctx.deliver(session, iq, stamp)

    def deliver_available(self, owner: JID, stanza: etree._Element) -> None:
        """Subscription stanzas go to each available resource (§3.1.3, §3.1.6, …);
        a front end with no form for them leaves them out."""
        stamp = datetime.now(UTC)
        for session in self.ctx.sessions.sessions_of(owner):
            if session.available:
                self.ctx.deliver(session, stanza, stamp)
