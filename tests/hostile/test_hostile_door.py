"""Issue 14, item 1: connections that never finish the TLS handshake, never log
in, or come in too many at once are dropped or refused with the exact error,
and two users already logged in keep chatting meanwhile."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.rawsock import NATIVE_OPEN, RawPeer
from e2e.xmpp_client_helpers import STREAM_OPEN, stream_error
from hostile_helpers import Bystanders, closed_within, log_waits_for, server_with

LIMITS = """
tls_handshake_timeout = 1.0
login_timeout = 1.5
max_pending_per_ip = 3
max_pending = 6
listen_backlog = 77
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from server_with(
        tmp_path_factory.mktemp("door"), LIMITS, "[xmpp]\nallow_unencrypted_plain_auth = false\n"
    )


@pytest.fixture
def bystanders(server: ServerProcess) -> Iterator[Bystanders]:
    pair = Bystanders(server)
    yield pair
    pair.close()


def test_a_tls_handshake_that_never_finishes_is_dropped(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    # Connected to the direct-TLS port, and not a byte of ClientHello.
    stalled = [RawPeer(server.ports["native"], source="127.0.0.2") for _ in range(2)]
    bystanders.still_chatting()
    for peer in stalled:
        assert closed_within(peer, 4.0)
    assert log_waits_for(server, "TLS handshake from 127.0.0.2 failed (timeout)")
    bystanders.still_chatting()


def test_a_starttls_handshake_that_never_finishes_is_dropped(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    peer = RawPeer(server.ports["xmpp"], source="127.0.0.8")
    peer.send(STREAM_OPEN)
    peer.read_until("</stream:features>")
    peer.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert b"<proceed" in peer.read_until("<proceed")
    bystanders.still_chatting()
    # No ClientHello: the handshake's own timeout (1 s) ends it, before login_timeout's.
    assert closed_within(peer, 4.0)
    assert log_waits_for(
        server, "disconnected: ConnectionAbortedError: SSL handshake is taking longer than 1.0"
    )


def test_an_xmpp_stream_that_never_authenticates_gets_connection_timeout(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    peer = RawPeer(server.ports["xmpp"], source="127.0.0.3")
    peer.send(STREAM_OPEN)
    assert b"</stream:features>" in peer.read_until("</stream:features>")
    bystanders.still_chatting()
    data = peer.read_until_closed(timeout=4.0)
    assert stream_error(data) == "connection-timeout"  # RFC 6120 §4.9.3.4
    assert peer.closed


def test_an_xmpp_stream_authenticated_but_never_bound_gets_connection_timeout(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    # Negotiation ends with a bound resource, not with SASL success.
    peer = RawPeer(server.ports["xmpp_tls"], server.client_ssl(), source="127.0.0.4")
    peer.send(STREAM_OPEN)
    peer.read_until("</stream:features>")
    token = base64.b64encode(b"\0dave\0davepw").decode()
    peer.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    assert b"<success" in peer.read_until("<success")
    peer.send(STREAM_OPEN)
    bystanders.still_chatting()
    data = peer.read_until_closed(timeout=4.0)
    assert stream_error(data) == "connection-timeout"
    assert peer.closed


def test_a_native_session_that_never_logs_in_gets_connection_timeout(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    peer = RawPeer(server.ports["native_plain"], source="127.0.0.5")
    peer.send(NATIVE_OPEN)
    bystanders.still_chatting()
    data = peer.read_until_closed(timeout=4.0)
    assert b"<error><condition>connection-timeout</condition>" in data
    assert peer.closed


def test_too_many_pending_from_one_ip_are_refused_and_other_ips_are_not(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    held = [RawPeer(server.ports["xmpp"], source="127.0.0.6") for _ in range(3)]
    for peer in held:
        peer.send(STREAM_OPEN)
        assert b"</stream:features>" in peer.read_until("</stream:features>")
    extra = RawPeer(server.ports["xmpp"], source="127.0.0.6")
    data = extra.read_until_closed()
    assert stream_error(data) == "policy-violation"  # RFC 6120 §4.9.3.14
    assert extra.closed
    native = RawPeer(server.ports["native_plain"], source="127.0.0.6")  # every listener: one count
    assert b"<error><condition>policy-violation</condition>" in native.read_until_closed()
    direct = RawPeer(server.ports["native"], source="127.0.0.6")  # direct TLS: closed, no handshake
    assert closed_within(direct, 2.0) and direct.received == b""
    other = RawPeer(server.ports["xmpp"], source="127.0.0.7")
    other.send(STREAM_OPEN)
    assert b"</stream:features>" in other.read_until("</stream:features>")
    bystanders.still_chatting()
    for peer in (*held, other):
        peer.close()
    # Their places are free again once they are gone.
    assert _admitted_within(server, "127.0.0.6", 3.0)


def test_too_many_pending_in_all_are_refused(server: ServerProcess, bystanders: Bystanders) -> None:
    held = []
    for n in range(6):
        peer = RawPeer(server.ports["xmpp"], source=f"127.0.1.{n % 3}")
        peer.send(STREAM_OPEN)
        assert b"</stream:features>" in peer.read_until("</stream:features>")
        held.append(peer)
    extra = RawPeer(server.ports["xmpp"], source="127.0.1.9")
    assert stream_error(extra.read_until_closed()) == "policy-violation"
    bystanders.still_chatting()
    for peer in held:
        peer.close()
    assert _admitted_within(server, "127.0.1.9", 3.0)


def _admitted_within(server: ServerProcess, source: str, seconds: float) -> bool:
    """Does a new connection from ``source`` get stream features within ``seconds``?"""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peer = RawPeer(server.ports["xmpp"], source=source)
        peer.send(STREAM_OPEN)
        data = peer.read_until("</stream:features>", timeout=1.0)
        peer.close()
        if b"</stream:features>" in data:
            return True
        time.sleep(0.05)
    return False


def test_every_listener_has_the_configured_backlog(server: ServerProcess) -> None:
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2)")
    for name in ("native", "native_plain", "xmpp", "xmpp_tls"):
        port = server.ports[name]
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        # For a listening socket, ss shows the backlog as Send-Q (the third column).
        assert out[2] == "77", (name, out)
