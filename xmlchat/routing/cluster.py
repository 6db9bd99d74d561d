"""Several nodes, one user base: the port the hub reaches other nodes through.

Each node keeps its own connections. What the others need of them — who is
online where, per resource, with which presence — reaches every node as
registry events; the router then holds a *proxy* :class:`Session` for each
resource connected elsewhere (``session.node`` names its node), whose
transport hands stanzas to the :class:`ClusterBus`. So presence fan-out,
probes, directed presence, iqs to full JIDs and carbons need nothing new: a
module writing to a proxy writes across the cluster.

Messages are the exception, because the sender's acknowledgement depends on
them: :meth:`ClusterBus.relay` waits until the node holding the recipient
has written (or stored) the message, and says how many of its sessions took
it; a node that does not answer took none, and the sender's node stores the
message instead (XEP-0160), so nothing acknowledged is lost with a node.

Rooms (and any :class:`~xmlchat.routing.api.ServesDomain` declared
``partitioned``) are the other exception: each address on such a domain is
served by one *owner* node, chosen by :func:`owner_of` over the live nodes, so
every node agrees without asking. A stanza to it from a session here goes to
the owner with :meth:`ClusterBus.forward` and waits for the answer: what the
owner wrote to the sender meanwhile, and the error if it refused, so the
sender's front end answers as if the room were here.

The bus itself (NATS) lives in :mod:`xmlchat.server.cluster`; with no cluster
configured there is no bus and the single-node path is unchanged.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from lxml import etree

from xmlchat.errors import StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.routing.router import Router
from xmlchat.routing.session import Capabilities, Session
from xmlchat.stanza import from_bytes, to_bytes

# What a session was written while its stanza was handled on another node:
# (serialized stanza, stamp, delayed).
Written = tuple[bytes, datetime, bool]


def owner_of(key: str, nodes: Iterable[str]) -> str:
    """The node that serves ``key`` (a room's bare JID): rendezvous hashing
    (highest random weight). Every node computes it from the same live set and
    agrees without asking; when a node joins or leaves, only the keys it wins
    or held move (about 1/N of them), and the others stay where they are.
    blake2b, not ``hash()``: the same answer in every process."""
    return max(nodes, key=lambda node: (_weight(node, key), node))


def _weight(node: str, key: str) -> bytes:
    return hashlib.blake2b(f"{node}\0{key}".encode(), digest_size=8).digest()


@dataclass(slots=True)
class Forwarded:
    """The owner's answer to a forwarded stanza: what it wrote to the sender
    while handling it, in order, and the error the sender gets, if any."""

    written: list[Written] = field(default_factory=list)
    error: StanzaError | None = None


@dataclass(frozen=True, slots=True)
class RemoteSession:
    """What the registry says of one resource connected to another node."""

    node: str
    jid: JID  # full
    full_xmpp: bool
    priority: int = 0
    presence: bytes | None = None  # its available presence, serialized; None: unavailable
    shared: frozenset[str] = frozenset()  # Session.shared of the session there


class ClusterBus(Protocol):
    """What the hub needs of the other nodes."""

    @property
    def node(self) -> str:
        """This node's name."""

    def publish_session(self, session: Session) -> None:
        """A local session is routable, or its presence changed."""

    def publish_gone(self, session: Session) -> None:
        """A local session is no longer routable."""

    def publish_changed(self, topic: str, account: JID) -> None:
        """Something the nodes cache of ``account`` (``topic``: e.g. its
        blocklist) changed here: every other node reloads its copy."""

    def send(self, node: str, to: JID, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        """Hand ``stanza`` to ``node`` for its session ``to``; never blocks, no answer."""

    def kick(self, node: str, to: JID) -> None:
        """Ask ``node`` to close its session ``to`` with ``conflict`` (RFC 6120
        §7.7.2.2): the same full JID connected here."""

    async def relay(
        self,
        node: str,
        to: Sequence[JID],
        stanza: etree._Element,
        stamp: datetime,
        message_id: int | None = None,
    ) -> int | None:
        """Have ``node`` deliver a message to its sessions ``to``: how many took
        it, or None when the node did not answer in time. ``message_id``: the
        message's id in the shared store; that node's inboxes delete it there
        once a client has taken it."""

    def view(self) -> Mapping[str, str]:
        """The live nodes, this one included: name -> incarnation (random per start)."""

    async def forward(
        self, node: str, sender: Session, stanza: etree._Element, to: JID, stamp: datetime
    ) -> Forwarded | None:
        """Have ``node`` handle ``stanza`` from ``sender`` to ``to``, an address
        it owns; None when it did not answer in time. ``sender`` is a local
        session, or the proxy of one elsewhere whose stanza is passed on."""


class RemoteTransport:
    """The transport of a proxy session: everything goes over the bus."""

    protocol = "remote"
    backlog = 0  # the owning node decides whether its session is behind

    def __init__(self, bus: ClusterBus, node: str, jid: JID, ghosts: set[JID]) -> None:
        self._bus, self._node, self._jid, self._ghosts = bus, node, jid, ghosts
        # Set while a stanza forwarded from this session is handled here: what
        # is written to it goes back with the answer (Hub.receive_forwarded).
        # Serialized at once: a broadcast reuses one element for every recipient.
        self.capture: list[Written] | None = None

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        if self._ghosts and _sender(stanza) in self._ghosts:
            return  # every live node tells its own sessions that a dead node's users left
        if self.capture is not None:
            self.capture.append((to_bytes(stanza), stamp, delayed))
            return
        self._bus.send(self._node, self._jid, stanza, stamp, delayed)

    def close(self, error: StreamError) -> None:
        if error.condition is StreamCondition.CONFLICT:
            self._bus.kick(self._node, self._jid)

    async def drained(self) -> bool:
        return True

    # Nothing written here is confirmed by a client: a stored message for a
    # session on another node is relayed with its store id, and that node's
    # inbox deletes it once its own client has taken it.
    acknowledges = False


class RemoteSessions:
    """The router's proxies for sessions on other nodes, kept from registry events."""

    def __init__(self, router: Router, bus: ClusterBus) -> None:
        self._router = router
        self._bus = bus
        self._by_node: dict[str, dict[JID, Session]] = {}
        # Full JIDs of a dead node's sessions while their unavailable presence
        # goes out: proxies on other live nodes do not carry it (each node
        # tells its own sessions).
        self.ghosts: set[JID] = set()
        # For each Session.shared flag, the accounts with a proxy that has it:
        # a module's hot path asks one set, not every session.
        self.flagged: dict[str, set[JID]] = {}
        # Proxies made for a forwarded stanza before the registry told of its
        # sender (the two travel on different subjects): held by the rooms
        # they entered only, and taken into the router when the registry's
        # news arrives.
        self._unlisted: weakref.WeakValueDictionary[tuple[str, JID], Session] = weakref.WeakValueDictionary()

    def proxy_for(self, node: str, jid: JID, full_xmpp: bool) -> tuple[Session, RemoteTransport]:
        """The proxy of ``node``'s session ``jid``: the router's, else one kept
        out of the router (no registry news of it yet, or it is gone: a late
        stanza must not make it routable again)."""
        proxy = self._by_node.get(node, {}).get(jid) or self._unlisted.get((node, jid))
        if proxy is None:
            transport = RemoteTransport(self._bus, node, jid, self.ghosts)
            proxy = Session(jid, Capabilities(full_xmpp=full_xmpp), transport, node)
            self._unlisted[(node, jid)] = proxy
        assert isinstance(proxy.transport, RemoteTransport)
        return proxy, proxy.transport

    def nodes(self) -> list[str]:
        return list(self._by_node)

    def sessions_of_node(self, node: str) -> list[JID]:
        """The full JIDs of ``node``'s sessions, as its registry events told."""
        return list(self._by_node.get(node, {}))

    def count(self) -> int:
        return sum(len(sessions) for sessions in self._by_node.values())

    def upsert(self, remote: RemoteSession) -> None:
        """A session on another node appeared or changed its presence."""
        sessions = self._by_node.setdefault(remote.node, {})
        proxy = sessions.get(remote.jid)
        if proxy is None:
            # One made for a forwarded stanza becomes the router's: the rooms it
            # entered keep reaching the same object.
            proxy = self._unlisted.pop((remote.node, remote.jid), None)
            if proxy is None:
                transport = RemoteTransport(self._bus, remote.node, remote.jid, self.ghosts)
                proxy = Session(remote.jid, Capabilities(full_xmpp=remote.full_xmpp), transport, remote.node)
            sessions[remote.jid] = proxy
            replaced = self._router.add(proxy)
            if replaced is not None and replaced.node is None:
                # The same full JID connected there later: the newer wins (§7.7.2.2).
                replaced.close(StreamError(StreamCondition.CONFLICT, "replaced by a new connection"))
        # A proxy replaced meanwhile by a newer session (here or on a third node)
        # stays out of the router: late news of the older one changes nothing.
        proxy.priority = remote.priority
        proxy.shared = remote.shared
        proxy.available_presence = None if remote.presence is None else from_bytes(remote.presence)
        self._reindex(remote.jid.bare)

    def remove(self, node: str, jid: JID) -> Session | None:
        proxy = self._by_node.get(node, {}).pop(jid, None)
        if proxy is not None:
            self._router.remove(proxy)
            self._reindex(jid.bare)
        return proxy

    def forget_node(self, node: str) -> list[Session]:
        """Every proxy of ``node`` leaves the router; returns them."""
        proxies = list(self._by_node.pop(node, {}).values())
        for proxy in proxies:
            self._router.remove(proxy)
        for bare in {proxy.bare for proxy in proxies}:
            self._reindex(bare)
        return proxies

    def _reindex(self, bare: JID) -> None:
        flags = {flag for s in self._router.sessions_of(bare) if s.node is not None for flag in s.shared}
        for flag, accounts in self.flagged.items():
            if flag not in flags:
                accounts.discard(bare)
        for flag in flags:
            self.flagged.setdefault(flag, set()).add(bare)


def _sender(stanza: etree._Element) -> JID | None:
    sender = stanza.get("from")
    return None if sender is None else JID.parse(sender)
