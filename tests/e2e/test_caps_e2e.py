"""XEP-0115 caps of the server itself, end to end: slixmpp's xep_0115 reads the
``<c/>`` stream feature, asks disco#info at ``node#ver`` and checks the hash;
only a hash that verifies is assigned to the server's JID."""

from __future__ import annotations

import asyncio

from conftest import ServerProcess
from e2e.xmpp_helpers import TIMEOUT, connect

EXPECTED = {
    "http://jabber.org/protocol/disco#info",
    "jabber:iq:private",
    "urn:xmpp:blocking",
    "urn:xmpp:carbons:2",
    "urn:xmpp:ping",
    "vcard-temp",
}


async def test_slixmpp_verifies_the_servers_caps_from_its_stream_features(server: ServerProcess) -> None:
    peer = await connect(server, "alice", resource="pc", plugins=("xep_0115",))
    caps = peer.client.plugin["xep_0115"]
    try:
        assert "caps" in peer.client.features
        async with asyncio.timeout(TIMEOUT):
            while (ver := await caps.get_verstring("localhost")) is None:
                await asyncio.sleep(0.05)
        info = await caps.get_caps(verstring=ver)
        assert set(info["features"]) >= EXPECTED
        assert ("server", "im", None, "xmlchat") in info["identities"]
    finally:
        await peer.close()
