"""Memory per idle session, plaintext and TLS, for each event loop.

``python -m benchmarks.session_memory [N]`` starts ``xmlchat serve`` with a
native TLS listener and a plaintext one, once per event loop named in
``LOOPS`` (``[runtime] event_loop``; default asyncio), and reads the server's RSS (VmRSS) after each step:

* N native sessions logged in over plaintext, all idle;
* N more logged in over TLS (TLS 1.3, the server's generated certificate);
* N connections to the TLS listener that never start their handshake.

It prints KiB per session for each (the RSS growth over the step, divided by
N), every session its own account. The load and the server share this machine; the RSS is
the server's alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.servers import free_port

NS = "urn:xmlchat:native:1"
CONFIG = """\
hosts = ["localhost"]
data_dir = "{work}/data"
[listeners.xmpp]
enabled = false
[listeners.xmpp_tls]
enabled = false
[listeners.http]
enabled = false
[listeners.https]
enabled = false
[listeners.native]
enabled = true
address = "127.0.0.1"
port = {tls_port}
[listeners.native_plain]
enabled = true
address = "127.0.0.1"
port = {plain_port}
[limits]
stanzas_per_second = 0.0
[storage]
scram_iterations = 4096
[log]
level = "warning"
[runtime]
event_loop = "{loop}"
"""


ADD_USERS = """\
import asyncio, sys
from xmlchat.config import load
from xmlchat.jid import JID
from xmlchat.storage.sqlite import SqliteStorage

async def main() -> None:
    cfg = load(sys.argv[1])
    store = await SqliteStorage.open(cfg.database_path, cfg.storage.scram_iterations)
    for name in sys.stdin.read().split():
        await store.create_user(JID(name, "localhost"), "pw")
    await store.close()

asyncio.run(main())
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def login(port: int, tls: ssl.SSLContext | None, user: str) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(
        f"<session xmlns='{NS}' version='1'><login><user>{user}</user><password>pw</password>"
        "</login>".encode()
    )
    received = b""
    while b"login-ok" not in received:
        data = await reader.read(4096)
        if not data:
            raise ConnectionError(f"login refused: {received!r}")
        received += data
    return writer


async def settled(pid: int) -> int:
    """RSS once it has stopped moving (the last writes and frees done)."""
    before = rss_kib(pid)
    for _ in range(20):
        await asyncio.sleep(0.5)
        now = rss_kib(pid)
        if abs(now - before) < 64:
            return now
        before = now
    return before


async def measure(pid: int, n: int, tls_port: int, plain_port: int) -> dict[str, float]:
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # loopback measurement: who the server is does not matter
    # Warm up first (the login thread pool, first handshakes), so that start-up
    # costs are not charged to the sessions.
    held = [await login(plain_port, None, f"p{n + i}") for i in range(20)]
    held += [await login(tls_port, client, f"t{n + i}") for i in range(20)]
    results: dict[str, float] = {}
    base = await settled(pid)
    steps = [
        ("plaintext", lambda i: login(plain_port, None, f"p{i}")),
        ("tls", lambda i: login(tls_port, client, f"t{i}")),
    ]
    for name, open_one in steps:
        for start in range(0, n, 50):  # 50 logins in flight at most
            held += await asyncio.gather(*(open_one(i) for i in range(start, min(n, start + 50))))
        now = await settled(pid)
        results[name] = (now - base) / n
        base = now
    pending = [await asyncio.open_connection("127.0.0.1", tls_port) for _ in range(n)]
    now = await settled(pid)
    results["tls_handshake_pending"] = (now - base) / n
    for writer in held + [w for _, w in pending]:
        writer.close()
    return results


def run_one(loop: str, n: int, env_extra: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="xmlchat-mem-") as work:
        tls_port, plain_port = free_port(), free_port()
        config = Path(work) / "xmlchat.toml"
        config.write_text(CONFIG.format(work=work, tls_port=tls_port, plain_port=plain_port, loop=loop))
        env = {**os.environ, "XMLCHAT_DATA_DIR": f"{work}/data", **env_extra}
        xmlchat = [sys.executable, "-m", "xmlchat"]
        names = "\n".join(f"{kind}{i}" for kind in "pt" for i in range(n + 20))
        subprocess.run([sys.executable, "-c", ADD_USERS, str(config)], input=names, text=True,
                       env=env, check=True, timeout=600)
        server = subprocess.Popen([*xmlchat, "serve", "--config", str(config)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert server.stdout is not None
            deadline = time.monotonic() + 60
            while not server.stdout.readline().startswith("ready"):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
            return asyncio.run(measure(server.pid, n, tls_port, plain_port))
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                # The figures are taken; a slow shutdown must not lose them.
                print(f"xmlchat did not stop within 30 s of SIGTERM ({n} sessions of each "
                      "kind just closed); killed", file=sys.stderr, flush=True)
                server.kill()
                server.wait(10)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f"KiB of server RSS per session, {n} sessions of each kind")
    extra = dict(v.split("=", 1) for v in os.environ.get("SERVER_ENV", "").split() if v)
    # uvloop refuses a direct-TLS listener for now (runtime.loop_factory): asyncio by default.
    for loop in os.environ.get("LOOPS", "asyncio").split(","):
        results = run_one(loop, n, extra)
        print(f"{loop:8}", "  ".join(f"{k} {v:.1f}" for k, v in results.items()), flush=True)


if __name__ == "__main__":
    main()
