"""The native ``<history>`` answer: one page of archived messages (spec:
docs/native-protocol.md, "History"). Pure functions the core and the server share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from xmlchat.protocol.native.wire import element_xml, timestamp

# A page holds 1 to MAX_HISTORY messages (the schema's history-max);
# DEFAULT_HISTORY when the request names no <max>.
MAX_HISTORY: Final = 100
DEFAULT_HISTORY: Final = 50
_RESULT: Final = "history-result"
_END: Final = f"</{_RESULT}>".encode()


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """One archived message as the native protocol shows it: bare addresses,
    the time the server accepted it, ``id`` as delivered (None when it had none)."""

    archive_id: str
    id: str | None
    sender: str
    to: str
    time: datetime
    body: str


def message_xml(message: HistoryMessage) -> bytes:
    return element_xml(
        "message",
        [
            ("id", message.id),
            ("archive-id", message.archive_id),
            ("from", message.sender),
            ("to", message.to),
            ("time", timestamp(message.time)),
            ("body", message.body),
        ],
    )


def history_xml(messages: Sequence[bytes], complete: bool, id_: str | None) -> bytes:
    """``<history-result>``: the request's id, ``complete``, the messages as
    written by :func:`message_xml`, oldest first."""
    flag = "true" if complete else "false"
    # <complete> is always there, so the head is never an empty element: the
    # messages (already written) go before its end tag.
    head = element_xml(_RESULT, [("id", id_), ("complete", flag)])
    return head[: -len(_END)] + b"".join(messages) + _END


def newest_that_fit(messages: Sequence[bytes], budget: int) -> int:
    """How many of ``messages`` (oldest first) to send, counted from the newest,
    so that together they take at most ``budget`` bytes; at least one, so
    paging always moves. The client asks for the rest with ``before`` = the
    oldest archive id it got."""
    total, kept = 0, 0
    for message in reversed(messages):
        total += len(message)
        if kept and total > budget:
            break
        kept += 1
    return kept
