"""Initial presence during a login storm: one account's stored messages never
wait for another's roster work (test_login_roster_lock.py: nor its login).

The stored subscription requests are shown at initial presence under the
roster book's lock, which makes subscription changes one at a time for the
whole server. Taken by every login, that lock made the logins' initial
presence one store round trip at a time: after 5,000 logins thousands of
sessions still waited for it, and their stored messages (the inbox's replay
comes after it) waited with them, for seconds (docs/performance/analysis.md).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from modules.blocking_world import World
from modules.fakes import Recorder
from polling import wait_for

from xmlchat.jid import JID
from xmlchat.modules.roster.subscriptions import Subscriptions
from xmlchat.routing.session import XMPP_CLIENT, Session
from xmlchat.stanza import BODY, make, to_bytes

ALICE, BOB = JID("alice", "localhost"), JID("bob", "localhost")


def _subscriptions(world: World) -> Subscriptions:
    return next(m for m in world.hub.modules if isinstance(m, Subscriptions))


async def _available(world: World, full: str, recorder: Recorder) -> None:
    session = Session(JID.parse(full), XMPP_CLIENT, recorder)
    await world.hub.open_session(session)
    await world.hub.receive(session, make("presence", {"from": full}), None)


def _bodies(recorder: Recorder) -> list[str]:
    return [str(s.findtext(BODY)) for s in recorder.stanzas if s.tag == "{jabber:client}message"]


async def test_a_login_without_requests_does_not_wait_for_the_roster_lock() -> None:
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    message = make("message", {"type": "chat", "from": "alice@localhost/a", "to": str(BOB)})
    message.append(make("body", text="waiting"))
    await world.store.store_offline(BOB, to_bytes(message), datetime.now(UTC), 100)
    bob = Recorder()
    async with _subscriptions(world).book.lock:  # another account's subscription change
        login = asyncio.ensure_future(_available(world, "bob@localhost/phone", bob))
        try:
            await wait_for(lambda: _bodies(bob) == ["waiting"], 5, what="bob's stored message")
            await asyncio.wait_for(login, 5)  # his initial presence is over, too
        finally:
            login.cancel()


async def test_a_request_arriving_during_the_login_is_shown_once() -> None:
    """alice asks while bob's initial presence is being handled: bob gets the
    request exactly once, live or from the store, whichever comes first."""
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    alice, _ = await world.login("alice@localhost/a")
    bob = Recorder()
    login = asyncio.ensure_future(_available(world, "bob@localhost/phone", bob))
    await world.send(alice, make("presence", {"type": "subscribe", "to": str(BOB)}))
    await asyncio.wait_for(login, 5)
    await wait_for(lambda: "subscribe" in _types(bob), 5, what="the request")
    assert _types(bob).count("subscribe") == 1


def _types(recorder: Recorder) -> list[str]:
    return [s.get("type", "") for s in recorder.stanzas if s.tag == "{jabber:client}presence"]
