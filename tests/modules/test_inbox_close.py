"""A session's end settles its inbox: what its client acknowledged with its
last words is deleted, what it never acknowledged stays stored."""

from __future__ import annotations

import asyncio

from modules.blocking_world import World, message
from modules.fakes import Recorder
from polling import wait_for

from xmlchat.jid import JID

BOB = JID("bob", "localhost")


class LastReceiptWithTheClose(Recorder):
    """Acknowledges; its first wait is held until the test lets it end, and by
    then the client has confirmed everything (its last receipt came with its
    close)."""

    def __init__(self) -> None:
        super().__init__()
        self.acknowledges = True
        self.release = asyncio.Event()
        self.confirmed_all = False

    async def drained(self) -> bool:
        self.drains += 1
        await self.release.wait()
        return self.confirmed_all


async def test_what_the_last_receipt_confirmed_is_deleted_at_the_close() -> None:
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    alice, _ = await world.login("alice@localhost/a")
    bob_client = LastReceiptWithTheClose()
    bob = await world.connect("bob@localhost/phone", bob_client)
    await world.send(alice, message("bob@localhost", "first"))
    await wait_for(lambda: bob_client.drains == 1, 5.0, what="the inbox waits for the first")
    await world.send(alice, message("bob@localhost", "second"))  # handed while it waits
    bob_client.confirmed_all = True
    bob_client.release.set()
    await world.hub.close_session(bob)
    assert await world.store.count_offline(BOB) == 0


async def test_what_was_never_acknowledged_stays_for_the_next_login() -> None:
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    alice, _ = await world.login("alice@localhost/a")
    bob_client = LastReceiptWithTheClose()
    bob = await world.connect("bob@localhost/phone", bob_client)
    await world.send(alice, message("bob@localhost", "first"))
    await world.send(alice, message("bob@localhost", "second"))
    bob_client.release.set()  # gone without confirming anything
    await world.hub.close_session(bob)
    assert await world.store.count_offline(BOB) == 2
