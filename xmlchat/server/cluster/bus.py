"""The cluster bus on NATS: the :class:`~xmlchat.routing.cluster.ClusterBus` a hub is given.

Core NATS carries everything (see docs/scale-out.md for why not JetStream):
the registry events every node hears, and each node's own subject for the
stanzas of its sessions. Liveness is a heartbeat: a node silent for
``cluster.node_timeout`` is dead, its sessions are forgotten
(:meth:`~xmlchat.routing.hub.Hub.forget_node`), and its users, reconnecting to
any node, find what was acknowledged to their senders in the shared store.
Core NATS keeps nothing for a node that is away: one back on NATS, or hearing
again from a node it forgot, catches up (``_reconnected``, ``_heard``): the
sessions are listed again and the modules reload what they cache
(:meth:`~xmlchat.routing.hub.Hub.resync_cached`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import nats.errors
from lxml import etree
from nats.aio.client import Client
from nats.aio.msg import Msg

from xmlchat.config import Cluster
from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.routing.cluster import Forwarded
from xmlchat.routing.hub import Hub
from xmlchat.routing.session import Session
from xmlchat.server.cluster import wire
from xmlchat.stanza import from_bytes, to_bytes

log = logging.getLogger(__name__)

# Tries of each NATS server at start before giving up (a typo should not hang).
START_ATTEMPTS = 2


class NatsCluster:
    """``await NatsCluster.join(config, node, hub)``; ``await leave()`` at shutdown."""

    def __init__(self, settings: Cluster, node: str, hub: Hub, nc: Client) -> None:
        self._settings = settings
        self._node = node
        self._hub = hub
        self._nc = nc
        self._incarnation = secrets.token_hex(6)
        self._registry = wire.registry_subject(settings.subject_prefix)
        # Other nodes: incarnation and when last heard from (loop time).
        self._peers: dict[str, tuple[str, float]] = {}
        # Everything published goes through one queue, so it leaves in order.
        self._outbox: asyncio.Queue[tuple[str, bytes, dict[str, str] | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._relays: set[asyncio.Task[None]] = set()
        # Hub.cluster_changed calls, one at a time and in order.
        self._changes: asyncio.Lock = asyncio.Lock()
        # Registry events, and resyncs of what the modules cache, one at a time.
        self._registry_turn: asyncio.Lock = asyncio.Lock()
        self._resync_waiting = False
        self._resyncs: set[asyncio.Task[None]] = set()
        # Nodes this one forgot for their silence, with their incarnation: one
        # heard again unrestarted was cut off from here, and its events with it.
        self._forgotten: dict[str, str] = {}
        # Sessions each node is listing (between its "listing" and "listed"),
        # with the listing's number: a "listed" ends only the listing it closes.
        self._listing: dict[str, tuple[int, set[JID]]] = {}
        self._listings = itertools.count()

    @classmethod
    async def join(cls, settings: Cluster, node: str, hub: Hub) -> NatsCluster:
        if not wire.NODE_NAME.match(node):
            raise ValueError(f"cluster.node_name {node!r}: letters, digits, '-' and '_' only")
        servers = [url.strip() for url in settings.nats_url.split(",") if url.strip()]
        nc = Client()
        bus = cls(settings, node, hub, nc)
        try:
            await nc.connect(
                servers, name=f"xmlchat-{node}", connect_timeout=2, reconnect_time_wait=1,
                max_reconnect_attempts=START_ATTEMPTS, error_cb=_nats_error,
                reconnected_cb=bus._reconnected,
            )
        except Exception as e:
            raise OSError(f"cannot reach NATS at {settings.nats_url}: {e or type(e).__name__}") from None
        # Once in, never give up: a node cut off from NATS is forgotten by the
        # others (and stores what it cannot relay) until it is back.
        nc.options["max_reconnect_attempts"] = -1
        hub.attach_cluster(bus)
        await nc.subscribe(bus._registry, cb=bus._on_registry)
        await nc.subscribe(wire.node_subject(settings.subject_prefix, node), cb=bus._on_stanza)
        bus._tasks = [asyncio.create_task(bus._publisher()), asyncio.create_task(bus._heartbeat())]
        bus._emit(bus._registry, wire.event("hello", node, bus._incarnation))
        # The others answer a hello with a beat: hear them before serving, or
        # this node would take every room for its own until it does (and its
        # first clients would be told the room moved, status 332).
        await asyncio.sleep(settings.heartbeat_interval)
        log.info("cluster: node %s joined at %s", node, ", ".join(servers))
        return bus

    async def leave(self) -> None:
        """Say goodbye (the others forget this node at once) and disconnect."""
        self._emit(self._registry, wire.event("bye", self._node, self._incarnation))
        await self._outbox.join()
        tasks = [*self._tasks, *self._resyncs]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._nc.drain()

    @property
    def node(self) -> str:
        return self._node

    def peers(self) -> list[str]:
        return sorted(self._peers)

    # ---- ClusterBus: what the hub asks of the other nodes

    def publish_session(self, session: Session) -> None:
        self._emit(self._registry, wire.session_up(self._node, self._incarnation, session))

    def publish_gone(self, session: Session) -> None:
        self._emit(self._registry, wire.session_gone(self._node, self._incarnation, session))

    def publish_changed(self, topic: str, account: JID) -> None:
        # On the registry subject, through the one outbox: every node hears it,
        # in the order this node's changes were made.
        self._emit(self._registry, wire.event("changed", self._node, self._incarnation,
                                              topic=topic, account=str(account)))

    def send(self, node: str, to: JID, stanza: etree._Element, stamp: datetime, delayed: bool) -> None:
        headers = wire.stanza_headers("deliver", [to], stamp, delayed)
        self._emit(self._node_subject(node), to_bytes(stanza), headers)

    def kick(self, node: str, to: JID) -> None:
        self._emit(self._node_subject(node), b"", wire.stanza_headers("kick", [to], datetime.now(UTC)))

    async def relay(
        self,
        node: str,
        to: Sequence[JID],
        stanza: etree._Element,
        stamp: datetime,
        message_id: int | None = None,
    ) -> int | None:
        headers = wire.stanza_headers("relay", list(to), stamp)
        if message_id is not None:
            headers["mid"] = str(message_id)
        try:
            reply = await self._nc.request(
                self._node_subject(node), to_bytes(stanza), self._settings.relay_timeout, headers=headers
            )
        except (nats.errors.Error, OSError) as e:
            # Timeout, no responders, or NATS itself unreachable: stored instead.
            log.warning("cluster: node %s did not take a message (%s)", node, type(e).__name__)
            return None
        return int(reply.data or b"0")

    def view(self) -> Mapping[str, str]:
        return {self._node: self._incarnation, **{node: inc for node, (inc, _) in self._peers.items()}}

    async def forward(
        self, node: str, sender: Session, stanza: etree._Element, to: JID, stamp: datetime
    ) -> Forwarded | None:
        headers = wire.stanza_headers("forward", [to], stamp)
        headers["from"] = str(sender.jid)
        # A proxy as the sender: a stanza forwarded here, passed on to the owner.
        headers["node"] = sender.node or self._node
        if sender.node is not None:
            headers["passed"] = "1"
        headers["xmpp"] = "1" if sender.capabilities.full_xmpp else ""
        try:
            reply = await self._nc.request(
                self._node_subject(node), to_bytes(stanza), self._settings.relay_timeout, headers=headers
            )
        except (nats.errors.Error, OSError) as e:
            log.warning("cluster: node %s did not take a stanza for %s (%s)", node, to.bare, type(e).__name__)
            return None
        return wire.parse_forwarded(reply.data)

    # ---- what the others say

    async def _on_registry(self, msg: Msg) -> None:
        async with self._registry_turn:
            await self._registry_event(msg)

    async def _registry_event(self, msg: Msg) -> None:
        try:
            event = wire.parse_event(msg.data)
            if event.node == self._node:
                return
            await self._heard(event.node, event.incarnation)
            if event.op == "up":
                remote = event.remote_session()
                self._hub.remote_session(remote)
                if event.node in self._listing:
                    self._listing[event.node][1].add(remote.jid)
            elif event.op == "listing":
                self._listing[event.node] = (int(event.body["n"]), set())
            elif event.op == "listed":
                await self._listed(event.node, int(event.body["n"]))
            elif event.op == "gone":
                self._hub.remote_session_gone(event.node, JID.parse(event.body["jid"]))
            elif event.op == "changed":
                # Awaited, as the registry's other events: one account's changes
                # are applied here in the order they were made there.
                await self._hub.changed_elsewhere(event.body["topic"], JID.parse(event.body["account"]))
            elif event.op == "hello":
                self._emit(self._registry, wire.event("beat", self._node, self._incarnation))
                self._publish_all()
            elif event.op == "bye":
                await self._forget(event.node, "left")
        except Exception:
            log.exception("cluster: bad registry event")

    async def _on_stanza(self, msg: Msg) -> None:
        headers = msg.headers or {}
        try:
            op = headers.get("op")
            if op == "sync":
                self._publish_all()
                return
            to, stamp, delayed = wire.addressed(headers)
            if op == "relay":
                # Each in its own task: a relay waiting for a store commit does not
                # hold up the others (one sender's relays come one at a time anyway).
                task = asyncio.create_task(self._relayed(msg, to, stamp))
                self._relays.add(task)
                task.add_done_callback(self._relays.discard)
            elif op == "forward":
                task = asyncio.create_task(self._forwarded(msg, to[0], stamp))
                self._relays.add(task)
                task.add_done_callback(self._relays.discard)
            elif op == "deliver":
                session = self._hub.router.get(to[0])
                if session is not None and session.node is None:
                    self._hub.deliver(session, from_bytes(msg.data), stamp, delayed)
            elif op == "kick":
                session = self._hub.router.get(to[0])
                if session is not None and session.node is None:
                    session.close(StreamError(StreamCondition.CONFLICT, "replaced by a new connection"))
        except Exception:
            log.exception("cluster: bad %s from another node", headers.get("op"))

    async def _relayed(self, msg: Msg, to: list[JID], stamp: datetime) -> None:
        taken = 0
        try:
            mid = (msg.headers or {}).get("mid")
            stanza = from_bytes(msg.data)
            taken = await self._hub.receive_relayed(to, stanza, stamp, None if mid is None else int(mid))
        except Exception:
            log.exception("cluster: a relayed message failed here")
        finally:
            await msg.respond(str(taken).encode())

    async def _forwarded(self, msg: Msg, to: JID, stamp: datetime) -> None:
        headers = msg.headers or {}
        answer = Forwarded()
        try:
            sender = JID.parse(headers["from"])
            node = headers.get("node") or ""
            answer = await self._hub.receive_forwarded(
                node, sender, headers.get("xmpp") == "1", from_bytes(msg.data), to, stamp,
                headers.get("passed") == "1",
            )
        except Exception:
            log.exception("cluster: a forwarded stanza failed here")
            answer.error = StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR)
        # Through the outbox: after what was written to the sender's node before.
        self._emit(msg.reply, wire.forwarded(answer))

    # ---- liveness

    async def _heard(self, node: str, incarnation: str) -> None:
        known = self._peers.get(node)
        self._peers[node] = (incarnation, asyncio.get_running_loop().time())
        if known is None:
            # A node we did not know (it started before us, or came back after
            # we forgot it): ask for its sessions.
            log.info("cluster: node %s is up", node)
            self._emit(self._node_subject(node), b"", {"op": "sync"})
            await self._changed()
            if self._forgotten.pop(node, None) == incarnation:
                # Back after a partition: what it announced meanwhile was lost here.
                self._resync_soon()
        elif known[0] != incarnation:
            log.info("cluster: node %s restarted", node)
            self._listing.pop(node, None)
            await self._hub.forget_node(node)
            self._emit(self._node_subject(node), b"", {"op": "sync"})
            await self._changed()

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._emit(self._registry, wire.event("beat", self._node, self._incarnation))
            await asyncio.sleep(self._settings.heartbeat_interval)
            now = loop.time()
            for node, (incarnation, seen) in list(self._peers.items()):
                if now - seen > self._settings.node_timeout:
                    self._forgotten[node] = incarnation
                    await self._forget(node, f"silent for {now - seen:.1f} s")

    async def _forget(self, node: str, why: str) -> None:
        if self._peers.pop(node, None) is None:
            return  # forgotten already (a bye, then its silence)
        self._listing.pop(node, None)
        count = await self._hub.forget_node(node)
        log.warning("cluster: node %s %s; forgot its %d session(s)", node, why, count)
        await self._changed()

    async def _changed(self) -> None:
        async with self._changes:
            try:
                await self._hub.cluster_changed()
            except Exception:
                log.exception("cluster: a module failed on the change of live nodes")

    # ---- catching up

    async def _listed(self, node: str, number: int) -> None:
        """``node`` listed all its sessions: forget the proxies it did not
        list. Only when this node heard the whole listing (its start too)."""
        started, listed = self._listing.get(node, (None, set()))
        if started != number:
            return
        del self._listing[node]
        count = await self._hub.forget_unlisted(node, listed)
        if count:
            log.warning("cluster: node %s: %d session(s) went while this node did not hear", node, count)

    async def _reconnected(self) -> None:
        """Back on NATS after a cut (a NATS restart, a network blip): core
        NATS kept nothing for this node meanwhile, so the registry events of
        that time are lost to it, and what it published may be lost to the
        others. Each side lists its sessions again (``hello``: the others
        answer with theirs), and the modules reload what they cache."""
        log.warning("cluster: back on NATS; catching up on what may have been missed")
        self._emit(self._registry, wire.event("hello", self._node, self._incarnation))
        self._publish_all()
        self._resync_soon()

    def _resync_soon(self) -> None:
        """Have the modules reload what they cache of this node's users
        (Hub.resync_cached), after the registry event being handled; one
        waiting run serves every request made before it starts."""
        if self._resync_waiting:
            return
        self._resync_waiting = True
        task = asyncio.create_task(self._resync())
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _resync(self) -> None:
        async with self._registry_turn:
            self._resync_waiting = False
            try:
                await self._hub.resync_cached()
            except Exception:
                log.exception("cluster: a module failed to reload what it caches")

    # ---- publishing

    def _publish_all(self) -> None:
        """Every local session, bracketed: a node that hears the whole listing
        forgets the proxies of this node it did not list (gone unheard)."""
        number = next(self._listings)
        self._emit(self._registry, wire.event("listing", self._node, self._incarnation, n=number))
        for session in self._hub.router.local_sessions():
            self.publish_session(session)
        self._emit(self._registry, wire.event("listed", self._node, self._incarnation, n=number))

    def _emit(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self._outbox.put_nowait((subject, payload, headers))

    async def _publisher(self) -> None:
        while True:
            subject, payload, headers = await self._outbox.get()
            try:
                await self._nc.publish(subject, payload, headers=headers)
            except Exception as e:  # reconnecting: nats-py buffers; anything else is logged
                log.warning("cluster: could not publish to %s: %s", subject, e)
            finally:
                self._outbox.task_done()

    def _node_subject(self, node: str) -> str:
        return wire.node_subject(self._settings.subject_prefix, node)


async def _nats_error(error: Exception) -> None:
    log.warning("cluster: NATS: %s", error or type(error).__name__)
