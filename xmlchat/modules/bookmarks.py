"""XEP-0402 §5 bookmarks compatibility: the same bookmarks through XEP-0402
(one PEP item per room on ``urn:xmpp:bookmarks:1``) and through XEP-0048 in
private storage (one ``<storage xmlns='storage:bookmarks'/>`` document), so an
old client and a new one of the same account see one list (the
``urn:xmpp:bookmarks:1#compat`` feature).

Each direction writes the other without telling it back, so a conversion
never echoes. Private storage's ``<url/>`` bookmarks have no XEP-0402 form and
are kept as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Protocol

from lxml import etree

from xmlchat.errors import StanzaError
from xmlchat.jid import JID
from xmlchat.modules.pep import Pep
from xmlchat.modules.private import PrivateStorage, document_key
from xmlchat.routing.api import Feature, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.stanza import from_bytes, to_bytes
from xmlchat.storage import DocumentStore, PepItem, PepStore

XEP: Final = 402
NODE: Final = "urn:xmpp:bookmarks:1"
FEATURE: Final = f"{NODE}#compat"
LEGACY_NS: Final = "storage:bookmarks"
LEGACY_KEY: Final = document_key(LEGACY_NS)
# §3: the node's configuration; the compat publishes with it, as clients do.
OPTIONS: Final = {
    "pubsub#persist_items": "true",
    "pubsub#max_items": "max",
    "pubsub#access_model": "whitelist",
}


class BookmarksStore(DocumentStore, PepStore, Protocol):
    """Both sides of the conversion."""


class BookmarksCompat:
    name = "bookmarks-compat"

    def __init__(self, ctx: ModuleContext[BookmarksStore], pep: Pep, private: PrivateStorage) -> None:
        self.ctx = ctx
        self.pep = pep
        pep.published.append(self._changed_in_pep)
        pep.retracted.append(self._changed_in_pep)
        private.stored.append(self._changed_in_private)

    def setup(self) -> list[Registration]:
        return [Feature(FEATURE, account=True)]

    async def _changed_in_private(self, owner: JID, element: etree._Element) -> None:
        """XEP-0048 stored: each room becomes (or stays) an item; the others go."""
        if element.tag != f"{{{LEGACY_NS}}}storage":
            return
        conferences = element.iterchildren(f"{{{LEGACY_NS}}}conference")
        wanted = {c.get("jid", ""): c for c in conferences if c.get("jid")}
        now = datetime.now(UTC)
        try:
            for room, conference in wanted.items():
                item = PepItem(room, to_bytes(_to_pep(conference)), now)
                await self.pep.publish(owner, NODE, item, OPTIONS, observed=False)
            node = await self.ctx.store.get_pep_node(owner, NODE)
            stale = [] if node is None else await self.ctx.store.get_pep_items(owner, NODE)
            for old in stale:
                if node is not None and old.id not in wanted:
                    await self.pep.retract(owner, node, old.id, notify=True, observed=False)
        except StanzaError as refused:  # a node configured otherwise by a client
            self.ctx.log.info("bookmarks of %s not converted to PEP: %s", owner, refused)

    async def _changed_in_pep(self, owner: JID, node: str, _: object) -> None:
        """An XEP-0402 item published or retracted: the private document is
        written again from every item, its <url/> bookmarks kept."""
        if node != NODE:
            return
        stored = await self.ctx.store.get_document(owner, LEGACY_KEY)
        legacy = etree.Element(f"{{{LEGACY_NS}}}storage", nsmap={None: LEGACY_NS})
        for item in reversed(await self.ctx.store.get_pep_items(owner, NODE)):  # oldest first
            legacy.append(_to_legacy(item.id, from_bytes(item.payload)))
        if stored is not None:
            for url in from_bytes(stored).iterchildren(f"{{{LEGACY_NS}}}url"):
                legacy.append(url)
        await self.ctx.store.put_document(owner, LEGACY_KEY, to_bytes(legacy))


def _to_pep(conference: etree._Element) -> etree._Element:
    autojoin = conference.get("autojoin") in ("1", "true")
    converted = etree.Element(
        f"{{{NODE}}}conference", {"autojoin": "true" if autojoin else "false"}, nsmap={None: NODE}
    )
    if conference.get("name"):
        converted.set("name", conference.get("name", ""))
    for field in ("nick", "password"):
        text = conference.findtext(f"{{{LEGACY_NS}}}{field}")
        if text:
            etree.SubElement(converted, f"{{{NODE}}}{field}").text = text
    return converted


def _to_legacy(room: str, conference: etree._Element) -> etree._Element:
    converted = etree.Element(f"{{{LEGACY_NS}}}conference", {"jid": room}, nsmap={None: LEGACY_NS})
    converted.set("autojoin", "true" if conference.get("autojoin") in ("1", "true") else "false")
    if conference.get("name"):
        converted.set("name", conference.get("name", ""))
    for field in ("nick", "password"):
        text = conference.findtext(f"{{{NODE}}}{field}")
        if text:
            etree.SubElement(converted, f"{{{LEGACY_NS}}}{field}").text = text
    return converted
