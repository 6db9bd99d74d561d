"""The native protocol's server-side state machine, sans-IO.

Bytes go in through :meth:`NativeServerStream.receive_data`, which returns
events; replies are queued by the ``send_*`` methods and collected with
:meth:`NativeServerStream.data_to_send`. Framing, schema validation, the
login state and every protocol error live here; the server decides what a
login or a message means (storage, routing).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final, cast

from lxml import etree

from xmlchat.errors import (
    StanzaCondition,
    StanzaError,
    StreamCondition,
    StreamError,
)
from xmlchat.protocol.native.events import (
    Closed,
    Event,
    Failed,
    LoginRequested,
    MessageReceived,
    Opened,
)
from xmlchat.protocol.native.history import history_xml
from xmlchat.protocol.native.quick import MESSAGE, message_reader, plain_fields
from xmlchat.protocol.native.requests import block_jids, request_event
from xmlchat.protocol.native.wire import (
    NS,
    ROOT,
    VERSION,
    ack_xml,
    child_texts,
    element_xml,
    message_xml,
    schema,
    schema_message,
    stream_header,
    timestamp,
)
from xmlchat.xml.stream import (
    StanzaRead,
    StanzaReceived,
    StanzaStream,
    StreamEvent,
    StreamLimits,
    StreamOpened,
)

# At most this many <jid> in one <block> or <unblock> (docs/native-protocol.md,
# "Blocking"): one request stays one bounded store transaction.
MAX_BLOCK_JIDS: Final = 100

# Stanzas a client may send before logging in; anything else is not-authorized.
_BEFORE_LOGIN: Final = frozenset({"login", "ping", "pong", "logout"})
# Stanzas only the server sends: a client sending them gets bad-request.
_SERVER_ONLY: Final = frozenset(
    {
        "login-ok",
        "login-failed",
        "ack",
        "presence",
        "contacts",
        "blocklist",
        "history-result",
        "error",
        "joined",
        "left",
        "occupant",
        "occupants",
        "room-subject",
    }
)


class State(enum.Enum):
    AWAITING_HEADER = "awaiting-header"
    AWAITING_LOGIN = "awaiting-login"
    LOGGED_IN = "logged-in"
    CLOSED = "closed"


class NativeServerStream:
    """One native-protocol connection, server side."""

    def __init__(
        self, server_name: str, limits: StreamLimits, unauthenticated_limit: int, standalone: bool = False
    ) -> None:
        """``standalone``: every message is a whole element (the WebSocket
        framing, docs/native-protocol.md "Over WebSocket"): the roots are
        empty ``<session/>`` elements, and the server's end is the transport's."""
        self.server_name = server_name
        self._standalone = standalone
        self.state = State.AWAITING_HEADER
        self._limits = limits
        self._stream = StanzaStream(
            StreamLimits(min(unauthenticated_limit, limits.max_stanza_bytes), limits.max_depth)
        )
        self._out: list[bytes] = []
        self._backlog: list[StreamEvent] = []  # parsed, held while a login is answered
        self._login_pending = False
        # Receipts (docs/native-protocol.md, "Receipts"): asked for by the login
        # being answered, granted with it; the highest <seq> written so far.
        self._receipts_asked = False
        self.receipts = False
        self._last_seq = 0

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- input

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse ``data``; return what the client asked for, in order.

        After a :class:`LoginRequested`, later stanzas wait (parsed, not acted
        on) until :meth:`logged_in` or :meth:`login_failed` answers it; those
        return the events the waiting stanzas produce. So a client may pipeline
        its login and first messages in one write.
        """
        if self.closed:
            return []
        if self._standalone and self.state is State.AWAITING_HEADER:
            data = _opening(data)
        error: StreamError | None = None
        try:
            items = self._stream.feed(data)
        except StreamError as e:
            items, error = list(e.events), e
        self._backlog.extend(items)
        events = self._drain()
        if error is not None and not self.closed:
            self.send_stream_error(error)
            events.append(Failed(error))
        return events

    def rest(self, final: bool = False) -> bool:
        """Free the parser while nothing is half-received (:meth:`StanzaStream.rest`)."""
        return self._stream.rest(final)

    def _drain(self) -> list[Event]:
        events: list[Event] = []
        while self._backlog and not self.closed and not self._login_pending:
            item = self._backlog.pop(0)
            try:
                if isinstance(item, StanzaRead):  # a plain message (logged_in() asked for them)
                    events.append(cast(MessageReceived, item.value))
                elif isinstance(item, StanzaReceived):
                    self._stanza(item.element, events)
                elif isinstance(item, StreamOpened):
                    self._open(item)
                    events.append(Opened())
                else:
                    self._close()
                    events.append(Closed())
            except StreamError as e:
                self.send_stream_error(e)
                events.append(Failed(e))
        return events

    def _open(self, opened: StreamOpened) -> None:
        if opened.tag != ROOT:
            raise StreamError(StreamCondition.INVALID_NAMESPACE, f"expected <session xmlns='{NS}'>")
        if opened.attrib.get("version", VERSION) != VERSION:
            raise StreamError(StreamCondition.UNSUPPORTED_VERSION, f"this server speaks version {VERSION}")
        self._out.append(self._header())
        self.state = State.AWAITING_LOGIN

    def _header(self) -> bytes:
        header = stream_header({"version": VERSION, "server": self.server_name})
        return header[:-1] + b"/>" if self._standalone else header

    def _stanza(self, el: etree._Element, events: list[Event]) -> None:
        # A plain <message> is checked and read in one pass (None: ask the schema).
        fields = plain_fields(el) if el.tag == MESSAGE else None
        if fields is not None and self.state is State.LOGGED_IN:
            # The stanza of nearly every turn: the event made here (what the
            # general path below would conclude).
            get = fields.get
            events.append(MessageReceived(fields["to"], fields["body"], get("id"), get("from")))
            return
        ns, _, name = el.tag.partition("}") if isinstance(el.tag, str) else ("", "", "")
        texts = child_texts(el)
        ref = texts.get("id")
        if ns != "{" + NS or name in _SERVER_ONLY:
            self.send_error(StanzaError(StanzaCondition.BAD_REQUEST, f"unknown stanza <{name}>"), ref)
            return
        if fields is None and not schema().validate(el):
            self.send_error(StanzaError(StanzaCondition.BAD_REQUEST, schema_message()), ref)
            return
        if self.state is State.AWAITING_LOGIN and name not in _BEFORE_LOGIN:
            self.send_error(StanzaError(StanzaCondition.NOT_AUTHORIZED, "log in first"), ref)
            return
        if name in ("block", "unblock") and len(block_jids(el)) > MAX_BLOCK_JIDS:
            # The schema bounds each run of <jid>, not their total.
            why = f"at most {MAX_BLOCK_JIDS} <jid> in one <{name}>"
            self.send_error(StanzaError(StanzaCondition.BAD_REQUEST, why), ref)
            return
        if name == "received" and not self._receipt_ok(int(texts.get("seq", "0")), ref):
            return
        event = request_event(name, texts, el)
        if isinstance(event, LoginRequested) and self.state is State.LOGGED_IN:
            self.send_error(StanzaError(StanzaCondition.BAD_REQUEST, "already logged in"), ref)
            return
        if isinstance(event, Closed):
            self._close()
        self._login_pending = isinstance(event, LoginRequested)
        if isinstance(event, LoginRequested):
            self._receipts_asked = event.receipts
        events.append(event)

    def _receipt_ok(self, seq: int, ref: str | None) -> bool:
        """Whether a ``<received>`` may become an event (the schema made ``seq`` an integer)."""
        if not self.receipts:
            why = "this session did not ask for receipts (<receipts/> in <login>)"
            self.send_error(StanzaError(StanzaCondition.BAD_REQUEST, why), ref)
            return False
        if seq > self._last_seq:
            # The client claims a message that was never sent: what it has is
            # unknowable, so the stream ends, as XEP-0198 §5 ends a stream
            # whose h is too high (undefined-condition, <handled-count-too-high/>).
            why = f"received {seq}, but the last message sent was {self._last_seq}"
            raise StreamError(StreamCondition.UNDEFINED_CONDITION, why)
        return True

    def _close(self) -> None:
        if self.state is not State.CLOSED:
            if not self._standalone:
                self._out.append(b"</session>")
            self.state = State.CLOSED

    # -- output

    def data_to_send(self) -> bytes:
        return b"".join(self.frames_to_send())

    def frames_to_send(self) -> list[bytes]:
        """What :meth:`data_to_send` joins: the root's tags and one stanza per entry."""
        out, self._out = self._out, []
        return out

    def logged_in(self, address: str, resume: str | None = None) -> list[Event]:
        """Answer :class:`LoginRequested`: accepted as ``address``; ``resume``:
        the token the client may present at its next login."""
        self.state = State.LOGGED_IN
        self.receipts = self._receipts_asked
        self._stream.limits = self._limits
        # From here on a plain <message> is read while it is parsed (quick.py),
        # into the event _stanza would make of it: logged in, a state no stanza
        # parsed after this can precede.
        self._stream.read_flat(message_reader())
        self._out.append(element_xml("login-ok", [("address", address), ("resume", resume)]))
        self._login_pending = False
        return self._drain()

    def login_failed(self, condition: StanzaCondition, text: str) -> list[Event]:
        """Answer :class:`LoginRequested`: refused; the client may try again."""
        self._out.append(element_xml("login-failed", [("condition", condition), ("text", text)]))
        self._login_pending = False
        return self._drain()

    def send_message(
        self, id_: str, sender: str, to: str, sent: datetime, body: str, seq: int | None = None
    ) -> None:
        """A message; ``seq`` numbers it for a receipts session (1, 2, 3… per
        connection), which acknowledges it with ``<received>``."""
        if seq is not None:
            self._last_seq = max(self._last_seq, seq)
        self._out.append(message_xml(id_, sender, to, timestamp(sent), body, seq))

    def send_ack(self, id_: str, accepted: datetime) -> None:
        self._out.append(ack_xml(id_, timestamp(accepted)))

    def send_presence(self, sender: str, online: bool) -> None:
        status = "online" if online else "offline"
        self._out.append(element_xml("presence", [("from", sender), ("status", status)]))

    def send_contacts(self, contacts: Iterable[tuple[str, bool]]) -> None:
        items = "".join(
            element_xml("contact", [("jid", jid), ("status", "online" if on else "offline")]).decode()
            for jid, on in contacts
        )
        self._out.append(f"<contacts>{items}</contacts>".encode() if items else b"<contacts/>")

    def send_blocklist(self, jids: Iterable[str], id_: str | None = None) -> None:
        """The whole blocklist: the answer to a blocking request (``id_`` is its
        id) or, with no ``id_``, a push after a change made elsewhere."""
        self._out.append(element_xml("blocklist", [("id", id_), *(("jid", jid) for jid in jids)]))

    def send_history(self, messages: Sequence[bytes], complete: bool, id_: str | None = None) -> None:
        """One page of history, answering request ``id_``: ``messages`` oldest
        first, each written by :func:`~xmlchat.protocol.native.history.message_xml`;
        ``complete`` when no older message matches the request."""
        self._out.append(history_xml(messages, complete, id_))

    # -- rooms (docs/native-protocol.md, "Rooms")

    def send_joined(self, room: str, nick: str, id_: str | None = None) -> None:
        self._out.append(element_xml("joined", [("id", id_), ("room", room), ("nick", nick)]))

    def send_left(self, room: str, reason: str | None = None, id_: str | None = None) -> None:
        self._out.append(element_xml("left", [("id", id_), ("room", room), ("reason", reason)]))

    def send_occupant(self, room: str, nick: str, online: bool) -> None:
        status = "online" if online else "offline"
        self._out.append(element_xml("occupant", [("room", room), ("nick", nick), ("status", status)]))

    def send_occupants(self, room: str, nicks: Iterable[str], id_: str | None = None) -> None:
        self._out.append(
            element_xml("occupants", [("id", id_), ("room", room), *(("nick", n) for n in nicks)])
        )

    def send_room_subject(self, room: str, nick: str | None, text: str) -> None:
        self._out.append(element_xml("room-subject", [("room", room), ("from", nick), ("text", text)]))

    def send_room_message(
        self, id_: str, room: str, nick: str, sent: datetime, body: str, delayed: bool = False
    ) -> None:
        fields = [("id", id_), ("room", room), ("from", nick), ("time", timestamp(sent)), ("body", body)]
        out = element_xml("room-message", fields)
        self._out.append(out.replace(b"</room-message>", b"<delayed/></room-message>") if delayed else out)

    def send_ping(self) -> None:
        self._out.append(b"<ping/>")

    def send_pong(self, id_: str | None = None) -> None:
        self._out.append(element_xml("pong", [("id", id_)]))

    def send_error(self, error: StanzaError, ref: str | None = None) -> None:
        """A non-fatal error answering one stanza (``ref`` is its id)."""
        fields = [("condition", str(error.condition)), ("text", error.text[:1024] or None), ("id", ref)]
        self._out.append(element_xml("error", fields))

    def send_stream_error(self, error: StreamError) -> None:
        """A fatal error: ``<error/>`` then ``</session>``; the connection must close."""
        if self.state is State.CLOSED:
            return
        if self.state is State.AWAITING_HEADER:
            # Answer with our root first so the client can parse the error.
            self._out.append(self._header())
        fields = [("condition", str(error.condition)), ("text", error.text[:1024] or None)]
        self._out.append(element_xml("error", fields))
        self._close()


def _opening(message: bytes) -> bytes:
    """A standalone ``<session .../>`` as the start tag that opens the parsed stream."""
    message = message.rstrip(b" \t\r\n")
    return message[:-2] + b">" if message.endswith(b"/>") else message
