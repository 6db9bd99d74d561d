"""The roster (RFC 6121 §2): ``jabber:iq:roster`` get and set from XMPP clients.

A get makes the resource *interested* (§2.1.6); every change is pushed to the
owner's interested resources with the new version (§2.6, advertised with the
``urn:xmpp:features:rosterver`` stream feature). A roster set may change only
the name and groups; the subscription attribute is ignored unless it is
``remove`` (§2.1.2.5), which also ends the subscriptions both ways (§2.5.2,
:meth:`Subscriptions.remove_item`).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.roster.book import (
    GROUP,
    ITEM,
    QUERY,
    ROSTER_NS,
    RosterBook,
    RosterBookStore,
    item_element,
)
from xmlchat.modules.roster.subscriptions import Subscriptions
from xmlchat.routing.api import IqHandler, Registration, StreamFeature
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.storage import RosterItem

ROSTERVER_NS: Final = "urn:xmpp:features:rosterver"  # §2.6.1

# §2.3.3 leaves the limits to the server: no useful name or group is longer
# than a whole JID part may be (RFC 7622 §3.1: 1023 octets).
MAX_NAME_LENGTH: Final = 1023
MAX_GROUP_LENGTH: Final = 1023


class Roster:
    name = "roster"

    def __init__(
        self, ctx: ModuleContext[RosterBookStore], book: RosterBook, subscriptions: Subscriptions
    ) -> None:
        self.ctx = ctx
        self.book = book
        self.subscriptions = subscriptions

    def setup(self) -> list[Registration]:
        return [
            IqHandler("get", QUERY, self._get),
            IqHandler("set", QUERY, self._set),
            StreamFeature(ROSTERVER_NS, "ver"),
        ]

    async def _get(self, session: Session, iq: etree._Element) -> etree._Element | None:
        _own_roster_only(session, iq)
        self.book.interested(session)  # §2.1.6: now interested
        items, version = await self.book.store.get_roster(session.jid.bare)
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
        async with self.book.lock:
            if remove:
                await self.subscriptions.remove_item(user, contact)
                return None
            # §2.4.2: only name and groups change; subscription, ask and approved
            # are the server's (§2.1.2).
            current = await self.book.store.get_roster_item(user, contact) or RosterItem(contact)
            await self.book.put(user, dataclasses.replace(current, name=name, groups=groups))
        return None


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
