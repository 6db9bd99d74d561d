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

The server and the raw peers here (``plaintext_server``, ``native_login``,
``xmpp_login``, ``until``) also serve the tests that look inside a server run in
their own process (``tests/e2e/inprocess_peers.py``). This file imports nothing
of its own package: run as a file, it has only itself.
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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xmlchat.server.app import Server

PAIRS = int(os.environ.get("PAIRS", "20"))
PER_PAIR = int(os.environ.get("PER_PAIR", "1500"))
# "native" or "xmpp" (plaintext, SASL PLAIN: the parts that cost per message).
PROTOCOL = os.environ.get("PROTOCOL", "native")
BATCH = 10
UNLIMITED = ("stanzas_per_second", "bytes_per_second", "ip_stanzas_per_second", "ip_bytes_per_second")
OPEN = "<session xmlns='urn:xmlchat:native:1' version='1'>"
XMPP_OPEN = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)


Peer = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def plaintext_server(
    data_dir: str | os.PathLike[str],
    users: Iterable[str] = ("alice", "bob"),
    overrides: Mapping[str, Any] | None = None,
) -> AsyncIterator[Server]:
    """The server with plaintext XMPP and native listeners on free ports, PLAIN
    allowed without TLS, HTTP off, then ``overrides`` (by config key); each of
    ``users`` has the password "pw"."""
    from xmlchat.config import load
    from xmlchat.jid import JID
    from xmlchat.server.app import Server

    settings = {
        "data_dir": os.fspath(data_dir),
        "listeners.native.enabled": False,
        "listeners.native_plain.enabled": True,
        "listeners.native_plain.port": 0,
        "listeners.xmpp.port": 0,
        "listeners.xmpp.tls": "none",
        "xmpp.require_encryption": False,
        "xmpp.allow_unencrypted_plain_auth": True,
        "listeners.http.enabled": False,
        "listeners.https.enabled": False,
        **(overrides or {}),
    }
    server = await Server.open(load(overrides=settings))
    for name in users:
        await server.storage.create_user(JID(name, "localhost"), "pw")
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1)


async def until(reader: asyncio.StreamReader, marker: bytes, count: int = 1, timeout: float = 10) -> bytes:
    """Read until ``marker`` arrived ``count`` times (``timeout`` seconds at most
    per read); all that was read."""
    received = b""
    while received.count(marker) < count:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            raise ConnectionError(f"closed before {marker!r}")
        received += data
    return received


async def native_login(port: int, user: str) -> Peer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{OPEN}<login><user>{user}</user><password>pw</password></login>".encode())
    await until(reader, b"</login-ok>")
    return reader, writer


async def xmpp_login(port: int, user: str, sm: bool = False, presence_apart: bool = False) -> Peer:
    """RFC 6120 over plaintext: stream, SASL PLAIN, restart, bind, initial
    presence (with the bind in one write, or in a write of its own after the
    bind's answer: ``presence_apart``); with ``sm``, XEP-0198 enabled."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(XMPP_OPEN.encode())
    await until(reader, b"</stream:features>")
    token = base64.b64encode(f"\0{user}\0pw".encode()).decode()
    writer.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode())
    await until(reader, b"success")
    writer.write(XMPP_OPEN.encode())
    await until(reader, b"</stream:features>")
    bind = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>"
    bind = f"<iq type='set' id='b1'>{bind}</iq>"
    if presence_apart:
        writer.write(bind.encode())
        await until(reader, b"</iq>")
        writer.write(b"<presence/>")
    else:
        writer.write(f"{bind}<presence/>".encode())
    await until(reader, b"<presence")
    if sm:  # XEP-0198: the client's stanzas go through the connection's in-order worker
        writer.write(b"<enable xmlns='urn:xmpp:sm:3'/>")
        await until(reader, b"<enabled")
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
    users = [name for i in range(PAIRS) for name in (f"s{i}", f"r{i}")]
    # All the load comes from one address: no stanza, byte or per-IP rates.
    unlimited = {f"limits.{rate}": 0 for rate in UNLIMITED}
    data_dir = tempfile.mkdtemp(prefix="xmlchat-instr-")
    async with plaintext_server(data_dir, users, unlimited) as server:
        return await _send_and_receive(server, measure)


async def _send_and_receive(server: Server, measure: Callable[[], AbstractContextManager[object]]) -> float:
    xmpp = PROTOCOL == "xmpp"
    port = server.port_of("xmpp" if xmpp else "native_plain")
    login = partial(xmpp_login, presence_apart=True) if xmpp else native_login
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
