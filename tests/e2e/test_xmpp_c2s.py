"""XMPP end to end: slixmpp and xmpppy against the real server process.

One server serves the whole module (users are made in-process); tests that
need other settings start their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import xmpp
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
from xmlchat.client.native import NativeClient
from xmlchat.client.xmpp import ChatMessage, LoginFailed, StanzaFailed, TlsMode, XmppClient, wait_closed
from xmlchat.server.tls import client_context

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
CHINESE = "你好，世界！🙂 <&>"


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


# ---- messages


async def test_messages_xmpp_to_xmpp_both_ways(xserver: ServerProcess) -> None:
    async with online(xserver, "alice", "a") as alice, online(xserver, "bob", "b") as bob:
        sent = alice.send_chat("bob@localhost", CHINESE)
        got = await next_item(bob.incoming)
        assert isinstance(got, ChatMessage)
        assert (got.id, got.sender, got.body, got.delayed) == (sent, "alice@localhost/a", CHINESE, False)
        sent = bob.send_chat("alice@localhost/a", "and back")
        got = await next_item(alice.incoming)
        assert isinstance(got, ChatMessage)
        assert (got.id, got.sender, got.to, got.body) == (
            sent,
            "bob@localhost/b",
            "alice@localhost/a",
            "and back",
        )


async def test_messages_native_and_xmpp_both_ways(xserver: ServerProcess) -> None:
    native = NativeClient("carol", "carolpw", port=xserver.ports["native"], ssl=xserver.client_ssl())
    await native.start()
    try:
        async with online(xserver, "dave", "d") as dave:
            ack = await native.send("dave", CHINESE)
            got = await next_item(dave.incoming)
            assert isinstance(got, ChatMessage)
            assert (got.id, got.body, got.type) == (ack.id, CHINESE, "chat")
            assert got.sender.startswith("carol@localhost/")
            before = datetime.now(UTC)
            sent = dave.send_chat("carol@localhost", "from xmpp")
            back = await asyncio.wait_for(native.incoming.get(), 5)
            assert (back.id, back.sender, back.body) == (sent, "dave@localhost", "from xmpp")
            assert before - timedelta(seconds=1) <= back.time <= datetime.now(UTC)  # the server's clock
    finally:
        await native.close()


async def test_offline_messages_reach_xmpp_with_delay_stamps(xserver: ServerProcess) -> None:
    native = NativeClient("carol", "carolpw", port=xserver.ports["native"], ssl=xserver.client_ssl())
    await native.start()
    try:
        ack = await native.send("erin", "stored 1 (native)")
        async with online(xserver, "alice", "o") as alice:
            sent = alice.send_chat("erin@localhost", "stored 2 (xmpp)")
            await alice.sync()  # the server has handled it: stored
        async with online(xserver, "erin") as erin:  # XEP-0160: sent at initial presence
            first, second = [await next_item(erin.incoming) for _ in range(2)]
            assert isinstance(first, ChatMessage) and isinstance(second, ChatMessage)
            assert (first.id, first.body, first.delayed) == (ack.id, "stored 1 (native)", True)
            assert abs(first.time - ack.time) < timedelta(milliseconds=1)  # XEP-0203 stamp = accepted
            assert (second.id, second.body, second.delayed) == (sent, "stored 2 (xmpp)", True)
            assert first.time <= second.time
            erin.send_chat("carol@localhost", "live again")
            assert (await asyncio.wait_for(native.incoming.get(), 5)).body == "live again"
    finally:
        await native.close()


async def test_an_error_comes_back_for_an_unknown_recipient(xserver: ServerProcess) -> None:
    async with online(xserver, "alice") as alice:
        sent = alice.send_chat("nobody@localhost", "hello?")
        error = await next_item(alice.errors)
        assert isinstance(error, StanzaFailed)
        assert (error.condition, error.ref) == ("service-unavailable", sent)


# ---- interop: xmpppy, a synchronous library, in a thread


def _xmpppy_session(
    port: int, inbox: queue.Queue[tuple[str, str]], outbox: queue.Queue[tuple[str, str]]
) -> None:
    """Log in as carol/xmpppy (STARTTLS, then PLAIN), report what arrives,
    send what is asked, until asked for ("", "")."""
    client = xmpp.Client("localhost", debug=[])
    if (
        client.connect(("127.0.0.1", port), use_srv=False) != "tls"
        or client.auth("carol", "carolpw", "xmpppy") != "sasl"
    ):
        inbox.put(("login failed", ""))
        return
    client.RegisterHandler("message", lambda _, msg: inbox.put((str(msg.getFrom()), msg.getBody() or "")))
    client.sendInitPresence(requestRoster=0)
    inbox.put(("ready", client.SASL.startsasl))
    while True:
        client.Process(0.05)
        with contextlib.suppress(queue.Empty):
            to, body = outbox.get_nowait()
            if not to:
                break
            client.send(xmpp.Message(to, body, typ="chat"))
    client.disconnect()


async def test_interop_with_xmpppy(xserver: ServerProcess) -> None:
    inbox: queue.Queue[tuple[str, str]] = queue.Queue()
    outbox: queue.Queue[tuple[str, str]] = queue.Queue()
    thread = threading.Thread(
        target=_xmpppy_session, args=(xserver.ports["xmpp"], inbox, outbox), daemon=True
    )
    thread.start()
    loop = asyncio.get_running_loop()

    async def from_xmpppy() -> tuple[str, str]:
        return await asyncio.wait_for(loop.run_in_executor(None, inbox.get, True, 10), 11)

    try:
        assert await from_xmpppy() == ("ready", "success")
        async with online(xserver, "dave", "x") as dave:
            dave.send_chat("carol@localhost/xmpppy", CHINESE)
            assert await from_xmpppy() == ("dave@localhost/x", CHINESE)
            outbox.put(("dave@localhost/x", "from xmpppy"))
            got = await next_item(dave.incoming)
            assert isinstance(got, ChatMessage)
            assert (got.sender, got.body) == ("carol@localhost/xmpppy", "from xmpppy")
    finally:
        outbox.put(("", ""))
        await loop.run_in_executor(None, thread.join, 10)


# ---- the command line: xmlchat xmpp-send / xmpp-chat


def test_cli_xmpp_send(xserver: ServerProcess) -> None:
    port = f"127.0.0.1:{xserver.ports['xmpp']}"
    ok = xserver.cli("xmpp-send", "alice", "carol", "from the cli", "--password", "alicepw", "--server", port)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("sent (id ")
    unknown = xserver.cli("xmpp-send", "alice", "nobody", "x", "--password", "alicepw", "--server", port)
    assert unknown.returncode == 1 and "service-unavailable" in unknown.stderr
    wrong = xserver.cli("xmpp-send", "alice", "carol", "x", "--password", "nope", "--server", port)
    assert wrong.returncode == 1 and "not-authorized" in wrong.stderr
    # The default trust is the data directory's certificate (pinning); direct TLS works too.
    direct = f"127.0.0.1:{xserver.ports['xmpp_tls']}"
    ok = xserver.cli(
        "xmpp-send", "alice", "carol", "direct", "--password", "alicepw", "--server", direct, "--direct-tls"
    )
    assert ok.returncode == 0, ok.stderr


async def test_cli_xmpp_chat(xserver: ServerProcess) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmlchat", "xmpp-chat", "bob", "--resource", "cli", "--password", "bobpw",
        "--server", f"127.0.0.1:{xserver.ports['xmpp']}", "--config", str(xserver.config_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "XMLCHAT_DATA_DIR": str(xserver.data_dir)},
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    async def line() -> str:
        return (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()  # type: ignore[union-attr]

    try:
        assert (await line()).startswith("logged in as bob@localhost/cli;")
        async with online(xserver, "alice", "gui") as alice:
            alice.send_chat("bob@localhost", CHINESE)
            assert (await line()).endswith(f"] alice@localhost: {CHINESE}\n")
            proc.stdin.write("alice: 你好 back\n/roster\n".encode())
            got = await next_item(alice.incoming)
            assert (got.sender, got.body) == ("bob@localhost/cli", "你好 back")  # type: ignore[attr-defined]
            assert "(empty roster: /add NAME)" in await line()
            # RFC 6121 §3.1: bob subscribes; alice's slixmpp approves and subscribes back.
            proc.stdin.write(b"/add alice\n")
            assert (await line()).strip() == "subscription request sent to alice@localhost"
            while "* alice@localhost/gui is online" not in await line():
                pass
            deadline = time.monotonic() + 10  # alice's request back is approved a moment later
            while True:  # 'to', then 'both'
                proc.stdin.write(b"/roster\n")
                while (entry := (await line()).strip()).startswith("*"):
                    pass
                if entry.endswith("both)") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)  # poll interval
            assert entry == "alice@localhost online (subscription both)"
            proc.stdin.write(b"/quit\n")
            assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
