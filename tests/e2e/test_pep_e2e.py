"""XEP-0163 PEP end to end: slixmpp's xep_0163, xep_0060, xep_0084 (avatars),
xep_0402 (bookmarks) and xep_0115 (the ``+notify`` interests in caps) against
the real server, and raw sockets for the refusals.

Interests are known to the server only once it has asked the client's caps
(disco#info) and checked the hash: tests wait for the last item the server
sends at that moment (§4.3.3) before relying on live notifications.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ServerProcess
from e2e.xmpp_client_helpers import condition_in, raw_login, refusal, started_server
from e2e.xmpp_helpers import TIMEOUT, XmppPeer, connect, error_of, subscribe_and_approve
from slixmpp.plugins.xep_0048 import Bookmarks
from slixmpp.plugins.xep_0402.stanza import Conference
from slixmpp.stanza import Message

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank")
METADATA = "urn:xmpp:avatar:metadata"
BOOKMARKS = "urn:xmpp:bookmarks:1"
ITEM_LIMIT = 3000
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
XEP_0402 = {"persist_items": "true", "max_items": "max", "access_model": "whitelist"}  # its §3 node


@pytest.fixture(scope="module")
def pserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    limits = f"[limits]\nmax_pep_item_bytes = {ITEM_LIMIT}\nmax_pep_items = 50\n"
    yield from started_server(tmp_path_factory.mktemp("pep"), USERS, limits)


async def interested(server: ServerProcess, user: str, resource: str, *nodes: str) -> tuple[XmppPeer, Any]:
    """A client whose caps say ``node+notify`` for each node, with a queue of the
    PEP events it receives; available once its caps are final."""
    plugins = ("xep_0030", "xep_0115", "xep_0060", "xep_0163", "xep_0084", "xep_0402")
    peer = await connect(server, user, resource=resource, presence=False, plugins=plugins)
    events: asyncio.Queue[Message] = asyncio.Queue()
    peer.client.add_event_handler("pubsub_publish", events.put_nowait)
    peer.client.add_event_handler("pubsub_retract", events.put_nowait)
    for node in nodes:
        peer.client.plugin["xep_0163"].add_interest(node)
    await peer.client.plugin["xep_0115"].update_caps(broadcast=False)
    peer.send_presence()
    return peer, events


async def next_event(events: asyncio.Queue[Message], node: str) -> Message:
    async with asyncio.timeout(TIMEOUT):
        while (message := await events.get())["pubsub_event"]["items"]["node"] != node:
            pass
    return message


def item_ids(message: Message) -> list[str]:
    return [item["id"] for item in message["pubsub_event"]["items"]]


def options(peer: XmppPeer, **values: str) -> Any:
    form = peer.client.plugin["xep_0004"].make_form("submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=PUBLISH_OPTIONS)
    for var, value in values.items():
        form.add_field(var=f"pubsub#{var}", value=value)
    return form


async def test_avatars_reach_subscribed_contacts_that_want_them(pserver: ServerProcess) -> None:
    """XEP-0084 through PEP: the last metadata at login, then live updates; the
    data item for whoever may see the owner's presence, and only them."""
    alice, _ = await interested(pserver, "alice", "pc")
    bob = await connect(pserver, "bob", resource="setup")
    await subscribe_and_approve(bob, alice, "alice@localhost")
    avatar = alice.client.plugin["xep_0084"]
    first = b"first picture"
    await avatar.publish_avatar(first, timeout=TIMEOUT)
    await avatar.publish_avatar_metadata(
        {"id": hashlib.sha1(first).hexdigest(), "type": "image/png", "bytes": len(first)}, timeout=TIMEOUT
    )
    watcher, events = await interested(pserver, "bob", "watcher", METADATA)
    assert item_ids(await next_event(events, METADATA)) == [hashlib.sha1(first).hexdigest()]  # at login
    second = b"second picture"
    await avatar.publish_avatar(second, timeout=TIMEOUT)
    await avatar.publish_avatar_metadata(
        {"id": hashlib.sha1(second).hexdigest(), "type": "image/png", "bytes": len(second)}, timeout=TIMEOUT
    )
    assert item_ids(await next_event(events, METADATA)) == [hashlib.sha1(second).hexdigest()]  # live
    got = await watcher.client.plugin["xep_0084"].retrieve_avatar(
        "alice@localhost", hashlib.sha1(second).hexdigest(), timeout=TIMEOUT
    )
    assert got["pubsub"]["items"]["item"]["avatar_data"]["value"] == second
    # carol has no subscription to alice: the node's presence access model refuses her.
    carol, _ = await interested(pserver, "carol", "pc", METADATA)
    request = carol.client.plugin["xep_0084"].retrieve_avatar(
        "alice@localhost", hashlib.sha1(second).hexdigest()
    )
    assert await error_of(request) == "forbidden"
    for peer in (alice, bob, watcher, carol):
        await peer.close()


async def test_no_notification_without_interest_or_subscription(pserver: ServerProcess) -> None:
    """§4.3: only resources whose caps carry node+notify, and only those allowed."""
    dave, dave_events = await interested(pserver, "dave", "pc", METADATA)
    erin, erin_events = await interested(pserver, "erin", "pc", METADATA)
    # Each publishes once, and so learns when the server knows its interests (its own last item).
    for peer, events in ((dave, dave_events), (erin, erin_events)):
        await peer.client.plugin["xep_0084"].publish_avatar_metadata(
            {"id": "own", "type": "image/png", "bytes": 1}, timeout=TIMEOUT
        )
        assert item_ids(await next_event(events, METADATA)) == ["own"]
    await dave.client.plugin["xep_0084"].publish_avatar_metadata(
        {"id": "again", "type": "image/png", "bytes": 1}, timeout=TIMEOUT
    )
    assert item_ids(await next_event(dave_events, METADATA)) == ["again"]
    # Notifications are written before the publisher's result: this result
    # comes after anything dave's publish sent erin.
    await erin.client.plugin["xep_0163"].publish(Conference(), node="urn:example:other", timeout=TIMEOUT)
    assert erin_events.empty()  # dave's item (no subscription), its own other node (no interest)
    for peer in (dave, erin):
        await peer.close()


async def test_an_approved_subscription_brings_the_last_item(pserver: ServerProcess) -> None:
    """§4.3.3: a new subscriber gets the newest item of each node it wants."""
    gina, _ = await interested(pserver, "gina", "pc")
    await gina.client.plugin["xep_0084"].publish_avatar_metadata(
        {"id": "gina-1", "type": "image/png", "bytes": 1}, timeout=TIMEOUT
    )
    hank, events = await interested(pserver, "hank", "pc", METADATA)
    # hank's interests are known once its own (first) item comes back to it.
    await hank.client.plugin["xep_0084"].publish_avatar_metadata(
        {"id": "hank-1", "type": "image/png", "bytes": 1}, timeout=TIMEOUT
    )
    assert item_ids(await next_event(events, METADATA)) == ["hank-1"]
    await subscribe_and_approve(hank, gina, "gina@localhost")
    message = await next_event(events, METADATA)
    assert (str(message["from"]), item_ids(message)) == ("gina@localhost", ["gina-1"])
    for peer in (gina, hank):
        await peer.close()


async def test_bookmarks_2_are_the_owners_alone(pserver: ServerProcess) -> None:
    """XEP-0402: whitelist access, max_items=max, persistent; the owner's other
    resources are told; an existing node refuses different preconditions."""
    frank, _ = await interested(pserver, "frank", "pc")
    pubsub = frank.client.plugin["xep_0060"]
    bookmark = Conference()
    bookmark["name"], bookmark["autojoin"], bookmark["nick"] = "Tea", True, "frank"
    for room in ("tea@conference.localhost", "cake@conference.localhost"):
        await pubsub.publish(
            "frank@localhost", BOOKMARKS, id=room, payload=bookmark.xml, options=options(frank, **XEP_0402),
            timeout=TIMEOUT,
        )  # fmt: skip
    stored = await pubsub.get_items("frank@localhost", BOOKMARKS, timeout=TIMEOUT)
    assert [item["id"] for item in stored["pubsub"]["items"]] == [
        "cake@conference.localhost",
        "tea@conference.localhost",
    ]
    assert stored["pubsub"]["items"]["item"]["conference"]["name"] == "Tea"
    phone, events = await interested(pserver, "frank", "phone", BOOKMARKS)
    assert item_ids(await next_event(events, BOOKMARKS)) == ["cake@conference.localhost"]
    await pubsub.retract(
        "frank@localhost", BOOKMARKS, "tea@conference.localhost", notify=True, timeout=TIMEOUT
    )
    retracted = await next_event(events, BOOKMARKS)
    assert retracted.xml.find(".//{http://jabber.org/protocol/pubsub#event}retract").get("id") == (
        "tea@conference.localhost"
    )
    clash = pubsub.publish(
        "frank@localhost",
        BOOKMARKS,
        id="x",
        payload=bookmark.xml,
        options=options(frank, access_model="open"),
    )
    assert await error_of(clash) == "conflict"
    dave = await connect(pserver, "dave", resource="peek", plugins=("xep_0060",))
    assert (
        await error_of(dave.client.plugin["xep_0060"].get_items("frank@localhost", BOOKMARKS)) == "forbidden"
    )
    for peer in (frank, phone, dave):
        await peer.close()


async def test_items_survive_a_restart_and_max_items_holds(server: ServerProcess) -> None:
    """pubsub#persist_items and pubsub#max_items (XEP-0060 §16.4), in the store."""
    alice, _ = await interested(server, "alice", "pc")
    pubsub = alice.client.plugin["xep_0060"]
    for n in range(3):
        await pubsub.publish(
            "alice@localhost", "urn:example:notes", id=f"n{n}", payload=Conference().xml,
            options=options(alice, max_items="2", persist_items="true"), timeout=TIMEOUT,
        )  # fmt: skip
    await alice.close()
    server.restart()
    again, _ = await interested(server, "alice", "pc")
    stored = await again.client.plugin["xep_0060"].get_items(
        "alice@localhost", "urn:example:notes", timeout=TIMEOUT
    )
    assert [item["id"] for item in stored["pubsub"]["items"]] == ["n2", "n1"]
    await again.close()


@pytest.mark.parametrize(
    ("request_xml", "condition", "application"),
    [
        # An item over limits.max_pep_item_bytes (XEP-0060 §7.1.3.4).
        (
            "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='big'>"
            f"<item id='1'><big xmlns='urn:example'>{'x' * ITEM_LIMIT}</big></item></publish></pubsub></iq>",
            "not-acceptable",
            "payload-too-big",
        ),
        # A node that does not exist (§6.5.9.11).
        (
            "<iq type='get' id='p' to='bob@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
            "<items node='urn:example:none'/></pubsub></iq>",
            "item-not-found",
            None,
        ),
        # Someone else's service is not ours to publish to.
        (
            "<iq type='set' id='p' to='bob@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
            "<publish node='n'><item><x xmlns='urn:example'/></item></publish></pubsub></iq>",
            "forbidden",
            None,
        ),
        # A whitelist node of bob's (published by the fixture below).
        (
            "<iq type='get' id='p' to='bob@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
            "<items node='urn:example:secret'/></pubsub></iq>",
            "forbidden",
            None,
        ),
    ],
)
def test_refusals_on_the_wire(
    pserver: ServerProcess, bob_secret: None, request_xml: str, condition: str, application: str | None
) -> None:
    data = refusal(pserver, "carol", request_xml)
    assert condition_in(data) == condition
    if application is not None:
        assert f'<{application} xmlns="http://jabber.org/protocol/pubsub#errors"/>' in data


@pytest.fixture(scope="module")
def bob_secret(pserver: ServerProcess) -> None:
    peer = raw_login(pserver, "bob", "secret")
    try:
        peer.send(
            "<iq type='set' id='s'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
            "<publish node='urn:example:secret'><item id='1'><s xmlns='urn:example'/></item></publish>"
            "<publish-options><x xmlns='jabber:x:data' type='submit'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{PUBLISH_OPTIONS}</value></field>"
            "<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options>"
            "</pubsub></iq>"
        )
        assert b'type="result"' in peer.read_until("</iq>")
    finally:
        peer.close()


async def test_old_and_new_bookmarks_are_one_list(server: ServerProcess) -> None:
    """XEP-0402 §5 (#compat): XEP-0048 in private storage and XEP-0402 in PEP."""
    old = await connect(server, "alice", resource="old", plugins=("xep_0049", "xep_0048", "xep_0030"))
    new, events = await interested(server, "alice", "new", BOOKMARKS)
    try:
        info = await old.client.plugin["xep_0030"].get_info(
            jid="alice@localhost", local=False, timeout=TIMEOUT
        )
        assert f"{BOOKMARKS}#compat" in info["disco_info"]["features"]
        pubsub = new.client.plugin["xep_0060"]
        # A first item of the new client's own: when it comes back, the server
        # knows what the new client wants (its caps), so later ones are sent.
        await pubsub.publish(
            "alice@localhost", BOOKMARKS, id="first@conference.localhost", payload=Conference().xml,
            options=options(new, **XEP_0402), timeout=TIMEOUT,
        )  # fmt: skip
        assert item_ids(await next_event(events, BOOKMARKS)) == ["first@conference.localhost"]
        legacy = Bookmarks()
        legacy.add_conference("tea@conference.localhost", "alice", name="Tea", autojoin=True)
        legacy.add_url("https://example.org", name="kept as it was")
        await old.client.plugin["xep_0048"].set_bookmarks(legacy, method="xep_0049", timeout=TIMEOUT)
        items = (await pubsub.get_items("alice@localhost", BOOKMARKS, timeout=TIMEOUT))["pubsub"]["items"]
        [tea] = list(items)
        assert (tea["id"], tea["conference"]["name"], tea["conference"]["autojoin"]) == (
            "tea@conference.localhost", "Tea", True
        )  # fmt: skip
        assert tea["conference"]["nick"] == "alice"
        told = [item_ids(await next_event(events, BOOKMARKS)) for _ in range(2)]
        assert ["tea@conference.localhost"] in told  # published, and "first" retracted: both told
        cake = Conference()
        cake["name"], cake["autojoin"] = "Cake", False
        await pubsub.publish(
            "alice@localhost", BOOKMARKS, id="cake@conference.localhost", payload=cake.xml,
            options=options(new, **XEP_0402), timeout=TIMEOUT,
        )  # fmt: skip
        await pubsub.retract(
            "alice@localhost", BOOKMARKS, "tea@conference.localhost", notify=True, timeout=TIMEOUT
        )
        stored = await old.client.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=TIMEOUT)
        bookmarks = stored["private"]["bookmarks"]
        assert [(c["jid"], c["name"]) for c in bookmarks["conferences"]] == [
            ("cake@conference.localhost", "Cake")
        ]
        assert [u["url"] for u in bookmarks["urls"]] == ["https://example.org"]
    finally:
        await old.close()
        await new.close()
