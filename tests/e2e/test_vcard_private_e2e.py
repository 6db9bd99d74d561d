"""XEP-0054 vCards with XEP-0153 avatar hashes, and XEP-0049 private storage
(XEP-0048 bookmarks through it), end to end: slixmpp's plugins and raw sockets
against the real server."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.xmpp_client_helpers import condition_in, raw_login, refusal, started_server
from e2e.xmpp_helpers import TIMEOUT, connect
from slixmpp.plugins.xep_0048 import Bookmarks

ALICE, BOB = "alice@localhost", "bob@localhost"
AVATAR = b"\x89PNG\r\n\x1a\n not really a picture"
LIMIT = 4000


@pytest.fixture(scope="module")
def vserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    limits = f"[limits]\nmax_vcard_bytes = {LIMIT}\nmax_private_bytes = {LIMIT}\n"
    yield from started_server(tmp_path_factory.mktemp("vcard"), ("alice", "bob"), limits)


async def test_a_vcard_set_with_an_avatar_is_what_others_read(vserver: ServerProcess) -> None:
    alice = await connect(vserver, "alice", resource="pc", plugins=("xep_0054", "xep_0153"))
    bob = await connect(vserver, "bob", resource="pc", plugins=("xep_0054",))
    try:
        vcard = alice.client.plugin["xep_0054"].make_vcard()
        vcard["FN"] = "Alice Liddell"
        await alice.client.plugin["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)
        await alice.client.plugin["xep_0153"].set_avatar(avatar=AVATAR, mtype="image/png", timeout=TIMEOUT)
        seen = await bob.client.plugin["xep_0054"].get_vcard(ALICE, timeout=TIMEOUT)
        assert seen["vcard_temp"]["FN"] == "Alice Liddell"
        assert seen["vcard_temp"]["PHOTO"]["BINVAL"] == AVATAR
        assert seen["vcard_temp"]["PHOTO"]["TYPE"] == "image/png"
        # An account with no vCard has an empty one (§3.1).
        empty = await alice.client.plugin["xep_0054"].get_vcard(BOB, timeout=TIMEOUT)
        assert len(empty["vcard_temp"].xml) == 0
    finally:
        await alice.close()
        await bob.close()


async def test_the_server_stamps_the_photo_hash_into_presence(vserver: ServerProcess) -> None:
    """XEP-0153 §4.2: a client that says nothing of its avatar still announces it."""
    alice = await connect(vserver, "alice", resource="pc", plugins=("xep_0054", "xep_0153"))
    await alice.client.plugin["xep_0153"].set_avatar(avatar=AVATAR, mtype="image/png", timeout=TIMEOUT)
    await alice.close()
    bob = await connect(vserver, "bob", resource="pc")
    plain = raw_login(vserver, "alice", "plain")
    try:
        plain.send(f"<presence to='{bob.jid}'/>")
        presence = await bob.next_presence("available", "alice@localhost/plain")
        assert presence["vcard_temp_update"]["photo"] == hashlib.sha1(AVATAR).hexdigest()
        # A client that announces its own hash keeps it.
        plain.send(f"<presence to='{bob.jid}'><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
        presence = await bob.next_presence("available", "alice@localhost/plain")
        assert presence.xml.find("{vcard-temp:x:update}x/{vcard-temp:x:update}photo").text is None
    finally:
        plain.close()
        await bob.close()


async def test_bookmarks_in_private_storage(vserver: ServerProcess) -> None:
    """XEP-0048 bookmarks through XEP-0049, as older clients keep them."""
    plugins = ("xep_0049", "xep_0048")
    alice = await connect(vserver, "alice", resource="pc", plugins=plugins)
    try:
        empty = await alice.client.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=TIMEOUT)
        assert len(empty["private"]["bookmarks"]["conferences"]) == 0
        bookmarks = Bookmarks()
        bookmarks.add_conference("tea@conference.localhost", "alice", name="Tea", autojoin=True)
        await alice.client.plugin["xep_0048"].set_bookmarks(bookmarks, method="xep_0049", timeout=TIMEOUT)
    finally:
        await alice.close()
    again = await connect(vserver, "alice", resource="phone", plugins=plugins)
    try:
        stored = await again.client.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=TIMEOUT)
        [conference] = stored["private"]["bookmarks"]["conferences"]
        assert (conference["jid"], conference["name"], conference["autojoin"]) == (
            "tea@conference.localhost",
            "Tea",
            True,
        )
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("request_xml", "condition"),
    [
        # §3: another account's private data is forbidden.
        (
            "<iq type='get' id='x' to='bob@localhost'><query xmlns='jabber:iq:private'>"
            "<storage xmlns='storage:bookmarks'/></query></iq>",
            "forbidden",
        ),
        # A reserved namespace, and an empty query.
        (
            "<iq type='set' id='x'><query xmlns='jabber:iq:private'>"
            "<foo xmlns='jabber:client'/></query></iq>",
            "not-acceptable",
        ),
        ("<iq type='get' id='x'><query xmlns='jabber:iq:private'/></iq>", "not-acceptable"),
        # Size limits.
        (
            "<iq type='set' id='x'><query xmlns='jabber:iq:private'>"
            f"<big xmlns='urn:example'>{'a' * LIMIT}</big></query></iq>",
            "not-acceptable",
        ),
        (
            f"<iq type='set' id='x'><vCard xmlns='vcard-temp'><FN>{'a' * LIMIT}</FN></vCard></iq>",
            "not-acceptable",
        ),
        # Only the owner sets a vCard.
        (
            "<iq type='set' id='x' to='bob@localhost'><vCard xmlns='vcard-temp'><FN>B</FN></vCard></iq>",
            "forbidden",
        ),
    ],
)
def test_refusals_on_the_wire(vserver: ServerProcess, request_xml: str, condition: str) -> None:
    assert condition_in(refusal(vserver, "alice", request_xml)) == condition


def test_a_refused_vcard_leaves_the_stored_one(vserver: ServerProcess) -> None:
    peer = raw_login(vserver, "bob", "raw")
    try:
        peer.send("<iq type='set' id='s1'><vCard xmlns='vcard-temp'><FN>Bob</FN></vCard></iq>")
        assert re.search(r"type=.result.", peer.read_until("</iq>").decode())
        peer.received = b""
        peer.send(f"<iq type='set' id='s2'><vCard xmlns='vcard-temp'><FN>{'b' * LIMIT}</FN></vCard></iq>")
        assert b"not-acceptable" in peer.read_until("</iq>")
        peer.received = b""
        peer.send("<iq type='get' id='g1'><vCard xmlns='vcard-temp'/></iq>")
        assert b"<FN>Bob</FN>" in peer.read_until("</iq>")
    finally:
        peer.close()


async def test_a_pep_avatar_becomes_the_vcard_photo(vserver: ServerProcess) -> None:
    """XEP-0398 §3.1: what a modern client publishes (XEP-0084) is what a
    vCard-only client reads, and what the server stamps into presence."""
    image = b"published through PEP"
    alice = await connect(vserver, "alice", resource="pep", plugins=("xep_0084", "xep_0030"))
    bob = await connect(vserver, "bob", resource="pc", plugins=("xep_0054", "xep_0030"))
    try:
        info = await bob.client.plugin["xep_0030"].get_info(jid=ALICE, local=False, timeout=TIMEOUT)
        assert "urn:xmpp:pep-vcard-conversion:0" in info["disco_info"]["features"]
        avatar = alice.client.plugin["xep_0084"]
        digest = hashlib.sha1(image).hexdigest()
        await avatar.publish_avatar(image, timeout=TIMEOUT)
        await avatar.publish_avatar_metadata(
            {"id": digest, "type": "image/webp", "bytes": len(image)}, timeout=TIMEOUT
        )
        seen = await bob.client.plugin["xep_0054"].get_vcard(ALICE, timeout=TIMEOUT)
        assert seen["vcard_temp"]["PHOTO"]["BINVAL"] == image
        assert seen["vcard_temp"]["PHOTO"]["TYPE"] == "image/webp"
        alice.client.send_presence(pto=bob.jid)  # no vcard-temp:x:update of its own
        presence = await bob.next_presence("available", alice.jid)
        assert presence["vcard_temp_update"]["photo"] == digest
    finally:
        await alice.close()
        await bob.close()


async def test_a_vcard_photo_is_published_through_pep(vserver: ServerProcess) -> None:
    """XEP-0398 §3.2: a vCard-only client's avatar reaches XEP-0084 clients."""
    image = b"set in a vCard"
    bob = await connect(vserver, "bob", resource="old", plugins=("xep_0054", "xep_0153", "xep_0060"))
    try:
        await bob.client.plugin["xep_0153"].set_avatar(avatar=image, mtype="image/png", timeout=TIMEOUT)
        pubsub = bob.client.plugin["xep_0060"]
        metadata = await pubsub.get_items(BOB, "urn:xmpp:avatar:metadata", timeout=TIMEOUT)
        info = metadata.xml.find(".//{urn:xmpp:avatar:metadata}info")
        digest = hashlib.sha1(image).hexdigest()
        assert (info.get("id"), info.get("type"), info.get("bytes")) == (digest, "image/png", str(len(image)))
        data = await pubsub.get_items(BOB, "urn:xmpp:avatar:data", timeout=TIMEOUT)
        assert data.xml.findtext(".//{urn:xmpp:avatar:data}data") == base64.b64encode(image).decode()
    finally:
        await bob.close()
