"""The offline replay: a page at a time, waiting for the client, deleting only what it took."""

from __future__ import annotations

from datetime import UTC, datetime

from modules.blocking_world import World
from modules.fakes import Recorder

from xmlchat.jid import JID
from xmlchat.modules.messages import REPLAY_PAGE
from xmlchat.routing.session import XMPP_CLIENT, Session
from xmlchat.stanza import BODY, make, to_bytes

BOB = JID("bob", "localhost")


async def stored(world: World, count: int) -> None:
    for i in range(count):
        message = make("message", {"type": "chat", "from": "alice@localhost/a", "to": str(BOB)})
        message.append(make("body", text=f"m{i}"))
        await world.store.store_offline(BOB, to_bytes(message), datetime.now(UTC), 10_000)


def bodies(recorder: Recorder) -> list[str]:
    return [str(s.findtext(BODY)) for s in recorder.stanzas if s.tag == "{jabber:client}message"]


async def test_a_backlog_goes_out_a_page_at_a_time_in_order_and_is_then_deleted() -> None:
    world = World()
    await world.users("bob@localhost")
    count = 2 * REPLAY_PAGE + 7
    await stored(world, count)
    _, bob = await world.login("bob@localhost/phone")
    assert bodies(bob) == [f"m{i}" for i in range(count)]
    assert bob.drains == 3  # one wait per page
    assert await world.store.count_offline(BOB) == 0


class LeavesAfterOnePage(Recorder):
    """Reads what came before the replay and its first page, then is gone."""

    async def drained(self) -> bool:
        self.drains += 1
        return self.drains <= 1


async def test_a_client_gone_mid_replay_leaves_the_rest_stored() -> None:
    world = World()
    await world.users("bob@localhost")
    await stored(world, 2 * REPLAY_PAGE + 7)
    recorder = LeavesAfterOnePage()
    session = Session(JID.parse("bob@localhost/phone"), XMPP_CLIENT, recorder)
    await world.hub.open_session(session)
    await world.hub.receive(session, make("presence", {"from": str(session.jid)}), None)
    await world.replayed(session)
    # The first page was taken and deleted; the second was written to a client
    # that went away before taking it: it stays, with everything after it.
    assert await world.store.count_offline(BOB) == REPLAY_PAGE + 7
    remaining = await world.store.fetch_offline(BOB, limit=1)
    assert f">m{REPLAY_PAGE}<".encode() in remaining[0].stanza
