"""SIGTERM stops the server, and SIGHUP reloads it, even when the signal
arrives while the event loop's self-pipe is full.

asyncio learns of a signal through a byte its C handler writes to the loop's
self-pipe, the same pipe every ``call_soon_threadsafe`` writes a wake-up byte
to (the store's thread and the executor's, once per finished call). While the
loop is busy, a burst of those fills it; a signal's byte is then dropped
("Exception ignored when trying to write to the signal wakeup fd") and the
handler never runs: 1,000 sessions of each kind closing at once left the
server running after SIGTERM (``make bench-memory``, 3 runs of 3). Here the
pipe is filled on purpose, then the signal sent.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import make_server
from polling import wait_for

SCRIPT = """
import asyncio, os, signal, sys
from xmlchat.cli import main
from xmlchat.server import runtime

tune = runtime.tune_collector

def tune_then_fill(settings):
    tune(settings)
    loop = asyncio.get_running_loop()
    def fill_then_signal():
        try:
            while True:
                loop._csock.send(b"\\0")  # as a burst of call_soon_threadsafe would
        except BlockingIOError:
            pass
        os.kill(os.getpid(), signal.SIG{sig})
    loop.call_soon(fill_then_signal)

runtime.tune_collector = tune_then_fill
sys.exit(main(["serve", "--config", sys.argv[1]]))
"""


def test_sigterm_stops_the_server_while_the_loops_self_pipe_is_full(tmp_path: Path) -> None:
    server = make_server(tmp_path, '\n[runtime]\nevent_loop = "asyncio"\n')
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(sig="TERM"), str(server.config_path)],
        capture_output=True,
        text=True,
        env=server._env(),
        timeout=30,
        check=False,
    )
    assert "ready:" in result.stdout, result.stderr
    assert result.returncode == 0, result.stderr


async def test_sighup_reloads_the_server_while_the_loops_self_pipe_is_full(tmp_path: Path) -> None:
    server = make_server(tmp_path, '\n[runtime]\nevent_loop = "asyncio"\n')
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT.format(sig="HUP"), str(server.config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=server._env(),
        )
    try:
        await wait_for(lambda: "reloaded: " in log.read_text(), 20, what="the server logged the reload")
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
