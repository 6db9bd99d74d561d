"""XMPP end to end: slixmpp and xmpppy against the real server process.

One server serves the whole module (users are made in-process); tests that
need other settings start their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ServerProcess
from e2e.xmpp_client_helpers import online, started_server
from slixmpp.exceptions import IqError

from xmlchat import __version__

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


@pytest.fixture(scope="module")
def xserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("xmpp"), USERS)


# ---- services: disco, version, time, ping


async def test_disco_info_of_the_server_and_of_accounts(xserver: ServerProcess) -> None:
    async with online(xserver, "alice") as alice:
        info = (await alice.plugin["xep_0030"].get_info(jid="localhost", local=False))["disco_info"]
        assert ("server", "im", None, "xmlchat") in info["identities"]
        features = set(info["features"])
        assert {
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "urn:xmpp:ping",
            "jabber:iq:version",
            "urn:xmpp:time",
        } <= features
        for account in ("alice@localhost", "bob@localhost"):  # one's own, and another's (RFC 6121 §8.5.2.1.3)
            info = (await alice.plugin["xep_0030"].get_info(jid=account, local=False))["disco_info"]
            assert {i[:2] for i in info["identities"]} == {("account", "registered")}
        items = (await alice.plugin["xep_0030"].get_items(jid="localhost", local=False))["disco_items"]
        assert list(items["items"]) == []
        with pytest.raises(IqError) as e:  # RFC 6121 §8.5.1: no such account
            await alice.plugin["xep_0030"].get_info(jid="nobody@localhost", local=False)
        assert e.value.condition == "service-unavailable"
        with pytest.raises(IqError) as e:
            await alice.plugin["xep_0030"].get_info(jid="localhost", node="nope", local=False)
        assert e.value.condition == "item-not-found"


async def test_version_and_time(xserver: ServerProcess) -> None:
    async with online(xserver, "alice") as alice:
        version = (await alice.plugin["xep_0092"].get_version("localhost"))["software_version"]
        assert (version["name"], version["version"], version["os"]) == ("xmlchat", __version__, "")
        # Read the XML: slixmpp 1.17's get_utc() appends a second 'Z' to the
        # XEP-0202 §3 form ("...35Z", as Prosody sends too) and fails to parse it.
        reply = await alice.plugin["xep_0202"].get_entity_time("localhost")
        utc = reply.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
        tzo = reply.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}tzo")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", utc)
        assert abs(datetime.fromisoformat(utc) - datetime.now(UTC)) < timedelta(seconds=5)
        assert re.fullmatch(r"[+-]\d\d:\d\d", tzo)
        # Another user's bare JID: the server answers only what it can answer on
        # their behalf (disco), never its own version as if it were bob's.
        with pytest.raises(IqError) as e:
            await alice.plugin["xep_0092"].get_version("bob@localhost")
        assert e.value.condition == "service-unavailable"
