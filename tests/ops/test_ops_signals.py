"""SIGHUP reloads the log level, the limits and the certificate with every
session kept; SIGTERM drains: clients are told ``system-shutdown`` on both
protocols, what was accepted is stored, and the server exits 0."""

from __future__ import annotations

import hashlib
import signal
import ssl
from pathlib import Path

from conftest import ServerFactory, ServerProcess
from e2e.rawsock import RawPeer, native_login
from e2e.xmpp_client_helpers import raw_login, stream_error
from polling import wait_for

from xmlchat.server.tls import generate_self_signed


async def hangup(server: ServerProcess) -> None:
    """SIGHUP, then wait for the server to say it reloaded (or refused to)."""
    assert server.proc is not None
    done = server.log().count("reloaded:") + server.log().count("not reloaded")
    server.proc.send_signal(signal.SIGHUP)
    await wait_for(
        lambda: server.log().count("reloaded:") + server.log().count("not reloaded") > done,
        10,
        what="the server logged the reload",
    )
    assert server.proc.poll() is None


def offline_message(peer: RawPeer, id_: str) -> str:
    peer.send(f"<message><id>{id_}</id><to>carol</to><body>{id_}</body></message>")
    return peer.read_until(f"<id>{id_}</id>").decode().rpartition(f"<id>{id_}</id>")[0].rpartition("<")[2]


async def test_sighup_applies_new_limits_and_log_level_keeping_sessions(server: ServerProcess) -> None:
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    xmpp = raw_login(server, "bob")
    text = server.config_path.read_text()
    server.config_path.write_text(
        text.replace('level = "debug"', 'level = "warning"') + "\n[limits]\nmax_offline_messages = 1\n"
    )
    await hangup(server)
    assert "reloaded: limits.max_offline_messages, log.level" in server.log()
    alice.received = b""
    alice.send("<message><id>m1</id><to>carol</to><body>one</body></message>")
    assert b"<ack>" in alice.read_until("</ack>")
    alice.send("<message><id>m2</id><to>carol</to><body>two</body></message>")
    refused = alice.read_until("</error>").decode()
    assert "<condition>resource-constraint</condition>" in refused and "<id>m2</id>" in refused
    before = server.log().count("connected from")
    native_login(server.ports["native_plain"], "carol", "carolpw").close()  # info lines: now silent
    assert server.log().count("connected from") == before
    xmpp.send("<iq type='get' id='still'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert b"still" in xmpp.read_until("still") and not xmpp.closed and not alice.closed
    stats = server.cli("stats", "--json")
    assert '"limits_hit"' in stats.stdout and '"offline_queue": 1' in stats.stdout
    xmpp.close()
    alice.close()


async def test_reload_reports_what_needs_a_restart_and_a_bad_file_changes_nothing(
    server: ServerProcess,
) -> None:
    server.config_path.write_text(server.config_path.read_text() + "\n[archive]\nenabled = true\n")
    result = server.cli("reload")
    assert result.returncode == 0, result.stderr
    assert "reloaded: nothing changed" in result.stdout
    assert "changed, needs a restart to take effect: archive.enabled" in result.stdout
    server.config_path.write_text(server.config_path.read_text() + "\n[limits]\nnot_a_limit = 1\n")
    bad = server.cli("reload")  # the command reads the same file first, and says what is wrong
    assert bad.returncode == 2 and "configuration error" in bad.stderr and "limits.not_a_limit" in bad.stderr
    await hangup(server)
    assert "SIGHUP: not reloaded" in server.log() and "limits.not_a_limit" in server.log()
    native_login(server.ports["native_plain"], "alice", "alicepw").close()  # still serving


def fingerprint(port: int, cafile: Path) -> str:
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False
    peer = RawPeer(port, context)
    assert isinstance(peer.sock, ssl.SSLSocket)
    der = peer.sock.getpeercert(binary_form=True)
    peer.close()
    assert der is not None
    return hashlib.sha256(der).hexdigest()


async def test_sighup_reloads_a_renewed_certificate(server_factory: ServerFactory, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(("localhost",), cert, key)
    server = server_factory(f'\n[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n')
    old = fingerprint(server.ports["native"], cert)
    established = RawPeer(server.ports["native"], _trusting(cert))
    generate_self_signed(("localhost",), cert, key)  # renewed under the same names
    await hangup(server)
    assert "reloaded: no change" in server.log()
    new = fingerprint(server.ports["native"], cert)
    assert new != old
    established.send("<session xmlns='urn:xmlchat:native:1' version='1'><ping/>")
    assert b"<pong/>" in established.read_until("<pong/>")  # the old session keeps its TLS
    established.close()


def _trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    return context


def test_sigterm_drains_both_protocols_and_keeps_what_was_accepted(server: ServerProcess) -> None:
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    xmpp = raw_login(server, "bob")
    alice.send("<message><id>last</id><to>carol</to><body>before the end</body></message>")
    assert b"<ack>" in alice.read_until("</ack>")
    assert server.stop(signal.SIGTERM) == 0
    native = alice.read_until_closed().decode()
    assert "<condition>system-shutdown</condition>" in native and native.endswith("</session>")
    assert stream_error(xmpp.read_until_closed()) == "system-shutdown"
    assert "stopped" in server.log()
    server.start()
    queued = server.cli("queue", "carol")
    assert "before the end" in queued.stdout and "1 message(s) waiting" in queued.stdout
