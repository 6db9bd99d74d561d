"""Messages in a room: groupchat (§7.4), subject (§8.1), private messages
between occupants (§7.5) and mediated invitations (§7.8.2)."""

from __future__ import annotations

from copy import copy
from datetime import datetime

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.muc import names
from xmlchat.modules.muc.room import Room, check_speak, check_subject
from xmlchat.modules.muc.service import RoomService
from xmlchat.modules.muc.stanzas import invitation, subject_message, user_x
from xmlchat.routing.session import Session
from xmlchat.stanza import BODY, SID_NS, child, to_bytes

SUBJECT = "{jabber:client}subject"
STANZA_ID = f"{{{SID_NS}}}stanza-id"
_ROOMS_OWN = frozenset({STANZA_ID, names.X_USER})


async def groupchat(
    service: RoomService, session: Session, room: Room, message: etree._Element, stamp: datetime
) -> None:
    """§7.4: from an occupant with voice to everyone, the sender included."""
    occupant = check_speak(room, room.by_session.get(session.jid))
    subject = child(message, SUBJECT)
    if subject is not None and child(message, BODY) is None:
        check_subject(room, occupant)
        room.subject, room.subject_by = subject.text or "", occupant.nick
        await service.save(room)
        service.broadcast(room, subject_message(room))
        return
    out = _from_occupant(message, room, occupant.nick)
    if service.archive and room.config.archiving and child(out, BODY) is not None:
        archive_id = await service.ctx.store.archive_message(
            room.jid, room.jid, to_bytes(out), stamp, outgoing=False
        )
        etree.SubElement(out, STANZA_ID, by=str(room.jid), id=archive_id, nsmap={None: SID_NS})
    if child(out, BODY) is not None:
        room.history.add(out, stamp)
    service.broadcast(room, out)


def private(service: RoomService, session: Session, room: Room, nick: str, message: etree._Element) -> None:
    """§7.5: an occupant writes to another through the room, which hides the
    sender's real JID; the reply goes back the same way."""
    sender = room.by_session.get(session.jid)
    if sender is None:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "join the room before writing to its occupants")
    target = room.occupant(nick)
    if target is None:
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, f"no occupant {nick!r} in this room")
    out = _from_occupant(message, room, sender.nick)
    user_x(out)  # §7.5: marks it as from a room occupant
    service.to_occupant(target, out)


def _from_occupant(message: etree._Element, room: Room, nick: str) -> etree._Element:
    """What the room passes on of an occupant's message: from their room JID,
    without what only the room may say: ``muc#user`` (status codes, invitations)
    and XEP-0359 stanza ids (§3.3)."""
    out = copy(message)
    out.set("from", str(names.room_address(room.jid, nick)))
    for claimed in [c for c in out if c.tag in _ROOMS_OWN]:
        out.remove(claimed)
    return out


async def invite(service: RoomService, session: Session, room: Room, x: etree._Element) -> None:
    """§7.8.2: the room passes an occupant's invitation on, from itself; in a
    members-only room an admin's (or, if allowed, a participant's) invitee
    becomes a member."""
    sender = room.by_session.get(session.jid)
    if sender is None:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "join the room before inviting")
    for element in x.iterfind(f"{{{names.USER}}}invite"):
        try:
            invitee = JID.parse(element.get("to", "")).bare
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "bad invitee address") from None
        if room.config.members_only:
            allowed = room.affiliation(sender.real) in ("owner", "admin") or room.config.allow_invites
            if not allowed:
                raise StanzaError(StanzaCondition.FORBIDDEN, "only admins invite to this room")
            if room.affiliation(invitee) == "none":
                room.affiliations[invitee] = "member"
                await service.save(room)
        reason = element.findtext(f"{{{names.USER}}}reason") or ""
        await _deliver_invitation(
            service, invitation(room.jid, session.bare, reason, room.config.password), invitee
        )


async def _deliver_invitation(service: RoomService, message: etree._Element, invitee: JID) -> None:
    """To the invitee's online sessions, through their route filters (blocking)."""
    if invitee.domain not in service.ctx.hosts:
        raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, "invitees must be on this server")
    routed = await service.ctx.to_account(message, invitee)
    if routed is None:
        return
    for session in service.ctx.sessions.available_sessions(invitee):
        service.send(session, copy(routed))
