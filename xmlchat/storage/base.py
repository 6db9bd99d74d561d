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


class UserExists(Exception):
    """create_user(): the account already exists."""


class NoSuchUser(Exception):
    """The account does not exist."""


class OfflineQueueFull(Exception):
    """store_offline(): the user already has ``limit`` messages waiting (XEP-0160 §3)."""


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
