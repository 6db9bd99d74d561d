"""XEP-0191 blocking against the server's real module set and in-memory storage.

The hub is built as the server builds it (:func:`build_hub`); each client is a
:class:`Recorder`, so a test reads exactly what every resource was handed.
"""

from __future__ import annotations

import pytest
from lxml import etree
from modules.blocking_world import ALICE, BOB, VERSION_QUERY, World, bodies, message
from modules.fakes import Recorder

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.jid import JID
from xmlchat.modules.blocking import BLOCK, BLOCKLIST, ERRORS_NS, ITEM, UNBLOCK
from xmlchat.stanza import make


def presences(recorder: Recorder) -> list[tuple[str, str]]:
    """(from, type) of each presence received, 'available' for no type."""
    return [
        (s.get("from", ""), s.get("type", "available"))
        for s in recorder.stanzas
        if s.tag == "{jabber:client}presence"
    ]


def pushes(recorder: Recorder) -> list[tuple[str, list[str]]]:
    """(block|unblock, items) of each XEP-0191 push (an iq set) received."""
    found = []
    for stanza in recorder.stanzas:
        if stanza.tag == "{jabber:client}iq" and stanza.get("type") == "set":
            change = stanza[0]
            found.append((etree.QName(change).localname, [i.get("jid", "") for i in change.iter(ITEM)]))
    return found


def results(recorder: Recorder) -> list[etree._Element]:
    return [s for s in recorder.stanzas if s.tag == "{jabber:client}iq" and s.get("type") == "result"]


def listed(result: etree._Element) -> list[str]:
    return [item.get("jid", "") for item in result.iter(ITEM)]


def clear(*recorders: Recorder) -> None:
    for recorder in recorders:
        recorder.stanzas.clear()


@pytest.fixture
async def world() -> World:
    world = World()
    await world.users("alice@localhost", "bob@localhost", "carol@localhost")
    return world


# ---- the list (§3.1–§3.5)


async def test_list_changes_are_answered_and_pushed_to_interested_resources_only(world: World) -> None:
    laptop, laptop_seen = await world.login("alice@localhost/laptop")
    phone, phone_seen = await world.login("alice@localhost/phone")
    _, lazy_seen = await world.login("alice@localhost/lazy")  # never asks for the list
    for session in (laptop, phone):
        await world.iq(session, "get", BLOCKLIST)
    assert [listed(r) for r in results(laptop_seen) + results(phone_seen)] == [[], []]
    clear(laptop_seen, phone_seen, lazy_seen)

    await world.iq(laptop, "set", BLOCK, "bob@localhost", "carol@localhost/phone")
    assert len(results(laptop_seen)) == 1 and results(laptop_seen)[0].get("id") == f"{BLOCK}-2"
    expected = [("block", ["bob@localhost", "carol@localhost/phone"])]
    assert pushes(laptop_seen) == expected  # §3.3: the requester too
    assert pushes(phone_seen) == expected
    assert lazy_seen.stanzas == []
    assert [str(j) for j in await world.store.get_blocklist(ALICE)] == [
        "bob@localhost",
        "carol@localhost/phone",
    ]

    clear(laptop_seen, phone_seen)
    await world.iq(phone, "set", BLOCK, "bob@localhost")  # already blocked: no change, no push
    assert pushes(laptop_seen) == pushes(phone_seen) == []
    assert len(results(phone_seen)) == 1

    await world.iq(phone, "set", UNBLOCK, "bob@localhost")
    assert pushes(laptop_seen) == pushes(phone_seen) == [("unblock", ["bob@localhost"])]

    clear(laptop_seen, phone_seen)
    await world.iq(laptop, "set", UNBLOCK)  # §3.5: unblock all, pushed without items
    assert pushes(laptop_seen) == pushes(phone_seen) == [("unblock", [])]
    assert lazy_seen.stanzas == []
    assert await world.store.get_blocklist(ALICE) == []


async def test_retrieval_lists_what_was_blocked(world: World) -> None:
    laptop, seen = await world.login("alice@localhost/laptop")
    await world.iq(laptop, "set", BLOCK, "bob@localhost", "example.org")
    clear(seen)
    await world.iq(laptop, "get", BLOCKLIST)
    (result,) = results(seen)
    assert result[0].tag == BLOCKLIST
    assert sorted(listed(result)) == ["bob@localhost", "example.org"]


@pytest.mark.parametrize(
    ("items", "condition"),
    [
        ((), StanzaCondition.BAD_REQUEST),  # §3.3: a block needs an item
        (("alice@localhost",), StanzaCondition.BAD_REQUEST),
        (("bob@localhost", "alice@localhost/phone"), StanzaCondition.BAD_REQUEST),
        (("bob@localhost", "@@bad"), StanzaCondition.JID_MALFORMED),
        (("",), StanzaCondition.JID_MALFORMED),
    ],
)
async def test_bad_blocks_are_refused_and_change_nothing(
    world: World, items: tuple[str, ...], condition: StanzaCondition
) -> None:
    laptop, seen = await world.login("alice@localhost/laptop")
    await world.iq(laptop, "get", BLOCKLIST)
    clear(seen)
    with pytest.raises(StanzaError) as failure:
        await world.iq(laptop, "set", BLOCK, *items)
    assert failure.value.condition == condition
    assert seen.stanzas == []
    assert await world.store.get_blocklist(ALICE) == []


async def test_malformed_unblock_is_refused_and_changes_nothing(world: World) -> None:
    laptop, _ = await world.login("alice@localhost/laptop")
    await world.iq(laptop, "set", BLOCK, "bob@localhost")
    with pytest.raises(StanzaError) as failure:
        await world.iq(laptop, "set", UNBLOCK, "bob@localhost", "@@bad")
    assert failure.value.condition == StanzaCondition.JID_MALFORMED
    assert await world.store.get_blocklist(ALICE) == [BOB]


# ---- what a block stops (§3.3)


async def test_what_the_user_sends_to_a_blocked_contact_is_refused(world: World) -> None:
    alice, _ = await world.login("alice@localhost/laptop")
    _, bob_seen = await world.login("bob@localhost/desk")
    await world.befriend(ALICE, BOB)
    await world.iq(alice, "set", BLOCK, "bob@localhost")
    clear(bob_seen)

    for stanza in (message("bob@localhost", "hi"), message("bob@localhost/desk", "hi")):
        error = await world.refused(alice, stanza)
        assert error.condition == StanzaCondition.NOT_ACCEPTABLE
        assert error.application == (ERRORS_NS, "blocked")
    iq = make("iq", {"type": "get", "id": "v1", "to": "bob@localhost/desk"})
    etree.SubElement(iq, VERSION_QUERY)
    assert (await world.refused(alice, iq)).application == (ERRORS_NS, "blocked")
    await world.send(alice, make("presence", {"to": "bob@localhost/desk"}))  # dropped, not answered
    await world.send(alice, make("presence", {"to": "bob@localhost", "type": "subscribe"}))
    assert bob_seen.stanzas == []


async def test_message_from_blocked_contact_to_online_user(world: World) -> None:
    alice, alice_seen = await world.login("alice@localhost/laptop")
    bob, _ = await world.login("bob@localhost/desk")
    carol, _ = await world.login("carol@localhost/desk")
    await world.iq(alice, "set", BLOCK, "bob@localhost")
    clear(alice_seen)
    for to in ("alice@localhost", "alice@localhost/laptop"):
        error = await world.refused(bob, message(to, f"from bob to {to}"))
        assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
        assert error.application is None  # §3.3: bob must not learn he is blocked
    error = await world.refused(bob, message("alice@localhost", "headline", type_="headline"))
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    await world.send(carol, message("alice@localhost", "from carol"))
    assert bodies(alice_seen) == ["from carol"]
    await world.replayed(alice)  # stored until alice's client has taken it
    assert await world.store.count_offline(ALICE) == 0


@pytest.mark.parametrize("ever_online", [True, False])
async def test_message_from_blocked_contact_to_offline_user_is_not_stored(
    world: World, ever_online: bool
) -> None:
    if ever_online:
        alice, _ = await world.login("alice@localhost/laptop")
        await world.iq(alice, "set", BLOCK, "bob@localhost")
        await world.hub.close_session(alice)
    else:
        await world.store.block(ALICE, [BOB])  # blocked in an earlier run of the server
    bob, _ = await world.login("bob@localhost/desk")
    carol, _ = await world.login("carol@localhost/desk")
    error = await world.refused(bob, message("alice@localhost", "while you were out"))
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    await world.send(carol, message("alice@localhost", "from carol"))
    assert await world.store.count_offline(ALICE) == 1

    _, alice_seen = await world.login("alice@localhost/again")
    assert bodies(alice_seen) == ["from carol"]


async def test_message_stored_before_the_block_is_not_delivered(world: World) -> None:
    bob, _ = await world.login("bob@localhost/desk")
    carol, _ = await world.login("carol@localhost/desk")
    await world.send(bob, message("alice@localhost", "bob, before the block"))
    await world.send(carol, message("alice@localhost", "carol, before the block"))
    assert await world.store.count_offline(ALICE) == 2

    # Alice blocks bob from a session that never sent presence: nothing delivered yet.
    blocker, blocker_seen = await world.login("alice@localhost/blocker", available=False)
    await world.iq(blocker, "set", BLOCK, "bob@localhost")
    await world.hub.close_session(blocker)
    assert bodies(blocker_seen) == []

    _, alice_seen = await world.login("alice@localhost/laptop")
    assert bodies(alice_seen) == ["carol, before the block"]
    assert await world.store.count_offline(ALICE) == 0


async def test_iq_from_blocked_contact_to_the_users_full_jid(world: World) -> None:
    alice, alice_seen = await world.login("alice@localhost/laptop")
    bob, _ = await world.login("bob@localhost/desk")
    carol, _ = await world.login("carol@localhost/desk")
    await world.iq(alice, "set", BLOCK, "bob@localhost")
    clear(alice_seen)

    def version_get(id_: str) -> etree._Element:
        iq = make("iq", {"type": "get", "id": id_, "to": "alice@localhost/laptop"})
        etree.SubElement(iq, VERSION_QUERY)
        return iq

    error = await world.refused(bob, version_get("from-bob"))
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE and error.application is None
    await world.send(carol, version_get("from-carol"))
    assert [s.get("id") for s in alice_seen.stanzas] == ["from-carol"]


def _presence_world_expectations(subscription: str) -> tuple[bool, bool]:
    """(bob sees alice, alice sees bob) for alice's roster ``subscription``."""
    return subscription in ("from", "both"), subscription in ("to", "both")


@pytest.mark.parametrize("bob_native", [False, True], ids=["bob-xmpp", "bob-native"])
@pytest.mark.parametrize("subscription", ["none", "to", "from", "both"])
async def test_presence_stops_both_ways_while_blocked(
    world: World, subscription: str, bob_native: bool
) -> None:
    await world.befriend(ALICE, BOB, subscription)
    bob_sees, alice_sees = _presence_world_expectations(subscription)
    alice, alice_seen = await world.login("alice@localhost/laptop")
    bob, bob_seen = await world.login("bob@localhost/desk", native=bob_native)
    assert (("alice@localhost/laptop", "available") in presences(bob_seen)) == bob_sees
    assert (("bob@localhost/desk", "available") in presences(alice_seen)) == alice_sees
    clear(alice_seen, bob_seen)

    await world.iq(alice, "set", BLOCK, "bob@localhost")
    assert presences(bob_seen) == ([("alice@localhost/laptop", "unavailable")] if bob_sees else [])
    assert presences(alice_seen) == ([("bob@localhost/desk", "unavailable")] if alice_sees else [])
    clear(alice_seen, bob_seen)

    # Nothing passes while blocked: broadcasts, a new resource's initial
    # presence and the probes answered for it, directed presence, probes.
    await world.send(alice, make("presence", {}, None))
    await world.send(bob, make("presence", {}, None))
    _, bob_phone_seen = await world.login("bob@localhost/phone")
    _, alice_phone_seen = await world.login("alice@localhost/phone")
    await world.send(bob, make("presence", {"to": "alice@localhost/laptop"}))
    await world.send(bob, make("presence", {"to": "alice@localhost", "type": "probe"}))
    everyone = {"alice": (alice_seen, alice_phone_seen), "bob": (bob_seen, bob_phone_seen)}
    leaked = [p for user, seen in everyone.items() for r in seen for p in presences(r) if user not in p[0]]
    assert leaked == []
    clear(alice_seen, alice_phone_seen, bob_seen, bob_phone_seen)

    await world.iq(alice, "set", UNBLOCK, "bob@localhost")
    alice_resources = {"alice@localhost/laptop", "alice@localhost/phone"}
    bob_resources = {"bob@localhost/desk", "bob@localhost/phone"}
    for recorder in (bob_seen, bob_phone_seen):
        assert {f for f, t in presences(recorder) if t == "available"} == (
            alice_resources if bob_sees else set()
        )
    for recorder in (alice_seen, alice_phone_seen):
        assert {f for f, t in presences(recorder) if t == "available"} == (
            bob_resources if alice_sees else set()
        )


# ---- what an item matches (XEP-0191 §6, XEP-0016 §2.1)


async def test_a_full_jid_item_blocks_that_resource_only(world: World) -> None:
    alice, alice_seen = await world.login("alice@localhost/laptop")
    bob_phone, bob_phone_seen = await world.login("bob@localhost/phone")
    bob_desk, bob_desk_seen = await world.login("bob@localhost/desk")
    await world.iq(alice, "set", BLOCK, "bob@localhost/phone")
    clear(alice_seen, bob_phone_seen, bob_desk_seen)

    error = await world.refused(bob_phone, message("alice@localhost", "from phone"))
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    await world.send(bob_desk, message("alice@localhost", "from desk"))
    assert bodies(alice_seen) == ["from desk"]

    error = await world.refused(alice, message("bob@localhost/phone", "to phone"))
    assert error.application == (ERRORS_NS, "blocked")
    await world.send(alice, message("bob@localhost/desk", "to desk"))
    await world.send(alice, message("bob@localhost", "to bob"))  # every resource but the blocked one
    assert bodies(bob_desk_seen) == ["to desk", "to bob"]
    assert bodies(bob_phone_seen) == []


async def test_a_domain_item_blocks_every_user_at_it() -> None:
    world = World(hosts=("localhost", "example.org"))
    await world.users("alice@localhost", "bob@localhost", "eve@example.org", "mallory@example.org")
    alice, alice_seen = await world.login("alice@localhost/laptop")
    eve, _ = await world.login("eve@example.org/x")
    bob, _ = await world.login("bob@localhost/desk")
    await world.iq(alice, "set", BLOCK, "example.org")
    clear(alice_seen)

    assert (await world.refused(eve, message("alice@localhost", "eve"))).condition == (
        StanzaCondition.SERVICE_UNAVAILABLE
    )
    for to in ("eve@example.org", "mallory@example.org"):
        error = await world.refused(alice, message(to, "to example.org"))
        assert error.application == (ERRORS_NS, "blocked")
    await world.send(bob, message("alice@localhost", "bob"))
    assert bodies(alice_seen) == ["bob"]
    await world.replayed(alice)  # taken: no longer stored

    await world.hub.close_session(alice)  # offline: the store decides, by the same rules
    mallory, _ = await world.login("mallory@example.org/y")
    assert (await world.refused(mallory, message("alice@localhost", "m"))).condition == (
        StanzaCondition.SERVICE_UNAVAILABLE
    )
    assert await world.store.count_offline(ALICE) == 0


@pytest.mark.parametrize(
    "items",
    [("example.org",), ("example.org", "eve@example.org"), ("eve@example.org", "eve@example.org/x")],
)
async def test_a_domain_item_ends_and_restores_presence_with_contacts_at_it(items: tuple[str, ...]) -> None:
    """§3.3 "each side gets unavailable" holds for a served domain blocked whole,
    once however many of the items blocked at once cover a contact."""
    world = World(hosts=("localhost", "example.org"))
    eve = JID("eve", "example.org")
    await world.users("alice@localhost", "bob@localhost", "eve@example.org")
    await world.befriend(ALICE, eve)
    await world.befriend(ALICE, BOB)
    alice, alice_seen = await world.login("alice@localhost/laptop")
    _, eve_seen = await world.login("eve@example.org/x")
    _, bob_seen = await world.login("bob@localhost/desk")
    clear(alice_seen, eve_seen, bob_seen)

    await world.iq(alice, "set", BLOCK, *items)
    assert presences(eve_seen) == [("alice@localhost/laptop", "unavailable")]
    assert presences(alice_seen) == [("eve@example.org/x", "unavailable")]
    assert presences(bob_seen) == []
    clear(alice_seen, eve_seen)

    await world.iq(alice, "set", UNBLOCK)
    assert presences(eve_seen) == [("alice@localhost/laptop", "available")]
    assert presences(alice_seen) == [("eve@example.org/x", "available")]
    assert presences(bob_seen) == []


async def test_an_iq_answered_on_the_blockers_behalf_is_refused_as_if_no_account(world: World) -> None:
    """RFC 6121 §8.5.2.1.3 lets the server answer disco#info for an account; to
    a contact it blocks, the account must look like one that does not exist."""
    alice, _ = await world.login("alice@localhost/laptop")
    bob, bob_seen = await world.login("bob@localhost/desk")
    info = "{http://jabber.org/protocol/disco#info}query"
    await world.iq(alice, "set", BLOCK, "bob@localhost")
    clear(bob_seen)
    disco = make("iq", {"type": "get", "id": "d1", "to": "alice@localhost"})
    etree.SubElement(disco, info)
    error = await world.refused(bob, disco)
    assert error.condition == StanzaCondition.SERVICE_UNAVAILABLE
    nobody = make("iq", {"type": "get", "id": "d2", "to": "nobody@localhost"})
    etree.SubElement(nobody, info)
    assert (await world.refused(bob, nobody)).condition == error.condition  # indistinguishable
    assert bob_seen.stanzas == []
