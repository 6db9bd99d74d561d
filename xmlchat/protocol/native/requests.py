"""What each client stanza asks for: one event per valid request (spec:
docs/native-protocol.md). The core validates against the schema first, so
every field read here has the form the schema gives it."""

from __future__ import annotations

from typing import Final

from lxml import etree

from xmlchat.protocol.native.events import (
    BlocklistRequested,
    BlockRequested,
    Closed,
    ContactAddRequested,
    ContactRemoveRequested,
    ContactsRequested,
    Event,
    HistoryRequested,
    JoinRequested,
    LeaveRequested,
    LoginRequested,
    MessageReceived,
    PingReceived,
    PongReceived,
    ReceiptReceived,
    RoomMessageReceived,
    UnblockRequested,
    WhoRequested,
)
from xmlchat.protocol.native.history import DEFAULT_HISTORY
from xmlchat.protocol.native.wire import NS

_JID: Final = f"{{{NS}}}jid"


def request_event(name: str, fields: dict[str, str], el: etree._Element) -> Event:
    """The event a valid client stanza ``name`` (its children's texts in
    ``fields``) asks for; the schema has checked its form."""
    get = fields.get
    match name:
        case "message":
            return MessageReceived(to=get("to", ""), body=get("body", ""), id=get("id"), sender=get("from"))
        case "login":
            return LoginRequested(
                get("user", ""), get("password", ""), get("resource"), "receipts" in fields, get("resume")
            )
        case "received":
            return ReceiptReceived(int(fields["seq"]))
        case "ping":
            return PingReceived(get("id"))
        case "pong":
            return PongReceived()
        case "contacts-get":
            return ContactsRequested()
        case "contact-add":
            return ContactAddRequested(get("jid", ""))
        case "contact-remove":
            return ContactRemoveRequested(get("jid", ""))
        case "blocklist-get":
            return BlocklistRequested(get("id"))
        case "block":
            return BlockRequested(block_jids(el), get("id"))
        case "unblock":
            return UnblockRequested(block_jids(el), get("id"))
        case "history":
            # The schema admits only 1 to MAX_HISTORY (xs:positiveInteger,
            # which collapses whitespace: so does int()).
            max_ = int(get("max") or DEFAULT_HISTORY)
            return HistoryRequested(get("with"), max_, get("before"), get("id"))
        case "join":
            history = get("max-history")
            return JoinRequested(
                get("room", ""),
                get("nick"),
                get("password"),
                None if history is None else int(history),
                get("id"),
            )
        case "leave":
            return LeaveRequested(get("room", ""), get("id"))
        case "room-message":
            return RoomMessageReceived(get("room", ""), get("body", ""), get("id"))
        case "who":
            return WhoRequested(get("room", ""), get("id"))
        case _:  # "logout": the schema admits nothing else
            return Closed()


def block_jids(el: etree._Element) -> tuple[str, ...]:
    """The ``<jid>`` children of a blocking request, in order."""
    return tuple(child.text or "" for child in el if child.tag == _JID)
