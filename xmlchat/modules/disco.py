"""XEP-0030 Service Discovery: what the server and its accounts are (§3, §4).

The server is ``server/im`` and lists the features every module registered
(:class:`~xmlchat.routing.api.Feature`). A bare account JID — one's own, or
another local user's, answered by the server on the user's behalf (RFC 6121
§8.5.2.1.3; no 'to' means one's own, RFC 6120 §10.3.3) — is ``account/registered``
with the features registered for accounts (``Feature(var, account=True)``).
The server's info is also answered at its XEP-0115 caps node (``node#ver``,
§6.2), the same list its stream features hash. Items are the components
other modules register (XEP-0114) and whatever an account's own modules list;
other nodes are unknown: item-not-found (§3.2).
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.routing.api import Feature, Identity, IqHandler, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session

XEP: Final = 30
INFO: Final = "http://jabber.org/protocol/disco#info"
ITEMS: Final = "http://jabber.org/protocol/disco#items"


class Disco:
    name = "disco"

    def __init__(self, ctx: ModuleContext[None]) -> None:
        self.ctx = ctx

    def setup(self) -> list[Registration]:
        return [
            Identity("server", "im", "xmlchat"),
            Feature(INFO),
            Feature(ITEMS),
            IqHandler("get", f"{{{INFO}}}query", self.info, accounts=True),
            IqHandler("get", f"{{{ITEMS}}}query", self.items, accounts=True),
        ]

    async def info(self, session: Session, iq: etree._Element) -> etree._Element:
        to_server = iq.get("to", "") in self.ctx.hosts
        caps = self.ctx.server_caps
        caps_node = f"{caps.node}#{caps.ver}"
        query = _query(INFO, iq, caps_node if to_server else None)
        if to_server:
            identities = self.ctx.identities
            features = sorted(set(self.ctx.features))
        else:
            identities = [Identity("account", "registered"), *self.ctx.account_identities]
            features = sorted({INFO, *self.ctx.account_features})
        for identity in sorted(identities, key=lambda i: (i.category, i.type)):
            attrib = {"category": identity.category, "type": identity.type}
            if identity.name:
                attrib["name"] = identity.name
            etree.SubElement(query, f"{{{INFO}}}identity", attrib)
        for var in features:
            etree.SubElement(query, f"{{{INFO}}}feature", var=var)
        return query

    async def items(self, session: Session, iq: etree._Element) -> etree._Element:
        """The server's items are the domains its modules serve (§4.1: how a
        client finds a component or a room service)."""
        query = _query(ITEMS, iq)
        host = iq.get("to", "")
        if host in self.ctx.hosts:
            names = dict(self.ctx.services)  # a service may say what it is (the room service)
            for label in self.ctx.subdomains:
                item = etree.SubElement(query, f"{{{ITEMS}}}item", jid=f"{label}.{host}")
                if label in names:
                    item.set("name", names[label])
        return query


def _query(ns: str, iq: etree._Element, known_node: str | None = None) -> etree._Element:
    node = iq[0].get("node")
    if node is not None and node != known_node:
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
    query = etree.Element(f"{{{ns}}}query", nsmap={None: ns})
    if node is not None:
        query.set("node", node)  # XEP-0115 §6.2: echoed
    return query
