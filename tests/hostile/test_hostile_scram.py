"""Issue 14, item 2: a SCRAM exchange for an account that does not exist looks
like one that does (RFC 5802 §5.1): the same iteration count, a salt of the
same size that stays the same for that name, across restarts too."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from conftest import ServerFactory, ServerProcess
from e2e.rawsock import RawPeer
from e2e.xmpp_client_helpers import STREAM_OPEN

CHALLENGE = re.compile(rb"<challenge xmlns=['\"]urn:ietf:params:xml:ns:xmpp-sasl['\"]>([^<]+)</challenge>")


def server_first(server: ServerProcess, user: str) -> dict[str, str]:
    """The server-first-message's attributes (r, s, i) for ``user``."""
    peer = RawPeer(server.ports["xmpp_tls"], server.client_ssl())
    peer.send(STREAM_OPEN)
    peer.read_until("</stream:features>")
    first = base64.b64encode(f"n,,n={user},r=hostile-nonce".encode()).decode()
    peer.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{first}</auth>")
    match = CHALLENGE.search(peer.read_until("</challenge>"))
    peer.close()
    assert match, "no SCRAM challenge"
    text = base64.b64decode(match.group(1)).decode()
    return dict(part.split("=", 1) for part in text.split(","))


def test_an_unknown_user_gets_a_stable_salt_and_the_same_iterations(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(users={"alice": "alicepw"})
    known, ghost = server_first(server, "alice"), server_first(server, "ghost")
    assert ghost["i"] == known["i"]
    assert len(base64.b64decode(ghost["s"])) == len(base64.b64decode(known["s"]))
    assert server_first(server, "ghost")["s"] == ghost["s"]
    assert server_first(server, "phantom")["s"] != ghost["s"]
    server.restart()
    # A real account's salt survives a restart; so must a fake one.
    assert server_first(server, "alice")["s"] == known["s"]
    assert server_first(server, "ghost")["s"] == ghost["s"]
