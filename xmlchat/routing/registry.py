"""The tables the hub builds from what modules declare (:mod:`xmlchat.routing.api`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from xmlchat.protocol import caps
from xmlchat.routing.api import (
    AccountChangedFn,
    AdminCommand,
    ClientStateFn,
    Feature,
    Identity,
    InboundFilter,
    InboundFilterFn,
    IqHandler,
    LifecycleFn,
    OnChangedElsewhere,
    OnClientState,
    OnClusterChanged,
    OnInitialPresence,
    OnRelayedMessage,
    OnSessionEnded,
    OnSessionOpening,
    OnSessionStarted,
    OnStart,
    OnStop,
    OutboundFilter,
    OutboundFilterFn,
    Registration,
    RelayedMessageFn,
    RouteFilter,
    RouteFilterFn,
    ServesDomain,
    SessionHookFn,
    StanzaHandler,
    StanzaHandlerFn,
    StreamFeature,
)

_STANZA_KINDS = ("message", "presence", "iq")


def _insert(chain: list[tuple[int, Any]], priority: int, fn: Any) -> None:
    """Highest priority first; equal priorities keep registration order."""
    chain.append((priority, fn))
    chain.sort(key=lambda pair: -pair[0])


@dataclass
class Registry:
    iq_handlers: dict[tuple[str, str], IqHandler] = field(default_factory=dict)
    stanza_handlers: dict[str, StanzaHandlerFn] = field(default_factory=dict)
    domains: dict[str, StanzaHandlerFn] = field(default_factory=dict)  # subdomain label -> handler
    services: dict[str, str] = field(default_factory=dict)  # listed subdomain label -> name
    partitioned: set[str] = field(default_factory=set)  # subdomain labels served per address by an owner node
    features: list[str] = field(default_factory=list)
    account_features: list[str] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    account_identities: list[Identity] = field(default_factory=list)
    on_start: list[LifecycleFn] = field(default_factory=list)
    on_stop: list[LifecycleFn] = field(default_factory=list)
    stream_features: list[tuple[str, str]] = field(default_factory=list)
    session_opening: list[tuple[int, SessionHookFn]] = field(default_factory=list)
    session_started: list[tuple[int, SessionHookFn]] = field(default_factory=list)
    session_ended: list[tuple[int, SessionHookFn]] = field(default_factory=list)
    initial_presence: list[tuple[int, OnInitialPresence]] = field(default_factory=list)
    client_state: list[tuple[int, ClientStateFn]] = field(default_factory=list)
    inbound: list[tuple[int, InboundFilterFn]] = field(default_factory=list)
    # The inbound chain of each stanza kind: the filters that look at it, in
    # the chain's order (kinds not listed get the whole chain).
    inbound_by_kind: dict[str, list[InboundFilterFn]] = field(default_factory=dict)
    _inbound_filters: list[InboundFilter] = field(default_factory=list)
    route: list[tuple[int, RouteFilterFn]] = field(default_factory=list)
    outbound: list[tuple[int, OutboundFilterFn]] = field(default_factory=list)
    # Outbound filters that run only on a node of a cluster (Hub.attach_cluster adds them).
    cluster_outbound: list[tuple[int, OutboundFilterFn]] = field(default_factory=list)
    cluster_changed: list[LifecycleFn] = field(default_factory=list)
    # OnChangedElsewhere hooks, by topic.
    changed_elsewhere: dict[str, list[AccountChangedFn]] = field(default_factory=lambda: defaultdict(list))
    relayed_message: RelayedMessageFn | None = None
    admin_commands: dict[str, AdminCommand] = field(default_factory=dict)
    owners: dict[str, list[Registration]] = field(default_factory=lambda: defaultdict(list))
    _caps: caps.Caps | None = None

    def server_caps(self) -> caps.Caps:
        """XEP-0115 caps of the server's own identities and features (§6.3),
        hashed once: modules are all loaded before the first stream."""
        if self._caps is None:
            identities = [caps.CapsIdentity(i.category, i.type, name=i.name) for i in self.identities]
            self._caps = caps.Caps(caps.SERVER_NODE, "sha-1", caps.ver(identities, self.features))
        return self._caps

    def add(self, owner: str, registrations: list[Registration]) -> None:
        self._caps = None
        for reg in registrations:
            self._add(owner, reg)
            self.owners[owner].append(reg)

    def _add(self, owner: str, reg: Registration) -> None:
        match reg:
            case IqHandler(type_, payload):
                if (type_, payload) in self.iq_handlers:
                    raise ValueError(f"{owner}: iq {type_} {payload} already handled")
                self.iq_handlers[(type_, payload)] = reg
            case StanzaHandler(kind, handle):
                if kind in self.stanza_handlers:
                    raise ValueError(f"{owner}: {kind} stanzas already handled")
                self.stanza_handlers[kind] = handle
            case ServesDomain(subdomain, handle, name, partitioned):
                if subdomain in self.domains:
                    raise ValueError(f"{owner}: {subdomain}.<host> already served")
                self.domains[subdomain] = handle
                if partitioned:
                    self.partitioned.add(subdomain)
                if name:
                    self.services[subdomain] = name
            case Feature(var, account):
                (self.account_features if account else self.features).append(var)
            case OnStart(handle):
                self.on_start.append(handle)
            case OnStop(handle):
                self.on_stop.append(handle)
            case OnClusterChanged(handle):
                self.cluster_changed.append(handle)
            case OnChangedElsewhere(topic, handle):
                self.changed_elsewhere[topic].append(handle)
            case OnRelayedMessage(handle):
                if self.relayed_message is not None:
                    raise ValueError(f"{owner}: relayed messages already handled")
                self.relayed_message = handle
            case AdminCommand(name):
                if name in self.admin_commands:
                    raise ValueError(f"{owner}: admin command {name!r} already registered")
                self.admin_commands[name] = reg
            case Identity(account=account):
                (self.account_identities if account else self.identities).append(reg)
            case StreamFeature(namespace, name):
                self.stream_features.append((namespace, name))
            case OnSessionOpening(handle, priority):
                _insert(self.session_opening, priority, handle)
            case OnSessionStarted(handle, priority):
                _insert(self.session_started, priority, handle)
            case OnSessionEnded(handle, priority):
                _insert(self.session_ended, priority, handle)
            case OnInitialPresence(_, priority):
                _insert(self.initial_presence, priority, reg)
            case OnClientState(handle, priority):
                _insert(self.client_state, priority, handle)
            case InboundFilter():
                # Highest priority first; equal priorities keep registration order.
                self._inbound_filters.append(reg)
                self._inbound_filters.sort(key=lambda f: -f.priority)
                self.inbound = [(f.priority, f.handle) for f in self._inbound_filters]
                self.inbound_by_kind = {
                    kind: [f.handle for f in self._inbound_filters if f.kinds is None or kind in f.kinds]
                    for kind in _STANZA_KINDS
                }
            case RouteFilter(handle, priority):
                _insert(self.route, priority, handle)
            case OutboundFilter(handle, priority, clustered):
                _insert(self.cluster_outbound if clustered else self.outbound, priority, handle)
