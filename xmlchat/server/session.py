"""What the router knows of a logged-in client, whatever its protocol."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from lxml import etree

from xmlchat.errors import StanzaError, StreamError
from xmlchat.jid import JID


class Session(Protocol):
    """A bound client session: an XMPP resource or a native-protocol login.

    Stanzas travel between sessions in XMPP form (``jabber:client`` namespace,
    RFC 6120 §8); a native session translates on the way in and out.
    """

    @property
    def jid(self) -> JID:
        """The full JID, ``user@host/resource``."""

    @property
    def protocol(self) -> str:
        """``"xmpp"`` or ``"native"``, for logs and metrics."""

    @property
    def available(self) -> bool:
        """Has sent available presence (RFC 6121 §4.2); native logins always have."""

    @property
    def priority(self) -> int:
        """Presence priority (RFC 6121 §4.7.2.3); routing skips negative ones."""

    @property
    def interested(self) -> bool:
        """Has requested the roster, so wants roster pushes (RFC 6121 §2.1.6)."""

    @property
    def last_presence(self) -> etree._Element | None:
        """The last available presence broadcast (RFC 6121 §4.2), None if plain."""

    def deliver(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        """Queue ``stanza`` for the client. ``stamp`` is when the server accepted it;
        ``delayed`` marks offline delivery (XEP-0203). Never blocks."""

    def close(self, error: StreamError) -> None:
        """End the session with a stream error (e.g. conflict, system-shutdown)."""


class XmppSession(Session, Protocol):
    """An XMPP session: it has presence state and can be answered with errors."""

    available_presence: etree._Element | None
    presence_priority: int
    roster_requested: bool

    def reply_error(self, stanza: etree._Element, error: StanzaError) -> None:
        """Answer ``stanza`` with an error stanza (RFC 6120 §8.3)."""
