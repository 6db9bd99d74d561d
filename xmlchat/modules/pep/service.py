"""XEP-0163 Personal Eventing Protocol: a pubsub service on every account.

The owner publishes, retracts and deletes on its own bare JID; anyone the
node's access model admits reads items (``presence``: contacts subscribed to
the owner's presence; ``open``: anyone; ``whitelist``: the owner alone, as
XEP-0402 bookmarks ask). A publish creates its node (auto-create) with the
publish-options as configuration; on an existing node they are preconditions
(XEP-0060 §7.1.5). Notifications go to the owner's resources and the
subscribed contacts' resources whose caps carry ``node+notify`` (§4.3, see
:mod:`.interest`); a resource whose interests become known, and a contact
whose subscription is approved, gets the last item of each node it wants
(§4.3.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.pep import wire
from xmlchat.modules.pep.interest import Interests
from xmlchat.routing.api import (
    Feature,
    Identity,
    InboundFilter,
    IqHandler,
    OnSessionEnded,
    OnStop,
    OutboundFilter,
    Registration,
)
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import CLIENT_NS, new_id, to_bytes
from xmlchat.storage import PepItem, PepNode, PepStore, RosterStore

XEP: Final = 163
_PRESENCE: Final = f"{{{CLIENT_NS}}}presence"
_IQ: Final = f"{{{CLIENT_NS}}}iq"
# Subscriptions that let the owner's contact see its presence, and so its PEP
# (RFC 6121 §2.1.2.5, seen from the owner's roster); and the reverse.
_SEES_OWNER: Final = frozenset({"from", "both"})
_SEES_CONTACT: Final = frozenset({"to", "both"})


Published = Callable[[JID, str, PepItem], Awaitable[None]]


class PepStorage(PepStore, RosterStore, Protocol):
    """The nodes, and the owner's roster for access and notifications."""


class Pep:
    name = "pep"

    def __init__(self, ctx: ModuleContext[PepStorage]) -> None:
        self.ctx = ctx
        self.interests = Interests(ctx.domain, ctx.deliver, self._interests_known)
        self._tasks: set[asyncio.Task[None]] = set()
        # Told of every item published or retracted, after its notifications
        # (the conversions of XEP-0398 and XEP-0402 §5).
        self.published: list[Published] = []
        self.retracted: list[Callable[[JID, str, str], Awaitable[None]]] = []

    def setup(self) -> list[Registration]:
        return [
            Identity("pubsub", "pep", account=True),
            *(Feature(var, account=True) for var in wire.FEATURES),
            IqHandler("get", f"{{{wire.NS}}}pubsub", self.get, accounts=True),
            IqHandler("set", f"{{{wire.NS}}}pubsub", self.set, accounts=True),
            IqHandler("get", f"{{{wire.OWNER_NS}}}pubsub", self.owner_get),
            IqHandler("set", f"{{{wire.OWNER_NS}}}pubsub", self.owner_set),
            InboundFilter(self._from_session, priority=100, kinds=frozenset({"presence", "iq"})),
            OutboundFilter(self._approved),
            OnSessionEnded(self._ended),
            OnStop(self._stop),
        ]

    # ---- requests

    async def get(self, session: Session, iq: etree._Element) -> etree._Element:
        request = _only_child(iq[0])
        if request.tag != f"{{{wire.NS}}}items":
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)
        owner, name = _owner(session, iq), wire.node_of(request)
        node = await self._node(owner, name)
        await self._check_access(session.bare, owner, node)
        ids = [item.get("id", "") for item in request.iterchildren(f"{{{wire.NS}}}item")]
        max_items = request.get("max_items")
        limit = int(max_items) if max_items and max_items.isdigit() else None
        items = await self.ctx.store.get_pep_items(owner, name, ids=ids, limit=limit)
        return wire.items_result(name, items)

    async def set(self, session: Session, iq: etree._Element) -> etree._Element | None:
        if _owner(session, iq) != session.bare:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only the owner changes its PEP nodes")
        request = iq[0][0] if len(iq[0]) else iq[0]
        match request.tag:
            case "{http://jabber.org/protocol/pubsub}publish":
                options = iq[0].find(f"{{{wire.NS}}}publish-options/{{{wire.DATA_NS}}}x")
                return await self._publish(
                    session.bare, request, wire.form_values(options, wire.PUBLISH_OPTIONS)
                )
            case "{http://jabber.org/protocol/pubsub}retract":
                await self._retract(session.bare, request)
                return None
            case "{http://jabber.org/protocol/pubsub}create":
                config = iq[0].find(f"{{{wire.NS}}}configure/{{{wire.DATA_NS}}}x")
                await self._create(
                    session.bare, wire.node_of(request), wire.form_values(config, wire.NODE_CONFIG)
                )
                return None
        raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)

    async def owner_get(self, session: Session, iq: etree._Element) -> etree._Element:
        request = _only_child(iq[0])
        if request.tag != f"{{{wire.OWNER_NS}}}configure":
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)
        node = await self._node(session.bare, wire.node_of(request))
        pubsub = etree.Element(f"{{{wire.OWNER_NS}}}pubsub", nsmap={None: wire.OWNER_NS})
        etree.SubElement(pubsub, f"{{{wire.OWNER_NS}}}configure", node=node.name).append(wire.form(node))
        return pubsub

    async def owner_set(self, session: Session, iq: etree._Element) -> None:
        request = _only_child(iq[0])
        name = wire.node_of(request)
        node = await self._node(session.bare, name)
        if request.tag == f"{{{wire.OWNER_NS}}}delete":
            await self.ctx.store.delete_pep_node(session.bare, name)
            return
        if request.tag == f"{{{wire.OWNER_NS}}}configure":
            options = wire.form_values(request.find(f"{{{wire.DATA_NS}}}x"), wire.NODE_CONFIG)
            limit = self.ctx.limits.max_pep_items
            await self.ctx.store.put_pep_node(session.bare, wire.configured(name, options, limit, node))
            return
        raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED)

    # ---- publishing

    async def _publish(self, owner: JID, request: etree._Element, options: dict[str, str]) -> etree._Element:
        name = wire.node_of(request)
        items = list(request.iterchildren(f"{{{wire.NS}}}item"))
        if len(items) != 1 or len(items[0]) != 1:
            raise wire.pubsub_error(StanzaCondition.BAD_REQUEST, "invalid-payload", "one item, one payload")
        payload = to_bytes(items[0][0])
        if len(payload) > self.ctx.limits.max_pep_item_bytes:
            raise wire.pubsub_error(StanzaCondition.NOT_ACCEPTABLE, "payload-too-big")
        item = PepItem(items[0].get("id") or new_id(), payload, datetime.now(UTC))
        await self.publish(owner, name, item, options)
        return wire.publish_result(name, item.id)

    async def publish(
        self, owner: JID, name: str, item: PepItem, options: dict[str, str], *, observed: bool = True
    ) -> None:
        """Publish ``item`` on the owner's node ``name``, creating it with
        ``options`` or holding it to them; notify; tell the observers unless
        ``observed`` is False. Also for other modules publishing on a user's
        behalf (XEP-0398, XEP-0402 §5)."""
        node = await self.ctx.store.get_pep_node(owner, name)
        if node is None:
            node = await self._create(owner, name, options)
        elif wire.configured(name, options, self.ctx.limits.max_pep_items, node) != node:
            raise wire.pubsub_error(StanzaCondition.CONFLICT, "precondition-not-met")
        await self.ctx.store.publish_pep_item(owner, name, item)
        await self._notify(owner, node, wire.published_event(name, item))
        for observer in self.published if observed else ():
            await observer(owner, name, item)

    async def _create(self, owner: JID, name: str, options: dict[str, str]) -> PepNode:
        if await self.ctx.store.get_pep_node(owner, name) is not None:
            raise StanzaError(StanzaCondition.CONFLICT, "the node exists")
        if len(await self.ctx.store.list_pep_nodes(owner)) >= self.ctx.limits.max_pep_nodes:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many PEP nodes")
        node = wire.configured(name, options, self.ctx.limits.max_pep_items)
        await self.ctx.store.put_pep_node(owner, node)
        return node

    async def _retract(self, owner: JID, request: etree._Element) -> None:
        name = wire.node_of(request)
        node = await self._node(owner, name)
        ids = [item.get("id", "") for item in request.iterchildren(f"{{{wire.NS}}}item")]
        if len(ids) != 1 or not ids[0]:
            raise wire.pubsub_error(StanzaCondition.BAD_REQUEST, "item-required")
        if not await self.retract(owner, node, ids[0], notify=request.get("notify") in ("1", "true")):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such item")

    async def retract(
        self, owner: JID, node: PepNode, item_id: str, *, notify: bool, observed: bool = True
    ) -> bool:
        """Remove one item (False: there was none); notify if asked; tell the
        observers unless ``observed`` is False."""
        if not await self.ctx.store.retract_pep_item(owner, node.name, item_id):
            return False
        if notify:
            await self._notify(owner, node, wire.retracted_event(node.name, item_id))
        for observer in self.retracted if observed else ():
            await observer(owner, node.name, item_id)
        return True

    # ---- notifications

    async def _notify(self, owner: JID, node: PepNode, body: etree._Element) -> None:
        for contact in await self._audience(owner, node):
            for session in self.ctx.sessions.available_sessions(contact):
                if session.capabilities.full_xmpp and self.interests.wants(session, node.name):
                    await self._send(owner, session, etree.fromstring(etree.tostring(body)))

    async def _audience(self, owner: JID, node: PepNode) -> list[JID]:
        """The owner, and the contacts its access model lets see the node."""
        if node.access == "whitelist":
            return [owner]
        roster, _ = await self.ctx.store.get_roster(owner)
        return [owner, *(item.jid for item in roster if item.subscription in _SEES_OWNER)]

    async def _send(self, owner: JID, session: Session, body: etree._Element) -> None:
        message = wire.event(str(owner), body)
        message.set("to", str(session.jid))
        routed = await self.ctx.to_account(message, session.bare)  # blocking, as any message
        if routed is not None:
            self.ctx.deliver(session, routed)

    async def _last_items(self, session: Session, owners: list[JID]) -> None:
        """§4.3.3: the newest item of each node ``session`` wants, of each owner it may see."""
        wanted = self.interests.nodes_of(session)
        for owner in owners:
            for node in await self.ctx.store.list_pep_nodes(owner):
                if node.name not in wanted or (owner != session.bare and node.access == "whitelist"):
                    continue
                for item in await self.ctx.store.get_pep_items(owner, node.name, limit=1):
                    await self._send(owner, session, wire.published_event(node.name, item))

    def _interests_known(self, session: Session) -> None:
        if self.ctx.sessions.get(session.jid) is session:
            self._spawn(self._at_login(session))

    async def _at_login(self, session: Session) -> None:
        roster, _ = await self.ctx.store.get_roster(session.bare)
        seen = [item.jid for item in roster if item.subscription in _SEES_CONTACT]
        await self._last_items(session, [session.bare, *seen])

    # ---- hooks

    def _from_session(self, session: Session, stanza: etree._Element) -> etree._Element | None:
        """Caps from broadcast presence; answers to our disco#info consumed."""
        tag = stanza.tag  # read once: this runs for every stanza a session sends
        if tag == _PRESENCE:
            if stanza.get("to") is None and session.capabilities.full_xmpp:
                type_ = stanza.get("type")
                if type_ is None:
                    self.interests.presence(session, stanza)
                elif type_ == "unavailable":
                    self.interests.forget(session)
        elif tag == _IQ and self.interests.answer(stanza):
            return None
        return stanza

    def _approved(self, session: Session, stanza: etree._Element) -> etree._Element:
        """A contact approved ``session``'s subscription: its last items follow."""
        if stanza.tag == _PRESENCE and stanza.get("type") == "subscribed" and stanza.get("from"):
            self._spawn(self._last_items(session, [JID.parse(stanza.get("from", "")).bare]))
        return stanza

    async def _ended(self, session: Session) -> None:
        self.interests.forget(session)

    async def _stop(self) -> None:
        await self.interests.stop()
        for task in list(self._tasks):
            task.cancel()

    # ---- helpers

    async def _node(self, owner: JID, name: str) -> PepNode:
        node = await self.ctx.store.get_pep_node(owner, name)
        if node is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
        return node

    async def _check_access(self, requester: JID, owner: JID, node: PepNode) -> None:
        if requester == owner or node.access == "open":
            return
        if node.access == "presence":
            item = await self.ctx.store.get_roster_item(owner, requester)
            if item is not None and item.subscription in _SEES_OWNER:
                return
        raise StanzaError(StanzaCondition.FORBIDDEN, "the node's access model does not include you")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _owner(session: Session, iq: etree._Element) -> JID:
    """The PEP service addressed: an account's bare JID; no 'to' is one's own.
    The server itself has no pubsub service (XEP-0060 §3)."""
    to = iq.get("to")
    if to is None:
        return session.bare
    owner = JID.parse(to).bare
    if owner.local is None:
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "no pubsub service on the server")
    return owner


def _only_child(element: etree._Element) -> etree._Element:
    children = [child for child in element if isinstance(child.tag, str)]
    if len(children) != 1:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "one request per iq")
    return children[0]
