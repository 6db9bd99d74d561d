"""RFC 6121 end to end: roster, subscriptions, presence — slixmpp against the real server.

One server per test (alice, bob, carol); each test tells one story.
"""

from __future__ import annotations

import asyncio

from conftest import ServerProcess
from e2e.xmpp_helpers import XmppPeer, connect, error_of, roster_items, subscribe_and_approve

from xmlchat.client.native import NativeClient, PresenceUpdate

ALICE, BOB, CAROL = "alice@localhost", "bob@localhost", "carol@localhost"


def native(server: ServerProcess, user: str, updates: asyncio.Queue[PresenceUpdate]) -> NativeClient:
    return NativeClient(
        user,
        f"{user}pw",
        port=server.ports["native"],
        ssl=server.client_ssl(),
        reconnect=False,
        on_presence=updates.put_nowait,
    )


async def roster_of(peer: XmppPeer) -> dict[str, dict[str, object]]:
    return roster_items(await peer.roster())


async def test_roster_add_update_remove_pushed_to_every_interested_resource(server: ServerProcess) -> None:
    laptop = await connect(server, "alice", resource="laptop")
    phone = await connect(server, "alice", resource="phone")
    lazy = await connect(server, "alice", resource="lazy", roster=False)  # never asked: no pushes (§2.1.6)

    await laptop.roster_set(BOB, "Bob", ("Friends", "Work"))
    for peer in (laptop, phone):  # §2.3.2: including the resource that set it
        push = await peer.next_push(BOB)
        assert roster_items(push)[BOB]["name"] == "Bob"
        assert sorted(roster_items(push)[BOB]["groups"]) == ["Friends", "Work"]  # type: ignore[call-overload]
        assert roster_items(push)[BOB]["subscription"] == "none"
    items = await roster_of(phone)
    assert items[BOB]["name"] == "Bob" and items[BOB]["subscription"] == "none"

    # §2.4: an update changes name and groups; a client-given subscription is ignored (§2.1.2.5).
    await phone.roster_set(BOB, "Bobby", ("Work",), subscription="both")
    push = await laptop.next_push(BOB)
    assert roster_items(push)[BOB]["name"] == "Bobby"
    assert roster_items(push)[BOB]["groups"] == ["Work"]
    assert roster_items(push)[BOB]["subscription"] == "none"

    # §2.3.3 error cases.
    client = laptop.client
    two = client.Iq(stype="set")
    two["roster"]["items"] = {BOB: {"name": "b"}, CAROL: {"name": "c"}}
    assert await error_of(two.send(timeout=5)) == "bad-request"
    assert await error_of(laptop.roster_set(CAROL, "x" * 2000)) == "not-acceptable"
    empty_group = client.Iq(stype="set")
    empty_group["roster"]["items"] = {CAROL: {"groups": [""]}}
    assert await error_of(empty_group.send(timeout=5)) == "not-acceptable"
    assert await error_of(laptop.roster_set("carol@localhost/phone")) == "bad-request"

    # §2.5: remove; removing what is not there is item-not-found (§2.5.3).
    laptop.drain()
    phone.drain()
    await laptop.roster_set(BOB, subscription="remove")
    for peer in (laptop, phone):
        push = await peer.next_push(BOB)
        assert roster_items(push)[BOB]["subscription"] == "remove"
    assert BOB not in await roster_of(laptop)
    assert await error_of(laptop.roster_set(BOB, subscription="remove")) == "item-not-found"
    assert lazy.roster_pushes.empty()
    for peer in (laptop, phone, lazy):
        await peer.close()


async def test_roster_versioning(server: ServerProcess) -> None:
    alice = await connect(server, "alice")
    features = alice.client.features
    assert "rosterver" in features and "preapproval" in features
    first = await alice.roster()
    ver = first["roster"]["ver"]
    assert ver
    # §2.6.3: the client's version is current: an empty result.
    same = await alice.roster(ver=ver)
    assert same.xml.find("{jabber:iq:roster}query") is None
    await alice.roster_set(CAROL, "Carol")
    push = await alice.next_push(CAROL)
    new_ver = push["roster"]["ver"]
    assert new_ver and new_ver != ver
    # Out of date: the whole roster, with the version the push carried.
    full = await alice.roster(ver=ver)
    assert full["roster"]["ver"] == new_ver and CAROL in roster_items(full)
    assert (await alice.roster(ver=new_ver)).xml.find("{jabber:iq:roster}query") is None
    await alice.close()


async def test_subscription_flow_between_two_xmpp_users(server: ServerProcess) -> None:
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")

    # §3.1.2: alice asks; her roster shows the request pending.
    alice.send_presence("subscribe", BOB)
    push = await alice.next_push(BOB)
    assert roster_items(push)[BOB]["subscription"] == "none"
    assert roster_items(push)[BOB]["ask"] == "subscribe"
    request = await bob.next_presence("subscribe", ALICE)
    assert str(request["from"]) == ALICE  # stamped with the bare JID
    assert ALICE not in await roster_of(bob)  # a pending request is not a roster item

    # §3.1.5: bob approves: bob has 'from', alice 'to', and alice sees bob.
    bob.send_presence("subscribed", ALICE)
    assert roster_items(await bob.next_push(ALICE))[ALICE]["subscription"] == "from"
    await alice.next_presence("subscribed", BOB)
    assert roster_items(await alice.next_push(BOB))[BOB]["subscription"] == "to"
    await alice.next_presence("available", bob.jid)

    # Subsequent presence (§4.4) flows one way only.
    bob.send_presence(pstatus="lunch", pshow="away")
    got = await alice.next_presence("away", bob.jid)
    assert got["status"] == "lunch"
    alice.send_presence(pstatus="here")
    await bob.no_presence("available", ALICE)

    # bob asks back, alice approves: 'both' on both sides.
    await subscribe_and_approve(bob, alice, ALICE)
    await bob.next_presence(sender=alice.jid)
    assert (await roster_of(alice))[BOB]["subscription"] == "both"
    assert (await roster_of(bob))[ALICE]["subscription"] == "both"
    alice.send_presence(pstatus="back")
    assert (await bob.next_presence("available", alice.jid))["status"] == "back"

    # §3.3: alice unsubscribes from bob: she stops seeing him at once.
    alice.drain()
    bob.drain()
    alice.send_presence("unsubscribe", BOB)
    assert roster_items(await alice.next_push(BOB))[BOB]["subscription"] == "from"
    await alice.next_presence("unavailable", bob.jid)
    await bob.next_presence("unsubscribe", ALICE)
    assert roster_items(await bob.next_push(ALICE))[ALICE]["subscription"] == "to"

    # §3.2: bob cancels alice's subscription to him... she has none left: nothing changes.
    # alice cancels bob's: he gets 'unsubscribed', both items end at 'none'.
    alice.send_presence("unsubscribed", BOB)
    await bob.next_presence("unsubscribed", ALICE)
    await bob.next_presence("unavailable", alice.jid)
    assert (await roster_of(bob))[ALICE]["subscription"] == "none"
    assert (await roster_of(alice))[BOB]["subscription"] == "none"
    await alice.close()
    await bob.close()


async def test_request_to_offline_contact_waits_for_their_login(server: ServerProcess) -> None:
    alice = await connect(server, "alice")
    alice.send_presence("subscribe", CAROL)
    await alice.next_push(CAROL)

    # §3.1.3: stored, delivered at carol's initial presence — every time until answered.
    carol = await connect(server, "carol")
    request = await carol.next_presence("subscribe", ALICE)
    assert str(request["to"]) == CAROL
    await carol.close()
    carol = await connect(server, "carol", presence=False)
    await carol.no_presence("subscribe")  # not before initial presence
    carol.send_presence()
    await carol.next_presence("subscribe", ALICE)

    # §3.2.1: carol declines: alice's request is gone.
    carol.send_presence("unsubscribed", ALICE)
    await alice.next_presence("unsubscribed", CAROL)
    item = roster_items(await alice.next_push(CAROL))[CAROL]
    assert item["subscription"] == "none" and not item["ask"]
    await carol.close()
    carol = await connect(server, "carol")
    await carol.no_presence("subscribe")
    await carol.close()
    await alice.close()


async def test_presence_on_login_logout_and_dropped_connection(server: ServerProcess) -> None:
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")
    # §3.4: bob pre-approves alice, so her request is answered by the server.
    bob.send_presence("subscribed", ALICE)
    item = roster_items(await bob.next_push(ALICE))[ALICE]
    assert item["subscription"] == "none" and item["approved"] == "true"
    await alice.no_presence("subscribed", BOB, wait=0.3)  # a pre-approval is not routed
    alice.send_presence("subscribe", BOB)
    await alice.next_presence("subscribed", BOB)
    await alice.next_presence("available", bob.jid)
    assert (await roster_of(bob))[ALICE]["subscription"] == "from"
    await subscribe_and_approve(bob, alice, ALICE)

    # Logout (clean), login (probes answered: §4.2.3), dropped socket: alice sees each.
    await bob.close()
    await alice.next_presence("unavailable", bob.jid)
    bob = await connect(server, "bob", resource="phone")
    await alice.next_presence("available", bob.jid)
    await bob.next_presence("available", bob.jid)  # §4.2.2: own presence echoed, then
    assert (await bob.next_presence("available", alice.jid))["to"] == bob.jid  # the contacts'
    bob.kill()
    await alice.next_presence("unavailable", bob.jid)

    # Explicit unavailable (§4.5), then a probe from the client (§4.3).
    bob = await connect(server, "bob", resource="desk")
    await alice.next_presence("available", bob.jid)
    bob.send_presence("unavailable", pstatus="gone home")
    got = await alice.next_presence("unavailable", bob.jid)
    assert got["status"] == "gone home"
    alice.send_presence("probe", BOB)
    await alice.next_presence("unavailable", BOB)
    carol = await connect(server, "carol")
    carol.send_presence("probe", ALICE)
    await carol.no_presence(sender=ALICE)  # not subscribed: nothing revealed

    # §2.5.2: alice removes bob: both subscriptions end, both stop seeing each other.
    bob.send_presence()
    await alice.next_presence("available", bob.jid)
    await alice.roster_set(BOB, subscription="remove")
    await alice.next_presence("unavailable", bob.jid)
    await bob.next_presence("unavailable", alice.jid)
    assert (await roster_of(bob))[ALICE]["subscription"] == "none"
    for peer in (alice, bob, carol):
        await peer.close()


async def test_directed_presence_ends_with_the_session(server: ServerProcess) -> None:
    alice = await connect(server, "alice")
    carol = await connect(server, "carol")
    alice.send_presence(to=carol.jid, pstatus="hi carol")  # no subscription at all
    assert (await carol.next_presence("available", alice.jid))["status"] == "hi carol"
    alice.kill()
    await carol.next_presence("unavailable", alice.jid)  # §4.6.3
    await carol.close()


async def test_xmpp_user_subscribing_to_native_user_is_approved(server: ServerProcess) -> None:
    updates: asyncio.Queue[PresenceUpdate] = asyncio.Queue()
    bob = native(server, "bob", updates)
    await bob.start()
    alice = await connect(server, "alice")
    alice.send_presence("subscribe", BOB)
    # The native user cannot answer: the server approves, mutually (docs/native-protocol.md).
    await alice.next_presence("subscribed", BOB)
    assert bob.address is not None
    await alice.next_presence("available", bob.address)
    assert (await roster_of(alice))[BOB]["subscription"] == "both"
    assert await bob.contacts() == [(ALICE, True)]
    assert await asyncio.wait_for(updates.get(), 5) == PresenceUpdate(ALICE, True)

    # A request that waits for a native login is approved at that login.
    alice.send_presence("subscribe", CAROL)
    await alice.next_push(CAROL)
    carol = native(server, "carol", asyncio.Queue())
    await carol.start()
    await alice.next_presence("subscribed", CAROL)
    assert roster_items(await alice.next_push(CAROL))[CAROL]["subscription"] == "both"
    assert await carol.contacts() == [(ALICE, True)]
    await bob.close()
    await carol.close()
    await alice.close()


async def test_native_contact_add_is_a_roster_push(server: ServerProcess) -> None:
    laptop = await connect(server, "alice", resource="laptop")
    phone = await connect(server, "alice", resource="phone")
    bob = native(server, "bob", asyncio.Queue())
    await bob.start()
    assert await bob.add_contact("alice") == [(ALICE, True)]
    for peer in (laptop, phone):
        item = roster_items(await peer.next_push(BOB))[BOB]
        assert item["subscription"] == "both"
        await peer.next_presence("available", BOB)
    await bob.remove_contact("alice")
    for peer in (laptop, phone):
        assert roster_items(await peer.next_push(BOB))[BOB]["subscription"] == "remove"
        await peer.next_presence("unavailable", BOB)
    await bob.close()
    await laptop.close()
    await phone.close()
