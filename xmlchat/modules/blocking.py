"""XEP-0191 Blocking Command: a user's blocklist, and the stanzas it stops.

* **The list** (§3.1–§3.5): ``<blocklist/>`` get; ``<block/>`` and
  ``<unblock/>`` set, an ``<unblock/>`` with no items empties the list. Each
  change is pushed to every resource of the user that has retrieved the list
  (§3.3 "User Blocks Contact"), the one that made it included.
* **What a block stops** (§3.3): nothing from a blocked JID reaches the user —
  a message gets ``service-unavailable``, an iq get/set too, anything else is
  dropped; messages already in the offline queue are dropped on the way out.
  What the user sends to a blocked JID is refused with ``not-acceptable`` and
  ``<blocked xmlns='urn:xmpp:blocking:errors'/>`` (messages, iq get/set) or
  dropped (presence, errors, results). Presence stops both ways: at the block
  each side gets unavailable presence from the other where a subscription let
  it see presence; at the unblock the current presence comes back.
* Items are JIDs as given and match by XEP-0016's rules
  (:func:`~xmlchat.storage.base.blocking_items`): a bare JID blocks every
  resource, a full JID one resource, a domain every JID at it.

The hot path — every stanza delivered — checks an in-memory copy of the lists
of users with a session; the recipient side of routing asks the store when the
recipient has none (offline storage). In a cluster each node keeps the lists
of users with a session there: a change made here is announced, and the other
nodes reload theirs and push it; a node that may have missed announcements
(cut off from NATS) reloads every list it keeps (docs/scale-out.md).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Final, Protocol

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.presence_fanout import share
from xmlchat.routing.api import (
    Feature,
    Filtered,
    InboundFilter,
    IqHandler,
    OnChangedElsewhere,
    OnSessionEnded,
    OnSessionOpening,
    OutboundFilter,
    Registration,
    RouteFilter,
)
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import kind, make, new_id
from xmlchat.storage import BlocklistFull, BlocklistStore, RosterItem
from xmlchat.storage.base import blocking_items

XEP: Final = 191
NS: Final = "urn:xmpp:blocking"
ERRORS_NS: Final = "urn:xmpp:blocking:errors"
BLOCKLIST: Final = f"{{{NS}}}blocklist"
BLOCK: Final = f"{{{NS}}}block"
UNBLOCK: Final = f"{{{NS}}}unblock"
ITEM: Final = f"{{{NS}}}item"
# What ModuleContext.announce_changed tells the other nodes of a cluster.
TOPIC: Final = "blocklist"

_SEES_OWNER = frozenset({"from", "both"})
_SEES_CONTACT = frozenset({"to", "both"})


class BlockingStore(BlocklistStore, Protocol):
    """The blocklists, and the roster to know who saw whose presence."""

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]: ...

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None: ...


def _blocked_error(contact: JID) -> StanzaError:
    return StanzaError(
        StanzaCondition.NOT_ACCEPTABLE, f"you have blocked {contact}", application=(ERRORS_NS, "blocked")
    )


def _answerable(stanza: etree._Element) -> bool:
    """A message or iq get/set: the kinds a sender is told about (§3.3)."""
    type_ = stanza.get("type")
    return type_ in ("get", "set") if kind(stanza) == "iq" else kind(stanza) == "message" and type_ != "error"


class Blocking:
    name = "blocking"

    def __init__(self, ctx: ModuleContext[BlockingStore]) -> None:
        self.ctx = ctx
        # The non-empty lists of users with a session, by bare JID.
        self._lists: dict[JID, frozenset[JID]] = {}
        self._interested: weakref.WeakSet[Session] = weakref.WeakSet()

    def setup(self) -> list[Registration]:
        return [
            Feature(NS),
            IqHandler("get", BLOCKLIST, self._get),
            IqHandler("set", BLOCK, self._block),
            IqHandler("set", UNBLOCK, self._unblock),
            OnSessionOpening(self._load, priority=100),
            OnSessionEnded(self._forget, priority=-100),
            OnChangedElsewhere(TOPIC, self._changed_elsewhere),
            InboundFilter(self._from_user, priority=100),
            RouteFilter(self._to_user, priority=100),
            OutboundFilter(self._hide, priority=100),
        ]

    # ---- the list (§3.1–§3.5)

    async def _get(self, session: Session, iq: etree._Element) -> etree._Element:
        self._interested.add(session)
        return _list_element(BLOCKLIST, await self.ctx.store.get_blocklist(session.jid.bare))

    async def _block(self, session: Session, iq: etree._Element) -> None:
        user = session.jid.bare
        items = _items(iq[0])
        if not items:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "block at least one JID")
        if any(item.bare == user for item in items):
            raise StanzaError(StanzaCondition.BAD_REQUEST, "you cannot block yourself")
        try:
            added = await self.ctx.store.block(user, items)
        except BlocklistFull:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "the blocklist is full") from None
        await self._presence_ends(user, added)  # while the filters still let it through
        await self._reload(user)
        if added:
            self.ctx.announce_changed(TOPIC, user)
            self._push(user, BLOCK, added)

    async def _unblock(self, session: Session, iq: etree._Element) -> None:
        user = session.jid.bare
        items = _items(iq[0])
        store = self.ctx.store
        removed = await store.unblock(user, items) if items else await store.unblock_all(user)
        await self._reload(user)
        if removed:
            self.ctx.announce_changed(TOPIC, user)
        await self._presence_returns(user, removed)
        if removed or not items:
            self._push(user, UNBLOCK, removed if items else [])

    def _push(self, user: JID, tag: str, items: list[JID]) -> None:
        """§3.3: the change, to every resource that retrieved the list."""
        stamp = datetime.now(UTC)
        for session in self.ctx.sessions.sessions_of(user):
            if session in self._interested:
                iq = make("iq", {"type": "set", "id": f"push-{new_id()}", "to": str(session.jid)})
                iq.append(_list_element(tag, items))
                self.ctx.deliver(session, iq, stamp)

    # ---- the in-memory copy, for users with a session

    async def _load(self, session: Session) -> None:
        await self._reload(session.jid.bare)

    async def _reload(self, user: JID) -> None:
        items = frozenset(await self.ctx.store.get_blocklist(user))
        if items:
            self._lists[user] = items
        else:
            self._lists.pop(user, None)

    async def _changed_elsewhere(self, user: JID) -> None:
        """Another node of a cluster changed ``user``'s list: §3.3 applies a
        block to all of the user's resources, so the copy here is reloaded, and
        the change pushed to the resources here that retrieved the list (the
        other node pushed to its own; presence was ended or shared there, to
        every node's sessions through their proxies)."""
        if not self.ctx.sessions.has_local_session(user):
            return  # nothing cached here: the recipient check asks the store
        before = self._lists.get(user, frozenset())
        await self._reload(user)
        after = self._lists.get(user, frozenset())
        # The items that left, named even when an unblock of everything (§3.5)
        # emptied the list: the same list on the client, and known here.
        if removed := before - after:
            self._push(user, UNBLOCK, sorted(removed, key=str))
        if added := after - before:
            self._push(user, BLOCK, sorted(added, key=str))

    async def _forget(self, session: Session) -> None:
        if not self.ctx.sessions.sessions_of(session.jid.bare):
            self._lists.pop(session.jid.bare, None)

    def _blocks(self, owner: JID, other: JID) -> bool:
        items = self._lists.get(owner)
        return items is not None and any(candidate in items for candidate in blocking_items(other))

    # ---- the filters

    def _from_user(self, session: Session, stanza: etree._Element) -> etree._Element | None:
        """Sender side: the user addresses someone they blocked."""
        if not self._lists or session.bare not in self._lists:
            return stanza  # the hot path: this user blocks nobody
        to = JID.parse_or_none(stanza.get("to"))
        if to is None or to.local is None or to.bare == session.bare:
            return stanza
        if not self._blocks(session.bare, to):
            return stanza
        if _answerable(stanza):
            raise _blocked_error(to)
        return None

    def _to_user(
        self, stanza: etree._Element, account: JID
    ) -> Filtered | Awaitable[Filtered]:
        """Recipient side, before sessions or the offline store are chosen.
        Synchronous while the answer is in memory (every message to an online
        user: no coroutine to make and await); the store's answer is awaited."""
        lists = self._lists
        cached = bool(lists) and account in lists
        # A session of the account on this node has its list cached (one on
        # another node of a cluster has it there only): not cached, none.
        if not cached and self.ctx.sessions.has_local_session(account):
            return stanza  # the hot path: an online user who blocks nobody
        sender = JID.parse_or_none(stanza.get("from"))
        if sender is None or sender.local is None or sender.bare == account:
            return stanza
        if not cached:
            return self._to_user_stored(stanza, account, sender)
        if not self._blocks(account, sender):
            return stanza
        _refuse_answerable(stanza)
        return None

    async def _to_user_stored(
        self, stanza: etree._Element, account: JID, sender: JID
    ) -> etree._Element | None:
        """An account with no session here: its list is in the store."""
        if not await self.ctx.store.is_blocked(account, sender):
            return stanza
        _refuse_answerable(stanza)
        return None

    def _hide(self, session: Session, stanza: etree._Element) -> etree._Element | None:
        """Every stanza to a session: nothing between a blocked pair, either way
        (presence fan-out, stored messages, probes' answers)."""
        if not self._lists:
            return stanza
        sender = JID.parse_or_none(stanza.get("from"))
        if sender is None or sender.local is None or sender.bare == session.bare:
            return stanza
        if self._blocks(session.bare, sender) or self._blocks(sender.bare, session.jid):
            return None
        return stanza

    # ---- presence at block and unblock (§3.3)

    async def _relations(self, user: JID, item: JID) -> list[tuple[JID, str]]:
        """The users ``item`` covers, each with the user's subscription to it:
        one user for a user's JID, every roster contact at it for a domain (a
        served domain's users have sessions here too)."""
        store = self.ctx.store
        if item.local is not None:
            relation = await store.get_roster_item(user, item.bare)
            return [(item.bare, "none" if relation is None else relation.subscription)]
        if item.resource is not None:
            return []  # domain/resource names a component's resource, no user (blocking_items)
        roster, _ = await store.get_roster(user)
        return [
            (contact.jid, contact.subscription) for contact in roster if contact.jid.domain == item.domain
        ]

    async def _presence_ends(self, user: JID, items: list[JID]) -> None:
        """Unavailable presence each way a subscription let presence go, once
        per pair of sessions even when several new items cover the same one."""
        pairs: dict[tuple[Session, Session], None] = {}
        mine = [s for s in self.ctx.sessions.sessions_of(user) if s.available]
        for item in items:
            for contact, subscription in await self._relations(user, item):
                theirs = [s for s in self.ctx.sessions.sessions_of(contact) if s.available]
                theirs = [s for s in theirs if item.resource is None or s.jid == item]
                if subscription in _SEES_OWNER:
                    pairs.update(dict.fromkeys((own, peer) for own in mine for peer in theirs))
                if subscription in _SEES_CONTACT:
                    pairs.update(dict.fromkeys((peer, own) for peer in theirs for own in mine))
        stamp = datetime.now(UTC)
        for sender, receiver in pairs:
            attrib = {"type": "unavailable", "from": str(sender.jid), "to": str(receiver.jid)}
            self.ctx.deliver(receiver, make("presence", attrib), stamp)

    async def _presence_returns(self, user: JID, items: list[JID]) -> None:
        """Current presence each way a subscription lets it go, once per pair
        of users; the filters still drop it where another item blocks."""
        pairs: dict[tuple[JID, JID], None] = {}
        for item in items:
            for contact, subscription in await self._relations(user, item):
                if subscription in _SEES_OWNER:
                    pairs[user, contact] = None
                if subscription in _SEES_CONTACT:
                    pairs[contact, user] = None
        for sender, receiver in pairs:
            share(self.ctx, sender, receiver)


def _refuse_answerable(stanza: etree._Element) -> None:
    """A stanza to a user from someone they blocked: a message or iq get/set
    gets the same answer as for an account that does not exist (§3.3), so the
    sender does not learn of the block; the caller drops anything else."""
    if _answerable(stanza):
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)


def _items(payload: etree._Element) -> list[JID]:
    items = []
    for item in payload.iter(ITEM):
        try:
            items.append(JID.parse(item.get("jid", "")))
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad JID {item.get('jid')!r}") from None
    return items


def _list_element(tag: str, items: Iterable[JID]) -> etree._Element:
    el = etree.Element(tag, nsmap={None: NS})
    for jid in items:
        etree.SubElement(el, ITEM, jid=str(jid))
    return el
