"""When the NATS bus (xmlchat/server/cluster/bus.py) catches up, with no NATS:
registry events are handed to it as NATS would, what it publishes is read
from its outbox. A node back on NATS, or hearing again unrestarted from a node
it forgot, has the modules reload what they cache; a node's whole listing of
its sessions drops the proxies it left out (end to end:
tests/e2e/test_cluster_resync_e2e.py)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

from modules.fakes import Recorder
from nats.aio.client import Client
from nats.aio.msg import Msg
from routing.test_hub import Declares

from xmlchat.config import Cluster, Config
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.routing.api import OnChangedElsewhere
from xmlchat.routing.hub import Hub
from xmlchat.routing.session import XMPP_CLIENT, Session
from xmlchat.server.cluster import wire
from xmlchat.server.cluster.bus import NatsCluster
from xmlchat.server.modules import build_hub
from xmlchat.storage import MemoryStorage

PEER = "n0"


async def _node(reloaded: list[JID]) -> tuple[Hub, NatsCluster]:
    """Node n1 with alice connected and a module recording its reloads."""
    hub = build_hub(Config(), MemoryStorage(), Metrics())

    async def reload(account: JID) -> None:
        reloaded.append(account)

    hub.load(Declares("cache", OnChangedElsewhere("topic", reload)))
    bus = NatsCluster(Cluster(), "n1", hub, cast(Client, None))
    hub.attach_cluster(bus)
    await hub.open_session(Session(JID.parse("alice@localhost/a"), XMPP_CLIENT, Recorder()))
    return hub, bus


async def _hear(bus: NatsCluster, op: str, incarnation: str = "one", **body: Any) -> None:
    await bus._on_registry(cast(Msg, SimpleNamespace(data=wire.event(op, PEER, incarnation, **body))))


async def _caught_up(bus: NatsCluster) -> None:
    while bus._resyncs:
        await asyncio.gather(*bus._resyncs)


def _published(bus: NatsCluster) -> list[str]:
    ops = []
    while not bus._outbox.empty():
        _, payload, headers = bus._outbox.get_nowait()
        ops.append(json.loads(payload)["op"] if payload else (headers or {}).get("op", ""))
    return ops


async def test_back_on_nats_a_node_lists_its_sessions_asks_for_theirs_and_reloads() -> None:
    reloaded: list[JID] = []
    _, bus = await _node(reloaded)
    _published(bus)
    await bus._reconnected()
    await bus._reconnected()  # while the first resync waits: served by it
    await _caught_up(bus)
    assert reloaded == [JID.parse("alice@localhost")]
    assert _published(bus)[:4] == ["hello", "listing", "up", "listed"]


async def test_a_forgotten_node_heard_again_unrestarted_means_events_were_missed() -> None:
    reloaded: list[JID] = []
    _, bus = await _node(reloaded)
    await _hear(bus, "beat")
    bus._forgotten[PEER] = "one"  # as the heartbeat does when it times out
    await bus._forget(PEER, "silent")
    await _hear(bus, "beat")
    await _caught_up(bus)
    assert reloaded == [JID.parse("alice@localhost")]

    bus._forgotten[PEER] = "one"
    await bus._forget(PEER, "silent")
    await _hear(bus, "beat", "two")  # restarted: it announced nothing since it was forgotten
    await _caught_up(bus)
    assert reloaded == [JID.parse("alice@localhost")]


async def test_a_whole_listing_drops_the_proxies_it_leaves_out() -> None:
    hub, bus = await _node([])
    phone, tablet = JID.parse("carol@localhost/phone"), JID.parse("carol@localhost/tablet")
    for jid in (phone, tablet):
        await _hear(bus, "up", jid=str(jid), xmpp=True)
    assert hub.router.get(phone) is not None

    await _hear(bus, "listed", n=7)  # the end of a listing not heard from its start: nothing
    await _hear(bus, "listing", n=8)
    await _hear(bus, "up", jid=str(tablet), xmpp=True)
    await _hear(bus, "listed", n=7)
    assert hub.router.get(phone) is not None
    await _hear(bus, "listed", n=8)
    assert hub.router.get(phone) is None
    assert hub.router.get(tablet) is not None
