"""A room's state and the rules that decide who may do what (XEP-0045 §5).

No I/O here: :class:`Room` holds the occupants, affiliations, subject,
configuration and history; the functions say which role an affiliation gets,
whether someone may enter, and who may change whose role or affiliation. The
service (:mod:`xmlchat.modules.muc.service`) turns decisions into stanzas.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xmlchat.errors import ErrorType, StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.muc.form import RoomConfig
from xmlchat.modules.muc.history import History
from xmlchat.modules.muc.names import nick_key
from xmlchat.routing.session import Session
from xmlchat.storage import StoredRoom

# §5.2: affiliations, strongest first ("none" is the absence of one).
AFFILIATION_RANK: Final = {"owner": 4, "admin": 3, "member": 2, "none": 1, "outcast": 0}
ROLES: Final = ("moderator", "participant", "visitor", "none")


class Bucket:
    """A token bucket: ``rate`` per second, at most ``burst`` at once."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, float(max(burst, 1))
        self._tokens, self._stamp = self._burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass(eq=False)
class Occupant:
    """One nickname in a room: a user, with one or more of their sessions
    (XEP-0045 §7.2.3 allows one user several clients behind one nick)."""

    nick: str
    real: JID  # bare
    role: str
    sessions: dict[JID, Session] = field(default_factory=dict)
    # The <show>/<status>/<priority> of the last presence, shown to others.
    presence: list[etree._Element] = field(default_factory=list)
    bucket: Bucket | None = None


@dataclass(eq=False)
class Room:
    jid: JID
    config: RoomConfig
    history: History
    affiliations: dict[JID, str] = field(default_factory=dict)
    subject: str = ""
    subject_by: str = ""
    occupants: dict[str, Occupant] = field(default_factory=dict)  # nick_key -> occupant
    by_session: dict[JID, Occupant] = field(default_factory=dict)  # full JID -> occupant

    def affiliation(self, user: JID) -> str:
        return self.affiliations.get(user.bare, "none")

    def occupant(self, nick: str) -> Occupant | None:
        return self.occupants.get(nick_key(nick))

    def add(self, occupant: Occupant, session: Session) -> None:
        self.occupants[nick_key(occupant.nick)] = occupant
        occupant.sessions[session.jid] = session
        self.by_session[session.jid] = occupant

    def remove_session(self, session_jid: JID) -> Occupant | None:
        """Take one session out; returns its occupant, gone from the room when
        it was their last session."""
        occupant = self.by_session.pop(session_jid, None)
        if occupant is not None:
            occupant.sessions.pop(session_jid, None)
            if not occupant.sessions:
                self.occupants.pop(nick_key(occupant.nick), None)
        return occupant

    def remove(self, occupant: Occupant) -> None:
        for jid in occupant.sessions:
            self.by_session.pop(jid, None)
        self.occupants.pop(nick_key(occupant.nick), None)

    def rename(self, occupant: Occupant, nick: str) -> None:
        self.occupants.pop(nick_key(occupant.nick), None)
        occupant.nick = nick
        self.occupants[nick_key(nick)] = occupant

    @property
    def empty(self) -> bool:
        return not self.occupants

    def owners(self) -> list[JID]:
        return [jid for jid, a in self.affiliations.items() if a == "owner"]

    def stored(self) -> StoredRoom:
        return StoredRoom(
            self.jid, self.config.values(), dict(self.affiliations), self.subject, self.subject_by
        )


def default_role(affiliation: str, config: RoomConfig) -> str:
    """§5.1.2: the role an affiliation gets on entering."""
    if affiliation in ("owner", "admin"):
        return "moderator"
    if affiliation == "member":
        return "participant"
    if affiliation == "outcast":
        return "none"
    return "visitor" if config.moderated else "participant"


def check_entry(room: Room, user: JID, password: str | None, occupants_limit: int) -> None:
    """§7.2.6 to §7.2.10: why ``user`` may not enter, as an error; None: welcome."""
    affiliation = room.affiliation(user)
    if affiliation == "outcast":
        raise StanzaError(StanzaCondition.FORBIDDEN, "you are banned from this room")
    if room.config.members_only and affiliation == "none":
        raise StanzaError(StanzaCondition.REGISTRATION_REQUIRED, "this room is for members only")
    if room.config.password and password != room.config.password:
        raise StanzaError(StanzaCondition.NOT_AUTHORIZED, "a password is required to enter this room")
    limit = min(filter(None, (room.config.max_users, occupants_limit)), default=0)
    if limit and len(room.occupants) >= limit and affiliation not in ("owner", "admin"):
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "this room is full")


def check_speak(room: Room, occupant: Occupant | None) -> Occupant:
    """§7.4 and §8.4: an occupant with voice."""
    if occupant is None:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "join the room before sending to it")
    if occupant.role == "visitor":
        raise StanzaError(StanzaCondition.FORBIDDEN, "visitors may not speak in a moderated room")
    if occupant.bucket is not None and not occupant.bucket.take():
        # As Prosody's mod_muc_limits: a "wait" error, the stanza dropped.
        raise StanzaError(StanzaCondition.POLICY_VIOLATION, "you are sending too fast", ErrorType.WAIT)
    return occupant


def check_subject(room: Room, occupant: Occupant) -> None:
    """§8.1: moderators, or participants when the room allows it."""
    if occupant.role != "moderator" and not (room.config.change_subject and occupant.role == "participant"):
        raise StanzaError(StanzaCondition.FORBIDDEN, "you may not change the subject")


def check_role_change(room: Room, actor: Occupant, target: Occupant, role: str) -> None:
    """§8.2 to §9.7: moderators change participants' and visitors' roles;
    granting or revoking moderator takes an admin; no one acts on a stronger
    affiliation."""
    if role not in ROLES:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown role {role!r}")
    if actor.role != "moderator":
        raise StanzaError(StanzaCondition.FORBIDDEN, "only moderators change roles")
    mine, theirs = room.affiliation(actor.real), room.affiliation(target.real)
    if AFFILIATION_RANK[theirs] > AFFILIATION_RANK[mine] or (
        theirs in ("owner", "admin") and role != "moderator" and target is not actor
    ):
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "you may not change that occupant's role")
    if (role == "moderator" or target.role == "moderator") and mine not in ("owner", "admin"):
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "only admins grant or revoke moderator")


def check_affiliation_change(room: Room, actor: JID, target: JID, affiliation: str) -> None:
    """§9 and §10: owners change any affiliation; admins only among member,
    none and outcast; a room keeps at least one owner (§10.9)."""
    if affiliation not in AFFILIATION_RANK:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown affiliation {affiliation!r}")
    mine, theirs = room.affiliation(actor), room.affiliation(target)
    if mine == "owner":
        if theirs == "owner" and affiliation != "owner" and room.owners() == [target.bare]:
            raise StanzaError(StanzaCondition.CONFLICT, "a room needs an owner")
        return
    if (
        mine != "admin"
        or AFFILIATION_RANK[theirs] >= AFFILIATION_RANK["admin"]
        or affiliation in ("owner", "admin")
    ):
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "you may not change that affiliation")
