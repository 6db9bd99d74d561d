"""What the router and the modules know of a logged-in client, whatever its protocol.

A :class:`Session` is a bound address plus the routing state RFC 6121 keeps
per resource (its current presence and priority). How a stanza reaches the
client is its front end's business (:class:`SessionTransport`); modules never
see a connection, and never ask which protocol a session speaks: they ask
what it can do (:class:`Capabilities`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lxml import etree

from xmlchat.errors import StreamError
from xmlchat.jid import JID


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a session's front end can carry, decided at its edge."""

    # Receives XMPP stanzas as they are: iqs, errors, subscription requests it
    # can answer, its own presence echoed (RFC 6121 §4.2.2), presence directed
    # to it by anyone. The native protocol has none of these: its front end
    # shows messages and the contacts' online state only.
    full_xmpp: bool
    # Acknowledges each message it sends (native <ack/>).
    acks: bool = False


_NO_FLAGS: frozenset[str] = frozenset()  # shared: 216 bytes per session otherwise
XMPP_CLIENT = Capabilities(full_xmpp=True)
NATIVE_CLIENT = Capabilities(full_xmpp=False, acks=True)


class SessionTransport(Protocol):
    """The front end behind a session: how stanzas reach the client."""

    @property
    def protocol(self) -> str:
        """``"xmpp"`` or ``"native"``: for logs and metrics only."""

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        """Hand ``stanza`` to the client, translated to its wire form. Never
        blocks. ``stamp`` is when the server accepted it; ``delayed`` marks a
        stored message (XEP-0203)."""

    def close(self, error: StreamError) -> None:
        """End the connection with a stream error (conflict, system-shutdown)."""

    @property
    def backlog(self) -> int:
        """Bytes written and not yet handed to the network (as of the last write)."""

    async def drained(self) -> bool:
        """Wait until the client has taken what was written (flow control for a
        replay, and when a stored message may be deleted); False when the
        connection is gone first."""

    @property
    def acknowledges(self) -> bool:
        """Whether the client acknowledges what it receives (native receipts,
        XEP-0198), so that :meth:`drained` means "the client has it", not
        "the kernel has it"."""


class Session:
    """A bound resource: ``user@host/resource`` with its presence state.

    Only :meth:`xmlchat.routing.hub.Hub.deliver` calls :meth:`write`, so every
    stanza to a client passes the outbound hook chain.
    """

    __slots__ = (
        "__weakref__", "_presence", "available", "bare", "capabilities", "jid", "node", "observer",
        "priority", "routed", "shared", "transport", "write",
    )

    def __init__(
        self, jid: JID, capabilities: Capabilities, transport: SessionTransport, node: str | None = None
    ) -> None:
        if jid.resource is None:
            raise ValueError(f"a session needs a full JID, not {jid}")
        self.jid = jid
        self.bare = jid.bare  # asked for on every stanza: computed once
        self.capabilities = capabilities
        self.transport = transport
        self._presence: etree._Element | None = None
        # Whether it has available presence (RFC 6121 §4.2): a plain attribute
        # kept by the setter below, read for every message routed to the user.
        self.available = False
        # Whether the router routes to it now: added, neither removed nor
        # replaced by a newer session of its full JID (kept by Router).
        self.routed = False
        # §4.7.2.3: messages to the bare JID skip negative priorities.
        self.priority = 0
        # The cluster node the client is connected to; None: this one.
        self.node = node
        # Told of each presence change (the cluster publishes it to other nodes).
        self.observer: Callable[[Session], None] | None = None
        # What other nodes of a cluster must know of it besides its presence,
        # e.g. "carbons" (XEP-0280 enabled): set through Hub.share.
        self.shared: frozenset[str] = _NO_FLAGS
        # write(stanza, stamp, delayed): the transport's own method, so the hot
        # path has no wrapper frame. Only Hub.deliver calls it.
        self.write = transport.write

    @property
    def available_presence(self) -> etree._Element | None:
        """RFC 6121 §4.2: the last available presence broadcast; None until
        initial presence and after unavailable presence."""
        return self._presence

    @available_presence.setter
    def available_presence(self, presence: etree._Element | None) -> None:
        self._presence = presence
        self.available = presence is not None
        if self.observer is not None:
            self.observer(self)

    @property
    def protocol(self) -> str:
        return self.transport.protocol

    def close(self, error: StreamError) -> None:
        self.transport.close(error)

    def __repr__(self) -> str:
        where = "" if self.node is None else f" on {self.node}"
        return f"<Session {self.jid} {self.protocol}{where}>"
