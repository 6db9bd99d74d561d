"""The stanzas a room sends (XEP-0045 §7): occupant presence with its
``muc#user`` item and status codes, the subject, room notices."""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy

from lxml import etree

from xmlchat.jid import JID
from xmlchat.modules.muc.names import USER, room_address
from xmlchat.modules.muc.room import Occupant, Room
from xmlchat.stanza import make


def user_x(parent: etree._Element) -> etree._Element:
    return etree.SubElement(parent, f"{{{USER}}}x", nsmap={None: USER})


def occupant_presence(
    room: Room,
    occupant: Occupant,
    *,
    show_jid: bool,
    codes: Iterable[str] = (),
    unavailable: bool = False,
    new_nick: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> etree._Element:
    """``occupant``'s presence as the room shows it (§7.2.3): from their room
    JID, their role and affiliation, their real JID when the viewer may see it
    (``show_jid``: non-anonymous room, or a moderator viewing). No 'to'."""
    attrs = {"from": str(room_address(room.jid, occupant.nick))}
    if unavailable:
        attrs["type"] = "unavailable"
    presence = make("presence", attrs)
    if not unavailable:
        for child in occupant.presence:
            presence.append(deepcopy(child))
    x = user_x(presence)
    item = etree.SubElement(
        x,
        f"{{{USER}}}item",
        affiliation=room.affiliation(occupant.real),
        role="none" if unavailable else occupant.role,
    )
    if show_jid:
        item.set("jid", str(next(iter(occupant.sessions), occupant.real)))
    if new_nick is not None:
        item.set("nick", new_nick)
    if actor is not None:
        etree.SubElement(item, f"{{{USER}}}actor", nick=actor)
    if reason:
        etree.SubElement(item, f"{{{USER}}}reason").text = reason
    for code in codes:
        etree.SubElement(x, f"{{{USER}}}status", code=code)
    return presence


def subject_message(room: Room) -> etree._Element:
    """§8.1: the subject, from the nick that set it (the room if none); sent
    last on join, empty when there is none (§7.2.15)."""
    sender = room_address(room.jid, room.subject_by) if room.subject_by else room.jid
    message = make("message", {"from": str(sender), "type": "groupchat", "id": f"subject-{id(room):x}"})
    etree.SubElement(message, "{jabber:client}subject").text = room.subject
    return message


def status_notice(room: JID, codes: Iterable[str]) -> etree._Element:
    """§10.2.1: a message from the room itself carrying status codes (104: the
    configuration changed)."""
    message = make("message", {"from": str(room), "type": "groupchat"})
    x = user_x(message)
    for code in codes:
        etree.SubElement(x, f"{{{USER}}}status", code=code)
    return message


def destroyed_presence(room: Room, occupant: Occupant, reason: str) -> etree._Element:
    """§10.9: the room is gone."""
    presence = make("presence", {"from": str(room_address(room.jid, occupant.nick)), "type": "unavailable"})
    x = user_x(presence)
    etree.SubElement(x, f"{{{USER}}}item", affiliation="none", role="none")
    destroy = etree.SubElement(x, f"{{{USER}}}destroy")
    if reason:
        etree.SubElement(destroy, f"{{{USER}}}reason").text = reason
    return presence


def invitation(room: JID, inviter: JID, reason: str, password: str) -> etree._Element:
    """§7.8.2: the room's message to the invitee."""
    message = make("message", {"from": str(room)})
    x = user_x(message)
    invite = etree.SubElement(x, f"{{{USER}}}invite", {"from": str(inviter)})
    if reason:
        etree.SubElement(invite, f"{{{USER}}}reason").text = reason
    if password:
        etree.SubElement(x, f"{{{USER}}}password").text = password
    body = etree.SubElement(message, "{jabber:client}body")
    body.text = f"{inviter} invites you to the room {room}" + (f": {reason}" if reason else "")
    return message
