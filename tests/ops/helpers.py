"""Shared by the tests/ops tests: free ports, a config writer, the CLI as a user runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it, then we let it go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any XMLCHAT_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMLCHAT_")}
    env.update(extra)
    return env


def xmlchat(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmlchat", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
