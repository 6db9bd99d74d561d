"""XMPP end to end: server services and logging in, with slixmpp and raw sockets.

One server serves the whole module (users are made in-process); tests that
need other settings start their own. Messages, xmpppy interop and the command
line are in test_xmpp_c2s_messages.py.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ServerProcess
from e2e.rawsock import RawPeer
from e2e.xmpp_client_helpers import (
    STREAM_OPEN,
    client,
    next_item,
    online,
    raw_login,
    started_server,
    stream_error,
)
from polling import wait_for
from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from xmlchat import __version__
from xmlchat.client.xmpp import LoginFailed, TlsMode, XmppClient, wait_closed
from xmlchat.server.tls import client_context

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


@pytest.fixture(scope="module")
def xserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("xmpp"), USERS)


# Logins without TLS allowed (never by default), and a short idle timeout.
LENIENT = """
[xmpp]
require_encryption = false
[limits]
idle_timeout = 1.0
"""


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("lenient"), ("alice", "bob"), LENIENT)


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
            "vcard-temp",
            "jabber:iq:private",
        } <= features
        for account in ("alice@localhost", "bob@localhost"):  # one's own, and another's (RFC 6121 §8.5.2.1.3)
            info = (await alice.plugin["xep_0030"].get_info(jid=account, local=False))["disco_info"]
            # XEP-0163 §5: every account is also its own PEP service.
            assert {i[:2] for i in info["identities"]} == {("account", "registered"), ("pubsub", "pep")}
            assert "http://jabber.org/protocol/pubsub#publish" in info["features"]
        items = (await alice.plugin["xep_0030"].get_items(jid="localhost", local=False))["disco_items"]
        # The server's items are its services: the room service (XEP-0045 §6.1).
        assert [(str(j), name) for j, _, name in items["items"]] == [("conference.localhost", "Chat rooms")]
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


async def test_ping_the_server(xserver: ServerProcess) -> None:
    async with online(xserver, "alice") as alice:
        rtt = await alice.plugin["xep_0199"].ping(jid=JID("localhost"), timeout=5)
        assert rtt < 5
        await alice.sync()  # no 'to' at all: answered for the account (RFC 6120 §10.3.3)


async def test_a_client_that_answers_server_pings_stays(lenient: ServerProcess) -> None:
    async with online(lenient, "alice") as alice, online(lenient, "bob") as bob:
        pings: list[str] = []  # slixmpp's xep_0199 answers them; this only counts
        path = StanzaPath("iq@type=get/ping")
        alice.register_handler(Callback("count pings", path, lambda iq: pings.append(str(iq["from"]))))
        # idle_timeout 1 s: pinged (XEP-0199 §4.1) at 0.5 s of silence; three answered keep her on.
        await wait_for(lambda: len(pings) >= 3, timeout=10, what="three server pings, each answered")
        assert set(pings) == {"localhost"}
        bob.send_chat("alice@localhost", "still here")
        assert (await next_item(alice.incoming)).body == "still here"  # type: ignore[attr-defined]


def test_a_client_that_answers_nothing_is_dropped_after_idle_timeout(lenient: ServerProcess) -> None:
    peer = raw_login(lenient, "alice", "mute")
    start = time.monotonic()
    pinged = peer.read_until("urn:xmpp:ping", timeout=3)
    assert re.search(rb"<iq [^>]*type=.get.[^>]*><ping xmlns=.urn:xmpp:ping./></iq>", pinged)
    assert b"from='localhost'" in pinged or b'from="localhost"' in pinged
    data = peer.read_until_closed(timeout=3)
    assert peer.closed and stream_error(data) == "connection-timeout"
    assert 0.9 <= time.monotonic() - start <= 2.5
    peer.close()


# ---- logging in


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
@pytest.mark.parametrize("tls", ["starttls", "direct"])
async def test_login_with_each_mechanism_over_tls(
    xserver: ServerProcess, mechanism: str, tls: TlsMode
) -> None:
    async with online(xserver, "alice", "mech", tls=tls, sasl_mech=mechanism) as alice:
        assert alice.plugin["feature_mechanisms"].mech.name == mechanism
        assert str(alice.boundjid) == "alice@localhost/mech"
        assert alice.transport.get_extra_info("ssl_object") is not None
        await alice.sync()


async def test_wrong_password_is_not_authorized(xserver: ServerProcess) -> None:
    c = client(xserver, "alice", password="wrong", sasl_mech="SCRAM-SHA-1")
    with pytest.raises(LoginFailed) as e:
        await c.start("127.0.0.1", xserver.ports["xmpp"])
    assert e.value.condition == "not-authorized"


async def test_the_certificate_is_verified(xserver: ServerProcess) -> None:
    # The system trust store does not know the generated certificate.
    c = XmppClient("alice@localhost", "alicepw", ssl_context=client_context())
    # The handshake fails at once (a hang's TimeoutError must not pass for it).
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await c.start("127.0.0.1", xserver.ports["xmpp"], timeout=5)
    insecure = XmppClient("alice@localhost", "alicepw", ssl_context=client_context(insecure=True))
    await insecure.start("127.0.0.1", xserver.ports["xmpp"])
    await insecure.stop()


def test_sasl_before_starttls_is_refused(xserver: ServerProcess) -> None:
    peer = RawPeer(xserver.ports["xmpp"])
    peer.send(STREAM_OPEN)
    features = peer.read_until("</stream:features>")
    assert b"<required/></starttls>" in features and b"<mechanisms" not in features  # RFC 6120 §5.3.1
    token = base64.b64encode(b"\0alice\0alicepw").decode()
    peer.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    data = peer.read_until("</failure>")
    assert b"<encryption-required/></failure>" in data and b"<success" not in data  # RFC 6120 §6.5.4
    peer.close()


def test_without_tls_plain_is_refused_even_when_logins_are_allowed(lenient: ServerProcess) -> None:
    peer = RawPeer(lenient.ports["xmpp"])
    peer.send(STREAM_OPEN)
    features = peer.read_until("</stream:features>")
    assert b"<required/>" not in features and b"<mechanism>SCRAM-SHA-1</mechanism>" in features
    assert b"<mechanism>PLAIN</mechanism>" not in features  # allow_unencrypted_plain_auth is off
    token = base64.b64encode(b"\0alice\0alicepw").decode()
    peer.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    data = peer.read_until("</failure>")
    assert b"<success" not in data and b"<failure" in data
    peer.close()


async def test_without_tls_scram_logs_in_when_the_server_allows_it(lenient: ServerProcess) -> None:
    async with online(lenient, "bob", tls="none", sasl_mech="SCRAM-SHA-1") as bob:
        assert bob.transport.get_extra_info("ssl_object") is None
        await bob.sync()


async def test_a_second_login_with_the_same_resource_replaces_the_first(xserver: ServerProcess) -> None:
    first = client(xserver, "frank", "desk")
    await first.start("127.0.0.1", xserver.ports["xmpp"])
    async with online(xserver, "frank", "desk") as second:
        await wait_closed(first)
        assert first.stream_errors == ["conflict"]  # RFC 6120 §7.7.2.2
        assert first.closed.is_set()
        async with online(xserver, "erin") as erin:
            erin.send_chat("frank@localhost/desk", "to the newer one")
            assert (await next_item(second.incoming)).body == "to the newer one"  # type: ignore[attr-defined]
