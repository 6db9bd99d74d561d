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
    # <receipts/>: the client acknowledges messages with <received> (send_message
    # then numbers them with <seq>); docs/native-protocol.md, "Receipts".
    receipts: bool = False
    # <resume>: the token of an earlier login's <login-ok> (docs/native-protocol.md).
    resume: str | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    to: str
    body: str
    id: str | None
    sender: str | None  # the <from> the client claims, if any


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    """``<received><seq>n</seq></received>``: the client has every message up to
    ``seq`` (cumulative). The core has checked that the session asked for
    receipts and that ``seq`` was sent."""

    seq: int


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
class BlocklistRequested:
    """``<blocklist-get/>``: answer with ``send_blocklist`` (same ``id``)."""

    id: str | None = None


@dataclass(frozen=True, slots=True)
class BlockRequested:
    """``<block>``: block ``jids`` (1 to 100, as the client wrote them: ``bob``
    means the server's domain; duplicates possible); answer with ``send_blocklist``."""

    jids: tuple[str, ...]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class UnblockRequested:
    """``<unblock>``: unblock ``jids`` (up to 100); an empty tuple means
    everyone (XEP-0191 "unblock all"). Answer with ``send_blocklist``."""

    jids: tuple[str, ...]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryRequested:
    """``<history>``: the archived messages before archive id ``before`` (None:
    the newest), at most ``max`` (1 to 100; 50 when not given), with ``with_``
    only (as the client wrote it; None: every conversation). Answer with
    ``send_history`` (same ``id``)."""

    with_: str | None
    max: int
    before: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class JoinRequested:
    """``<join>``: enter ``room`` (as the client wrote it) as ``nick`` (None:
    the user's name), with ``max_history`` earlier messages (None: the room's
    default). Answered by ``send_joined`` once in, or an error with ``id``."""

    room: str
    nick: str | None = None
    password: str | None = None
    max_history: int | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveRequested:
    """``<leave>``: answered by ``send_left`` with the same ``id``."""

    room: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class RoomMessageReceived:
    """``<room-message>`` to a room the client is in; acked like a message."""

    room: str
    body: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class WhoRequested:
    """``<who>``: answered by ``send_occupants`` with the same ``id``."""

    room: str
    id: str | None = None


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
    | ReceiptReceived
    | PingReceived
    | PongReceived
    | ContactsRequested
    | ContactAddRequested
    | ContactRemoveRequested
    | BlocklistRequested
    | BlockRequested
    | UnblockRequested
    | HistoryRequested
    | JoinRequested
    | LeaveRequested
    | RoomMessageReceived
    | WhoRequested
    | Closed
    | Failed
)
