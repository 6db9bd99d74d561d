"""The recipient side of XEP-0191 blocking reads the cached list of a user
with a session on this node, and the store for any other user: these tests
hold its edges — a list that starts or ends while messages flow, sessions
replaced (RFC 6120 §7.7.2.2) or gone — to the answers §3.3 gives."""

from __future__ import annotations

import pytest
from modules.blocking_world import ALICE, World, bodies, message

from xmlchat.errors import StanzaCondition
from xmlchat.modules.blocking import BLOCK, UNBLOCK


@pytest.fixture
async def world() -> World:
    world = World()
    await world.users("alice@localhost", "bob@localhost", "carol@localhost")
    return world


async def test_a_block_made_while_messages_flow_stops_the_next_one_and_an_unblock_lets_them_again(
    world: World,
) -> None:
    alice, alice_seen = await world.login("alice@localhost/laptop")
    bob, _ = await world.login("bob@localhost/desk")
    await world.send(bob, message("alice@localhost", "one"))
    await world.iq(alice, "set", BLOCK, "bob@localhost")
    error = await world.refused(bob, message("alice@localhost/laptop", "two"))
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    await world.iq(alice, "set", UNBLOCK)  # every item
    await world.send(bob, message("alice@localhost", "three"))
    assert bodies(alice_seen) == ["one", "three"]


async def test_a_list_outlives_a_replaced_session_and_the_store_answers_once_all_are_gone(
    world: World,
) -> None:
    first, _ = await world.login("alice@localhost/laptop")
    await world.iq(first, "set", BLOCK, "bob@localhost")
    second, _ = await world.login("alice@localhost/laptop")  # replaces the first
    await world.hub.close_session(first)  # the replaced one's end changes nothing
    bob, _ = await world.login("bob@localhost/desk")
    assert (await world.refused(bob, message("alice@localhost", "replaced"))).condition == (
        StanzaCondition.SERVICE_UNAVAILABLE
    )
    await world.hub.close_session(second)
    assert (await world.refused(bob, message("alice@localhost", "offline"))).condition == (
        StanzaCondition.SERVICE_UNAVAILABLE
    )
    assert await world.store.count_offline(ALICE) == 0


async def test_a_user_without_a_list_gets_messages_online_and_offline(world: World) -> None:
    alice, alice_seen = await world.login("alice@localhost/laptop")
    bob, _ = await world.login("bob@localhost/desk")
    await world.send(bob, message("alice@localhost", "online"))
    await world.hub.close_session(alice)
    await world.send(bob, message("alice@localhost", "offline"))
    assert bodies(alice_seen) == ["online"]
    assert await world.store.count_offline(ALICE) == 1
