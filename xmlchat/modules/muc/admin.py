"""Moderation and ownership (XEP-0045 §8 to §10): ``muc#admin`` items change
roles (kick, voice, moderator) and affiliations (ban, member, admin, owner)
or list them; ``muc#owner`` shows and takes the configuration form, and
destroys a room."""

from __future__ import annotations

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.modules.muc import names
from xmlchat.modules.muc.form import RoomConfig, form, submitted_values
from xmlchat.modules.muc.room import Room, check_affiliation_change, check_role_change, default_role
from xmlchat.modules.muc.service import RoomService
from xmlchat.modules.muc.stanzas import destroyed_presence, status_notice
from xmlchat.routing.session import Session

ITEM = f"{{{names.ADMIN}}}item"


def _query(ns: str) -> etree._Element:
    return etree.Element(f"{{{ns}}}query", nsmap={None: ns})


def admin_get(room: Room, session: Session, query: etree._Element) -> etree._Element:
    """§9.5, §10.5: the list of one affiliation (admins and owners ask) or
    one role (moderators ask)."""
    item = query.find(ITEM)
    if item is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "ask for an affiliation or a role")
    actor = room.by_session.get(session.jid)
    mine = room.affiliation(session.bare)
    out = _query(names.ADMIN)
    affiliation, role = item.get("affiliation"), item.get("role")
    if affiliation is not None:
        if mine not in ("owner", "admin"):
            raise StanzaError(StanzaCondition.FORBIDDEN, "only admins see affiliation lists")
        for jid, held in sorted(room.affiliations.items(), key=lambda pair: str(pair[0])):
            if held == affiliation:
                etree.SubElement(out, ITEM, affiliation=held, jid=str(jid))
    elif role is not None:
        if actor is None or actor.role != "moderator":
            raise StanzaError(StanzaCondition.FORBIDDEN, "only moderators see role lists")
        for occupant in room.occupants.values():
            if occupant.role == role:
                etree.SubElement(
                    out,
                    ITEM,
                    role=role,
                    nick=occupant.nick,
                    jid=str(occupant.real),
                    affiliation=room.affiliation(occupant.real),
                )
    else:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "ask for an affiliation or a role")
    return out


async def admin_set(service: RoomService, room: Room, session: Session, query: etree._Element) -> None:
    """Every item is checked before any is applied: a list change is all or nothing."""
    changes = [_checked(room, session, item) for item in query.iterfind(ITEM)]
    if not changes:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "no item to change")
    actor = room.by_session.get(session.jid)
    actor_nick = actor.nick if actor is not None else None
    for kind, target, value, reason in changes:
        if kind == "role":
            _set_role(service, room, target, value, actor_nick, reason)
        else:
            _set_affiliation(service, room, JID.parse(target), value, actor_nick, reason)
    await service.save(room)
    service.forget_if_unused(room)


def _checked(room: Room, session: Session, item: etree._Element) -> tuple[str, str, str, str]:
    reason = item.findtext(f"{{{names.ADMIN}}}reason") or ""
    role, affiliation = item.get("role"), item.get("affiliation")
    if role is not None and item.get("nick") is not None:
        actor = room.by_session.get(session.jid)
        target = room.occupant(item.get("nick", ""))
        if actor is None:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only occupants moderate")
        if target is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
        check_role_change(room, actor, target, role)
        return "role", target.nick, role, reason
    if affiliation is not None and item.get("jid") is not None:
        try:
            target_jid = JID.parse(item.get("jid", "")).bare
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "bad jid in item") from None
        check_affiliation_change(room, session.bare, target_jid, affiliation)
        return "affiliation", str(target_jid), affiliation, reason
    raise StanzaError(StanzaCondition.BAD_REQUEST, "an item needs nick and role, or jid and affiliation")


def _set_role(service: RoomService, room: Room, nick: str, role: str, actor: str | None, reason: str) -> None:
    target = room.occupant(nick)
    if target is None:
        return
    if role == "none":  # §8.2 kick
        service.remove(room, target, [names.STATUS_KICKED], actor, reason)
        return
    target.role = role
    service.presence_to_all(room, target, [], reason=reason or None)


def _set_affiliation(
    service: RoomService, room: Room, jid: JID, affiliation: str, actor: str | None, reason: str
) -> None:
    if affiliation == "none":
        room.affiliations.pop(jid, None)
    else:
        room.affiliations[jid] = affiliation
    for occupant in [o for o in room.occupants.values() if o.real == jid]:
        if affiliation == "outcast":  # §9.1 ban
            service.remove(room, occupant, [names.STATUS_BANNED], actor, reason)
        elif room.config.members_only and affiliation == "none":  # §9.4
            service.remove(room, occupant, [names.STATUS_AFFILIATION_LOST], actor, reason)
        else:
            occupant.role = default_role(affiliation, room.config)
            service.presence_to_all(room, occupant, [], reason=reason or None)


def owner_get(room: Room, session: Session) -> etree._Element:
    _require_owner(room, session)
    out = _query(names.OWNER)
    out.append(form(room.config, f"Configuration of {room.jid}"))
    return out


async def owner_set(service: RoomService, room: Room, session: Session, query: etree._Element) -> None:
    _require_owner(room, session)
    destroy = query.find(f"{{{names.OWNER}}}destroy")
    if destroy is not None:
        await destroy_room(service, room, destroy.findtext(f"{{{names.OWNER}}}reason") or "")
        return
    x = query.find(f"{{{names.DATA}}}x")
    if x is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "send a form or <destroy/>")
    if x.get("type") == "cancel":
        return
    before = room.config
    room.config = RoomConfig.from_values(submitted_values(x), before)
    if before.persistent and not room.config.persistent:
        await service.ctx.store.delete_room(room.jid)
    await service.save(room)
    if room.config.members_only and not before.members_only:  # §9.4: non-members leave
        for occupant in [o for o in room.occupants.values() if room.affiliation(o.real) == "none"]:
            service.remove(room, occupant, [names.STATUS_MEMBERS_ONLY], None, None)
    codes = [names.STATUS_CONFIG_CHANGED]
    if room.config.non_anonymous and not before.non_anonymous:
        codes.append(names.STATUS_NOW_NON_ANONYMOUS)
    service.broadcast(room, status_notice(room.jid, codes))
    service.forget_if_unused(room)


async def destroy_room(service: RoomService, room: Room, reason: str) -> None:
    """§10.9: every occupant is told, the room is gone, stored or not."""
    for occupant in list(room.occupants.values()):
        service.to_occupant(occupant, destroyed_presence(room, occupant, reason))
        room.remove(occupant)
    service.rooms.pop(room.jid, None)
    await service.ctx.store.delete_room(room.jid)


def _require_owner(room: Room, session: Session) -> None:
    if room.affiliation(session.bare) != "owner":
        raise StanzaError(StanzaCondition.FORBIDDEN, "only owners configure a room")


ITEM_QUERY_ADMIN = f"{{{names.ADMIN}}}query"
ITEM_QUERY_OWNER = f"{{{names.OWNER}}}query"
