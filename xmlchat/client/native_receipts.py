"""The native client's receipts (docs/native-protocol.md, "Receipts"): what it
confirms to the server, and never showing one message twice.

A client that logs in with ``<receipts/>`` gets every message numbered with
``<seq>`` (1, 2, 3… per connection) and answers ``<received><seq>n</seq></received>``:
"I have every message up to n". The server deletes a stored message only once
confirmed, so after a lost connection it sends again what was shown but not yet
confirmed; :class:`RecentMessages` recognises those repeats and drops them.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from lxml import etree

from xmlchat.client.native_types import IncomingMessage, parse_time
from xmlchat.protocol.native import NS, element_xml

# How many recently shown messages a client remembers, across reconnects.
RECENT: Final = 10_000

# What identifies one message: (from, id, time). The id alone does not: ids are
# the senders' (every NativeClient counts c1, c2…). The server stamps the time
# when it accepts a message and a replay carries that same time, so a repeat
# matches exactly, and an id a sender uses again later does not.
MessageKey = tuple[str, str, str]


def text(el: etree._Element, name: str) -> str:
    child = el.find(f"{{{NS}}}{name}")
    return "" if child is None else (child.text or "")


class RecentMessages:
    """The last ``size`` messages shown, oldest forgotten first. One may be
    shared by several clients of one user (e.g. an app that makes a new
    NativeClient to log in again), so none shows a message another showed."""

    def __init__(self, size: int = RECENT) -> None:
        self._order: deque[MessageKey] = deque()
        self._keys: set[MessageKey] = set()
        self.size = size

    def first_time(self, key: MessageKey) -> bool:
        """Remember ``key``; False if it was shown recently (a repeat)."""
        if key in self._keys:
            return False
        self._order.append(key)
        self._keys.add(key)
        if len(self._order) > self.size:
            self._keys.discard(self._order.popleft())
        return True


class Inbox:
    """Messages arriving on a client's connections: numbered, confirmed, unrepeated."""

    def __init__(self, recent: RecentMessages | None = None) -> None:
        self.recent = recent if recent is not None else RecentMessages()
        self._seen = 0  # the highest <seq> of this connection
        self._confirmed = 0  # the highest we sent <received> for

    def connected(self) -> None:
        """A new connection: the server numbers from 1 again."""
        self._seen = self._confirmed = 0

    def message(self, el: etree._Element) -> IncomingMessage | None:
        """The message to show, or None for a repeat of one shown already."""
        seq = text(el, "seq")
        if seq:
            self._seen = max(self._seen, int(seq))
        fields = (text(el, "from"), text(el, "id"), text(el, "time"))
        if not self.recent.first_time(fields):
            return None
        return IncomingMessage(fields[1], fields[0], text(el, "to"), parse_time(fields[2]), text(el, "body"))

    def receipt(self) -> bytes | None:
        """``<received>`` for what came since the last one, if anything did.
        The caller sends it once what it read is handed to the user."""
        if self._seen <= self._confirmed:
            return None
        self._confirmed = self._seen
        return element_xml("received", [("seq", str(self._seen))])
