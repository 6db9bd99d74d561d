"""``xmlchat backup`` (online, consistent) and ``xmlchat restore`` (only with
the server stopped), through the real CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import ServerProcess
from e2e.rawsock import native_login


def accounts_in(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [jid for (jid,) in conn.execute("SELECT jid FROM users ORDER BY jid")]


def test_online_backup_then_restore_with_the_server_stopped(server: ServerProcess, tmp_path: Path) -> None:
    alice = native_login(server.ports["native_plain"], "alice", "alicepw")
    alice.send("<message><id>kept</id><to>carol</to><body>kept in the backup</body></message>")
    assert b"<ack>" in alice.read_until("</ack>")
    alice.close()
    backup = tmp_path / "copy.sqlite3"
    made = server.cli("backup", str(backup))
    assert made.returncode == 0, made.stderr
    assert f"to {backup}" in made.stdout
    assert accounts_in(backup) == ["alice@localhost", "bob@localhost", "carol@localhost"]
    assert not (tmp_path / "copy.sqlite3-wal").exists()  # one self-contained file
    again = server.cli("backup", str(backup))
    assert again.returncode == 1 and "already exists" in again.stderr

    assert server.cli("deluser", "bob").returncode == 0
    refused = server.cli("restore", str(backup))
    assert refused.returncode == 1
    assert "is serving" in refused.stderr and "stop it first" in refused.stderr

    assert server.stop() == 0
    restored = server.cli("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    kept = server.data_dir / "xmlchat.sqlite3.before-restore"
    assert f"kept as {kept}" in restored.stdout
    assert "bob@localhost" not in accounts_in(kept)
    server.start()
    assert server.cli("users").stdout.split() == ["alice@localhost", "bob@localhost", "carol@localhost"]
    carol = native_login(server.ports["native_plain"], "carol", "carolpw")
    assert b"kept in the backup" in carol.read_until("kept in the backup")
    carol.close()


def test_backup_without_a_server_and_restore_of_a_file_that_is_no_backup(
    server: ServerProcess, tmp_path: Path
) -> None:
    assert server.stop() == 0
    offline = tmp_path / "offline.sqlite3"
    made = server.cli("backup", str(offline))
    assert made.returncode == 0 and accounts_in(offline)[0] == "alice@localhost"
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    refused = server.cli("restore", str(junk))
    assert refused.returncode == 1 and "is not an xmlchat backup" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = server.cli("restore", str(tmp_path / "missing.sqlite3"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert accounts_in(server.data_dir / "xmlchat.sqlite3")[0] == "alice@localhost"  # untouched
