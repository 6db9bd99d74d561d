"""The admin channel, driven through the real CLI against a running server:
who, kick, stats, announce, queue, log-level, and the channel's own rules."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerProcess, make_server
from e2e.rawsock import NATIVE_OPEN, RawPeer, native_login
from e2e.xmpp_client_helpers import raw_login, stream_error
from e2e.xmpp_helpers import connect

from xmlchat.client.admin import short_path, socket_path


def admin_json(server: ServerProcess, *args: str) -> Any:
    result = server.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_who_stats_and_kick_across_both_protocols(server: ServerProcess) -> None:
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    bob = raw_login(server, "bob", resource="desk")
    who = admin_json(server, "who")
    assert [(s["jid"].split("/")[0], s["protocol"], s["tls"]) for s in who] == [
        ("alice@localhost", "native", False),
        ("bob@localhost", "xmpp", True),
    ]
    assert who[1]["jid"] == "bob@localhost/desk"
    stats = admin_json(server, "stats")
    assert stats["sessions"] == {"native": 1, "xmpp": 1}
    assert stats["registered_users"] == 3
    assert stats["data_dir"] == str(server.data_dir)

    kicked = server.cli("kick", "alice", "--reason", "testing kick")
    assert kicked.returncode == 0 and "closed 1 session(s)" in kicked.stdout
    data = alice.read_until_closed().decode()
    assert "<condition>policy-violation</condition>" in data and "testing kick" in data
    assert [s["jid"] for s in admin_json(server, "who")] == ["bob@localhost/desk"]
    again = server.cli("kick", "alice")
    assert again.returncode == 1 and "alice@localhost has no session" in again.stderr
    bob.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert b"p1" in bob.read_until("p1") and not bob.closed  # bob is unaffected
    bob.close()


def test_failed_logins_show_in_stats_as_a_limit_hit(server: ServerProcess) -> None:
    peer = RawPeer(server.ports["native_plain"])
    peer.send(NATIVE_OPEN)
    for _ in range(3):
        peer.send("<login><user>alice</user><password>wrong</password></login>")
    assert "<condition>policy-violation</condition>" in peer.read_until_closed().decode()
    assert admin_json(server, "stats")["limits_hit"] == {"login_attempts": 1}


async def test_announce_reaches_both_protocols_and_waits_for_offline_users(server: ServerProcess) -> None:
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    bob = await connect(server, "bob")
    try:
        result = server.cli("announce", "maintenance at noon", "--offline")
        assert result.returncode == 0, result.stderr
        assert "sent to 2 session(s), stored for 1 offline user(s)" in result.stdout
        headline = await bob.next_message()
        assert headline["type"] == "headline" and headline["body"] == "maintenance at noon"
        assert str(headline["from"]) == "localhost"
        native = alice.read_until("</message>").decode()
        assert "<from>localhost</from>" in native and "<body>maintenance at noon</body>" in native
    finally:
        await bob.close()
        alice.close()
    queued = admin_json(server, "queue", "carol")
    assert [(m["from"], m["type"], m["body"]) for m in queued] == [
        ("localhost", "headline", "maintenance at noon")
    ]
    carol = native_login(server.ports["native_plain"], "carol", "carolpw")
    assert "<body>maintenance at noon</body>" in carol.read_until("</message>").decode()
    carol.close()
    empty = server.cli("announce", "  ")
    assert empty.returncode == 1 and "empty" in empty.stderr


def test_queue_shows_what_waits_without_taking_it(server: ServerProcess) -> None:
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    alice.send("<message><id>q1</id><to>carol</to><body>first</body></message>")
    alice.send("<message><id>q2</id><to>carol</to><body>second</body></message>")
    alice.read_until("<id>q2</id>")
    alice.close()
    for _ in range(2):  # looking twice: queue takes nothing
        queued = admin_json(server, "queue", "carol@localhost")
        assert [(m["from"].split("/")[0], m["type"], m["body"]) for m in queued] == [
            ("alice@localhost", "chat", "first"),
            ("alice@localhost", "chat", "second"),
        ]
    text = server.cli("queue", "carol")
    assert "2 message(s) waiting" in text.stdout and "first" in text.stdout
    unknown = server.cli("queue", "nobody")
    assert unknown.returncode == 1 and "no such user nobody@localhost" in unknown.stderr


def test_log_level_changes_what_the_server_logs(server: ServerProcess) -> None:
    native_login(server.ports["native_plain"], "alice", "alicepw").close()
    assert "connected from" in server.log()  # debug and info lines at first
    result = server.cli("log-level", "warning")
    assert result.returncode == 0 and "log level warning (was debug)" in result.stdout
    before = server.log().count("connected from")
    # "connected from" is logged before the login is answered, so it would be there by now.
    native_login(server.ports["native_plain"], "bob", "bobpw").close()
    assert server.log().count("connected from") == before
    bad = server.cli("log-level", "loud")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_the_channel_is_owner_only_and_answers_bad_requests(server: ServerProcess) -> None:
    path = socket_path(server.data_dir)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with short_path(path) as name, socket.socket(socket.AF_UNIX) as sock:
        sock.connect(name)
        sock.sendall(b'not json\n{"command": "nope"}\n{"command": "stats", "args": {}}\n')
        reader = sock.makefile("rb")
        answers = [json.loads(reader.readline()) for _ in range(3)]
    assert answers[0] == {"ok": False, "error": answers[0]["error"]} and "bad request" in answers[0]["error"]
    assert "unknown command 'nope'" in answers[1]["error"] and "announce" in answers[1]["error"]
    assert answers[2]["ok"] and answers[2]["result"]["registered_users"] == 3


def test_commands_say_when_no_server_runs(server: ServerProcess) -> None:
    assert server.stop() == 0
    assert not socket_path(server.data_dir).exists()  # removed on the way out
    for command in (("who",), ("stats",), ("kick", "alice"), ("announce", "hi")):
        result = server.cli(*command)
        assert result.returncode == 1
        assert result.stderr.strip().endswith("(start it with: xmlchat serve)"), result.stderr
        assert "Traceback" not in result.stderr


def test_xmpp_kick_of_one_resource_is_a_stream_error(server: ServerProcess) -> None:
    desk = raw_login(server, "bob", resource="desk")
    phone = raw_login(server, "bob", resource="phone")
    assert server.cli("kick", "bob@localhost/desk").returncode == 0
    assert stream_error(desk.read_until_closed()) == "policy-violation"
    assert [s["jid"] for s in admin_json(server, "who")] == ["bob@localhost/phone"]
    phone.close()


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_another_user_is_refused_by_the_socket_mode(tmp_path: Path) -> None:
    # A checkout in a private directory (a 0700 home, mktemp -d) is no one
    # else's to import: then this test cannot say anything about the socket.
    importable = subprocess.run([*AS_NOBODY, "-c", "import xmlchat"], capture_output=True, timeout=60)
    if importable.returncode != 0:
        pytest.skip("uid 65534 cannot import xmlchat from this checkout (a private directory)")
    # A data directory anyone may enter, so only the socket's own mode stands in the way.
    open_dir = Path(tempfile.mkdtemp(prefix="xmlchat-open-", dir="/tmp"))
    try:
        open_dir.chmod(0o755)
        server = make_server(tmp_path)
        server.data_dir = open_dir
        server.start()
        try:
            nobody = subprocess.run(
                [*AS_NOBODY, "-m", "xmlchat", "who"],
                env={**os.environ, "XMLCHAT_DATA_DIR": str(open_dir)},
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert nobody.returncode == 1, nobody
            assert "permission denied" in nobody.stderr and "server's user" in nobody.stderr
            assert "Traceback" not in nobody.stderr
            assert server.cli("who").returncode == 0  # the owner still gets in
        finally:
            server.stop()
    finally:
        shutil.rmtree(open_dir)
