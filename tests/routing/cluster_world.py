"""Nodes of a cluster, in one process: real hubs with every module, one shared
store, and a bus that hands each call straight to the other hub (the NATS
bus is tested end to end in tests/e2e/test_cluster_e2e.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

from lxml import etree
from modules.fakes import Recorder

from xmlchat.config import Config
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.modules.messages import Messages
from xmlchat.routing.cluster import Forwarded, RemoteSession
from xmlchat.routing.hub import Hub
from xmlchat.routing.session import XMPP_CLIENT, Session
from xmlchat.server.modules import build_hub
from xmlchat.stanza import from_bytes, make, to_bytes
from xmlchat.storage import MemoryStorage


class Cluster:
    """Hubs by node name, and which nodes are down (their relays go unanswered)."""

    def __init__(self, *names: str) -> None:
        self.store = MemoryStorage()
        self.hubs: dict[str, Hub] = {}
        self.down: set[str] = set()
        # Set: a relay to a down node fails now; unset: when it is set (a timeout).
        self.unanswered: asyncio.Event | None = None
        self.relay_waiting = asyncio.Event()
        self.incarnations = dict.fromkeys(names, 1)
        # Nodes a node has not heard of yet (its view lags the others').
        self.unheard: dict[str, set[str]] = {}
        # Nodes cut off from the bus: announcements do not reach them (lost, as on core NATS).
        self.cut: set[str] = set()
        # The other nodes' OnChangedElsewhere hooks, running (publish_changed).
        self.announcements: set[asyncio.Task[None]] = set()
        for name in names:
            hub = build_hub(Config(), self.store, Metrics())
            hub.attach_cluster(DirectBus(name, self))
            self.hubs[name] = hub

    def view(self, of: str | None = None) -> dict[str, str]:
        unheard = self.unheard.get(of or "", set())
        return {name: str(self.incarnations[name]) for name in self.hubs if name not in self.down | unheard}

    async def kill(self, node: str) -> None:
        """``node`` dies and every other node notices (its heartbeat timed out)."""
        self.down.add(node)
        for hub in self.others(node):
            await hub.forget_node(node)
            await hub.cluster_changed()

    def others(self, node: str) -> list[Hub]:
        return [hub for name, hub in self.hubs.items() if name != node and name not in self.down]

    async def online(
        self, node: str, jid: str, recorder: Recorder | None = None
    ) -> tuple[Session, Recorder]:
        """A session on ``node`` that sent initial presence and got its stored messages."""
        recorder = recorder or Recorder()
        session = Session(JID.parse(jid), XMPP_CLIENT, recorder)
        hub = self.hubs[node]
        await hub.open_session(session)
        await hub.receive(session, make("presence"), None)
        await self.settled(node, session.jid)
        return session, recorder

    async def announced(self) -> None:
        """Wait until every node heard every change announced so far."""
        while self.announcements:
            await asyncio.gather(*self.announcements)

    async def settled(self, node: str, jid: JID) -> None:
        """Wait until the inboxes of ``jid``'s sessions on ``node`` handed over
        and settled (deleted from the store) what they were offered."""
        messages = next(m for m in self.hubs[node].modules if isinstance(m, Messages))
        await messages.replayed(jid)


class DirectBus:
    def __init__(self, node: str, cluster: Cluster) -> None:
        self._node, self._cluster = node, cluster

    @property
    def node(self) -> str:
        return self._node

    def publish_session(self, session: Session) -> None:
        presence = session.available_presence
        remote = RemoteSession(
            self._node, session.jid, session.capabilities.full_xmpp, session.priority,
            None if presence is None else to_bytes(presence), session.shared,
        )
        for hub in self._cluster.others(self._node):
            hub.remote_session(remote)

    def publish_gone(self, session: Session) -> None:
        for name, hub in self._cluster.hubs.items():
            if name != self._node and name not in self._cluster.down | self._cluster.cut:
                hub.remote_session_gone(self._node, session.jid)

    def publish_changed(self, topic: str, account: JID) -> None:
        # Not awaited by the caller, as over NATS: the test waits with Cluster.announced.
        for name, hub in self._cluster.hubs.items():
            if name == self._node or name in self._cluster.down | self._cluster.cut:
                continue
            task = asyncio.create_task(hub.changed_elsewhere(topic, account))
            self._cluster.announcements.add(task)
            task.add_done_callback(self._cluster.announcements.discard)

    def send(self, node: str, to: JID, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        target = self._cluster.hubs[node].router.get(to)
        if node not in self._cluster.down and target is not None and target.node is None:
            self._cluster.hubs[node].deliver(target, stanza, stamp, delayed)

    def kick(self, node: str, to: JID) -> None:
        raise AssertionError("no test here replaces a session across nodes")

    async def relay(
        self,
        node: str,
        to: Sequence[JID],
        stanza: etree._Element,
        stamp: datetime,
        message_id: int | None = None,
    ) -> int | None:
        if node in self._cluster.down:
            if self._cluster.unanswered is not None:
                self._cluster.relay_waiting.set()
                await self._cluster.unanswered.wait()
            return None
        return await self._cluster.hubs[node].receive_relayed(list(to), stanza, stamp, message_id)

    def view(self) -> Mapping[str, str]:
        return self._cluster.view(self._node)

    async def forward(
        self, node: str, sender: Session, stanza: etree._Element, to: JID, stamp: datetime
    ) -> Forwarded | None:
        if node in self._cluster.down:
            return None
        hub = self._cluster.hubs[node]
        copied = from_bytes(to_bytes(stanza))  # as over the wire: the owner gets its own
        xmpp = sender.capabilities.full_xmpp
        # A proxy as the sender: this node passes on a stanza forwarded to it.
        origin, again = sender.node or self._node, sender.node is not None
        return await hub.receive_forwarded(origin, sender.jid, xmpp, copied, to, stamp, again)
