"""Where passwords come from (a terminal, stdin, the environment; never a
traceback), and one data directory found from any current directory."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from ops.helpers import clean_env

ENV_NAME = "XMLCHAT_PASSWORD"


def run(
    args: list[str], cwd: Path, env: dict[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmlchat", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def xdg_env(tmp_path: Path) -> dict[str, str]:
    """No XMLCHAT_* settings, and a data home of the test's own."""
    return clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))


def test_the_default_data_directory_is_the_same_from_any_directory(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    expected = tmp_path / "xdg" / "xmlchat"
    created = run(["adduser", "alice", "--password-stdin"], first, env, input="pw\n")
    assert created.returncode == 0, created.stderr
    assert f"data directory: {expected} (no server running)" in created.stderr
    listed = run(["users"], second, env)
    assert listed.stdout.split() == ["alice@localhost"]
    assert (expected / "xmlchat.sqlite3").exists()
    assert not list(first.iterdir()) and not list(second.iterdir())  # nothing created where we stood
    without_xdg = run(["users"], second, clean_env(HOME=str(tmp_path / "home")))
    assert f"data directory: {tmp_path / 'home' / '.local' / 'share' / 'xmlchat'}" in without_xdg.stderr


def test_password_from_stdin_or_the_environment(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    assert run(["adduser", "alice", "--password-stdin"], tmp_path, env, input="from-stdin\n").returncode == 0
    with_env = run(["adduser", "bob"], tmp_path, {**env, ENV_NAME: "from-env"})
    assert with_env.returncode == 0, with_env.stderr
    changed = run(["passwd", "bob"], tmp_path, {**env, ENV_NAME: "changed"})
    assert changed.returncode == 0 and "password changed for bob@localhost" in changed.stdout
    assert run(["users"], tmp_path, env).stdout.split() == ["alice@localhost", "bob@localhost"]


def test_no_terminal_and_no_password_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    for args in (["adduser", "carol"], ["passwd", "carol"], ["send", "carol", "bob", "hi"]):
        result = run(args, tmp_path, env, input="")
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert "--password-stdin" in result.stderr and ENV_NAME in result.stderr
    empty = run(["adduser", "carol", "--password-stdin"], tmp_path, env, input="")
    assert empty.returncode == 1 and "stdin is empty" in empty.stderr and "Traceback" not in empty.stderr


def test_adduser_at_a_terminal_prompts_twice_without_echo(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    leader, follower = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "xmlchat", "adduser", "alice"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=tmp_path,
        preexec_fn=controlling_terminal,
    )
    os.close(follower)
    try:
        seen = _expect(leader, b"Password: ")
        os.write(leader, b"typed-secret\n")
        seen += _expect(leader, b"Again: ")
        os.write(leader, b"typed-secret\n")
        seen += _expect(leader, b"created alice@localhost")
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(leader)
    assert b"typed-secret" not in seen  # not echoed
    login = run(["users"], tmp_path, env)
    assert login.stdout.split() == ["alice@localhost"]


def _expect(fd: int, wanted: bytes, timeout: float = 30.0) -> bytes:
    """Read the terminal until ``wanted`` shows; return what was read."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"{wanted!r} never came; got {seen!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            raise AssertionError(f"{wanted!r} never came before the end; got {seen!r}")
        seen += chunk
    return seen
