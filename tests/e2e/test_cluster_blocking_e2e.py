"""XEP-0191 across the nodes of a cluster: a block made through one node
applies to the user's resources on every node, and is pushed to each that
retrieved the list (§3.3 "User Blocks Contact": "all of the user's resources").

Two nodes on loopback sharing NATS and PostgreSQL (tests/cluster_nodes.py).
Every wait has a deadline; "nothing else arrived" is read after a round trip
on the same connection, as in test_blocking_e2e.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_nodes import running_cluster
from conftest import ServerProcess
from e2e.test_blocking_e2e import ALICE, BOB, _drain, _next, closing, xmpp_user
from e2e.xmpp_helpers import TIMEOUT
from faults.peers import USERS
from slixmpp import JID as SlixJID


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    with running_cluster(tmp_path, 2, USERS) as started:
        yield started


async def test_a_block_made_on_one_node_applies_on_the_other(nodes: list[ServerProcess]) -> None:
    alice_a = await xmpp_user(nodes[0], "alice", "a")
    alice_b = await xmpp_user(nodes[1], "alice", "b")
    bob = await xmpp_user(nodes[1], "bob", "desk")
    async with closing(alice_a, alice_b, bob):
        # Both of alice's resources retrieve the list: both are interested (§3.3).
        assert await alice_a.blocklist() == []
        assert await alice_b.blocklist() == []

        await alice_a.blocking.block([SlixJID(BOB)], timeout=TIMEOUT)
        assert await _next(alice_a.pushes) == ("block", [BOB])
        # The push reaches the resource on the other node; node 1 has the new
        # list by then (it pushes after reloading it).
        assert await _next(alice_b.pushes) == ("block", [BOB])

        # bob, on node 1 with alice's resource b, is refused there: to the full
        # JID and to the bare JID (no hint of the block, §3.3).
        bob.send(f"{ALICE}/b", "to your resource on my node")
        assert await bob.error() == ("service-unavailable", False)
        bob.send(ALICE, "to your bare JID")
        assert await bob.error() == ("service-unavailable", False)
        alice_b.send(BOB, "from the other node")
        assert await alice_b.error() == ("not-acceptable", True)
        assert await alice_b.received() == []
        assert await alice_a.received() == []

        # And back: unblocked through node 1, the resource on node 0 hears it
        # and bob's messages reach alice again, on both nodes.
        await alice_b.blocking.unblock([SlixJID(BOB)], timeout=TIMEOUT)
        assert await _next(alice_b.pushes) == ("unblock", [BOB])
        assert await _next(alice_a.pushes) == ("unblock", [BOB])
        bob.send(f"{ALICE}/b", "after the unblock")
        assert str((await _next(alice_b.peer.messages))["body"]) == "after the unblock"
        bob.send(f"{ALICE}/a", "across the cluster")
        assert str((await _next(alice_a.peer.messages))["body"]) == "across the cluster"
        assert _drain(bob.errors) == []
