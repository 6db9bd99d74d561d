"""The hub's side that faces the other nodes of a cluster (:mod:`xmlchat.routing.cluster`):
what the bus tells it of them (sessions, relayed messages, forwarded stanzas,
changes announced, nodes forgotten), and what the modules ask of them through
:class:`~xmlchat.routing.context.ModuleContext`. :class:`~xmlchat.routing.hub.Hub`
inherits it; without a cluster every method here is a cheap no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from functools import partial

from lxml import etree

from xmlchat.errors import ErrorType, StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.routing.cluster import ClusterBus, Forwarded, RemoteSession, RemoteSessions, owner_of
from xmlchat.routing.registry import Registry
from xmlchat.routing.router import Router
from xmlchat.routing.session import Session

_NONE: set[JID] = set()  # remote_flagged's answer without a cluster; never changed


class HubCluster:
    """Mixed into the Hub, which sets these attributes."""

    router: Router
    registry: Registry
    # Other nodes, when this one is part of a cluster (attach_cluster).
    cluster: ClusterBus | None
    remote: RemoteSessions | None

    def _domain_label(self, to: JID) -> str | None:
        raise NotImplementedError  # the Hub's: which served domain ``to`` is on

    def attach_cluster(self, bus: ClusterBus) -> RemoteSessions:
        """Join a cluster: from now on sessions of other nodes are routable here."""
        self.cluster = bus
        self.remote = RemoteSessions(self.router, bus)
        for priority, outbound in self.registry.cluster_outbound:
            self.registry.outbound.append((priority, outbound))
        self.registry.outbound.sort(key=lambda pair: -pair[0])
        return self.remote

    def owner(self, key: JID) -> tuple[str, str] | None:
        """The live node serving ``key`` on a partitioned domain, with its
        incarnation; None without a cluster."""
        if self.cluster is None:
            return None
        view = self.cluster.view()
        node = owner_of(str(key), view)
        return node, view[node]

    async def cluster_changed(self) -> None:
        """The bus saw the live nodes change: the modules' OnClusterChanged hooks."""
        await every(self.registry.cluster_changed)

    def announce_changed(self, topic: str, account: JID) -> None:
        """``topic`` of ``account`` changed here: the other nodes' OnChangedElsewhere hooks run."""
        if self.cluster is not None:
            self.cluster.publish_changed(topic, account)

    async def changed_elsewhere(self, topic: str, account: JID) -> None:
        await every(partial(hook, account) for hook in self.registry.changed_elsewhere.get(topic, ()))

    async def resync_cached(self) -> None:
        """This node may have missed ``changed`` events (the bus lost touch
        with the others for a while; core NATS keeps nothing for a subscriber
        that is away): every OnChangedElsewhere hook runs once for each account
        with a session here, as if every topic of it had changed elsewhere. A
        hook reloads and tells its sessions what differs, as for one event.
        Every hook runs even if one fails; then the first failure is raised."""
        accounts = list(dict.fromkeys(session.bare for session in self.router.local_sessions()))
        await every(
            partial(hook, account)
            for hooks in self.registry.changed_elsewhere.values()
            for account in accounts
            for hook in hooks
        )

    def share(self, session: Session, flag: str, on: bool) -> None:
        """Set or clear a flag other nodes must know of a local session
        (``Session.shared``, e.g. carbons enabled), and tell them."""
        session.shared = session.shared | {flag} if on else session.shared - {flag}
        self._presence_changed(session)

    def remote_flagged(self, flag: str) -> set[JID]:
        """Accounts with a session on another node that has ``flag`` shared."""
        return self.remote.flagged.get(flag, _NONE) if self.remote is not None else _NONE

    def _presence_changed(self, session: Session) -> None:
        # A session replaced by a newer one (§7.7.2.2) says nothing more.
        if self.cluster is not None and self.router.get(session.jid) is session:
            self.cluster.publish_session(session)

    async def relay(
        self, node: str, to: list[Session], stanza: etree._Element, stamp: datetime, message_id: int | None
    ) -> int:
        if self.cluster is None:
            return 0
        taken = await self.cluster.relay(node, [s.jid for s in to], stanza, stamp, message_id)
        return taken or 0

    async def receive_relayed(
        self, to: list[JID], stanza: etree._Element, stamp: datetime, message_id: int | None = None
    ) -> int:
        """A message another node routed to sessions of this one: how many took it."""
        sessions = [s for s in map(self.router.get, to) if s is not None and s.node is None]
        if not sessions or self.registry.relayed_message is None:
            return 0
        return await self.registry.relayed_message(sessions, stanza, stamp, message_id)

    def remote_session(self, remote: RemoteSession) -> None:
        if self.remote is not None:
            self.remote.upsert(remote)

    def remote_session_gone(self, node: str, jid: JID) -> None:
        if self.remote is not None:
            self.remote.remove(node, jid)

    async def receive_forwarded(
        self,
        node: str,
        sender: JID,
        full_xmpp: bool,
        stanza: etree._Element,
        to: JID,
        stamp: datetime,
        passed_on: bool = False,
    ) -> Forwarded:
        """A stanza ``node``'s session ``sender`` sent to an address this node
        owns (Hub.to_domain there). Handled as a local one is, with the
        sender's proxy; what is written to the sender meanwhile goes back in
        the answer, so it reaches the client before the sender's front end
        hears how it went.

        Nodes disagree on the live nodes for a heartbeat or so. A node that
        thinks a third one owns the address passes the stanza on, once
        (``passed_on``: it was, by another node): otherwise a copy of the room
        could start here that no change of the live nodes ever stops."""
        label = self._domain_label(to)
        if self.remote is None or self.cluster is None or label is None:
            return Forwarded(error=StanzaError(StanzaCondition.SERVICE_UNAVAILABLE))
        proxy, transport = self.remote.proxy_for(node, sender, full_xmpp)
        owner = owner_of(str(to.bare), self.cluster.view())
        if not passed_on and owner not in (self.cluster.node, node):
            passed = await self.cluster.forward(owner, proxy, stanza, to, stamp)
            if passed is None:
                why = f"{to.bare} is served by node {owner}, which does not answer"
                return Forwarded(error=StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, why, ErrorType.WAIT))
            return passed
        answer = Forwarded()
        outer, transport.capture = transport.capture, answer.written
        try:
            await self.registry.domains[label](proxy, stanza, to, stamp)
        except StanzaError as e:
            answer.error = e
        finally:
            if outer is not None:
                outer.extend(answer.written)
            transport.capture = outer
        return answer

    async def forget_node(self, node: str) -> int:
        """A node stopped answering: its sessions are gone. Each node runs the
        session-ended hooks for them (unavailable presence to its own sessions
        only); returns how many there were."""
        if self.remote is None:
            return 0
        return await self._ended_elsewhere(self.remote.forget_node(node))

    async def forget_unlisted(self, node: str, listed: set[JID]) -> int:
        """``node`` listed every session it has: its proxies here it did not
        list went while this node was not listening (their ``gone`` events and
        unavailable presence were lost to it). Ended here as a dead node's
        sessions are; returns how many there were."""
        if self.remote is None:
            return 0
        unlisted = [jid for jid in self.remote.sessions_of_node(node) if jid not in listed]
        proxies = [proxy for jid in unlisted if (proxy := self.remote.remove(node, jid)) is not None]
        return await self._ended_elsewhere(proxies)

    async def _ended_elsewhere(self, proxies: list[Session]) -> int:
        assert self.remote is not None
        self.remote.ghosts.update(p.jid for p in proxies)
        try:
            for proxy in proxies:
                await every(partial(ended, proxy) for _, ended in self.registry.session_ended)
        finally:
            self.remote.ghosts.difference_update(p.jid for p in proxies)
        return len(proxies)


async def every(calls: Iterable[Callable[[], Awaitable[None]]]) -> None:
    """Await each call in turn, all of them even if one fails; then raise the
    first failure, if any."""
    failure: Exception | None = None
    for call in calls:
        try:
            await call()
        except Exception as e:
            failure = failure or e
    if failure is not None:
        raise failure
