"""Nodes of a cluster, in one process: real hubs with every module, one shared
store, and a bus that hands each call straight to the other hub (the NATS
bus is tested end to end in tests/e2e/test_cluster_e2e.py)."""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree
from modules.fakes import Recorder
from routing.cluster_world import Cluster

from xmlchat.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.routing.cluster import RemoteSession
from xmlchat.stanza import make
from xmlchat.storage import RosterItem

ALICE, BOB = JID.parse("alice@localhost"), JID.parse("bob@localhost")


def chat(to: str, body: str) -> etree._Element:
    message = make("message", {"type": "chat", "from": "alice@localhost/desk", "to": to})
    etree.SubElement(message, "{jabber:client}body").text = body
    return message


def bodies(recorder: Recorder) -> list[str]:
    messages = [s for s in recorder.stanzas if s.tag == "{jabber:client}message"]
    return [str(s.findtext("{jabber:client}body")) for s in messages]


async def test_a_message_to_a_session_on_another_node_is_relayed_and_delivered_there() -> None:
    cluster = Cluster("a", "b")
    await cluster.store.create_user(BOB, "bobpw")
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    _, bob_sees = await cluster.online("b", "bob@localhost/phone")
    assert cluster.hubs["a"].router.available_sessions(BOB)[0].node == "b"  # a proxy on node a
    await cluster.hubs["a"].receive(alice, chat("bob@localhost", "over there"), BOB)
    assert bodies(bob_sees) == ["over there"]
    await cluster.settled("b", BOB)  # node b's inbox deletes it once bob's client took it
    assert await cluster.store.count_offline(BOB) == 0


class Acknowledging(Recorder):
    """A client that acknowledges what it takes, once the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.acknowledges = True
        self.takes = asyncio.Event()

    async def drained(self) -> bool:
        await self.takes.wait()
        return await super().drained()


async def test_a_relayed_message_leaves_the_store_only_once_the_remote_client_took_it() -> None:
    # Stored by the sender's node, handed over by the recipient's: bob's phone
    # (node b) goes before acknowledging it, so his next login (node a) gets it.
    cluster = Cluster("a", "b")
    await cluster.store.create_user(BOB, "bobpw")
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    phone = Acknowledging()
    phone.takes.set()  # nothing stored yet: its login replay ends at once
    bob, _ = await cluster.online("b", "bob@localhost/phone", phone)
    phone.takes.clear()
    await cluster.hubs["a"].receive(alice, chat("bob@localhost", "hold on to it"), BOB)
    assert bodies(phone) == ["hold on to it"]
    assert await cluster.store.count_offline(BOB) == 1  # acked to alice, not yet taken
    phone.closed = StreamError(StreamCondition.CONNECTION_TIMEOUT, "gone")
    phone.takes.set()
    await cluster.hubs["b"].close_session(bob)
    assert await cluster.store.count_offline(BOB) == 1
    _, laptop = await cluster.online("a", "bob@localhost/laptop")
    assert bodies(laptop) == ["hold on to it"]
    await cluster.settled("a", BOB)
    assert await cluster.store.count_offline(BOB) == 0


async def test_a_message_for_a_node_that_does_not_answer_is_stored() -> None:
    cluster = Cluster("a", "b")
    await cluster.store.create_user(BOB, "bobpw")
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    _, bob_sees = await cluster.online("b", "bob@localhost/phone")
    cluster.down.add("b")  # killed: its proxies are still on node a
    await cluster.hubs["a"].receive(alice, chat("bob@localhost", "kept for later"), BOB)
    assert bodies(bob_sees) == []
    stored = await cluster.store.fetch_offline(BOB)
    assert len(stored) == 1 and b"kept for later" in stored[0].stanza


async def test_a_forgotten_nodes_users_leave_once_for_each_local_contact() -> None:
    # bob (node b) is alice's contact (node a) and carol's (node c); b dies. Each
    # live node tells its own sessions, and no node relays that to another.
    cluster = Cluster("a", "b", "c")
    for user in (JID.parse("alice@localhost"), JID.parse("carol@localhost")):
        await cluster.store.put_roster_item(user, RosterItem(BOB, subscription="both"))
        await cluster.store.put_roster_item(BOB, RosterItem(user, subscription="both"))
    _, alice_sees = await cluster.online("a", "alice@localhost/desk")
    _, carol_sees = await cluster.online("c", "carol@localhost/desk")
    await cluster.online("b", "bob@localhost/phone")
    cluster.down.add("b")
    alice_sees.stanzas.clear()
    carol_sees.stanzas.clear()
    for node in ("a", "c"):
        assert await cluster.hubs[node].forget_node("b") == 1
    for seen in (alice_sees, carol_sees):
        gone = [s for s in seen.stanzas if s.get("type") == "unavailable"]
        assert [s.get("from") for s in gone] == ["bob@localhost/phone"]
    assert not cluster.hubs["a"].router.is_connected(BOB)


async def test_late_news_of_a_replaced_session_does_not_bring_it_back() -> None:
    cluster = Cluster("a", "b", "c")
    jid = JID.parse("bob@localhost/phone")
    hub = cluster.hubs["c"]
    hub.remote_session(RemoteSession("a", jid, True))
    hub.remote_session(RemoteSession("b", jid, True))  # the same resource, newer, on b
    hub.remote_session(RemoteSession("a", jid, True, presence=b"<presence xmlns='jabber:client'/>"))
    current = hub.router.get(jid)
    assert current is not None and current.node == "b"
    hub.remote_session_gone("a", jid)
    assert hub.router.get(jid) is current


async def test_a_user_on_another_node_who_blocked_the_sender_refuses_the_message() -> None:
    # XEP-0191 §3.3: the sender hears service-unavailable, as from a user who is
    # not there, whichever node the blocking user is connected to.
    cluster = Cluster("a", "b")
    await cluster.store.create_user(BOB, "bobpw")
    await cluster.store.block(BOB, [ALICE])
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    _, bob_sees = await cluster.online("b", "bob@localhost/phone")
    with pytest.raises(StanzaError) as refused:
        await cluster.hubs["a"].receive(alice, chat("bob@localhost", "let me in"), BOB)
    assert refused.value.condition is StanzaCondition.SERVICE_UNAVAILABLE
    assert bodies(bob_sees) == []


async def test_a_message_for_a_dead_node_goes_where_the_user_is_now() -> None:
    # bob's node died unnoticed (its proxies are still here); while node a
    # waits in vain for it, bob logs in again on node c: the message reaches
    # him there instead of waiting in the store for his next login.
    cluster = Cluster("a", "b", "c")
    await cluster.store.create_user(BOB, "bobpw")
    alice, _ = await cluster.online("a", "alice@localhost/desk")
    await cluster.online("b", "bob@localhost/phone")
    cluster.down.add("b")
    cluster.unanswered = asyncio.Event()
    sending = asyncio.create_task(cluster.hubs["a"].receive(alice, chat("bob@localhost", "found you"), BOB))
    await cluster.relay_waiting.wait()
    _, again_sees = await cluster.online("c", "bob@localhost/laptop")
    cluster.unanswered.set()  # the relay timeout
    await sending
    assert bodies(again_sees) == ["found you"]
    await cluster.settled("c", BOB)
    assert await cluster.store.count_offline(BOB) == 0


async def test_a_resource_on_another_node_that_enabled_carbons_gets_copies() -> None:
    # XEP-0280 §8 and §7 across nodes: what alice sends from node a, and what
    # reaches her desk's full JID there, is copied to her laptop on node b.
    cluster = Cluster("a", "b")
    await cluster.store.create_user(BOB, "bobpw")
    desk, _ = await cluster.online("a", "alice@localhost/desk")
    laptop, laptop_sees = await cluster.online("b", "alice@localhost/laptop")
    bob, _ = await cluster.online("a", "bob@localhost/phone")
    enable = make("iq", {"type": "set", "id": "c1", "from": str(laptop.jid)})
    etree.SubElement(enable, "{urn:xmpp:carbons:2}enable")
    await cluster.hubs["b"].receive(laptop, enable, None)
    assert ALICE in cluster.hubs["a"].remote_flagged("carbons")
    laptop_sees.stanzas.clear()
    await cluster.hubs["a"].receive(desk, chat("bob@localhost", "sent from the desk"), BOB)
    reply = make("message", {"type": "chat", "from": str(bob.jid), "to": str(desk.jid)})
    etree.SubElement(reply, "{jabber:client}body").text = "to the desk"
    await cluster.hubs["a"].receive(bob, reply, desk.jid)
    copies = [next(iter(s)).tag for s in laptop_sees.stanzas if s.tag == "{jabber:client}message"]
    assert copies == ["{urn:xmpp:carbons:2}sent", "{urn:xmpp:carbons:2}received"]
    disable = make("iq", {"type": "set", "id": "c2", "from": str(laptop.jid)})
    etree.SubElement(disable, "{urn:xmpp:carbons:2}disable")
    await cluster.hubs["b"].receive(laptop, disable, None)
    assert ALICE not in cluster.hubs["a"].remote_flagged("carbons")
