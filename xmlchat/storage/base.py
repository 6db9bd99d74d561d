"""Backend-neutral storage types: the records the stores return and their errors."""

from __future__ import annotations

from dataclasses import dataclass
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


class UserExists(Exception):
    """create_user(): the account already exists."""


class NoSuchUser(Exception):
    """The account does not exist."""


class OfflineQueueFull(Exception):
    """store_offline(): the user already has ``limit`` messages waiting (XEP-0160 §3)."""


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
class OfflineMessage:
    """A stanza kept for a user who was offline (XEP-0160)."""

    id: int
    stanza: bytes  # serialized XML, opaque to storage
    received: datetime  # UTC, timezone-aware


def require_user_address(jid: JID) -> JID:
    """The bare account JID; accounts need a localpart (ValueError otherwise).

    Lookups of other JIDs are not refused: they simply find nothing.
    """
    if jid.local is None:
        raise ValueError(f"{jid} is not a user address")
    return jid.bare


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
