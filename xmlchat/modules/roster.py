"""The roster (RFC 6121 §2): contact lists, shared by both protocols.

Every change is pushed to the user's interested XMPP resources (§2.1.6) with
the new roster version (§2.6).
"""

from __future__ import annotations

import dataclasses
from copy import deepcopy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from lxml import etree

from xmlchat.jid import JID
from xmlchat.modules.base import Registration
from xmlchat.stanza import make, new_id
from xmlchat.storage import RosterItem

if TYPE_CHECKING:
    from xmlchat.server.app import Server

ROSTER_NS: Final = "jabber:iq:roster"


def item_element(item: RosterItem, remove: bool = False) -> etree._Element:
    el = etree.Element(f"{{{ROSTER_NS}}}item", jid=str(item.jid), nsmap={None: ROSTER_NS})
    el.set("subscription", "remove" if remove else item.subscription)
    if item.name:
        el.set("name", item.name)
    if item.ask and not remove:
        el.set("ask", "subscribe")
    for group in item.groups:
        etree.SubElement(el, f"{{{ROSTER_NS}}}group").text = group
    return el


class Roster:
    name = "roster"

    def __init__(self, server: Server) -> None:
        self.server = server

    def setup(self) -> list[Registration]:
        return []

    async def put(self, user: JID, item: RosterItem) -> None:
        version = await self.server.storage.put_roster_item(user, item)
        self.push(user, item_element(item), version)

    async def remove(self, user: JID, contact: JID) -> None:
        version = await self.server.storage.delete_roster_item(user, contact)
        self.push(user, item_element(RosterItem(contact), remove=True), version)

    def push(self, user: JID, item: etree._Element, version: int) -> None:
        """RFC 6121 §2.1.6: a roster push to each interested resource."""
        stamp = datetime.now(UTC)
        for session in self.server.router.sessions_of(user):
            if not session.interested:
                continue
            iq = make("iq", {"type": "set", "id": f"push-{new_id()}", "to": str(session.jid)})
            query = etree.SubElement(iq, f"{{{ROSTER_NS}}}query", ver=str(version), nsmap={None: ROSTER_NS})
            query.append(deepcopy(item))
            session.deliver(iq, stamp)

    async def make_mutual(self, user: JID, contact: JID) -> None:
        """The native protocol's contact-add: both sides subscribed (``both``) at
        once — the team-app model the native spec documents — then presence
        exchanged as after an approved subscription (RFC 6121 §3.1.5)."""
        storage = self.server.storage
        for owner, other in ((user, contact), (contact, user)):
            current = await storage.get_roster_item(owner, other) or RosterItem(other)
            await self.put(owner, dataclasses.replace(current, subscription="both", ask=False))
        await self._exchange_presence(user, contact)

    async def remove_mutual(self, user: JID, contact: JID) -> None:
        """The native protocol's contact-remove: both roster items go, each side
        sees the other go offline (RFC 6121 §3.2 / §3.3 effects)."""
        storage = self.server.storage
        for owner, other in ((user, contact), (contact, user)):
            if await storage.get_roster_item(owner, other) is not None:
                await self.remove(owner, other)
        stamp = datetime.now(UTC)
        router = self.server.router
        for a, b in ((user, contact), (contact, user)):
            for peer in router.sessions_of(a):
                for session in router.sessions_of(b):
                    gone = make(
                        "presence", {"type": "unavailable", "from": str(session.jid), "to": str(peer.jid)}
                    )
                    peer.deliver(gone, stamp)

    async def _exchange_presence(self, a: JID, b: JID) -> None:
        router = self.server.router
        stamp = datetime.now(UTC)
        for x, y in ((a, b), (b, a)):
            for sender in router.sessions_of(x):
                if not sender.available:
                    continue
                for receiver in router.sessions_of(y):
                    if receiver.available:
                        presence = make("presence", {"from": str(sender.jid), "to": str(receiver.jid)})
                        receiver.deliver(presence, stamp)
