"""XEP-0049 Private XML Storage: any XML a client keeps on its own account.

One document per namespace (§2: the child's namespace is its key), kept for
the account alone: another entity's private data is ``forbidden`` (§3). Old
bookmarks (XEP-0048's ``storage:bookmarks``) live here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.routing.api import Feature, IqHandler, Registration
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import CLIENT_NS, from_bytes, to_bytes
from xmlchat.storage import DocumentStore

XEP: Final = 49
NS: Final = "jabber:iq:private"
QUERY: Final = f"{{{NS}}}query"
# §3: data in these namespaces is not private storage.
_RESERVED: Final = frozenset({NS, CLIENT_NS, "jabber:server"})


def document_key(namespace: str) -> str:
    return f"private:{namespace}"


class PrivateStorage:
    name = "private"

    def __init__(self, ctx: ModuleContext[DocumentStore]) -> None:
        self.ctx = ctx
        # Told of every element stored, after it is (XEP-0402 §5's conversion).
        self.stored: list[Callable[[JID, etree._Element], Awaitable[None]]] = []

    def setup(self) -> list[Registration]:
        return [
            Feature(NS),
            IqHandler("get", QUERY, self.get, accounts=True),
            IqHandler("set", QUERY, self.set, accounts=True),
        ]

    async def get(self, session: Session, iq: etree._Element) -> etree._Element:
        asked = _children(self._own(session, iq))
        query = etree.Element(QUERY, nsmap={None: NS})
        for wanted in asked:
            stored = await self.ctx.store.get_document(session.bare, document_key(_namespace(wanted)))
            # §2.3: nothing stored is answered with the empty element asked for.
            empty = etree.Element(wanted.tag, nsmap={None: _namespace(wanted)})
            query.append(from_bytes(stored) if stored is not None else empty)
        return query

    async def set(self, session: Session, iq: etree._Element) -> None:
        documents = [
            (document_key(_namespace(child)), to_bytes(child)) for child in _children(self._own(session, iq))
        ]
        for _, data in documents:
            if len(data) > self.ctx.limits.max_private_bytes:
                raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "private data too large")
        for key, data in documents:
            await self.ctx.store.put_document(session.bare, key, data)
        for child in iq[0]:
            for observer in self.stored:
                await observer(session.bare, child)

    def _own(self, session: Session, iq: etree._Element) -> etree._Element:
        """The query, if it is about the sender's own account (§3: else forbidden)."""
        to = iq.get("to")
        if to is not None and to not in self.ctx.hosts and JID.parse(to).bare != session.bare:
            raise StanzaError(StanzaCondition.FORBIDDEN, "private data is the owner's alone")
        return iq[0]


def _children(query: etree._Element) -> list[etree._Element]:
    """§2: exactly one namespaced child per document, none in a reserved namespace."""
    children = [child for child in query if isinstance(child.tag, str)]
    if not children:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "name at least one element")
    for child in children:
        if _namespace(child) in _RESERVED or not _namespace(child):
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "reserved or missing namespace")
    return children


def _namespace(element: etree._Element) -> str:
    return etree.QName(element).namespace or ""
