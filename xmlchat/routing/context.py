"""The narrow context a feature module is given (its declarations: :mod:`xmlchat.routing.api`).

A module is built with a :class:`ModuleContext` — deliver, the sessions, its
own store, its settings, a logger, metrics — never the server or a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from lxml import etree

from xmlchat.config import Limits
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.protocol.caps import Caps
from xmlchat.routing.api import Identity
from xmlchat.routing.session import Session

if TYPE_CHECKING:
    from xmlchat.routing.hub import Hub


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
