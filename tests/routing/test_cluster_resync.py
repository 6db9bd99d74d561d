"""A node that may have missed registry events (cut off from the bus) has
every OnChangedElsewhere hook reload what it caches: once per topic and
account with a session on the node (the blocklist case: test_cluster_blocking.py);
and forgets the proxies another node no longer lists (end to end over NATS:
tests/e2e/test_cluster_resync_e2e.py)."""

from __future__ import annotations

import pytest
from routing.cluster_world import Cluster
from routing.test_hub import Declares

from xmlchat.jid import JID
from xmlchat.routing.api import OnChangedElsewhere, OnSessionEnded
from xmlchat.routing.session import Session


def _recording(calls: list[tuple[str, JID]], topic: str) -> OnChangedElsewhere:
    async def changed(account: JID) -> None:
        calls.append((topic, account))

    return OnChangedElsewhere(topic, changed)


async def test_every_topic_is_reloaded_once_for_each_account_connected_here() -> None:
    cluster = Cluster("a", "b")
    calls: list[tuple[str, JID]] = []
    cluster.hubs["b"].load(Declares("cache", _recording(calls, "roster"), _recording(calls, "blocklist")))
    await cluster.online("b", "alice@localhost/one")
    await cluster.online("b", "alice@localhost/two")
    await cluster.online("b", "bob@localhost/desk")
    await cluster.online("a", "carol@localhost/a")  # a proxy on b: cached on a only

    await cluster.hubs["b"].resync_cached()

    alice, bob = JID.parse("alice@localhost"), JID.parse("bob@localhost")
    assert sorted(calls, key=str) == sorted(
        [(topic, user) for topic in ("roster", "blocklist") for user in (alice, bob)], key=str
    )


async def test_a_failing_hook_does_not_stop_the_others_and_is_raised() -> None:
    cluster = Cluster("a", "b")
    calls: list[tuple[str, JID]] = []

    async def fails(account: JID) -> None:
        raise RuntimeError(f"store down for {account}")

    hooks = OnChangedElsewhere("roster", fails), _recording(calls, "roster")
    cluster.hubs["b"].load(Declares("cache", *hooks))
    await cluster.online("b", "alice@localhost/one")
    await cluster.online("b", "bob@localhost/desk")

    with pytest.raises(RuntimeError):
        await cluster.hubs["b"].resync_cached()
    assert sorted(str(account) for _, account in calls) == ["alice@localhost", "bob@localhost"]


async def test_the_proxies_a_node_did_not_list_are_forgotten_and_ended_here() -> None:
    cluster = Cluster("a", "b")
    phone, _ = await cluster.online("a", "carol@localhost/phone")
    tablet, _ = await cluster.online("a", "carol@localhost/tablet")
    ended: list[JID] = []

    async def session_ended(session: Session) -> None:
        ended.append(session.jid)

    cluster.hubs["b"].load(Declares("watch", OnSessionEnded(session_ended)))
    cluster.cut.add("b")
    await cluster.hubs["a"].close_session(phone)  # b does not hear it go
    cluster.cut.discard("b")
    hub = cluster.hubs["b"]
    assert hub.router.get(phone.jid) is not None

    assert await hub.forget_unlisted("a", {tablet.jid}) == 1
    assert hub.router.get(phone.jid) is None
    assert hub.router.get(tablet.jid) is not None
    assert ended == [phone.jid]  # its unavailable presence, to this node's sessions
