"""Each listener's tls setting holds on its own (issue 14, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ServerProcess, make_server
from e2e.rawsock import RawPeer

HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)


def plaintext_xmpp(tmp_path: Path, require_encryption: bool) -> ServerProcess:
    server = make_server(tmp_path)
    server.env = {
        "XMLCHAT_LISTENERS_XMPP_TLS": "none",
        "XMLCHAT_XMPP_REQUIRE_ENCRYPTION": "true" if require_encryption else "false",
    }
    return server


def test_a_plaintext_xmpp_listener_offers_no_starttls_though_another_has_tls(tmp_path: Path) -> None:
    server = plaintext_xmpp(tmp_path, require_encryption=False)
    server.start()
    assert "native" in server.ports  # the native TLS listener: a certificate exists
    peer = RawPeer(server.ports["xmpp"])
    peer.send(HEADER)
    features = peer.read_until("</stream:features>")
    assert b"<mechanisms" in features
    assert b"starttls" not in features
    server.stop()


def test_a_plaintext_xmpp_listener_that_requires_encryption_is_refused_at_start(tmp_path: Path) -> None:
    server = plaintext_xmpp(tmp_path, require_encryption=True)
    with pytest.raises(RuntimeError) as failure:
        server.start()
    assert 'listeners.xmpp.tls = "none" needs xmpp.require_encryption = false' in str(failure.value)
