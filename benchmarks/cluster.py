"""Two nodes against one (issue 17): ``make bench-cluster``.

Each layout starts its xmlchat nodes as child processes on 127.0.0.1, sharing a
fresh PostgreSQL schema (and, with two nodes, one NATS), logs ``--pairs``
sender→receiver pairs in over the plaintext native listener, and keeps
``--window`` messages in flight per pair for ``--duration`` seconds
(:class:`~benchmarks.workloads.PairRun`). It prints messages per second,
messages per server CPU-second and the one-way latency (send to delivery,
sender's ack not waited for) per layout:

* ``one node``: every user on one node (PostgreSQL store, no NATS);
* ``two nodes, spread``: senders and receivers spread so half the pairs cross nodes;
* ``two nodes, across``: every message crosses nodes (the cross-node latency).

With ``--rooms``, one XEP-0045 room instead (XMPP clients over plain TCP):
``--occupants`` occupants, one of them sending groupchat messages with
``--window`` in flight; each message counts once per occupant (the sender's
echo included). Layouts: every occupant on one node; occupants alternating
between two nodes with the sender on the room's owner node; the same with
the sender on the other node (each of its messages one more NATS round trip).

Needs PostgreSQL (``XMLCHAT_BENCH_POSTGRES``, default the loopback ``test``
database) and NATS (``XMLCHAT_BENCH_NATS``, default ``nats://127.0.0.1:4222``).
The load generator is one process on the same machine, so on a small machine
it competes with the nodes for the CPU: compare layouts within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.accounts import Account
from benchmarks.drivers import Endpoint, Session
from benchmarks.drivers.native import NativeDriver
from benchmarks.drivers.xmpp import XmppDriver
from benchmarks.procstat import cpu_seconds
from benchmarks.workloads import PairRun, RoomRun
from xmlchat.jid import JID
from xmlchat.routing.cluster import owner_of
from xmlchat.storage.postgres import PostgresStorage

POSTGRES = os.environ.get("XMLCHAT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NATS = os.environ.get("XMLCHAT_BENCH_NATS", "nats://127.0.0.1:4222")
LISTEN = re.compile(r"^listening: native \S+ port (\d+) tls=none \(native_plain\)$")
LISTEN_XMPP = re.compile(r"^listening: xmpp \S+ port (\d+) tls=none \(xmpp\)$")
PASSWORD = "bench-pw"

# (nodes, pair index -> (sender's node, receiver's node))
Layout = tuple[int, Callable[[int], tuple[int, int]]]
LAYOUTS: dict[str, Layout] = {
    "one node": (1, lambda i: (0, 0)),
    "two nodes, spread": (2, lambda i: (i % 2, (i // 2) % 2)),
    "two nodes, across": (2, lambda i: (i % 2, 1 - i % 2)),
}
# (nodes, occupant index -> node); occupant 0 sends. The room is owned by n0.
RoomLayout = tuple[int, Callable[[int], int]]
ROOM_LAYOUTS: dict[str, RoomLayout] = {
    "one node": (1, lambda i: 0),
    "two nodes, sender on the owner": (2, lambda i: i % 2),
    "two nodes, sender elsewhere": (2, lambda i: 1 - i % 2),
}
ROOM = next(f"bench{i}@conference.localhost" for i in range(100)
            if owner_of(f"bench{i}@conference.localhost", ["n0", "n1"]) == "n0")


@contextmanager
def schema() -> Iterator[str]:
    name = f"xmlchat_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}".encode())
        try:
            yield f"{POSTGRES}?options=-csearch_path%3D{name}"
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE".encode())


Node = tuple[subprocess.Popen[str], int]  # the process and its native port


def start_node(workdir: Path, index: int, storage: str, prefix: str | None, xmpp: bool = False) -> Node:
    env = {
        **os.environ,
        "XMLCHAT_DATA_DIR": str(workdir / f"n{index}"),
        "XMLCHAT_STORAGE_URL": storage,
        "XMLCHAT_LISTENERS_NATIVE_ENABLED": "false",
        "XMLCHAT_LISTENERS_XMPP_ENABLED": "false",
        # Off: on by default, they would bind the same ports on every node.
        "XMLCHAT_LISTENERS_XMPP_TLS_ENABLED": "false",
        "XMLCHAT_LISTENERS_HTTP_ENABLED": "false",
        "XMLCHAT_LISTENERS_HTTPS_ENABLED": "false",
        "XMLCHAT_LISTENERS_NATIVE_PLAIN_ENABLED": "true",
        "XMLCHAT_LISTENERS_NATIVE_PLAIN_PORT": "0",
        "XMLCHAT_LIMITS_STANZAS_PER_SECOND": "0",
        "XMLCHAT_LOG_LEVEL": "warning",
    }
    if xmpp:  # plain XMPP for the room clients (benchmarks/drivers/xmpp.py)
        env |= {"XMLCHAT_LISTENERS_XMPP_ENABLED": "true", "XMLCHAT_LISTENERS_XMPP_PORT": "0",
                "XMLCHAT_LISTENERS_XMPP_TLS": "none", "XMLCHAT_XMPP_REQUIRE_ENCRYPTION": "false",
                "XMLCHAT_XMPP_ALLOW_UNENCRYPTED_PLAIN_AUTH": "true", "XMLCHAT_MUC_MESSAGES_PER_SECOND": "0"}
    if prefix is not None:
        env |= {"XMLCHAT_CLUSTER_NATS_URL": NATS, "XMLCHAT_CLUSTER_NODE_NAME": f"n{index}",
                "XMLCHAT_CLUSTER_SUBJECT_PREFIX": prefix}
    proc = subprocess.Popen([sys.executable, "-m", "xmlchat", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    port = 0
    for line in proc.stdout:
        match = (LISTEN_XMPP if xmpp else LISTEN).match(line.strip())
        port = int(match.group(1)) if match else port
        if line.startswith("ready:"):
            return proc, port
    raise RuntimeError(f"node {index} did not start")


def stop_nodes(nodes: list[Node]) -> None:
    for proc, _ in nodes:
        proc.terminate()
        proc.wait(15)


async def create_accounts(storage: str, count: int) -> list[Account]:
    store = await PostgresStorage.open(storage)
    try:
        accounts = [Account(f"u{i}", PASSWORD) for i in range(count)]
        await asyncio.gather(*(store.create_user(JID.user(a.user, "localhost"), PASSWORD) for a in accounts))
        return accounts
    finally:
        await store.close()


async def measure(name: str, layout: Layout, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    node_count, place = layout
    with schema() as storage:
        accounts = await create_accounts(storage, 2 * args.pairs)
        prefix = f"xmlchat-bench-{uuid.uuid4().hex[:8]}" if node_count > 1 else None
        nodes: list[Node] = []
        try:  # a node that fails to start does not leave the ones before it running
            for i in range(node_count):
                nodes.append(start_node(workdir / name.replace(" ", "-"), i, storage, prefix))
            return await _drive(nodes, place, accounts, args)
        finally:
            stop_nodes(nodes)


async def _drive(
    nodes: list[Node], place: Callable[[int], tuple[int, int]],
    accounts: list[Account], args: argparse.Namespace,
) -> dict[str, float]:
    driver = NativeDriver()
    endpoints = [Endpoint("127.0.0.1", port, "localhost") for _, port in nodes]

    async def login(index: int, node: int) -> Session:
        return await driver.login(endpoints[node], accounts[index], f"r{index}", 20)

    pairs = []
    for i in range(args.pairs):
        sender_node, receiver_node = place(i)
        pairs.append((await login(2 * i, sender_node), await login(2 * i + 1, receiver_node)))
    # Registry events travel in milliseconds; a second's margin on a busy machine.
    await asyncio.sleep(1)
    latencies: array[int] = array("q")
    pids = [proc.pid for proc, _ in nodes]
    cpu_before, started = cpu_seconds(pids), time.monotonic()
    deadline = time.monotonic_ns() + int(args.duration * 1e9)
    runs = [PairRun(s, r, "b", args.window, deadline, latencies) for s, r in pairs]
    for run in runs:
        run.start()
    waits = [asyncio.ensure_future(asyncio.wait_for(run.done, args.duration + 30)) for run in runs]
    await asyncio.wait(waits)
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu_before
    for sender, receiver in pairs:
        sender.close()
        receiver.close()
    received = sum(run.order.unique for run in runs)
    ms = sorted(v / 1e6 for v in latencies)
    return {
        "messages/s": received / elapsed,
        "messages per server CPU-s": received / cpu if cpu else 0.0,
        "server CPU cores": cpu / elapsed,
        "latency p50 ms": statistics.median(ms) if ms else 0.0,
        "latency p99 ms": ms[int(len(ms) * 0.99)] if ms else 0.0,
        "lost": float(sum(run.seq - run.order.unique for run in runs)),
    }


async def measure_room(
    name: str, layout: RoomLayout, args: argparse.Namespace, workdir: Path
) -> dict[str, float]:
    node_count, place = layout
    with schema() as storage:
        accounts = await create_accounts(storage, args.occupants)
        prefix = f"xmlchat-bench-{uuid.uuid4().hex[:8]}" if node_count > 1 else None
        nodes: list[Node] = []
        try:
            for i in range(node_count):
                nodes.append(start_node(workdir / name.replace(" ", "-"), i, storage, prefix, xmpp=True))
            return await _drive_room(nodes, place, accounts, args)
        finally:
            stop_nodes(nodes)


async def _drive_room(
    nodes: list[Node], place: Callable[[int], int], accounts: list[Account], args: argparse.Namespace,
) -> dict[str, float]:
    driver = XmppDriver()
    endpoints = [Endpoint("127.0.0.1", port, "localhost") for _, port in nodes]
    occupants = [await driver.login(endpoints[place(i)], a, f"r{i}", 20) for i, a in enumerate(accounts)]
    await asyncio.sleep(1)  # the registry's news of every session reaches the other node
    for i, occupant in enumerate(occupants):
        await occupant.join_room(ROOM, f"o{i}", 20)
    pids = [proc.pid for proc, _ in nodes]
    cpu_before, started = cpu_seconds(pids), time.monotonic()
    run = RoomRun(occupants[0], occupants, ROOM, uuid.uuid4().hex[:8], args.broadcasts, args.window)
    run.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.done, 120)
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu_before
    for occupant in occupants:
        occupant.close()
    received = sum(o.unique for o in run.orders)
    ms = sorted(v / 1e6 for v in run.broadcast_ns)
    return {
        "deliveries/s": received / elapsed,
        "deliveries per server CPU-s": received / cpu if cpu else 0.0,
        "server CPU cores": cpu / elapsed,
        "all got it p50 ms": statistics.median(ms) if ms else 0.0,
        "all got it p99 ms": ms[int(len(ms) * 0.99)] if ms else 0.0,
        "lost": float(run.sent * len(occupants) - received),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rooms", action="store_true", help="one room's fan-out instead of pairs")
    parser.add_argument("--occupants", type=int, default=50)
    parser.add_argument("--broadcasts", type=int, default=400)
    args = parser.parse_args()
    layouts: dict[str, Any] = ROOM_LAYOUTS if args.rooms else LAYOUTS
    run = measure_room if args.rooms else measure
    results: dict[str, list[dict[str, float]]] = {name: [] for name in layouts}
    with tempfile.TemporaryDirectory(prefix="xmlchat-bench-cluster-") as tmp:
        for _ in range(args.repeat):  # layouts alternate, so a busy moment hits them alike
            for name, layout in layouts.items():
                results[name].append(await run(name, layout, args, Path(tmp)))
    if args.rooms:
        print(f"one room, {args.occupants} occupants, {args.broadcasts} messages, window {args.window}, "
              f"median of {args.repeat} runs")
    else:
        print(f"{args.pairs} pairs, window {args.window}, {args.duration:g} s, median of {args.repeat} runs")
    keys = list(next(iter(results.values()))[0])
    print(f"| layout | {' | '.join(keys)} |")
    print(f"|---|{'---|' * len(keys)}")
    for name, runs in results.items():
        cells = [f"{statistics.median(r[k] for r in runs):,.1f}" for k in keys]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    asyncio.run(main())
