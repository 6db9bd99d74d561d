"""A client that falls behind: its messages wait in the store, never in memory,
and it catches up from there as it reads (issue 11: no acked message dropped)."""

from __future__ import annotations

import asyncio

from modules.blocking_world import World, bodies, message
from modules.fakes import Recorder
from polling import wait_for

from xmlchat.config import Config, Limits
from xmlchat.jid import JID
from xmlchat.modules.messages import BEHIND_BYTES

BOB = JID("bob", "localhost")


class SlowClient(Recorder):
    """Reports a full send buffer until the test lets it read."""

    def __init__(self) -> None:
        super().__init__()
        self.queued = BEHIND_BYTES + 1
        self.reads = asyncio.Event()

    async def drained(self) -> bool:
        await self.reads.wait()
        self.queued = 0
        return self.closed is None


async def test_messages_for_a_client_behind_wait_in_the_store_then_arrive_in_order() -> None:
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    alice, _ = await world.login("alice@localhost/a")
    slow = SlowClient()
    slow.reads.set()  # reads what login wrote ...
    await world.connect("bob@localhost/phone", slow)
    slow.reads.clear()  # ... then stops reading
    slow.queued = BEHIND_BYTES + 1
    _, quick_seen = await world.login("bob@localhost/laptop")
    for i in range(250):
        await world.send(alice, message("bob@localhost", f"m{i}"))
    assert bodies(slow) == []  # nothing piled up in its send buffer
    assert bodies(quick_seen) == [f"m{i}" for i in range(250)]  # the other device is not held back
    assert await world.store.count_offline(BOB) == 250  # durable before each ack
    slow.reads.set()
    await wait_for(lambda: len(bodies(slow)) == 250, 5.0)
    assert bodies(slow) == [f"m{i}" for i in range(250)]
    # Each page is deleted once taken; the last delete follows the last write.
    deadline = asyncio.get_running_loop().time() + 5.0
    while await world.store.count_offline(BOB) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert await world.store.count_offline(BOB) == 0


async def test_a_client_that_takes_nothing_is_disconnected_and_its_messages_stay() -> None:
    world = World(config=Config(limits=Limits(stuck_timeout=0.2)))
    await world.users("alice@localhost", "bob@localhost")
    alice, _ = await world.login("alice@localhost/a")
    stuck = SlowClient()
    stuck.reads.set()
    await world.connect("bob@localhost/phone", stuck)
    stuck.reads.clear()
    stuck.queued = BEHIND_BYTES + 1
    for i in range(3):
        await world.send(alice, message("bob@localhost", f"m{i}"))
    await wait_for(lambda: stuck.closed is not None, 5.0)
    assert stuck.closed is not None and stuck.closed.condition == "connection-timeout"
    assert bodies(stuck) == []
    assert await world.store.count_offline(BOB) == 3  # for the next login
