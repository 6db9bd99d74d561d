"""Which message ids recognise a client's re-send (modules/messages.py, Messages._origin)."""

from __future__ import annotations

import pytest
from modules.blocking_world import World, message

from xmlchat.jid import JID
from xmlchat.stanza import assigned_id, is_assigned_id

BOB = JID("bob", "localhost")


@pytest.mark.parametrize(("native", "assigned", "stored"), [
    (True, False, 1),  # the client's own id, sent twice: a re-send, stored once
    (False, False, 1),
    (True, True, 2),  # an id the server gave: no client can re-send under it
])
async def test_only_an_id_the_client_chose_marks_a_resend(native: bool, assigned: bool, stored: int) -> None:
    world = World()
    await world.users("alice@localhost", "bob@localhost")
    alice, _ = await world.login("alice@localhost/a", native=native)
    id_ = assigned_id() if assigned else "c1"
    for _ in range(2):
        stanza = message(str(BOB), "hi")
        stanza.set("id", id_)
        await world.send(alice, stanza)
    assert await world.store.count_offline(BOB) == stored


def test_assigned_ids_are_unique_and_recognised() -> None:
    ids = {assigned_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_assigned_id(i) for i in ids)
    assert not is_assigned_id("c1")
