"""Memory per pending connection, and what the listen backlog must hold.

    python -m benchmarks.pending [--connections 2000] [--burst 3000] [--in-flight 500]

Starts ``xmlchat serve`` on loopback with the pre-login caps raised out of the
way (so the cost of one connection is measured, not the cap), then:

1. opens N TCP connections to the direct-TLS native port that never send a
   byte of ClientHello, and reads the server's RSS growth per connection;
2. opens N plaintext XMPP connections that send a stream header, get the
   features, and go silent (pre-auth);
3. for each backlog in ``--backlogs``, restarts the server and makes
   ``--burst`` connects with ``--in-flight`` outstanding at once, each waiting
   for the stream features; counts those that failed (refused, reset, or no
   features in 10 s).

The figures go to docs/security.md. Not a test: memory depends on the
allocator and the machine, so nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.procstat import raise_nofile, sample

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)

CONFIG = """
hosts = ["localhost"]
[listeners.native]
port = 0
[listeners.xmpp]
port = 0
tls = "none"
[listeners.http]
enabled = false
[listeners.https]
enabled = false
[xmpp]
require_encryption = false
[limits]
max_pending = 100000
max_pending_per_ip = 100000
tls_handshake_timeout = 600
login_timeout = 600
listen_backlog = {backlog}
[log]
level = "warning"
"""


class Server:
    def __init__(self, workdir: Path, backlog: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "xmlchat.toml"
        config.write_text(CONFIG.format(backlog=backlog))
        env = {**os.environ, "XMLCHAT_DATA_DIR": str(workdir / "data")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xmlchat", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.ports: dict[str, int] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("listening:"):
                self.ports[line.rsplit("(", 1)[1].rstrip(")\n")] = int(line.split(" port ")[1].split()[0])
            if line.startswith("ready:"):
                return
        raise RuntimeError("server did not start")

    def rss_kib(self) -> int:
        return sample(self.proc.pid).rss_kib

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def settled_rss(server: Server, seconds: float = 2.0) -> int:
    """RSS once it stopped moving for a while (the server finished accepting)."""
    last, stable_since = server.rss_kib(), time.monotonic()
    while time.monotonic() - stable_since < seconds:
        await asyncio.sleep(0.25)
        now = server.rss_kib()
        if abs(now - last) > 64:
            last, stable_since = now, time.monotonic()
    return last


async def per_connection(server: Server, port: int, count: int, header: bool) -> float:
    """KiB of server RSS per connection held open (silent after the header, if any)."""
    before = await settled_rss(server)
    held = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if header:
            writer.write(HEADER)
            await reader.readuntil(b"</stream:features>")
        held.append(writer)
    after = await settled_rss(server)
    for writer in held:
        writer.close()
    return (after - before) / count


async def burst(port: int, total: int, in_flight: int) -> tuple[int, list[float]]:
    """Connects that got no stream features (refused, reset, or none in 10 s),
    and the seconds each of the others took from connect() to the features."""
    gate = asyncio.Semaphore(in_flight)
    failed = 0
    took: list[float] = []

    async def one() -> None:
        nonlocal failed
        async with gate:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                writer.write(HEADER)
                await asyncio.wait_for(reader.readuntil(b"</stream:features>"), 10)
                writer.close()
                took.append(time.monotonic() - started)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                failed += 1

    await asyncio.gather(*(one() for _ in range(total)))
    return failed, sorted(took)


async def main(args: argparse.Namespace) -> None:
    raise_nofile(max(65536, 4 * args.connections))
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh server for each measurement: freed memory the allocator keeps
        # would otherwise hide the next one's cost.
        for name, header in (("native", False), ("xmpp", True)):
            server = Server(Path(tmp) / f"memory-{name}", 1024)
            try:
                kib = await per_connection(server, server.ports[name], args.connections, header)
            finally:
                server.stop()
            what = "pending TLS handshake (native, direct TLS)" if name == "native" else "pre-auth XMPP"
            print(f"{what}: {kib:.1f} KiB per connection ({args.connections} held)")
        for backlog in args.backlogs:
            server = Server(Path(tmp) / f"backlog-{backlog}", backlog)
            try:
                failed, took = await burst(server.ports["xmpp"], args.burst, args.in_flight)
            finally:
                server.stop()
            p50, p99 = (took[int(q * (len(took) - 1))] if took else 0.0 for q in (0.5, 0.99))
            print(
                f"listen_backlog {backlog}: {args.burst} connects, {args.in_flight} in flight: "
                f"{failed} failed; to features p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                f"max {(took[-1] if took else 0) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--backlogs", type=int, nargs="+", default=[100, 128, 512, 1024])
    asyncio.run(main(parser.parse_args()))
