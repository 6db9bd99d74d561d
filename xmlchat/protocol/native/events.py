"""What :class:`~xmlchat.protocol.native.NativeServerStream` reports: one event per
client stanza (or per change of the session), for the server to act on."""

from __future__ import annotations

from dataclasses import dataclass, field

from xmlchat.errors import StreamError


@dataclass(frozen=True, slots=True)
class Opened:
    """The client's root element arrived and was accepted."""


@dataclass(frozen=True, slots=True)
class LoginRequested:
    user: str
    password: str = field(repr=False)  # never in logs
    resource: str | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    to: str
    body: str
    id: str | None
    sender: str | None  # the <from> the client claims, if any


@dataclass(frozen=True, slots=True)
class PingReceived:
    id: str | None


@dataclass(frozen=True, slots=True)
class PongReceived:
    pass


@dataclass(frozen=True, slots=True)
class ContactsRequested:
    pass


@dataclass(frozen=True, slots=True)
class ContactAddRequested:
    jid: str


@dataclass(frozen=True, slots=True)
class ContactRemoveRequested:
    jid: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed the session (``</session>`` or ``<logout/>``)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """A fatal error: the closing ``<error/>`` is queued; flush and disconnect."""

    error: StreamError


Event = (
    Opened
    | LoginRequested
    | MessageReceived
    | PingReceived
    | PongReceived
    | ContactsRequested
    | ContactAddRequested
    | ContactRemoveRequested
    | Closed
    | Failed
)
