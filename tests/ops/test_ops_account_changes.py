"""Account changes reach a running server at once (through the admin channel):
``deluser`` and ``passwd`` end the account's sessions on both protocols with
``not-authorized``; ``passwd --keep-sessions`` leaves them; other users never notice."""

from __future__ import annotations

from conftest import ServerProcess
from e2e.rawsock import NATIVE_OPEN, RawPeer, native_login
from e2e.xmpp_client_helpers import raw_login, stream_error


def native_fatal(peer: RawPeer) -> str:
    data = peer.read_until_closed().decode()
    assert peer.closed and data.endswith("</session>"), data
    return data


def test_passwd_ends_both_protocols_sessions_and_the_new_password_works(server: ServerProcess) -> None:
    native = native_login(server.ports["native_plain"], "alice", "alicepw")
    xmpp = raw_login(server, "alice", resource="desk")
    bystander = native_login(server.ports["native_plain"], "bob", "bobpw")
    result = server.cli("passwd", "alice", "--password-stdin", input="new-secret\n")
    assert result.returncode == 0, result.stderr
    assert "password changed for alice@localhost; 2 session(s) ended" in result.stdout
    assert f"data directory: {server.data_dir} (through the running server)" in result.stderr
    assert "<condition>not-authorized</condition>" in native_fatal(native)
    assert stream_error(xmpp.read_until_closed()) == "not-authorized"
    native_login(server.ports["native_plain"], "alice", "new-secret").close()
    bystander.send("<ping/>")
    assert b"<pong/>" in bystander.read_until("<pong/>") and not bystander.closed
    bystander.close()


def test_passwd_also_ends_a_connection_authenticated_but_not_yet_bound(server: ServerProcess) -> None:
    unbound = raw_login(server, "carol", bind=False)
    result = server.cli("passwd", "carol", "--password-stdin", input="changed\n")
    assert result.returncode == 0 and "1 session(s) ended" in result.stdout
    assert stream_error(unbound.read_until_closed()) == "not-authorized"


def test_passwd_keep_sessions_leaves_them_logged_in(server: ServerProcess) -> None:
    native = native_login(server.ports["native_plain"], "alice", "alicepw")
    result = server.cli("passwd", "alice", "--keep-sessions", "--password-stdin", input="other\n")
    assert result.returncode == 0 and result.stdout.strip() == "password changed for alice@localhost"
    native.send("<ping/>")
    assert b"<pong/>" in native.read_until("<pong/>") and not native.closed
    native.close()


def test_deluser_ends_the_sessions_and_the_account(server: ServerProcess) -> None:
    native = native_login(server.ports["native_plain"], "bob", "bobpw")
    xmpp = raw_login(server, "bob")
    result = server.cli("deluser", "bob")
    assert result.returncode == 0 and "deleted bob@localhost; 2 session(s) ended" in result.stdout
    assert "the account was deleted" in native_fatal(native)
    assert stream_error(xmpp.read_until_closed()) == "not-authorized"
    peer = RawPeer(server.ports["native_plain"])
    peer.send(f"{NATIVE_OPEN}<login><user>bob</user><password>bobpw</password></login>")
    assert b"<login-failed>" in peer.read_until("</login-failed>")
    peer.close()
    users = server.cli("users")
    assert users.stdout.split() == ["alice@localhost", "carol@localhost"]
    again = server.cli("deluser", "bob")
    assert again.returncode == 1 and "no such user bob@localhost" in again.stderr


def test_adduser_through_the_server_then_directly_when_it_is_stopped(server: ServerProcess) -> None:
    created = server.cli("adduser", "dave", "--password-stdin", input="davepw\n")
    assert created.returncode == 0 and "(through the running server)" in created.stderr
    native_login(server.ports["native_plain"], "dave", "davepw").close()
    duplicate = server.cli("adduser", "dave", "--password-stdin", input="x\n")
    assert duplicate.returncode == 1 and "dave@localhost already exists" in duplicate.stderr
    assert server.stop() == 0
    direct = server.cli("adduser", "erin", "--password-stdin", input="erinpw\n")
    assert direct.returncode == 0
    assert f"data directory: {server.data_dir} (no server running)" in direct.stderr
    server.start()
    native_login(server.ports["native_plain"], "erin", "erinpw").close()
