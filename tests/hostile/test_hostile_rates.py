"""Issue 14, item 7: a client sending more bytes than its rate, alone or with
other connections from its IP, is read more slowly (karma, as Prosody's
mod_limits), not cut off; the pauses show in the metrics, and bystanders keep
chatting meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.rawsock import RawPeer, native_login
from hostile_helpers import Bystanders, server_with
from scrape import sample, scrape

LIMITS = """
bytes_per_second = 40000
byte_burst = 20000
ip_bytes_per_second = 30000
"""
BODY = "x" * 4000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from server_with(tmp_path_factory.mktemp("rates"), LIMITS, "[metrics]\nenabled = true\nport = 0\n")


def flood(peer: RawPeer, user: str, count: int) -> None:
    """``count`` messages of 4 kB to oneself, all at once (each gets an ``<ack>``)."""
    peer.send("".join(f"<message><to>{user}</to><body>{BODY}</body></message>" for _ in range(count)))


def all_acked(peer: RawPeer, count: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while peer.received.count(b"<ack>") < count and not peer.closed and time.monotonic() < deadline:
        peer.read_until(b"\0", timeout=0.1)  # read what came; the NUL never does
    return peer.received.count(b"<ack>") == count


def throttled(server: ServerProcess, limit: str) -> float:
    """Pauses in reading so far because of ``limit``."""
    return sample(scrape(server.ports["metrics"]), "xmlchat_limits_hit_total", limit=limit)


def test_a_client_over_its_byte_rate_is_slowed_not_cut(server: ServerProcess) -> None:
    bystanders = Bystanders(server)
    flooder = native_login(server.ports["native_plain"], "alice", "alicepw", source="127.0.0.2")
    started = time.monotonic()
    flood(flooder, "alice", 25)
    bystanders.still_chatting()
    assert all_acked(flooder, 25)
    # 100 kB at 40 kB/s after a 20 kB burst: two seconds.
    assert time.monotonic() - started >= 1.8
    assert not flooder.closed
    assert throttled(server, "byte_rate") > 0
    bystanders.still_chatting()
    bystanders.close()


def test_connections_from_one_ip_share_its_byte_rate(server: ServerProcess) -> None:
    bystanders = Bystanders(server)
    before = throttled(server, "ip_byte_rate")
    users = ("alice", "dave", "erin", "frank")
    floods = [native_login(server.ports["native_plain"], u, f"{u}pw", source="127.0.0.3") for u in users]
    started = time.monotonic()
    for peer, user in zip(floods, users, strict=True):
        flood(peer, user, 12)
    bystanders.still_chatting()
    assert all(all_acked(peer, 12) for peer in floods)
    # Each sends 48 kB: 0.7 s over its own rate. Together, 192 kB at the IP's
    # 30 kB/s after its 150 kB burst: 1.4 s.
    assert time.monotonic() - started >= 1.3
    assert throttled(server, "ip_byte_rate") > before
    bystanders.still_chatting()
    bystanders.close()
