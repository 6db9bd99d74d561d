"""Issue 14, item 2: password guessing meets a back-off, then a lock-out for
that account from that IP, then one for the IP; each lock-out is logged and
counted, and the account's owner logging in from elsewhere is not affected."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.rawsock import NATIVE_OPEN, RawPeer
from e2e.xmpp_client_helpers import STREAM_OPEN, stream_error
from hostile_helpers import Bystanders, log_waits_for, server_with
from scrape import sample, scrape

LIMITS = """
login_backoff_after = 2
login_backoff = 0.5
login_backoff_max = 1.0
login_lockout_after = 4
login_ban_after = 6
login_lockout_seconds = 60
"""
METRICS = "[metrics]\nenabled = true\nport = 0\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from server_with(tmp_path_factory.mktemp("logins"), LIMITS, METRICS)


@pytest.fixture
def bystanders(server: ServerProcess) -> Iterator[Bystanders]:
    pair = Bystanders(server)
    yield pair
    pair.close()


class NativeGuesser:
    """Password guesses on the native protocol from one address, a connection each."""

    def __init__(self, server: ServerProcess, source: str) -> None:
        self.port, self.source = server.ports["native_plain"], source

    def login(self, user: str, password: str) -> bytes:
        """The answer: ``<login-ok>…`` or ``<login-failed>…``."""
        peer = RawPeer(self.port, source=self.source)
        peer.send(f"{NATIVE_OPEN}<login><user>{user}</user><password>{password}</password></login>")
        data = peer.read_until("</login-")
        peer.close()
        end = data.find(b">", data.find(b"</login-")) + 1
        return data[data.find(b"<login-") : end]


def failed_because(answer: bytes) -> str:
    assert b"<login-failed>" in answer, answer
    return answer.split(b"<condition>")[1].split(b"</condition>")[0].decode()


def test_guessing_backs_off_then_locks_the_account_out_for_that_ip_only(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    guesser = NativeGuesser(server, "127.0.0.2")
    assert failed_because(guesser.login("alice", "guess-1")) == "not-authorized"
    assert failed_because(guesser.login("alice", "guess-2")) == "not-authorized"
    # Two failures are free; the third attempt right away is refused unchecked,
    # even with the right password.
    answer = guesser.login("alice", "alicepw")
    assert failed_because(answer) == "policy-violation" and b"try again in" in answer
    bystanders.still_chatting()
    for guess in ("guess-3", "guess-4"):
        _after_backoff(lambda guess=guess: guesser.login("alice", guess))
    assert log_waits_for(server, "locking out account alice@localhost for IP 127.0.0.2 for 60 s")
    assert sample(scrape(server.ports["metrics"]), "xmlchat_limits_hit_total", limit="lockout_account") == 1
    # Locked out: the right password is refused from there for the lock-out's
    # length (60 s), not the back-off's (at most 1 s).
    answer = guesser.login("alice", "alicepw")
    assert failed_because(answer) == "policy-violation" and b"try again in 60 s" in answer
    # The owner, from another address, logs in at once; and bob from the same
    # address is not concerned by alice's lock-out.
    assert b"<login-ok>" in NativeGuesser(server, "127.0.0.3").login("alice", "alicepw")
    assert b"<login-ok>" in NativeGuesser(server, "127.0.0.2").login("dave", "davepw")
    bystanders.still_chatting()


def test_guessing_many_accounts_from_one_ip_locks_the_ip_out(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    guesser = NativeGuesser(server, "127.0.0.4")
    for n in range(6):  # one guess per account: no back-off, only the IP's count
        assert failed_because(guesser.login(f"user{n}", "guess")) == "not-authorized"
    assert log_waits_for(server, "locking out IP 127.0.0.4 for 60 s after 6 failed logins")
    assert sample(scrape(server.ports["metrics"]), "xmlchat_limits_hit_total", limit="lockout_ip") == 1
    # A new connection from there is turned away at the door, on every listener.
    native = RawPeer(server.ports["native_plain"], source="127.0.0.4")
    assert b"<error><condition>policy-violation</condition>" in native.read_until_closed()
    xmpp = RawPeer(server.ports["xmpp"], source="127.0.0.4")
    assert stream_error(xmpp.read_until_closed()) == "policy-violation"
    assert b"<login-ok>" in NativeGuesser(server, "127.0.0.1").login("dave", "davepw")
    bystanders.still_chatting()


def sasl_plain(peer: RawPeer, user: str, password: str) -> bytes:
    peer.received = b""
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    peer.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    return peer.read_until("</failure>")


def sasl_peer(server: ServerProcess, source: str) -> RawPeer:
    peer = RawPeer(server.ports["xmpp_tls"], server.client_ssl(), source=source)
    peer.send(STREAM_OPEN)
    peer.read_until("</stream:features>")
    return peer


def test_sasl_guessing_gets_temporary_auth_failure_and_the_stream_ends(
    server: ServerProcess, bystanders: Bystanders
) -> None:
    # A client trying one wrong password with each mechanism makes one mistake:
    # three failures on one connection count once, then the stream ends.
    first = sasl_peer(server, "127.0.0.5")
    for _ in range(3):
        assert b"<not-authorized/>" in sasl_plain(first, "carol", "guess-1")
    assert stream_error(first.read_until_closed()) == "policy-violation"
    assert b"<not-authorized/>" in sasl_plain(sasl_peer(server, "127.0.0.5"), "carol", "guess-2")
    # Two failures counted: in back-off now (RFC 6120 §6.5.12).
    answer = sasl_plain(sasl_peer(server, "127.0.0.5"), "carol", "carolpw")
    assert b"<temporary-auth-failure/>" in answer and b"try again in" in answer
    bystanders.still_chatting()


def _after_backoff(attempt: object) -> bytes:
    """Retry ``attempt`` until it is checked (not refused for the back-off), within 3 s."""
    assert callable(attempt)
    deadline = time.monotonic() + 3.0
    while True:
        answer: bytes = attempt()
        if b"policy-violation" not in answer or time.monotonic() > deadline:
            assert failed_because(answer) == "not-authorized"
            return answer
        time.sleep(0.1)
