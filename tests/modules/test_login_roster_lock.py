"""A login does not wait for the roster lock unless it has stored subscription
requests to answer (RFC 6121 §3.1.3).

Every initial presence took the lock that makes roster changes one at a
time in this process, around a store read: the logins of the whole server
went one by one, each behind the last one's read. Under a login storm
(5,000 logins, 50 at a time, each closed after its initial presence)
about 3,000 ended connections piled up waiting for it, and the heap they
took stayed with the process (+75 to +147 MB of RSS after the storm).
"""

from __future__ import annotations

import asyncio

from modules.blocking_world import World

from xmlchat.modules.roster import Subscriptions
from xmlchat.stanza import make


def _lock(world: World) -> asyncio.Lock:
    subscriptions = next(m for m in world.hub.modules if isinstance(m, Subscriptions))
    return subscriptions.book.lock


async def test_a_login_with_nothing_stored_does_not_wait_for_a_roster_change() -> None:
    world = World()
    await world.users("alice@localhost")
    async with _lock(world):  # a roster change of someone else, in progress
        session, _ = await asyncio.wait_for(world.login("alice@localhost/phone"), 10)
    assert session.available


async def test_a_stored_request_still_comes_at_login() -> None:
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    bob, _ = await world.login("bob@localhost/desk")
    await world.send(bob, make("presence", {"to": "alice@localhost", "type": "subscribe"}))
    _, alice = await world.login("alice@localhost/phone")
    presences = [s for s in alice.stanzas if s.tag == "{jabber:client}presence"]
    assert [p.get("from") for p in presences if p.get("type") == "subscribe"] == ["bob@localhost"]
