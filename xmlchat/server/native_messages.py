"""What a native connection keeps to translate its messages cheaply.

Every message a native client sends names a recipient and, when the client
gave no ``<id>``, gets one from the server (docs/native-protocol.md: the ack
and the recipient carry it). Parsing the address and formatting it back cost
about 1 µs a message, and ``secrets.token_hex`` about 2 µs (a ``getrandom``
system call each time): docs/performance/analysis.md, "native cost". So each
connection keeps the addresses it last saw and numbers the ids it assigns.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Final

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID

# Addresses kept per connection; past this the cache starts again (a client
# writing to many people pays the parse, nothing grows).
KEPT: Final = 64


class Recipients:
    """``<to>`` as written (``bob``, ``bob@localhost``) -> the JID and its text."""

    __slots__ = ("_domain", "_known")

    def __init__(self, domain: str) -> None:
        self._domain = domain
        self._known: dict[str, tuple[JID, str]] = {}

    def parse(self, address: str) -> tuple[JID, str]:
        """Raises StanzaError jid-malformed for what is not a user address."""
        known = self._known.get(address)
        if known is None:
            try:
                to = JID.user(address, self._domain)
            except InvalidJID:
                raise StanzaError(StanzaCondition.JID_MALFORMED, f"bad address {address!r}") from None
            if len(self._known) >= KEPT:
                self._known.clear()
            known = self._known[address] = (to, str(to))
        return known


class Ids:
    """Ids the server assigns on one connection: a random 64-bit prefix drawn
    once, then a counter. As unique as :func:`~xmlchat.stanza.new_id`'s
    (a collision needs two connections to draw the same prefix), and
    unguessable to anyone who has seen none of them."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._count):x}"
