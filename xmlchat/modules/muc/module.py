"""XEP-0045 Multi-User Chat at ``conference.<host>``: the module the hub sees.

Everything addressed to the room service or a JID on it arrives at
:meth:`Muc.handle` (a :class:`~xmlchat.routing.api.ServesDomain`), whatever
its kind, and is dispatched here: presence to a room JID enters, changes or
leaves; messages to the room are groupchat, subject or invitations; to an
occupant's room JID, private messages; iqs are disco, moderation,
configuration and the room's archive (XEP-0313). A session that ends or goes
unavailable leaves every room.

On a node of a cluster, each room is served by its owner node and the hub
forwards stanzas for it there (:mod:`.cluster`).

A failure in one room is that room's: an unexpected exception is logged and
answered with internal-server-error, and no other room sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

from lxml import etree

from xmlchat.config import Archive as ArchiveSettings
from xmlchat.config import Muc as MucSettings
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.archive import wire
from xmlchat.modules.archive.forms import NS as MAM
from xmlchat.modules.archive.forms import form_template, parse_query
from xmlchat.modules.muc import admin, disco, names, talk
from xmlchat.modules.muc.cluster import Memberships
from xmlchat.modules.muc.room import Room, check_entry
from xmlchat.modules.muc.service import MucStore, RoomService
from xmlchat.routing.api import (
    InboundFilter,
    OnClusterChanged,
    OnSessionEnded,
    OnStart,
    OutboundFilter,
    Registration,
    ServesDomain,
)
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import child, kind, make
from xmlchat.storage import ArchiveIdNotFound
from xmlchat.xml.writer import error_reply

_DISCO_INFO = f"{{{disco.INFO}}}query"
_DISCO_ITEMS = f"{{{disco.ITEMS}}}query"


class Muc:
    name = "muc"

    def __init__(
        self,
        ctx: ModuleContext[MucStore],
        settings: MucSettings | None = None,
        archive: ArchiveSettings | None = None,
    ) -> None:
        self.settings = settings or MucSettings()
        self.archive = archive if archive is not None and archive.enabled else None
        self.service = RoomService(ctx, self.settings, self.archive is not None)
        self.members = Memberships(ctx, self.service.domains)

    @property
    def rooms(self) -> dict[JID, Room]:
        return self.service.rooms

    def setup(self) -> list[Registration]:
        return [
            ServesDomain(self.settings.subdomain, self.handle, name="Chat rooms", partitioned=True),
            OnStart(self.service.load),
            OnSessionEnded(self._ended),
            InboundFilter(self._broadcast_unavailable, kinds=frozenset({"presence"})),
            OutboundFilter(self.members.track, clustered=True),
            OnClusterChanged(self._cluster_changed),
        ]

    async def _ended(self, session: Session) -> None:
        self.service.session_gone(session)
        if session.node is None:
            await self.members.leave_elsewhere(session)

    def _broadcast_unavailable(
        self, session: Session, stanza: etree._Element
    ) -> etree._Element | Awaitable[etree._Element]:
        """RFC 6121 §4.6.2: unavailable presence goes to every room the user
        entered (directed presence); the room service acts on it here, and
        rooms served on other nodes of a cluster are told."""
        if stanza.get("type") == "unavailable" and stanza.get("to") is None and kind(stanza) == "presence":
            self.service.session_gone(session)
            if self.members.rooms_of(session.jid):
                return self._left_elsewhere(session, stanza)
        return stanza

    async def _left_elsewhere(self, session: Session, stanza: etree._Element) -> etree._Element:
        await self.members.leave_elsewhere(session)
        return stanza

    async def _cluster_changed(self) -> None:
        told = self.members.owners_changed()
        dropped = self.service.rehome()
        if told or dropped:
            self.service.ctx.log.info(
                "cluster changed: %d local occupant(s) told their room moved (332), %d room(s) handed over",
                told, dropped,
            )

    async def handle(self, session: Session, stanza: etree._Element, to: JID | None, stamp: datetime) -> None:
        assert to is not None  # the hub gives a domain handler only addressed stanzas
        if stanza.get("type") == "error":
            return  # never answered (RFC 6120 §8.3.1)
        if to.local is not None and self.service.ctx.node is not None and to.bare not in self.service.rooms:
            await self.service.fetch(to.bare)  # owned here now: a persistent room's state is in the store
        try:
            match kind(stanza):
                case "presence":
                    if to.local is not None:
                        await self._presence(session, stanza, to)
                case "message":
                    await self._message(session, stanza, to, stamp)
                case "iq":
                    await self._iq(session, stanza, to)
        except StanzaError:
            raise
        except Exception:
            # One room's bug stays in that room: the others never see it.
            self.service.ctx.log.exception(
                "room %s: failed on a %s from %s", to.bare, kind(stanza), session.jid
            )
            raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR, "the room failed") from None

    async def _presence(self, session: Session, presence: etree._Element, to: JID) -> None:
        try:
            await self.service.presence(session, to, presence)
        except StanzaError as e:
            if not session.capabilities.full_xmpp:
                raise  # the front end says it its own way
            # §7.2.6 and on: the error presence carries the MUC <x/> clients match it by.
            reply = error_reply(presence, e)
            etree.SubElement(reply, names.X_MUC, nsmap={None: names.MUC})
            reply.attrib.pop("to", None)
            self.service.send(session, reply)

    def _room(self, to: JID) -> Room:
        room = self.service.rooms.get(to.bare) if to.local is not None else None
        if room is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"no room {to.bare}")
        return room

    async def _message(self, session: Session, message: etree._Element, to: JID, stamp: datetime) -> None:
        room = self._room(to)
        if to.resource is not None:
            talk.private(self.service, session, room, to.resource, message)
            return
        if message.get("type") == "groupchat":
            await talk.groupchat(self.service, session, room, message, stamp)
            return
        x = child(message, names.X_USER)
        if x is not None and x.find(f"{{{names.USER}}}invite") is not None:
            await talk.invite(self.service, session, room, x)
            return
        raise StanzaError(StanzaCondition.BAD_REQUEST, "messages to a room are of type groupchat")

    async def _iq(self, session: Session, iq: etree._Element, to: JID) -> None:
        type_ = iq.get("type")
        if type_ not in ("get", "set"):
            return
        payload = next(iter(iq), None)
        if payload is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "an iq get/set needs one payload")
        if to.resource is not None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "occupants answer no queries here")
        result: etree._Element | None
        if to.local is None:
            result = self._service_query(type_, payload)
        else:
            result = await self._room_query(session, self._room(to), type_, payload, iq)
        reply = make("iq", {"type": "result", "from": str(to)})
        if iq.get("id") is not None:
            reply.set("id", iq.get("id", ""))
        if result is not None:
            reply.append(result)
        self.service.send(session, reply)

    def _service_query(self, type_: str, payload: etree._Element) -> etree._Element:
        if type_ == "get" and payload.tag == _DISCO_INFO:
            return disco.service_info(payload)
        if type_ == "get" and payload.tag == _DISCO_ITEMS:
            return disco.service_items(payload, list(self.service.rooms.values()))
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    async def _room_query(
        self, session: Session, room: Room, type_: str, payload: etree._Element, iq: etree._Element
    ) -> etree._Element | None:
        match (type_, payload.tag):
            case ("get", disco_info) if disco_info == _DISCO_INFO:
                return disco.room_info(payload, room, self.archive is not None)
            case ("get", disco_items) if disco_items == _DISCO_ITEMS:
                return disco.room_items(payload, room)
            case ("get", admin.ITEM_QUERY_ADMIN):
                return admin.admin_get(room, session, payload)
            case ("set", admin.ITEM_QUERY_ADMIN):
                await admin.admin_set(self.service, room, session, payload)
                return None
            case ("get", admin.ITEM_QUERY_OWNER):
                return admin.owner_get(room, session)
            case ("set", admin.ITEM_QUERY_OWNER):
                await admin.owner_set(self.service, room, session, payload)
                return None
            case (_, mam) if mam == f"{{{MAM}}}query":
                return await self._archive_query(session, room, type_, payload)
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    async def _archive_query(
        self, session: Session, room: Room, type_: str, query: etree._Element
    ) -> etree._Element:
        """XEP-0313 §4 on the room: whoever may enter may read its archive."""
        if self.archive is None or not room.config.archiving:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "this room keeps no archive")
        if type_ == "get":
            out = etree.Element(f"{{{MAM}}}query", nsmap={None: MAM})
            out.append(form_template())
            return out
        if session.jid not in room.by_session:
            check_entry(room, session.bare, room.config.password or None, 0)
        filter_, request = parse_query(query, self.archive.max_page)
        try:
            page = await self.service.ctx.store.query_archive(room.jid, filter_, request)
        except ArchiveIdNotFound as e:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"no message {e} in the archive") from None
        for message in page.messages:
            result = wire.result_message(room.jid, session.jid, query.get("queryid"), message)
            self.service.ctx.deliver(session, result)
        return wire.fin(page)
