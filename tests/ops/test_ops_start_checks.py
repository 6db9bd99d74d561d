"""What ``xmlchat serve`` says and does at start, as the container runs it (issue 15):
one clear line for a data directory it cannot use, JSON lines only in JSON log
mode, and a generated certificate that follows the configured hosts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import ServerFactory
from ops.helpers import clean_env, xmlchat

from xmlchat.server.tls import dns_names


def test_a_data_directory_it_cannot_write_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data = blocker / "data"  # cannot be made, as root too
    result = xmlchat("serve", env=clean_env(XMLCHAT_DATA_DIR=str(data), XMLCHAT_LOG_FORMAT="text"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"xmlchat: cannot start: cannot write in the data directory {data} (")
    assert "the server runs as uid" in lines[0] and "XMLCHAT_DATA_DIR" in lines[0]


def test_json_mode_prints_json_only(tmp_path: Path) -> None:
    env = clean_env(
        XMLCHAT_DATA_DIR=str(tmp_path / "data"),
        XMLCHAT_LOG_FORMAT="json",
        XMLCHAT_LISTENERS_NATIVE_PORT="0",
        XMLCHAT_LISTENERS_XMPP_PORT="0",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmlchat", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    started = [json.loads(proc.stdout.readline())]
    while not started[-1]["message"].startswith("ready: serving localhost"):  # data dir, listeners, ...
        started.append(json.loads(proc.stdout.readline()))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [*out.splitlines(), *err.splitlines()]
    assert len(lines) > 3 and all(isinstance(json.loads(line), dict) for line in lines)
    # Failing to start, and a configuration error, are JSON lines too.
    refused = xmlchat(
        "serve", env={**env, "XMLCHAT_DATA_DIR": str(tmp_path / "data" / "xmlchat.sqlite3" / "x")}
    )
    assert json.loads(refused.stderr)["level"] == "error"
    bad = xmlchat("serve", env={**env, "XMLCHAT_LISTENERS_NATIVE_PORT": "not-a-port"})
    assert bad.returncode == 2 and "configuration error" in json.loads(bad.stderr)["message"]


def test_the_generated_certificate_follows_the_hosts(server_factory: ServerFactory) -> None:
    server = server_factory()
    assert dns_names(Path(server.cafile)) == {"localhost"}
    server.stop()
    server.env["XMLCHAT_HOSTS"] = "localhost,chat.example"
    server.start()
    assert dns_names(Path(server.cafile)) == {"localhost", "chat.example"}
    assert "the hosts changed (localhost, chat.example, was localhost)" in server.log()
    server.restart()  # the same hosts: the same certificate
    assert "self-signed certificate" not in server.log()
