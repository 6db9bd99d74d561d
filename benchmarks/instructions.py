"""Instructions per message, repeatable on a shared machine.

``make bench`` measures throughput against Prosody and ejabberd, but on a
machine that other work shares, two runs of the same code differ by 5-10 %. To
tell whether a change to the hot path costs anything, this counts instructions
instead: the real :class:`~xmlchat.server.app.Server` in this process, native
senders and receivers as raw sockets in the same event loop, run under
valgrind's callgrind twice (a small and a larger number of messages), so the
difference is the cost of the messages alone, client side included:

    make bench-instructions            # prints instructions per message
    cd /tmp && PYTHONPATH=OTHER_CHECKOUT python CHECKOUT/benchmarks/instructions.py
    python -m benchmarks.instructions --no-valgrind   # CPU µs per message, one run

The second form counts another checkout's server with this harness (the
Server API it uses has been stable since the first release).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time

PAIRS = int(os.environ.get("PAIRS", "20"))
PER_PAIR = int(os.environ.get("PER_PAIR", "1500"))
BATCH = 10
OPEN = "<session xmlns='urn:xmlchat:native:1' version='1'>"


async def _login(port: int, user: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{OPEN}<login><user>{user}</user><password>pw</password></login>".encode())
    received = b""
    while b"</login-ok>" not in received:
        received += await reader.read(65536)
    return reader, writer


async def _count(reader: asyncio.StreamReader, tag: bytes, n: int) -> None:
    """Read until ``n`` closing ``tag``s arrived (a tag split across reads is kept)."""
    seen, tail = 0, b""
    while seen < n:
        data = await reader.read(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        data = tail + data
        seen += data.count(tag)
        tail = data[-(len(tag) - 1) :]


async def _run() -> float:
    from xmlchat.config import load
    from xmlchat.jid import JID
    from xmlchat.server.app import Server

    overrides = {
        "data_dir": tempfile.mkdtemp(prefix="xmlchat-instr-"),
        "listeners.native.enabled": False,
        "listeners.xmpp.enabled": False,
        "listeners.native_plain.enabled": True,
        "listeners.native_plain.port": 0,
        "limits.stanzas_per_second": 0,
    }
    server = await Server.open(load(overrides=overrides))
    for i in range(PAIRS):
        for name in (f"s{i}", f"r{i}"):
            await server.storage.create_user(JID(name, "localhost"), "pw")
    await server.start()
    port = server.port_of("native_plain")
    senders = [await _login(port, f"s{i}") for i in range(PAIRS)]
    receivers = [await _login(port, f"r{i}") for i in range(PAIRS)]
    body = "x" * 100

    async def send(i: int) -> None:
        reader, writer = senders[i]
        for b in range(PER_PAIR // BATCH):
            batch = "".join(
                f"<message><id>m{b}-{k}</id><to>r{i}</to><body>{body}</body></message>" for k in range(BATCH)
            )
            writer.write(batch.encode())
            await _count(reader, b"</ack>", BATCH)

    start = time.process_time()
    await asyncio.gather(
        *(send(i) for i in range(PAIRS)),
        *(_count(receivers[i][0], b"</message>", PER_PAIR) for i in range(PAIRS)),
    )
    cpu = time.process_time() - start
    for _, writer in senders + receivers:
        writer.close()
    await server.stop(grace=1)
    return cpu


def _callgrind(per_pair: int) -> int:
    env = {**os.environ, "PER_PAIR": str(per_pair), "PYTHONHASHSEED": "0", "XMLCHAT_INSTR_CHILD": "1"}
    # The file itself, not -m: run from elsewhere with PYTHONPATH, it counts that checkout.
    command = [sys.executable, os.path.abspath(__file__)]
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env, capture_output=True, text=True, check=True,
    )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no callgrind total in:\n{out.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    if os.environ.get("XMLCHAT_INSTR_CHILD") or "--no-valgrind" in sys.argv:
        cpu = asyncio.run(_run())
        each = cpu / (PAIRS * PER_PAIR) * 1e6
        print(f"{PAIRS * PER_PAIR} messages, {each:.1f} µs CPU each (clients included)")
        return
    small, large = 500, 1000
    os.environ["PAIRS"] = os.environ.get("PAIRS", "4")
    counts = [_callgrind(n) for n in (small, large)]
    per_message = (counts[1] - counts[0]) / (int(os.environ["PAIRS"]) * (large - small))
    print(f"instructions per message (native, send + ack + delivery, clients included): {per_message:,.0f}")


if __name__ == "__main__":
    main()
