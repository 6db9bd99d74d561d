"""The native protocol, server side, sans-IO (spec: docs/native-protocol.md).

* :mod:`.wire`: names, the schema and how stanzas are written (shared with the client);
* :mod:`.events`: what the client asked for, one event per stanza;
* :mod:`.requests`: which event each client stanza is;
* :mod:`.history`: the ``<history>`` answer's messages and paging;
* :mod:`.core`: :class:`NativeServerStream`, the state machine.

Everything is re-exported here: ``from xmlchat.protocol import native`` then
``native.NativeServerStream``, ``native.MessageReceived``, ``native.NS``.
"""

from xmlchat.protocol.native.core import MAX_BLOCK_JIDS, NativeServerStream, State
from xmlchat.protocol.native.events import (
    BlocklistRequested,
    BlockRequested,
    Closed,
    ContactAddRequested,
    ContactRemoveRequested,
    ContactsRequested,
    Event,
    Failed,
    HistoryRequested,
    JoinRequested,
    LeaveRequested,
    LoginRequested,
    MessageReceived,
    Opened,
    PingReceived,
    PongReceived,
    ReceiptReceived,
    RoomMessageReceived,
    UnblockRequested,
    WhoRequested,
)
from xmlchat.protocol.native.history import (
    DEFAULT_HISTORY,
    MAX_HISTORY,
    HistoryMessage,
    history_xml,
    message_xml,
    newest_that_fit,
)
from xmlchat.protocol.native.wire import (
    NS,
    ROOT,
    VERSION,
    element_xml,
    schema,
    stream_header,
    timestamp,
)

__all__ = [
    "DEFAULT_HISTORY",
    "MAX_BLOCK_JIDS",
    "MAX_HISTORY",
    "NS",
    "ROOT",
    "VERSION",
    "BlockRequested",
    "BlocklistRequested",
    "Closed",
    "ContactAddRequested",
    "ContactRemoveRequested",
    "ContactsRequested",
    "Event",
    "Failed",
    "HistoryMessage",
    "HistoryRequested",
    "JoinRequested",
    "LeaveRequested",
    "LoginRequested",
    "MessageReceived",
    "NativeServerStream",
    "Opened",
    "PingReceived",
    "PongReceived",
    "ReceiptReceived",
    "RoomMessageReceived",
    "State",
    "UnblockRequested",
    "WhoRequested",
    "element_xml",
    "history_xml",
    "message_xml",
    "newest_that_fit",
    "schema",
    "stream_header",
    "timestamp",
]
