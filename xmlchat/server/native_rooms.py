"""Native rooms: the front end's translation to and from the XEP-0045 room
service (docs/native-protocol.md, "Rooms").

A ``<join>`` is presence to ``room@service/nick``, a ``<leave>`` unavailable
presence, a ``<room-message>`` a groupchat message: the same stanzas an XMPP
client sends, through :meth:`Hub.receive`, so native and XMPP occupants share
one room. What the room sends back is read here: occupant presence becomes
``<joined>``, ``<occupant>`` and ``<left>``, groupchat messages
``<room-message>`` (the subject ``<room-subject>``). The occupant list ``<who>`` shows is the one this
connection was told about, as an XMPP client keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.muc import names
from xmlchat.protocol import native
from xmlchat.routing.hub import Hub
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, DELAY_NS, body_text, child, make, new_id

_DELAY: Final = f"{{{DELAY_NS}}}delay"
_SUBJECT: Final = "{jabber:client}subject"
_STATUS: Final = f"{{{names.USER}}}status"
RoomRequest = native.JoinRequested | native.LeaveRequested | native.WhoRequested | native.RoomMessageReceived
# Why a room put us out, by XEP-0045 §15.6.2 status code.
_REASONS: Final = {
    names.STATUS_KICKED: "kicked",
    names.STATUS_BANNED: "banned",
    names.STATUS_AFFILIATION_LOST: "removed",
    names.STATUS_MEMBERS_ONLY: "removed",
    names.STATUS_SHUTDOWN: "shutdown",
}


class NativeRooms:
    def __init__(
        self,
        core: native.NativeServerStream,
        hub: Hub,
        service: str,
        session: Callable[[], Session | None],
        enabled: bool = True,
    ) -> None:
        self.core = core
        self.enabled = enabled  # muc.enabled: is there a room service at all?
        self.hub = hub
        self.service = service  # conference.<domain>: where "lobby" is
        self._current = session
        self.nicks: dict[JID, str] = {}  # rooms we are in -> our nick
        self.occupants: dict[JID, set[str]] = {}
        self._joining: dict[JID, str | None] = {}  # room -> the <join>'s id
        self._leaving: dict[JID, str | None] = {}

    def _session(self) -> Session:
        session = self._current()
        assert session is not None  # room requests come after login (the core checks)
        return session

    def room(self, text: str) -> JID:
        try:
            jid = JID.parse(text if "@" in text else f"{text}@{self.service}")
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad room address {text!r}") from None
        if jid.local is None or jid.resource is not None:
            raise StanzaError(StanzaCondition.JID_MALFORMED, f"{text!r} is not a room")
        return jid

    # ---- requests

    async def handle(self, event: RoomRequest) -> None:
        """Carry out one room request; a refusal is a StanzaError for the
        front end to answer with the request's id."""
        if not self.enabled:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "this server has no rooms")
        match event:
            case native.JoinRequested():
                await self.join(event)
            case native.LeaveRequested():
                await self.leave(event)
            case native.WhoRequested():
                self.who(event)
            case native.RoomMessageReceived():
                self.core.send_ack(*await self.say(event))

    async def join(self, event: native.JoinRequested) -> None:
        session = self._session()
        room = self.room(event.room)
        nick = event.nick or session.jid.local or "guest"
        to = names.room_address(room, names.nickname(nick))
        presence = make("presence", {"from": str(session.jid), "to": str(to)})
        x = etree.SubElement(presence, names.X_MUC, nsmap={None: names.MUC})
        if event.password is not None:
            etree.SubElement(x, f"{{{names.MUC}}}password").text = event.password
        if event.max_history is not None:
            etree.SubElement(x, f"{{{names.MUC}}}history", maxstanzas=str(event.max_history))
        self._joining[room] = event.id
        try:
            await self.hub.receive(session, presence, to)
        finally:
            self._joining.pop(room, None)

    async def leave(self, event: native.LeaveRequested) -> None:
        session = self._session()
        room = self.room(event.room)
        nick = self.nicks.get(room)
        if nick is None:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"you are not in {room}")
        to = names.room_address(room, nick)
        self._leaving[room] = event.id
        try:
            presence = make("presence", {"from": str(session.jid), "to": str(to), "type": "unavailable"})
            await self.hub.receive(session, presence, to)
        finally:
            self._leaving.pop(room, None)

    async def say(self, event: native.RoomMessageReceived) -> tuple[str, datetime]:
        """The groupchat message; returns its id and when the room took it (for the ack)."""
        session = self._session()
        room = self.room(event.room)
        message = make("message", {"from": str(session.jid), "to": str(room), "type": "groupchat"})
        message.set("id", event.id or new_id())
        etree.SubElement(message, BODY).text = event.body
        stamp = datetime.now(UTC)
        await self.hub.receive(session, message, room, stamp)
        return message.get("id", ""), stamp

    def who(self, event: native.WhoRequested) -> None:
        room = self.room(event.room)
        if room not in self.nicks:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"you are not in {room}")
        self.core.send_occupants(str(room), sorted(self.occupants.get(room, ())), event.id)

    # ---- what rooms send

    def write_presence(self, stanza: etree._Element) -> bool:
        """Occupant presence (it carries ``muc#user``); False for any other."""
        x = child(stanza, names.X_USER)
        sender = JID.parse_or_none(stanza.get("from"))
        if x is None or sender is None or sender.resource is None:
            return False
        room, nick = sender.bare, sender.resource
        codes = {status.get("code") for status in x.iterfind(_STATUS)}
        available = stanza.get("type") is None
        if names.STATUS_SELF in codes:
            self._own(room, nick, available, codes, x)
            return True
        seen = self.occupants.setdefault(room, set())
        if available != (nick in seen):
            (seen.add if available else seen.discard)(nick)
            self.core.send_occupant(str(room), nick, available)
        return True

    def _own(self, room: JID, nick: str, available: bool, codes: set[str | None], x: etree._Element) -> None:
        if available:
            # Answered once per <join> (also a second one: a new nick), and
            # told when a room renames us; a status change needs no word.
            told = self.nicks.get(room) == nick and room not in self._joining
            self.nicks[room] = nick
            self.occupants.setdefault(room, set()).add(nick)
            if not told:
                self.core.send_joined(str(room), nick, self._joining.get(room))
            return
        self.occupants.get(room, set()).discard(nick)
        if names.STATUS_NEW_NICK in codes:
            return  # our nick changes: the new one's presence follows
        reason = next((_REASONS[c] for c in codes if c in _REASONS), None)
        if x.find(f"{{{names.USER}}}destroy") is not None:
            reason = "destroyed"
        self.nicks.pop(room, None)
        self.occupants.pop(room, None)
        self.core.send_left(str(room), reason, self._leaving.get(room))

    def is_occupant(self, address: str) -> bool:
        """Whether ``address`` is someone in a room we are in (``room@service/nick``):
        a private message from them keeps that address, to answer through the room."""
        jid = JID.parse_or_none(address)
        return jid is not None and jid.resource is not None and jid.bare in self.nicks

    def write_message(self, stanza: etree._Element, stamp: datetime) -> bool:
        """A groupchat message (or the room's subject, §8.1); False for any other."""
        if stanza.get("type") != "groupchat":
            return False
        body = body_text(stanza)
        sender = JID.parse_or_none(stanza.get("from"))
        subject = child(stanza, _SUBJECT)
        if subject is not None and body is None and sender is not None:
            self.core.send_room_subject(str(sender.bare), sender.resource, subject.text or "")
            return True
        if body is None or sender is None or sender.resource is None:
            return True
        delay = child(stanza, _DELAY)
        sent = _parse_stamp(delay.get("stamp")) if delay is not None else None
        self.core.send_room_message(
            stanza.get("id") or new_id(),
            str(sender.bare),
            sender.resource,
            sent or stamp,
            body,
            delay is not None,
        )
        return True


def _parse_stamp(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return None
