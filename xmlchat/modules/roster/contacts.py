"""Mutual contacts: the native protocol's contact list, on the shared roster.

The native protocol has no subscription handshake: ``<contact-add>`` makes
both sides subscribed (``both``) at once — the team-app model
``docs/native-protocol.md`` documents — and ``<contact-remove>`` ends it both
ways. Its front end carries these out as *internal* iqs in this project's own
namespace (:data:`NS`), which no XMPP client can send.
"""

from __future__ import annotations

from typing import Final, Protocol

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.roster.book import RosterBook, RosterBookStore
from xmlchat.modules.roster.subscriptions import Subscriptions
from xmlchat.routing.api import IqHandler, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.storage import BlocklistStore, RosterItem

NS: Final = "urn:xmlchat:contacts"
LIST: Final = f"{{{NS}}}contacts"
ADD: Final = f"{{{NS}}}add"
REMOVE: Final = f"{{{NS}}}remove"
CONTACT: Final = f"{{{NS}}}contact"

_SEES_CONTACT = frozenset({"to", "both"})


class ContactsStore(RosterBookStore, BlocklistStore, Protocol):
    """The roster, and the blocklists: a blocked pair sees each other offline."""


def request(tag: str, address: str | None = None) -> etree._Element:
    """The payload a front end puts in its internal iq."""
    el = etree.Element(tag, nsmap={None: NS})
    if address is not None:
        el.set("jid", address)
    return el


class Contacts:
    name = "contacts"

    def __init__(
        self, ctx: ModuleContext[ContactsStore], book: RosterBook, subscriptions: Subscriptions
    ) -> None:
        self.ctx = ctx
        self.book = book
        self.subscriptions = subscriptions

    def setup(self) -> list[Registration]:
        return [
            IqHandler("get", LIST, self._list, internal=True),
            IqHandler("set", ADD, self._add, internal=True),
            IqHandler("set", REMOVE, self._remove, internal=True),
        ]

    async def _list(self, session: Session, iq: etree._Element) -> etree._Element:
        """Every contact, online when we see it (``to``/``both``), it is, and
        neither blocked the other (XEP-0191 §3.3: no presence either way)."""
        user = session.jid.bare
        items, _ = await self.book.store.get_roster(user)
        contacts = etree.Element(LIST, nsmap={None: NS})
        for item in items:
            online = await self._sees_online(user, item)
            etree.SubElement(contacts, CONTACT, jid=str(item.jid), online="true" if online else "false")
        return contacts

    async def _sees_online(self, user: JID, item: RosterItem) -> bool:
        if item.subscription not in _SEES_CONTACT or not self.ctx.sessions.is_online(item.jid):
            return False
        store = self.ctx.store
        return not await store.is_blocked(user, item.jid) and not await store.is_blocked(item.jid, user)

    async def _add(self, session: Session, iq: etree._Element) -> etree._Element:
        contact = self._address(iq)
        if contact == session.jid.bare or not await self.book.store.user_exists(contact):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"no user {contact}")
        await self.subscriptions.make_mutual(session.jid.bare, contact)
        return await self._list(session, iq)

    async def _remove(self, session: Session, iq: etree._Element) -> etree._Element:
        contact = self._address(iq)
        await self.subscriptions.remove_mutual(session.jid.bare, contact)
        return await self._list(session, iq)

    def _address(self, iq: etree._Element) -> JID:
        """The native form: a localpart means a user of the server's domain."""
        address = iq[0].get("jid", "")
        try:
            return JID.user(address, self.ctx.domain)
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {address!r}") from None
