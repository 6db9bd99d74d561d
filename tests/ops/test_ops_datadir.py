"""One server per data directory: a second one refuses to start, and says who holds it."""

from __future__ import annotations

import signal
import subprocess
import sys

from conftest import ServerFactory


def test_a_second_server_on_the_same_data_directory_refuses_to_start(server_factory: ServerFactory) -> None:
    first = server_factory()
    assert first.proc is not None
    second = subprocess.run(
        [sys.executable, "-m", "xmlchat", "serve", "--config", str(first.config_path)],
        capture_output=True,
        text=True,
        env=first._env(),
        timeout=60,
    )
    assert second.returncode == 1
    assert f"another xmlchat server (pid {first.proc.pid}) is serving" in second.stderr
    assert "Traceback" not in second.stderr
    assert "ready:" not in second.stdout
    # The lock dies with its process, however it ends: a killed server restarts.
    first.stop(signal.SIGKILL)
    first.start()
    assert first.ports
