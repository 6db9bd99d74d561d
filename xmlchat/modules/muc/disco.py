"""Service discovery of the room service and its rooms (XEP-0045 §6, XEP-0030).

The service is ``conference/text`` and lists its public rooms; a room
describes itself with the ``muc_*`` features of its configuration (§6.4) and
lists its occupants' room JIDs (§6.5) when it is public.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.modules.muc import names
from xmlchat.modules.muc.room import Room

INFO: Final = "http://jabber.org/protocol/disco#info"
ITEMS: Final = "http://jabber.org/protocol/disco#items"
MAM: Final = "urn:xmpp:mam:2"
SID: Final = "urn:xmpp:sid:0"


def _query(ns: str, request: etree._Element) -> etree._Element:
    if request.get("node") is not None:
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
    return etree.Element(f"{{{ns}}}query", nsmap={None: ns})


def service_info(request: etree._Element) -> etree._Element:
    query = _query(INFO, request)
    etree.SubElement(query, f"{{{INFO}}}identity", category="conference", type="text", name="Chat rooms")
    for var in (INFO, ITEMS, names.MUC):
        etree.SubElement(query, f"{{{INFO}}}feature", var=var)
    return query


def service_items(request: etree._Element, rooms: list[Room]) -> etree._Element:
    query = _query(ITEMS, request)
    for room in sorted(rooms, key=lambda r: str(r.jid)):
        if room.config.public:
            etree.SubElement(
                query, f"{{{ITEMS}}}item", jid=str(room.jid), name=room.config.name or room.jid.local or ""
            )
    return query


def room_features(room: Room, archive: bool) -> list[str]:
    c = room.config
    features = [
        names.MUC,
        "muc_persistent" if c.persistent else "muc_temporary",
        "muc_public" if c.public else "muc_hidden",
        "muc_membersonly" if c.members_only else "muc_open",
        "muc_moderated" if c.moderated else "muc_unmoderated",
        "muc_passwordprotected" if c.password else "muc_unsecured",
        "muc_nonanonymous" if c.non_anonymous else "muc_semianonymous",
    ]
    if archive and c.archiving:
        features += [MAM, SID]
    return features


def room_info(request: etree._Element, room: Room, archive: bool) -> etree._Element:
    query = _query(INFO, request)
    name = room.config.name or room.jid.local or ""
    etree.SubElement(query, f"{{{INFO}}}identity", category="conference", type="text", name=name)
    for var in sorted({INFO, *room_features(room, archive)}):
        etree.SubElement(query, f"{{{INFO}}}feature", var=var)
    # §15.5.4 muc#roominfo: what a client shows before joining.
    x = etree.SubElement(query, f"{{{names.DATA}}}x", type="result", nsmap={None: names.DATA})
    fields = {
        "FORM_TYPE": "http://jabber.org/protocol/muc#roominfo",
        "muc#roominfo_description": room.config.description,
        "muc#roominfo_subject": room.subject,
        "muc#roominfo_occupants": str(len(room.occupants)),
    }
    for var, value in fields.items():
        field = etree.SubElement(x, f"{{{names.DATA}}}field", var=var)
        etree.SubElement(field, f"{{{names.DATA}}}value").text = value
    return query


def room_items(request: etree._Element, room: Room) -> etree._Element:
    query = _query(ITEMS, request)
    if room.config.public:
        for occupant in room.occupants.values():
            etree.SubElement(query, f"{{{ITEMS}}}item", jid=f"{room.jid}/{occupant.nick}")
    return query
