"""A reload (SIGHUP) applies new limits of docs/security.md at once, after the
same whole-configuration check as at start; a bad value changes nothing."""

from __future__ import annotations

from conftest import ServerFactory
from e2e.rawsock import RawPeer
from e2e.xmpp_client_helpers import STREAM_OPEN, stream_error
from ops.test_ops_signals import hangup


def opened(port: int, source: str) -> RawPeer:
    peer = RawPeer(port, source=source)
    peer.send(STREAM_OPEN)
    return peer


async def test_a_reload_lowers_the_pending_cap_and_a_zero_is_refused(server_factory: ServerFactory) -> None:
    server = server_factory("[limits]\nmax_pending_per_ip = 3\n")
    port = server.ports["xmpp"]
    held = [opened(port, "127.0.0.2") for _ in range(2)]
    for peer in held:
        assert b"</stream:features>" in peer.read_until("</stream:features>")
    text = server.config_path.read_text()
    server.config_path.write_text(text.replace("max_pending_per_ip = 3", "max_pending_per_ip = 0"))
    await hangup(server)
    assert (
        "not reloaded" in server.log() and "limits.max_pending_per_ip: must be greater than 0" in server.log()
    )
    third = opened(port, "127.0.0.2")  # the cap is still 3
    assert b"</stream:features>" in third.read_until("</stream:features>")
    third.close()
    server.config_path.write_text(text.replace("max_pending_per_ip = 3", "max_pending_per_ip = 2"))
    await hangup(server)
    assert "reloaded: limits.max_pending_per_ip" in server.log()
    refused = opened(port, "127.0.0.2")
    assert stream_error(refused.read_until_closed()) == "policy-violation"
    for peer in held:
        peer.close()
