"""Every XMPP stream error the server sends (RFC 6120 §4.9.3), over raw sockets.

Each test asserts the ``<stream:error/>`` condition, that the server closes
the stream and the connection, and that a user logged in all along (the
witness) is unaffected.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from e2e.rawsock import RawPeer
from e2e.xmpp_client_helpers import STREAM_OPEN, raw_login, started_server, stream_error

HEADER = (
    "<?xml version='1.0'?><stream:stream to='{to}' xmlns='{content}' xmlns:stream='{streams}' version='{v}'>"
)
STREAMS = "http://etherx.jabber.org/streams"
_ids = itertools.count()


def header(
    to: str = "localhost", content: str = "jabber:client", streams: str = STREAMS, version: str = "1.0"
) -> str:
    return HEADER.format(to=to, content=content, streams=streams, v=version)


@pytest.fixture(scope="module")
def xserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from started_server(tmp_path_factory.mktemp("errors"), ("alice", "bob"))


@pytest.fixture(scope="module")
def witness(xserver: ServerProcess) -> Iterator[RawPeer]:
    peer = raw_login(xserver, "bob", "witness")
    yield peer
    peer.close()


def assert_alive(witness: RawPeer) -> None:
    """The witness still gets its pings answered."""
    ping_id = f"w{next(_ids)}"
    witness.received = b""
    witness.send(f"<iq type='get' id='{ping_id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    data = witness.read_until(f'id="{ping_id}"')
    assert re.search(rf"<iq [^>]*type=.result.[^>]*id=.{ping_id}.", data.decode()), data[-300:]
    assert not witness.closed


def expect_stream_error(peer: RawPeer, condition: str, timeout: float = 5.0) -> bytes:
    data = peer.read_until_closed(timeout)
    assert stream_error(data) == condition, data[-400:]
    assert data.rstrip().endswith(b"</stream:stream>")  # §4.9.1.1: error, then the closing tag
    assert peer.closed  # ...and the TCP connection
    peer.close()
    return data


def tls_peer(server: ServerProcess) -> RawPeer:
    """Connected to the direct-TLS port, stream open, features read."""
    peer = RawPeer(server.ports["xmpp_tls"], server.client_ssl())
    peer.send(STREAM_OPEN)
    peer.read_until("</stream:features>")
    return peer


# ---- the stream header (§4.7, §4.8)


@pytest.mark.parametrize(
    "opening",
    [
        header(streams="http://example.org/streams"),  # §4.8.1 the stream namespace
        header(content="jabber:server"),  # §4.8.2 the content namespace of a c2s port
    ],
    ids=["stream-ns", "content-ns"],
)
def test_bad_namespace(xserver: ServerProcess, witness: RawPeer, opening: str) -> None:
    peer = RawPeer(xserver.ports["xmpp"])
    peer.send(opening)
    data = expect_stream_error(peer, "invalid-namespace")
    assert b"<stream:stream" in data  # §4.9.1.2: our header precedes the error
    assert_alive(witness)


def test_unknown_host(xserver: ServerProcess, witness: RawPeer) -> None:
    peer = RawPeer(xserver.ports["xmpp"])
    peer.send(header(to="example.org"))
    expect_stream_error(peer, "host-unknown")  # §4.9.3.6
    assert_alive(witness)


def test_unsupported_version(xserver: ServerProcess, witness: RawPeer) -> None:
    peer = RawPeer(xserver.ports["xmpp"])
    peer.send(header(version="2.0"))
    expect_stream_error(peer, "unsupported-version")  # §4.7.5, §4.9.3.25
    assert_alive(witness)


# ---- the XML itself (§11)


# Shared with tests/e2e/test_web_hostile.py, which sends them over WebSocket.
NOT_WELL_FORMED = pytest.mark.parametrize(
    "payload",
    [
        b"<message to='bob@localhost'><body>x</message>",  # mismatched end tag
        b"<message to='bob@localhost' to='carol@localhost'/>",  # duplicate attribute
        b"<message><body>a < b</body></message>",  # a bare '<'
    ],
    ids=["mismatched-tag", "duplicate-attribute", "bare-lt"],
)
RESTRICTED_XML = pytest.mark.parametrize(
    "payload",
    [
        b"<!-- a comment -->",
        b"<?xml-stylesheet href='x'?>",  # a processing instruction
        b"<message to='bob@localhost'><body>&amp;&custom;</body></message>",  # a non-predefined entity
    ],
    ids=["comment", "processing-instruction", "entity"],
)


@NOT_WELL_FORMED
def test_not_well_formed(xserver: ServerProcess, witness: RawPeer, payload: bytes) -> None:
    peer = raw_login(xserver, "alice", "nwf")
    peer.send(payload)
    expect_stream_error(peer, "not-well-formed")  # §4.9.3.13
    assert_alive(witness)


@RESTRICTED_XML
def test_restricted_xml_after_login(xserver: ServerProcess, witness: RawPeer, payload: bytes) -> None:
    peer = raw_login(xserver, "alice", "restricted")
    peer.send(payload)
    expect_stream_error(peer, "restricted-xml")  # §11.1
    assert_alive(witness)


def test_a_dtd_is_restricted_xml(xserver: ServerProcess, witness: RawPeer) -> None:
    peer = RawPeer(xserver.ports["xmpp"])
    peer.send(
        "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'>]>"
        + header().removeprefix("<?xml version='1.0'?>")
    )
    expect_stream_error(peer, "restricted-xml")  # §11.1: no DTDs
    assert_alive(witness)


BAD_UTF8 = pytest.mark.parametrize(
    "data",
    [
        b"<message to='bob@localhost'><body>caf" + b"\xc3\x28</body></message>",  # invalid sequence
        b"<message to='bob@localhost'><body>" + b"\xff\xfe</body></message>",  # never UTF-8
    ],
    ids=["bad-continuation", "ff-fe"],
)


@BAD_UTF8
def test_bad_utf8(xserver: ServerProcess, witness: RawPeer, data: bytes) -> None:
    peer = raw_login(xserver, "alice", "utf8")
    peer.send(data)
    expect_stream_error(peer, "unsupported-encoding")  # §4.9.3.22, §11.6
    assert_alive(witness)


def test_an_encoding_other_than_utf8_is_unsupported(xserver: ServerProcess, witness: RawPeer) -> None:
    peer = RawPeer(xserver.ports["xmpp"])
    peer.send(header().replace("version='1.0'?>", "version='1.0' encoding='ISO-8859-1'?>", 1))
    try:
        expect_stream_error(peer, "unsupported-encoding", timeout=1.0)  # §11.6
    finally:
        peer.close()
    assert_alive(witness)


# ---- the session


def test_a_stanza_before_authentication(xserver: ServerProcess, witness: RawPeer) -> None:
    peer = tls_peer(xserver)
    peer.send("<message to='bob@localhost/witness' type='chat'><body>sneaky</body></message>")
    expect_stream_error(peer, "not-authorized")  # §4.9.3.12
    assert b"sneaky" not in witness.read_until("sneaky", timeout=0.3)
    assert_alive(witness)


@pytest.mark.parametrize("authenticated", [False, True], ids=["before-auth", "after-auth"])
def test_an_oversized_stanza(xserver: ServerProcess, witness: RawPeer, authenticated: bool) -> None:
    # Limits: 10 000 bytes before authentication, 256 KiB after (Prosody's).
    peer = raw_login(xserver, "alice", "big") if authenticated else tls_peer(xserver)
    size = 300 * 1024 if authenticated else 12_000
    peer.send(f"<message to='bob@localhost/witness' type='chat'><body>{'x' * size}</body></message>")
    data = expect_stream_error(peer, "policy-violation")  # §4.9.3.14
    assert b"<stanza-too-big xmlns='urn:xmpp:errors'/>" in data.replace(b'"', b"'")
    assert_alive(witness)


def test_sasl_then_garbage_before_restart(xserver: ServerProcess, witness: RawPeer) -> None:
    """Bytes pipelined after the SASL exchange, before the restart, are refused
    (§6.4.6: the client must wait for <success/>) — never fed to the new stream."""
    peer = RawPeer(xserver.ports["xmpp_tls"], xserver.client_ssl())
    token = base64.b64encode(b"\0alice\0alicepw").decode()
    peer.send(
        STREAM_OPEN
        + f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        + "<message to='bob@localhost/witness'><body>early</body></message>"
    )
    data = expect_stream_error(peer, "policy-violation")
    assert b"<success" in data
    assert_alive(witness)
