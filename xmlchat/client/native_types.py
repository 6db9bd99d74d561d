"""What the native client hands out: its states, what arrives, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from xmlchat.protocol.native.history import HistoryMessage

State = Literal["disconnected", "connecting", "online", "waiting", "closed"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    id: str
    sender: str
    to: str
    time: datetime
    body: str


# A message of a ``<history-result>``: the same record the server's core writes
# from (``archive_id`` is what to page with; ``id`` as delivered, or None).
ArchivedMessage = HistoryMessage


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page, oldest first; ``complete`` when nothing older matches. The next
    page back: ``before=page.messages[0].archive_id``."""

    messages: list[ArchivedMessage]
    complete: bool


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    user: str
    online: bool


@dataclass(frozen=True, slots=True)
class Ack:
    id: str
    time: datetime


class ServerError(Exception):
    """An ``<error/>`` or ``<login-failed/>`` from the server."""

    def __init__(self, condition: str, text: str = "", ref: str | None = None) -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition, self.text, self.ref = condition, text, ref


class LoginFailed(ServerError):
    pass


class ConnectionLost(ConnectionError):
    pass


def parse_time(value: str) -> datetime:
    """A ``<time>`` of the protocol (UTC, ending in Z)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
