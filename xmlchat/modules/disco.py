"""XEP-0030 Service Discovery: what the server and its accounts are (§3, §4).

The server is ``server/im`` and lists the features every module registered
(:class:`~xmlchat.routing.api.Feature`). A bare account JID — one's own, or
another local user's, answered by the server on the user's behalf (RFC 6121
§8.5.2.1.3; no 'to' means one's own, RFC 6120 §10.3.3) — is ``account/registered``
with the features registered for accounts (``Feature(var, account=True)``).
The server's items are the services modules list (the room service); an
account has none. Nodes are unknown: item-not-found (§3.2).
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.routing.api import Feature, Identity, IqHandler, ModuleContext, Registration
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
        query = _query(INFO, iq)
        if iq.get("to", "") in self.ctx.hosts:
            for identity in sorted(self.ctx.identities, key=lambda i: (i.category, i.type)):
                attrib = {"category": identity.category, "type": identity.type}
                if identity.name:
                    attrib["name"] = identity.name
                etree.SubElement(query, f"{{{INFO}}}identity", attrib)
            features = sorted(set(self.ctx.features))
        else:
            etree.SubElement(query, f"{{{INFO}}}identity", category="account", type="registered")
            features = sorted({INFO, *self.ctx.account_features})
        for var in features:
            etree.SubElement(query, f"{{{INFO}}}feature", var=var)
        return query

    async def items(self, session: Session, iq: etree._Element) -> etree._Element:
        """The server's items are its services (§4.1: e.g. the room service)."""
        query = _query(ITEMS, iq)
        host = iq.get("to", "")
        if host in self.ctx.hosts:
            for subdomain, name in self.ctx.services:
                etree.SubElement(query, f"{{{ITEMS}}}item", jid=f"{subdomain}.{host}", name=name)
        return query


def _query(ns: str, iq: etree._Element) -> etree._Element:
    if iq[0].get("node") is not None:
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
    return etree.Element(f"{{{ns}}}query", nsmap={None: ns})
