"""What a feature module declares.

A module is one protocol feature in one file (as Prosody's ``mod_*.lua``). It
is built with a :class:`~xmlchat.routing.context.ModuleContext` (the narrow
context it may touch) and returns its registrations from ``setup()`` (as
ejabberd's ``start/2``); the hub wires them, so a module never registers or
unregisters by hand.

The hook chains (``InboundFilter``, ``RouteFilter``, ``OutboundFilter``) run
in priority order, highest first; a filter returns the stanza (possibly
rewritten) to pass it on, or None to drop it, and may raise
:class:`~xmlchat.errors.StanzaError` where the sender must be told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from lxml import etree

from xmlchat.jid import JID
from xmlchat.routing.session import Session

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
    that ``topic`` of an account changed there: ``handle`` gets its bare JID.
    Also called, for every account with a session here, when this node may
    have missed such announcements (cut off from the others for a while):
    ``handle`` reloads and tells what differs, and is a no-op if nothing does."""

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
