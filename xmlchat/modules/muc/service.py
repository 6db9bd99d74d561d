"""The room service's state and what it does with it: rooms come and go,
occupants enter, talk, change nicknames and leave (XEP-0045 §7).

Every stanza leaves through :meth:`RoomService.send`, the module context's
``deliver``: a room talks to its occupants' sessions directly, as Prosody's
MUC routes to occupants' full JIDs.
"""

from __future__ import annotations

from copy import copy
from datetime import UTC, datetime
from typing import Protocol

from lxml import etree

from xmlchat.config import Muc as MucSettings
from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.muc import names
from xmlchat.modules.muc.form import RoomConfig
from xmlchat.modules.muc.history import History, limits_of
from xmlchat.modules.muc.room import Bucket, Occupant, Room, check_entry, default_role
from xmlchat.modules.muc.stanzas import occupant_presence, subject_message
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, child
from xmlchat.storage import ArchiveStore, RoomStore, StoredRoom

# What of a join presence the room shows others (RFC 6121 §4.7).
_SHOWN = frozenset({"{jabber:client}show", "{jabber:client}status", "{jabber:client}priority"})


class MucStore(RoomStore, ArchiveStore, Protocol):
    """Persistent rooms, and the archive the rooms' messages go to (XEP-0313)."""


class RoomService:
    def __init__(self, ctx: ModuleContext[MucStore], settings: MucSettings, archive: bool) -> None:
        self.ctx = ctx
        self.settings = settings
        self.archive = archive
        self.rooms: dict[JID, Room] = {}
        self.domains = frozenset(f"{settings.subdomain}.{host}" for host in ctx.hosts)

    # ---- rooms

    def new_room(self, jid: JID, stored: StoredRoom | None = None) -> Room:
        config = RoomConfig.from_values(stored.config) if stored else RoomConfig()
        room = Room(jid.bare, config, History(self.settings.history_size))
        if stored is not None:
            room.affiliations = dict(stored.affiliations)
            room.subject, room.subject_by = stored.subject, stored.subject_by
        self.rooms[room.jid] = room
        return room

    async def load(self) -> None:
        """The persistent rooms; in a cluster, only those this node serves
        (another node's would be a stale copy once this one serves it)."""
        for domain in sorted(self.domains):
            for stored in await self.ctx.store.load_rooms(domain):
                owner = self.ctx.owner(stored.jid)
                if owner is None or owner[0] == self.ctx.node:
                    self.new_room(stored.jid, stored)

    async def fetch(self, jid: JID) -> Room | None:
        """In a cluster, a room that became this node's: its persistent state
        from the shared store (the last owner saved every change there)."""
        for stored in await self.ctx.store.load_rooms(jid.domain):
            if stored.jid == jid and jid not in self.rooms:
                return self.new_room(jid, stored)
        return self.rooms.get(jid)

    def rehome(self) -> int:
        """The cluster's live nodes changed. Rooms now served by another node
        are dropped here (their occupants are told by their own nodes, 332);
        in the rest, occupants whose node is gone leave. Returns how many
        rooms were dropped."""
        live, me = self.ctx.live_nodes(), self.ctx.node
        dropped = 0
        for jid, room in list(self.rooms.items()):
            owner = self.ctx.owner(jid)
            if owner is not None and owner[0] != me:
                del self.rooms[jid]
                dropped += 1
                continue
            for occupant in list(room.occupants.values()):
                for session in list(occupant.sessions.values()):
                    if live is not None and session.node is not None and session.node not in live:
                        self.leave(room, session)
        return dropped

    async def save(self, room: Room) -> None:
        if room.config.persistent:
            await self.ctx.store.save_room(room.stored())

    def forget_if_unused(self, room: Room) -> None:
        """A temporary room goes when its last occupant leaves (§10.1.3)."""
        if room.empty and not room.config.persistent and self.rooms.get(room.jid) is room:
            del self.rooms[room.jid]

    # ---- sending

    def send(self, session: Session, stanza: etree._Element) -> None:
        stanza.set("to", str(session.jid))
        self.ctx.deliver(session, stanza)

    def to_occupant(self, occupant: Occupant, stanza: etree._Element) -> None:
        for session in list(occupant.sessions.values()):
            self.send(session, copy(stanza))

    def broadcast(self, room: Room, stanza: etree._Element) -> int:
        """``stanza`` to every occupant's every session; how many got it.

        A groupchat message with a body is written at once by every front end
        and held by no filter, so one element serves every recipient, its 'to'
        set for each; anything else is copied per recipient (a filter may hold it)."""
        shared = stanza.get("type") == "groupchat" and child(stanza, BODY) is not None
        deliver, sent = self.ctx.deliver, 0
        for occupant in list(room.occupants.values()):
            for session in list(occupant.sessions.values()):
                out = stanza if shared else copy(stanza)
                out.set("to", str(session.jid))
                deliver(session, out)
                sent += 1
        return sent

    def sees_jid(self, room: Room, viewer: Occupant) -> bool:
        return room.config.non_anonymous or viewer.role == "moderator"

    def presence_to_all(
        self,
        room: Room,
        occupant: Occupant,
        self_codes: list[str],
        *,
        codes: tuple[str, ...] = (),
        unavailable: bool = False,
        new_nick: str | None = None,
        reason: str | None = None,
    ) -> None:
        """``occupant``'s presence to everyone, their own with status 110 (§7.2.3).
        Others see one of two forms, with or without the real JID: each is built
        once (``to_occupant`` copies it per session)."""
        forms: dict[bool, etree._Element] = {}
        for viewer in list(room.occupants.values()):
            if viewer is not occupant:
                show = self.sees_jid(room, viewer)
                if show not in forms:
                    forms[show] = occupant_presence(
                        room,
                        occupant,
                        show_jid=show,
                        codes=codes,
                        unavailable=unavailable,
                        new_nick=new_nick,
                        reason=reason,
                    )
                self.to_occupant(viewer, forms[show])
        own = occupant_presence(
            room,
            occupant,
            show_jid=True,
            codes=[names.STATUS_SELF, *codes, *self_codes],
            unavailable=unavailable,
            new_nick=new_nick,
            reason=reason,
        )
        self.to_occupant(occupant, own)

    # ---- entering, changing, leaving

    async def presence(self, session: Session, room_jid: JID, presence: etree._Element) -> None:
        """Presence to ``room@service/nick``: enter, change nick or status, or leave."""
        room = self.rooms.get(room_jid.bare)
        if presence.get("type") == "unavailable":
            if room is not None and session.jid in room.by_session:
                self.leave(room, session)
            return
        if presence.get("type") not in (None, "available"):
            return  # subscriptions to a room mean nothing (§7.2.1 covers available only)
        requested = room_jid.resource
        if requested is None:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "join with a nickname: room@service/nick")
        nick = names.nickname(requested)
        names.room_address(room_jid, nick)
        current = room.by_session.get(session.jid) if room is not None else None
        if room is not None and current is not None:
            await self._update(room, current, session, nick, presence)
            return
        await self.join(session, room, room_jid, nick, presence, modified=nick != requested)

    async def join(
        self,
        session: Session,
        room: Room | None,
        room_jid: JID,
        nick: str,
        presence: etree._Element,
        modified: bool = False,
    ) -> None:
        x = child(presence, names.X_MUC)
        password = None if x is None else x.findtext(f"{{{names.MUC}}}password")
        created = room is None
        if room is None:
            room = self._create(room_jid, session)
        holder = room.occupant(nick)
        if holder is not None and holder.real != session.bare:
            raise StanzaError(StanzaCondition.CONFLICT, "that nickname is taken in this room")
        if holder is None:
            try:
                check_entry(room, session.bare, password, self.settings.max_occupants)
            except StanzaError:
                self.forget_if_unused(room)
                raise
        occupant = holder or self._occupant(room, session, nick)
        for other in list(room.occupants.values()):
            if other is not occupant:
                show = self.sees_jid(room, occupant)
                self.send(session, occupant_presence(room, other, show_jid=show))
        occupant.presence = _shown(presence)
        room.add(occupant, session)
        codes = [names.STATUS_NON_ANONYMOUS] if room.config.non_anonymous else []
        if created:
            codes.append(names.STATUS_CREATED)
        if modified:
            codes.append(names.STATUS_NICK_MODIFIED)
        if holder is None:
            self.presence_to_all(room, occupant, codes)
        else:  # one more session of an occupant already there: only it needs telling
            self.send(
                session, occupant_presence(room, occupant, show_jid=True, codes=[names.STATUS_SELF, *codes])
            )
        for message in room.history.select(limits_of(x, datetime.now(UTC)), room.jid):
            self.send(session, message)
        self.send(session, subject_message(room))

    def _create(self, room_jid: JID, session: Session) -> Room:
        """§10.1: the first to enter a room that does not exist creates it and
        owns it. The room is open at once, as Prosody's with room locking off."""
        if len(self.rooms) >= self.settings.max_rooms:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "no more rooms can be created")
        if session.jid.domain not in self.ctx.hosts:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only local users create rooms")
        room = self.new_room(room_jid)
        room.affiliations[session.bare] = "owner"
        self.ctx.log.info("room %s created by %s", room.jid, session.bare)
        return room

    def _occupant(self, room: Room, session: Session, nick: str) -> Occupant:
        settings = self.settings
        bucket = (
            Bucket(settings.messages_per_second, settings.message_burst)
            if settings.messages_per_second > 0
            else None
        )
        return Occupant(
            nick, session.bare, default_role(room.affiliation(session.bare), room.config), bucket=bucket
        )

    async def _update(
        self, room: Room, occupant: Occupant, session: Session, nick: str, presence: etree._Element
    ) -> None:
        if names.nick_key(nick) == names.nick_key(occupant.nick) and nick == occupant.nick:
            occupant.presence = _shown(presence)
            self.presence_to_all(room, occupant, [])
            return
        holder = room.occupant(nick)
        if holder is not None and holder is not occupant:
            raise StanzaError(StanzaCondition.CONFLICT, "that nickname is taken in this room")
        # §7.6: unavailable with 303 and the new nick, then available from the new nick.
        self.presence_to_all(
            room, occupant, [], codes=(names.STATUS_NEW_NICK,), unavailable=True, new_nick=nick
        )
        room.rename(occupant, nick)
        occupant.presence = _shown(presence)
        self.presence_to_all(room, occupant, [])

    def leave(self, room: Room, session: Session, codes: tuple[str, ...] = ()) -> None:
        occupant = room.by_session.get(session.jid)
        if occupant is None:
            return
        own = occupant_presence(
            room, occupant, show_jid=True, codes=[names.STATUS_SELF, *codes], unavailable=True
        )
        self.send(session, own)
        last = len(occupant.sessions) == 1
        # Built before the session goes, so moderators see which client left.
        notices = [
            (
                viewer,
                occupant_presence(
                    room, occupant, show_jid=self.sees_jid(room, viewer), unavailable=True, codes=codes
                ),
            )
            for viewer in room.occupants.values()
            if last and viewer is not occupant
        ]
        room.remove_session(session.jid)
        for viewer, notice in notices:
            self.to_occupant(viewer, notice)
        self.forget_if_unused(room)

    def session_gone(self, session: Session) -> None:
        """The session ended or went unavailable: it leaves every room."""
        for room in [r for r in self.rooms.values() if session.jid in r.by_session]:
            try:
                self.leave(room, session)
            except Exception:  # one room's trouble never keeps the others
                self.ctx.log.exception("room %s: leaving failed for %s", room.jid, session.jid)

    def remove(
        self, room: Room, occupant: Occupant, codes: list[str], actor: str | None, reason: str | None
    ) -> None:
        """§8.2, §9.1: the occupant is put out (kicked, banned, no longer a member)."""
        for viewer in list(room.occupants.values()):
            own = viewer is occupant
            shown = [names.STATUS_SELF, *codes] if own else codes
            self.to_occupant(
                viewer,
                occupant_presence(
                    room,
                    occupant,
                    show_jid=own or self.sees_jid(room, viewer),
                    unavailable=True,
                    codes=shown,
                    actor=actor,
                    reason=reason,
                ),
            )
        room.remove(occupant)


def _shown(presence: etree._Element) -> list[etree._Element]:
    return [copy(c) for c in presence if c.tag in _SHOWN]
