"""Instructions per message, repeatable on a shared machine.

``make bench`` measures throughput against Prosody and ejabberd, but on a
machine that other work shares, two runs of the same code differ by 5-10 %. To
tell whether a change to the hot path costs anything, this counts instructions
instead: the real :class:`~xmlchat.server.app.Server` in this process, native
senders and receivers as raw sockets in the same event loop, run under
valgrind's callgrind twice (a small and a larger number of messages), so the
difference is the cost of the messages alone, client side included:

    make bench-instructions            # prints instructions per message, native and XMPP
    cd /tmp && PYTHONPATH=OTHER_CHECKOUT python CHECKOUT/benchmarks/instructions.py
    python -m benchmarks.instructions --no-valgrind   # CPU µs per message, one run
    XMLCHAT_DELIVERY_DURABLE=false make bench-instructions   # the same, durable acknowledgements off

The second form counts another checkout's server with this harness (the
Server API it uses has been stable since the first release).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

PAIRS = int(os.environ.get("PAIRS", "20"))
PER_PAIR = int(os.environ.get("PER_PAIR", "1500"))
# "native" or "xmpp" (plaintext, SASL PLAIN: the parts that cost per message).
PROTOCOL = os.environ.get("PROTOCOL", "native")
BATCH = 10
OPEN = "<session xmlns='urn:xmlchat:native:1' version='1'>"
XMPP_OPEN = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)


async def _login(port: int, user: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{OPEN}<login><user>{user}</user><password>pw</password></login>".encode())
    received = b""
    while b"</login-ok>" not in received:
        received += await reader.read(65536)
    return reader, writer


async def _until(reader: asyncio.StreamReader, marker: bytes) -> None:
    received = b""
    while marker not in received:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError(f"closed before {marker!r}")
        received += data


async def _xmpp_login(port: int, user: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """RFC 6120 over plaintext: stream, SASL PLAIN, restart, bind, initial presence."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(XMPP_OPEN.encode())
    await _until(reader, b"</stream:features>")
    token = base64.b64encode(f"\0{user}\0pw".encode()).decode()
    writer.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode())
    await _until(reader, b"success")
    writer.write(XMPP_OPEN.encode())
    await _until(reader, b"</stream:features>")
    bind = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>"
    writer.write(f"<iq type='set' id='b1'>{bind}</iq>".encode())
    await _until(reader, b"</iq>")
    writer.write(b"<presence/>")
    await _until(reader, b"<presence")
    return reader, writer


async def _count(
    reader: asyncio.StreamReader, tag: bytes, n: int, arrived: asyncio.Semaphore | None = None
) -> None:
    """Read until ``n`` closing ``tag``s arrived (a tag split across reads is
    kept); release ``arrived`` once per tag."""
    seen, tail = 0, b""
    while seen < n:
        data = await reader.read(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        data = tail + data
        found = data.count(tag)
        seen += found
        tail = data[-(len(tag) - 1) :]
        for _ in range(found if arrived is not None else 0):
            arrived.release()


async def _run(measure: Callable[[], AbstractContextManager[object]] = nullcontext) -> float:
    """Log the pairs in, then send; ``measure`` wraps the sending alone (a profiler)."""
    from xmlchat.config import load
    from xmlchat.jid import JID
    from xmlchat.server.app import Server

    overrides = {
        "data_dir": tempfile.mkdtemp(prefix="xmlchat-instr-"),
        "listeners.native.enabled": False,
        "listeners.xmpp.port": 0,
        "listeners.xmpp.tls": "none",
        "xmpp.require_encryption": False,
        "xmpp.allow_unencrypted_plain_auth": True,
        "listeners.native_plain.enabled": True,
        "listeners.native_plain.port": 0,
        "listeners.http.enabled": False,
        "listeners.https.enabled": False,
        "limits.stanzas_per_second": 0,
        # All the load comes from one address: no byte or per-IP rates.
        "limits.bytes_per_second": 0,
        "limits.ip_stanzas_per_second": 0,
        "limits.ip_bytes_per_second": 0,
    }
    server = await Server.open(load(overrides=overrides))
    for i in range(PAIRS):
        for name in (f"s{i}", f"r{i}"):
            await server.storage.create_user(JID(name, "localhost"), "pw")
    await server.start()
    xmpp = PROTOCOL == "xmpp"
    port = server.port_of("xmpp" if xmpp else "native_plain")
    login = _xmpp_login if xmpp else _login
    senders = [await login(port, f"s{i}") for i in range(PAIRS)]
    receivers = [await login(port, f"r{i}") for i in range(PAIRS)]
    body = "x" * 100
    # XMPP has no per-message ack: a sender waits for its batch to arrive.
    arrived = [asyncio.Semaphore(0) for _ in range(PAIRS)]

    def stanza(i: int, id_: str) -> str:
        if xmpp:
            return f"<message to='r{i}@localhost' type='chat' id='{id_}'><body>{body}</body></message>"
        return f"<message><id>{id_}</id><to>r{i}</to><body>{body}</body></message>"

    async def send(i: int) -> None:
        reader, writer = senders[i]
        for b in range(PER_PAIR // BATCH):
            writer.write("".join(stanza(i, f"m{b}-{k}") for k in range(BATCH)).encode())
            if xmpp:
                for _ in range(BATCH):
                    await arrived[i].acquire()
            else:
                await _count(reader, b"</ack>", BATCH)

    async def receive(i: int) -> None:
        await _count(receivers[i][0], b"</message>", PER_PAIR, arrived[i] if xmpp else None)

    with measure():
        start = time.process_time()
        await asyncio.gather(*(send(i) for i in range(PAIRS)), *(receive(i) for i in range(PAIRS)))
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
    what = "send + delivery" if PROTOCOL == "xmpp" else "send + ack + delivery"
    print(f"instructions per message ({PROTOCOL}, {what}, clients included): {per_message:,.0f}")


if __name__ == "__main__":
    main()
