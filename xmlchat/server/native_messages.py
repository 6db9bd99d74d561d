"""The ``<to>`` of a native client's messages, parsed once per address.

A client writes to a few people, again and again; parsing the address and
formatting it back for the XMPP form cost about 1 µs a message
(docs/performance/analysis.md, "native cost"), so each connection keeps the
last ones it saw.
"""

from __future__ import annotations

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
