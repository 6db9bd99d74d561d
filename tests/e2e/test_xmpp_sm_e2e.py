"""XEP-0198 acknowledgements end to end: slixmpp's xep_0198 plugin and a raw
socket against the real server process; a replay is taken only once acked."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.xmpp_client_helpers import next_item, online, raw_login, started_server, stream_error

from xmlchat.client.native import NativeClient
from xmlchat.client.xmpp import DEFAULT_PLUGINS, ChatMessage

SM = "urn:xmpp:sm:3"
WITH_SM = (*DEFAULT_PLUGINS, "xep_0198")
OFFLINE = 500


@pytest.fixture(scope="module")
def smserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("sm"), ("alice", "bob", "carol", "dave"))


def _h(data: bytes) -> int:
    match = re.search(rb"<a xmlns=['\"]urn:xmpp:sm:3['\"] h=['\"](\d+)['\"]", data)
    assert match, data
    return int(match.group(1))


async def test_slixmpp_chats_with_sm_enabled(smserver: ServerProcess) -> None:
    async with (
        online(smserver, "alice", "a", plugins=WITH_SM) as alice,
        online(smserver, "bob", "b", plugins=WITH_SM) as bob,
    ):
        assert alice.plugin["xep_0198"].enabled_in and bob.plugin["xep_0198"].enabled_in
        sent = [alice.send_chat("bob@localhost/b", f"m{i}") for i in range(50)]
        got = [await next_item(bob.incoming) for _ in sent]
        assert [g.id for g in got if isinstance(g, ChatMessage)] == sent
        reply = bob.send_chat("alice@localhost/a", "back")
        back = await next_item(alice.incoming)
        assert isinstance(back, ChatMessage) and back.id == reply
        await alice.sync()
        assert bob.incoming.empty()


async def test_500_offline_messages_replayed_with_acks(smserver: ServerProcess) -> None:
    native = NativeClient("carol", "carolpw", port=smserver.ports["native"], ssl=smserver.client_ssl())
    await native.start()
    try:
        ids = [(await native.send("dave", f"stored {i}")).id for i in range(OFFLINE)]
    finally:
        await native.close()
    async with online(smserver, "dave", "d", plugins=WITH_SM) as dave:
        got = [await next_item(dave.incoming, 20) for _ in ids]
        assert [g.id for g in got if isinstance(g, ChatMessage)] == ids  # in order, none lost
        assert all(isinstance(g, ChatMessage) and g.delayed for g in got)
        sm = dave.plugin["xep_0198"]
        # The server asked (every 20 stanzas, and after each page): the client answered.
        deadline = asyncio.get_running_loop().time() + 20
        while sm.handled < OFFLINE and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert sm.handled >= OFFLINE
        await dave.sync()
    # Acknowledged pages were deleted: a new login gets nothing more.
    async with online(smserver, "dave", "d2", plugins=WITH_SM) as again:
        await again.sync()
        assert again.incoming.empty()


def test_raw_socket_enables_acks_and_counts(smserver: ServerProcess) -> None:
    peer = raw_login(smserver, "alice", "raw")
    try:
        peer.send(f"<enable xmlns='{SM}' resume='true'/>")
        enabled = re.search(rb"<enabled[^>]*>", peer.read_until(b"<enabled"))
        while enabled is None or not enabled.group().endswith(b"/>"):
            enabled = re.search(rb"<enabled[^>]*>", peer.read_until(b"/>"))
        assert b"resume='true'" in enabled.group()  # §5: resumable (see test_xmpp_resume_e2e)
        peer.received = b""
        for i in range(3):
            peer.send(f"<iq type='get' id='p{i}'><ping xmlns='urn:xmpp:ping'/></iq>")
        peer.send(f"<r xmlns='{SM}'/>")
        assert _h(peer.read_until(b"<a ") and peer.read_until(b"'/>")) == 3
        assert peer.received.count(b'type="result"') + peer.received.count(b"type='result'") == 3
        # Three pongs were sent: acking them is fine, a fourth is too many.
        peer.received = b""
        peer.send(f"<a xmlns='{SM}' h='3'/>")
        peer.send(f"<a xmlns='{SM}' h='4'/>")
        data = peer.read_until_closed()
        assert stream_error(data) == "undefined-condition"
        assert re.search(rb"<handled-count-too-high xmlns=['\"]urn:xmpp:sm:3['\"]", data)
        assert re.search(rb"h=['\"]4['\"]", data) and re.search(rb"send-count=['\"]3['\"]", data)
    finally:
        peer.close()
