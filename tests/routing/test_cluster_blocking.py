"""XEP-0191 across nodes, in one process (tests/routing/cluster_world.py):
a block made through one node reaches the copy of the list every other node
keeps for the user's sessions there (end to end over NATS:
tests/e2e/test_cluster_blocking_e2e.py)."""

from __future__ import annotations

import pytest
from lxml import etree
from modules.fakes import Recorder
from routing.cluster_world import Cluster
from routing.test_cluster_routing import bodies

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.blocking import BLOCK, BLOCKLIST, ITEM, UNBLOCK
from xmlchat.routing.session import Session
from xmlchat.stanza import make

ALICE, BOB = JID.parse("alice@localhost"), JID.parse("bob@localhost")


async def _iq(cluster: Cluster, node: str, session: Session, type_: str, payload: str, *items: JID) -> None:
    iq = make("iq", {"type": type_, "id": f"{payload}-{len(items)}", "from": str(session.jid)})
    element = etree.SubElement(iq, payload)
    for item in items:
        etree.SubElement(element, ITEM, jid=str(item))
    await cluster.hubs[node].receive(session, iq, None)


def _pushes(recorder: Recorder) -> list[tuple[str, list[str]]]:
    return [
        (str(iq[0].tag), [str(item.get("jid")) for item in iq[0]])
        for iq in recorder.stanzas
        if iq.tag == "{jabber:client}iq" and iq.get("type") == "set"
    ]


def _chat(sender: Session, to: str) -> etree._Element:
    message = make("message", {"type": "chat", "from": str(sender.jid), "to": to})
    etree.SubElement(message, "{jabber:client}body").text = "hello"
    return message


async def _alice_on_a_and_b_bob_on_b() -> tuple[Cluster, Session, Recorder, Session]:
    """alice on both nodes, her resource on b interested in pushes (§3.3); bob on b."""
    cluster = Cluster("a", "b")
    for user in (ALICE, BOB):
        await cluster.store.create_user(user, "pw")
    alice_a, _ = await cluster.online("a", "alice@localhost/a")
    alice_b, alice_b_sees = await cluster.online("b", "alice@localhost/b")
    bob, _ = await cluster.online("b", "bob@localhost/desk")
    await _iq(cluster, "b", alice_b, "get", BLOCKLIST)
    return cluster, alice_a, alice_b_sees, bob


async def test_a_block_through_one_node_refuses_and_pushes_on_the_other() -> None:
    cluster, alice_a, alice_b_sees, bob = await _alice_on_a_and_b_bob_on_b()

    await _iq(cluster, "a", alice_a, "set", BLOCK, BOB)
    await cluster.announced()
    assert _pushes(alice_b_sees) == [(BLOCK, [str(BOB)])]
    for to in ("alice@localhost/b", "alice@localhost"):
        with pytest.raises(StanzaError) as refused:
            await cluster.hubs["b"].receive(bob, _chat(bob, to), JID.parse(to))
        assert refused.value.condition is StanzaCondition.SERVICE_UNAVAILABLE
    assert bodies(alice_b_sees) == []

    await _iq(cluster, "a", alice_a, "set", UNBLOCK)  # everything (§3.5)
    await cluster.announced()
    assert _pushes(alice_b_sees)[1:] == [(UNBLOCK, [str(BOB)])]
    await cluster.hubs["b"].receive(bob, _chat(bob, "alice@localhost/b"), JID.parse("alice@localhost/b"))
    assert bodies(alice_b_sees) == ["hello"]


async def test_a_node_without_sessions_of_the_user_keeps_no_copy() -> None:
    cluster = Cluster("a", "b")
    await cluster.store.create_user(ALICE, "pw")
    alice_a, _ = await cluster.online("a", "alice@localhost/a")
    await _iq(cluster, "a", alice_a, "set", BLOCK, BOB)
    await cluster.announced()
    blocking = next(m for m in cluster.hubs["b"].modules if m.name == "blocking")
    assert blocking._lists == {}  # type: ignore[attr-defined]


async def test_a_node_back_on_the_bus_reloads_the_lists_it_may_have_missed() -> None:
    # A block announced while node b was cut off never reaches b (core NATS
    # keeps nothing); once b is back, the bus has the hub resync what it caches.
    cluster, alice_a, alice_b_sees, bob = await _alice_on_a_and_b_bob_on_b()
    cluster.cut.add("b")

    await _iq(cluster, "a", alice_a, "set", BLOCK, BOB)
    await cluster.announced()
    assert _pushes(alice_b_sees) == []  # missed: b still has the old list
    cluster.cut.discard("b")
    await cluster.hubs["b"].resync_cached()

    assert _pushes(alice_b_sees) == [(BLOCK, [str(BOB)])]
    with pytest.raises(StanzaError) as refused:
        await cluster.hubs["b"].receive(bob, _chat(bob, "alice@localhost/b"), JID.parse("alice@localhost/b"))
    assert refused.value.condition is StanzaCondition.SERVICE_UNAVAILABLE
    assert bodies(alice_b_sees) == []

    await cluster.hubs["b"].resync_cached()  # nothing changed since: nothing pushed again
    assert _pushes(alice_b_sees) == [(BLOCK, [str(BOB)])]

