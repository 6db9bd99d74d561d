"""What a feature module declares, and the narrow context it is given.

A module is one protocol feature in one file (as Prosody's ``mod_*.lua``). It
is built with a :class:`ModuleContext` — deliver, the sessions, its own store,
its settings, a logger, metrics — never the server or a connection, and
returns its registrations from ``setup()`` (as ejabberd's ``start/2``); the
hub wires them, so a module never registers or unregisters by hand.

The hook chains (``InboundFilter``, ``RouteFilter``, ``OutboundFilter``) run
in priority order, highest first; a filter returns the stanza (possibly
rewritten) to pass it on, or None to drop it, and may raise
:class:`~xmlchat.errors.StanzaError` where the sender must be told.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from lxml import etree

from xmlchat.config import Limits
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.protocol.caps import Caps
from xmlchat.routing.session import Session

if TYPE_CHECKING:
    from xmlchat.routing.hub import Hub

IqType = Literal["get", "set"]
StanzaKind = Literal["message", "presence"]

IqHandlerFn = Callable[[Session, etree._Element], Awaitable[etree._Element | None]]
StanzaHandlerFn = Callable[[Session, etree._Element, JID | None, datetime], Awaitable[None]]
SessionHookFn = Callable[[Session], Awaitable[None]]
ClientStateFn = Callable[[Session, bool], Awaitable[None]]
LifecycleFn = Callable[[], Awaitable[None]]
RelayedMessageFn = Callable[[list[Session], etree._Element, datetime, int | None], Awaitable[int]]
AccountChangedFn = Callable[[JID], Awaitable[None]]
# An operator's command: its arguments in, a JSON-able answer out.
AdminCommandFn = Callable[[Mapping[str, Any]], Awaitable[Any]]
# A filter returns the stanza (maybe rewritten) or None to drop it; one that
# needs no I/O may be a plain function, which costs the hot path less.
Filtered = etree._Element | None
InboundFilterFn = Callable[[Session, etree._Element], Awaitable[Filtered] | Filtered]
RouteFilterFn = Callable[[etree._Element, JID], Awaitable[Filtered] | Filtered]
OutboundFilterFn = Callable[[Session, etree._Element], etree._Element | None]


@dataclass(frozen=True, slots=True)
class IqHandler:
    """Handles ``<iq type=TYPE>`` whose payload is the element ``payload``
    (Clark notation, e.g. ``{urn:xmpp:ping}ping``) addressed to the server or to
    the sender's own bare JID. Returns the result payload (or None for an empty
    result); raises :class:`~xmlchat.errors.StanzaError` to answer with an error.

    ``accounts``: also answer iqs to *another* existing local account's bare
    JID, on its behalf (RFC 6121 §8.5.2.1.3), e.g. disco#info; the handler
    tells them apart by the iq's 'to'. Others get service-unavailable.

    ``internal``: only a front end translating its own protocol may call it
    (:meth:`Hub.call_iq`); from the XMPP wire it does not exist."""

    type: IqType
    payload: str
    handle: IqHandlerFn
    accounts: bool = False
    internal: bool = False


@dataclass(frozen=True, slots=True)
class StanzaHandler:
    """Handles every message (or presence) a session sends that no domain
    handler claims; ``from`` is already stamped, ``to`` parsed (None: absent),
    and the last argument is when the server accepted it (the native ack
    and the recipient see the same time)."""

    kind: StanzaKind
    handle: StanzaHandlerFn


@dataclass(frozen=True, slots=True)
class ServesDomain:
    """Every stanza addressed to ``<subdomain>.<host>`` or a JID on it (a
    component, e.g. ``conference``) goes to ``handle``, whatever its kind."""

    subdomain: str
    handle: StanzaHandlerFn
    # Listed in the server's disco#items under this name (XEP-0030 §4), so
    # clients find the service; empty: not listed.
    name: str = ""
    # In a cluster, each ``local@<subdomain>.<host>`` is served by one owner node
    # (routing.cluster.owner_of), stanzas forwarded there; the domain itself anywhere.
    partitioned: bool = False


@dataclass(frozen=True, slots=True)
class Feature:
    """A XEP-0030 disco#info feature the server advertises; ``account``: one
    each account's bare JID advertises instead (e.g. XEP-0313, an archive
    per user, RFC 6121 §8.5.2.1.3 answered on the account's behalf)."""

    var: str
    account: bool = False


@dataclass(frozen=True, slots=True)
class Identity:
    """A XEP-0030 identity of the server itself (§3.1: an entity may have
    several, e.g. ``server/im`` and ``pubsub/pep``); ``account``: one each
    account's bare JID has instead (XEP-0163 §5: ``pubsub/pep``)."""

    category: str
    type: str
    name: str = ""
    account: bool = False


@dataclass(frozen=True, slots=True)
class StreamFeature:
    """An empty element advertised in post-authentication stream features,
    e.g. roster versioning ``("urn:xmpp:features:rosterver", "ver")``."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class OnSessionOpening:
    """Called before a bound session becomes routable: state a filter needs
    for it is loaded here, so no stanza reaches it unfiltered."""

    handle: SessionHookFn
    priority: int = 0


@dataclass(frozen=True, slots=True)
class OnSessionStarted:
    """Called when a session is bound and routable (RFC 6120 §7)."""

    handle: SessionHookFn
    priority: int = 0


@dataclass(frozen=True, slots=True)
class OnSessionEnded:
    """Called once when a routable session goes away, cleanly or not."""

    handle: SessionHookFn
    priority: int = 0


@dataclass(frozen=True, slots=True)
class OnInitialPresence:
    """A session became available (RFC 6121 §4.2; a native login). ``prepare``
    runs before the session is routable as available — e.g. to hold live
    messages back — and ``handle`` after the broadcast."""

    handle: SessionHookFn
    priority: int = 0
    prepare: Callable[[Session], None] | None = None


@dataclass(frozen=True, slots=True)
class OnClientState:
    """The session's client said whether its user is looking (XEP-0352):
    True for ``<active/>``, False for ``<inactive/>``."""

    handle: ClientStateFn
    priority: int = 0


@dataclass(frozen=True, slots=True)
class OnStart:
    """Called once when the server starts serving, e.g. to start a timer."""

    handle: LifecycleFn


@dataclass(frozen=True, slots=True)
class OnStop:
    """Called once at shutdown, before storage closes: stop what OnStart began."""

    handle: LifecycleFn


@dataclass(frozen=True, slots=True)
class OnRelayedMessage:
    """Another node of the cluster hands over a message for some of this
    node's sessions (those still here): its route filters already ran there.
    With its id in the shared store when it is stored: it stays there until
    a client here took it. Returns how many sessions were handed it."""

    handle: RelayedMessageFn


@dataclass(frozen=True, slots=True)
class OnClusterChanged:
    """A node joined, restarted or was forgotten: ``ModuleContext.owner`` may answer anew."""

    handle: LifecycleFn


@dataclass(frozen=True, slots=True)
class OnChangedElsewhere:
    """Another node of the cluster announced (``ModuleContext.announce_changed``)
    that ``topic`` of an account changed there: ``handle`` gets its bare JID."""

    topic: str
    handle: AccountChangedFn


@dataclass(frozen=True, slots=True)
class AdminCommand:
    """A command of the admin channel (``xmlchat NAME`` while the server runs,
    as Prosody's shell commands): ``handle`` gets the request's arguments and
    returns a JSON-able answer, or raises :class:`AdminCommandError`."""

    name: str
    handle: AdminCommandFn


class AdminCommandError(Exception):
    """An operator's request that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class InboundFilter:
    """A stanza from a local session, before it is handled (sender side).
    ``kinds``: the stanza kinds it looks at (``presence``...); None: all. The
    hub calls it for those only: every message a client sends passes here."""

    handle: InboundFilterFn
    priority: int = 0
    kinds: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class RouteFilter:
    """A message or iq on its way to a local account (the bare JID given),
    before its sessions or the offline store are chosen (recipient side)."""

    handle: RouteFilterFn
    priority: int = 0


@dataclass(frozen=True, slots=True)
class OutboundFilter:
    """Any stanza about to be written to one session; synchronous, as it runs
    for every stanza delivered."""

    handle: OutboundFilterFn
    priority: int = 0
    clustered: bool = False  # only on a node of a cluster


# Every declaration a module may return from setup().
Registration = (
    IqHandler | StanzaHandler | ServesDomain | Feature | Identity | StreamFeature | OnSessionOpening
    | OnSessionStarted | OnSessionEnded | OnInitialPresence | OnClientState | OnStart | OnStop
    | OnRelayedMessage | OnClusterChanged | OnChangedElsewhere | AdminCommand | InboundFilter | RouteFilter
    | OutboundFilter
)


class Module(Protocol):
    name: str

    def setup(self) -> list[Registration]: ...


class Sessions(Protocol):
    """The router, read-only: who is connected."""

    def get(self, full: JID) -> Session | None: ...

    def sessions_of(self, bare: JID) -> list[Session]: ...

    def available_sessions(self, bare: JID) -> list[Session]: ...

    def is_connected(self, bare: JID) -> bool: ...

    def has_local_session(self, bare: JID) -> bool: ...

    def is_online(self, bare: JID) -> bool: ...

    def all_sessions(self) -> list[Session]: ...


# Covariant: a context holding the whole Storage serves a module asking for one store.
StoreT = TypeVar("StoreT", covariant=True)


class ModuleContext(Generic[StoreT]):
    """Everything a module may touch. Built by the composition root."""

    def __init__(
        self, name: str, hub: Hub, store: StoreT, *, hosts: Sequence[str], limits: Limits, metrics: Metrics
    ) -> None:
        self.name = name
        self.store = store
        self.hosts = frozenset(hosts)
        self.domain = hosts[0]
        self.limits = limits
        self.metrics = metrics
        self.log = logging.getLogger(f"xmlchat.modules.{name}")
        self._hub = hub
        # The router, read-only: who is connected.
        self.sessions: Sessions = hub.router
        # The hub's own methods: every message passes here, so no wrapper frames.
        # deliver(session, stanza, stamp=None, delayed=False) -> bool: through
        # the outbound hook chain to ``session``; False if a filter dropped it.
        self.deliver = hub.deliver
        # to_account(stanza, account) -> stanza | None: the recipient-side hook
        # chain for a local account (may raise StanzaError).
        self.to_account = hub.run_route_filters
        # remote_flagged(flag) -> set of JIDs: accounts with a session on another
        # node that shares ``flag`` (read-only; carbons ask for every message).
        self.remote_flagged = hub.remote_flagged
        # announce_changed(topic, account): tell the other nodes of a cluster
        # (their OnChangedElsewhere(topic) hooks); without a cluster, nothing.
        self.announce_changed = hub.announce_changed

    def share(self, session: Session, flag: str, on: bool) -> None:
        """Tell other nodes of a cluster that ``session`` has (or no longer has)
        ``flag``: their proxies of it carry it in ``Session.shared``."""
        self._hub.share(session, flag, on)

    async def relay(
        self, node: str, to: list[Session], stanza: etree._Element, stamp: datetime, message_id: int | None
    ) -> int:
        """Hand a message to sessions of another node (``session.node``) and
        wait until that node has taken it: how many sessions did (0 if the node
        did not answer). ``message_id``: its id in the shared store, which that
        node's inboxes delete once a client has taken it."""
        return await self._hub.relay(node, to, stanza, stamp, message_id)

    @property
    def node(self) -> str | None:
        """This node's name in a cluster; None: no cluster."""
        return None if self._hub.cluster is None else self._hub.cluster.node

    def owner(self, key: JID) -> tuple[str, str] | None:
        """(name, incarnation) of the node serving ``key``; None: no cluster."""
        return self._hub.owner(key)

    def live_nodes(self) -> set[str] | None:
        """The cluster's live nodes, this one included; None: no cluster."""
        return None if self._hub.cluster is None else set(self._hub.cluster.view())

    async def to_domain(self, session: Session, stanza: etree._Element, to: JID) -> None:
        """As if ``session`` sent ``stanza`` to ``to`` (on its owner node, in a cluster)."""
        await self._hub.to_domain(session, stanza, to, datetime.now(UTC))

    async def presence_became_available(self, session: Session) -> None:
        """Run the initial-presence hooks (the presence module calls this)."""
        await self._hub.initial_presence(session)

    def prepare_available(self, session: Session) -> None:
        self._hub.prepare_available(session)

    @property
    def server_caps(self) -> Caps:
        """The server's XEP-0115 caps (node, hash, ver) over its features."""
        return self._hub.registry.server_caps()

    @property
    def features(self) -> list[str]:
        """Every disco feature registered for the server (for disco#info)."""
        return list(self._hub.registry.features)

    @property
    def identities(self) -> list[Identity]:
        """Every identity of the server registered (for disco#info)."""
        return list(self._hub.registry.identities)

    @property
    def services(self) -> list[tuple[str, str]]:
        """(subdomain, name) of every listed service (for disco#items)."""
        return sorted(self._hub.registry.services.items())

    @property
    def subdomains(self) -> list[str]:
        """The labels of every domain a module serves (``conference``, a component's)."""
        return sorted(self._hub.registry.domains)

    @property
    def account_identities(self) -> list[Identity]:
        """Every identity registered for accounts' bare JIDs."""
        return list(self._hub.registry.account_identities)

    @property
    def account_features(self) -> list[str]:
        """Every disco feature registered for accounts' bare JIDs."""
        return list(self._hub.registry.account_features)
