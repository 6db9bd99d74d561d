"""Rooms on a cluster: what each node does for the rooms its own clients are in.

In a cluster each room is served by one *owner* node (``ModuleContext.owner``,
rendezvous hashing of the room's JID over the live nodes); the hub forwards
every stanza to a room to its owner, and the owner writes to occupants on
other nodes through their proxies. The owner alone holds the room's live
state (occupants, history); its configuration and affiliations, for a
persistent room, are in the shared store.

When the live nodes change, a room's owner may change with them: the old
owner died, restarted, or a new node wins the room. The new owner knows no
occupants, so each node tells *its own* clients that they are out of every
room whose owner changed, with XEP-0045 status code 332 ("removed from the
room because of a system shutdown", §15.6.2), and clients enter again, now on
the new owner. For that, each node keeps which rooms its clients are in (and
as which nickname), read from the self-presence (status 110, §7.2.3) rooms
send them, wherever the room is: :class:`Memberships`.
"""

from __future__ import annotations

from lxml import etree

from xmlchat.errors import StanzaError
from xmlchat.jid import JID
from xmlchat.modules.muc import names
from xmlchat.routing.context import ModuleContext
from xmlchat.routing.session import Session
from xmlchat.stanza import CLIENT_NS, child, make

PRESENCE = f"{{{CLIENT_NS}}}presence"
_STATUS = f"{{{names.USER}}}status"
_ITEM = f"{{{names.USER}}}item"

Owner = tuple[str, str] | None  # (node, incarnation) as ModuleContext.owner says


class Memberships:
    """For each local session, the rooms it is in: room -> (nick, affiliation,
    the room's owner when it entered)."""

    def __init__(self, ctx: ModuleContext[object], domains: frozenset[str]) -> None:
        self._ctx = ctx
        self._domains = domains
        self._rooms: dict[JID, dict[JID, tuple[str, str, Owner]]] = {}

    def rooms_of(self, session: JID) -> dict[JID, tuple[str, str, Owner]]:
        return dict(self._rooms.get(session, {}))

    def track(self, session: Session, stanza: etree._Element) -> etree._Element:
        """Outbound filter (clustered nodes only): a room's self-presence to a local session."""
        if stanza.tag != PRESENCE or session.node is not None:
            return stanza
        sender = JID.parse_or_none(stanza.get("from"))
        if sender is None or sender.resource is None or sender.domain not in self._domains:
            return stanza
        x = child(stanza, names.X_USER)
        if x is None:
            return stanza
        codes = {status.get("code") for status in x.iterfind(_STATUS)}
        if names.STATUS_SELF not in codes:
            return stanza
        item = x.find(_ITEM)
        affiliation = "none" if item is None else item.get("affiliation", "none")
        rooms = self._rooms.setdefault(session.jid, {})
        room = sender.bare
        if stanza.get("type") != "unavailable":
            known = rooms.get(room)
            rooms[room] = (sender.resource, affiliation, known[2] if known else self._ctx.owner(room))
        elif names.STATUS_NEW_NICK in codes and item is not None and item.get("nick") and room in rooms:
            rooms[room] = (item.get("nick", ""), affiliation, rooms[room][2])  # §7.6: renamed, still in
        else:
            rooms.pop(room, None)
        if not rooms:
            del self._rooms[session.jid]
        return stanza

    def owners_changed(self) -> int:
        """Each local session in a room whose owner is no longer the one it
        entered on gets an unavailable self-presence with 332; how many did."""
        told = 0
        for jid, rooms in list(self._rooms.items()):
            session = self._ctx.sessions.get(jid)
            if session is None or session.node is not None:
                del self._rooms[jid]  # gone, or replaced from another node
                continue
            for room, (nick, affiliation, owner) in list(rooms.items()):
                if self._ctx.owner(room) == owner:
                    continue
                rooms.pop(room, None)
                self._ctx.deliver(session, shutdown_presence(room, nick, affiliation, session.jid))
                told += 1
            if not rooms:
                self._rooms.pop(jid, None)
        return told

    async def leave_elsewhere(self, session: Session) -> None:
        """``session`` ended or went unavailable (RFC 6121 §4.6.2: that goes to
        every room it entered): rooms served on other nodes are told so."""
        me = self._ctx.node
        for room, (nick, _, _) in self.rooms_of(session.jid).items():
            owner = self._ctx.owner(room)
            if owner is None or owner[0] == me:
                continue  # served here: the service saw it already
            to = names.room_address(room, nick)
            presence = make("presence", {"from": str(session.jid), "to": str(to), "type": "unavailable"})
            try:
                await self._ctx.to_domain(session, presence, to)
            except StanzaError as e:
                self._ctx.log.info("room %s: %s left, but its node did not hear it: %s", room, session.jid, e)
            self._rooms.get(session.jid, {}).pop(room, None)
        if not self._rooms.get(session.jid, True):
            del self._rooms[session.jid]


def shutdown_presence(room: JID, nick: str, affiliation: str, to: JID) -> etree._Element:
    """XEP-0045 §15.6.2 status 332 with 110: you are out of this room, because
    the node serving it went away; enter again."""
    sender = str(names.room_address(room, nick))
    presence = make("presence", {"from": sender, "to": str(to), "type": "unavailable"})
    x = etree.SubElement(presence, names.X_USER, nsmap={None: names.USER})
    etree.SubElement(x, _ITEM, affiliation=affiliation, role="none")
    etree.SubElement(x, _STATUS, code=names.STATUS_SELF)
    etree.SubElement(x, _STATUS, code=names.STATUS_SHUTDOWN)
    return presence
