"""Backend-neutral storage types: the records the stores return and their errors."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from xmlchat.jid import JID

ScramMechanismName = Literal["SCRAM-SHA-1", "SCRAM-SHA-256"]
# Every account gets keys for each of these (RFC 5802, RFC 7677).
SCRAM_MECHANISMS: Final[tuple[ScramMechanismName, ...]] = ("SCRAM-SHA-1", "SCRAM-SHA-256")
# RFC 6121 §2.1.2.5: the values of the roster item 'subscription' attribute we store.
SUBSCRIPTIONS: Final[frozenset[str]] = frozenset({"none", "to", "from", "both"})
# block()'s default cap on one user's blocklist. XEP-0191 sets none; without one a
# client could grow a row per request forever, and the list is sent whole on login.
BLOCKLIST_LIMIT: Final = 1000
# XEP-0045 §5.2: the affiliations a room keeps ("none" is the absence of one).
ROOM_AFFILIATIONS: Final[frozenset[str]] = frozenset({"owner", "admin", "member", "outcast"})


class UserExists(Exception):
    """create_user(): the account already exists."""


class NoSuchUser(Exception):
    """The account does not exist."""


class OfflineQueueFull(Exception):
    """store_offline(): the user already has ``limit`` messages waiting (XEP-0160 §3)."""


class DuplicateMessage(Exception):
    """store_offline(): the sender already sent a message with this id within
    the dedupe window; nothing was stored (the first copy stands)."""


class BlocklistFull(Exception):
    """block(): the new items would take the blocklist past ``limit``; none were added.

    A blocking module answers with <resource-constraint/> (RFC 6120 §8.3.3.18).
    """


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a SCRAM server needs for one mechanism (RFC 5802 §3); never the password."""

    mechanism: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True)
class RosterItem:
    """One roster item (RFC 6121 §2.1.2)."""

    jid: JID  # bare contact JID
    name: str | None = None
    subscription: str = "none"  # "none" | "to" | "from" | "both"
    ask: bool = False  # outbound subscription request pending (ask='subscribe')
    approved: bool = False  # pre-approved inbound subscription (RFC 6121 §3.4)
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PutRosterItem:
    """A roster change: insert or replace ``item`` in ``user``'s roster."""

    user: JID
    item: RosterItem


@dataclass(frozen=True, slots=True)
class DeleteRosterItem:
    """A roster change: remove ``contact``'s item from ``user``'s roster, if any."""

    user: JID
    contact: JID


@dataclass(frozen=True, slots=True)
class DeleteSubscriptionRequest:
    """A roster change: forget ``contact``'s pending request to ``user``, if any."""

    user: JID
    contact: JID


# What RosterStore.apply_roster_changes writes, all in one transaction.
RosterChange = PutRosterItem | DeleteRosterItem | DeleteSubscriptionRequest


def check_roster_item(item: RosterItem) -> RosterItem:
    """``item``, if its subscription is one of :data:`SUBSCRIPTIONS` (ValueError otherwise)."""
    if item.subscription not in SUBSCRIPTIONS:
        raise ValueError(f"invalid subscription {item.subscription!r}")
    return item


def checked_roster_changes(changes: Sequence[RosterChange]) -> Iterator[RosterChange]:
    """Each change, once it is found valid; ValueError for a subscription outside
    :data:`SUBSCRIPTIONS` or a second item change to one roster.

    One roster, one item change per call: the call bumps the roster's version
    once (RFC 6121 §2.6), and two items pushed with one version could leave a
    client that cached the first push's version without the second (§2.6.3).
    A backend writing as it goes inside its transaction rolls back the changes
    before a bad one; one without transactions checks them all first.
    """
    rosters: set[JID] = set()
    for change in changes:
        if not isinstance(change, DeleteSubscriptionRequest):
            if isinstance(change, PutRosterItem):
                check_roster_item(change.item)
            if change.user.bare in rosters:
                raise ValueError(f"two item changes to the roster of {change.user.bare}")
            rosters.add(change.user.bare)
        yield change


@dataclass(frozen=True, slots=True)
class OfflineMessage:
    """A stanza kept for a user who was offline (XEP-0160)."""

    id: int
    stanza: bytes  # serialized XML, opaque to storage
    received: datetime  # UTC, timezone-aware


# store_offline's limit meaning none: the queue of a user online, which holds
# what their sessions have not yet acknowledged.
UNLIMITED: Final = 2**62


@dataclass(frozen=True, slots=True)
class MessageOrigin:
    """Who sent a message, under which id: a second message with the same
    ``sender`` and ``id`` within ``window`` seconds of the first is a re-send
    (a client that never saw its acknowledgement), stored once."""

    sender: str
    id: str
    window: float


def require_user_address(jid: JID) -> JID:
    """The bare account JID; accounts need a localpart (ValueError otherwise).

    Lookups of other JIDs are not refused: they simply find nothing.
    """
    if jid.local is None:
        raise ValueError(f"{jid} is not a user address")
    return jid.bare


def bare_key(jid: JID) -> str:
    """The key of a user's, contact's or room's rows in every backend: the bare
    JID's string form, so each backend treats every JID alike."""
    return str(jid.bare)


def user_key(jid: JID) -> str:
    """:func:`bare_key` of an account; ValueError without a localpart."""
    return str(require_user_address(jid))


def blocking_items(contact: JID) -> tuple[JID, ...]:
    """The blocklist items that would block ``contact``, most specific first.

    XEP-0191 §3.3 blocks the JIDs as given, matched by the rules its §6 takes from
    XEP-0016 §2.1: a full JID blocks only that resource, a bare JID every resource
    of the user, a domain every JID at it. So a bare ``contact`` is not blocked by
    an item naming one of its resources: pass the full JID when known. An item
    domain/resource (a component's resource) matches only itself: XEP-0016 read
    literally would also let it block every user@domain/resource of that name.
    """
    return tuple(dict.fromkeys((contact, contact.bare, JID(None, contact.domain))))


# -- the message archive (XEP-0313) ------------------------------------------------

ArchiveDefault = Literal["always", "never", "roster"]
# XEP-0313 §5: the values of <prefs default='…'/>.
ARCHIVE_DEFAULTS: Final[frozenset[str]] = frozenset({"always", "never", "roster"})


class ArchiveIdNotFound(Exception):
    """query_archive(): an after/before id names no message in the user's archive
    (XEP-0313 §4.1.3 and XEP-0059 §2.6: the module answers item-not-found)."""


def new_archive_id() -> str:
    """An archive id, also the XEP-0359 stanza-id: 96 random bits, URL-safe, so
    an id says nothing about the archive and cannot be guessed (XEP-0359 §4)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True, slots=True)
class ArchivedMessage:
    """One message in a user's archive."""

    id: str  # the archive id, XEP-0359 stanza-id
    with_: JID  # the other party, bare
    stanza: bytes  # serialized XML, opaque to storage
    stamp: datetime  # when the server accepted it; UTC, timezone-aware
    outgoing: bool  # the owner sent it


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """Which messages (XEP-0313 §4.1): all conditions must hold. ``start`` and
    ``end`` are inclusive; ``after_id``/``before_id`` exclusive, in archive order."""

    with_: JID | None = None
    start: datetime | None = None
    end: datetime | None = None
    after_id: str | None = None
    before_id: str | None = None
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of a query's results (XEP-0059): at most ``max`` messages after
    ``after``, or the last ``max`` before ``before`` (``last``: before the end,
    the empty ``<before/>`` of §2.5)."""

    max: int
    after: str | None = None
    before: str | None = None
    last: bool = False

    @property
    def backwards(self) -> bool:
        return self.last or self.before is not None


@dataclass(frozen=True, slots=True)
class ArchivePage:
    """A page, in archive order. ``count``: messages the query matches, ignoring
    paging; ``first_index``: how many of them precede the page's first (None
    for an empty page); ``complete``: the page reaches the end of the results
    in the direction of paging (XEP-0313 §4.3, 'complete')."""

    messages: list[ArchivedMessage]
    count: int
    first_index: int | None
    complete: bool


@dataclass(frozen=True, slots=True)
class ArchivePrefs:
    """XEP-0313 §5: what is archived by default; bare JIDs always or never archived."""

    default: ArchiveDefault = "always"
    always: tuple[JID, ...] = ()
    never: tuple[JID, ...] = ()


def check_archive_prefs(prefs: ArchivePrefs) -> ArchivePrefs:
    """The prefs as stored: JIDs bare and sorted; ValueError for an unknown
    default or a JID in both lists (its rule would be ambiguous)."""
    if prefs.default not in ARCHIVE_DEFAULTS:
        raise ValueError(f"invalid archive default {prefs.default!r}")
    always = sorted({jid.bare for jid in prefs.always}, key=str)
    never = sorted({jid.bare for jid in prefs.never}, key=str)
    if set(always) & set(never):
        raise ValueError("a JID is both always and never archived")
    return ArchivePrefs(prefs.default, tuple(always), tuple(never))


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """A persistent XEP-0045 room as the room service keeps it across restarts:
    its configuration (``muc#roomconfig`` field values as text), its
    affiliations (bare JID -> ``owner``/``admin``/``member``/``outcast``) and
    its subject with the nickname that set it. Occupants are never stored."""

    jid: JID
    config: Mapping[str, str] = field(default_factory=dict)
    affiliations: Mapping[JID, str] = field(default_factory=dict)
    subject: str = ""
    subject_by: str = ""


def check_room(room: StoredRoom) -> StoredRoom:
    """``room`` with its JIDs bare; ValueError for a room JID without a
    localpart or an affiliation outside :data:`ROOM_AFFILIATIONS`."""
    if room.jid.local is None:
        raise ValueError(f"{room.jid} is not a room address")
    bad = sorted(a for a in room.affiliations.values() if a not in ROOM_AFFILIATIONS)
    if bad:
        raise ValueError(f"unknown affiliation {bad[0]!r}")
    affiliations = {jid.bare: a for jid, a in room.affiliations.items()}
    return StoredRoom(room.jid.bare, dict(room.config), affiliations, room.subject, room.subject_by)
