"""The load generator: asyncio worker processes driven by the coordinator.

Each worker (benchmarks/worker.py) is a process with its own event loop and keeps
its sessions between commands; the workloads it runs are in benchmarks/workloads.py.
The coordinator here sends one command per worker over a pipe and waits for all
the answers; every command is bounded in time. Message bodies carry
``time.monotonic_ns()`` at sending: CLOCK_MONOTONIC is one clock for every process
on the machine, so any worker can compute a one-way latency.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import time
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

# The workloads and the worker live in their own modules; their names stay importable from here.
from benchmarks.worker import BenchError, Command, Reply, Worker, worker_main
from benchmarks.workloads import FanoutRun, OrderTracker, PairRun, now_ns

__all__ = [
    "BenchError", "Command", "FanoutRun", "LoadGen", "OrderTracker", "PairRun", "Reply", "Worker",
    "merged", "now_ns", "split", "unpack",
]


class LoadGen:
    """A pool of worker processes; :meth:`call` runs one command in each, in parallel."""

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conns: list[multiprocessing.connection.Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for i in range(workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(i, child), name=f"bench-worker-{i}",
                            daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        hello = [self._recv(c, 30.0) for c in self.conns]
        self.loop_name = hello[0].get("loop", "?")
        self.pids = [int(h["pid"]) for h in hello]

    @property
    def size(self) -> int:
        return len(self.conns)

    @staticmethod
    def _recv(conn: multiprocessing.connection.Connection, timeout: float) -> Reply:
        if not conn.poll(timeout):
            raise BenchError(f"a load-generator worker did not answer within {timeout:.0f} s")
        reply: Reply = conn.recv()
        return reply

    def call(self, cmds: Sequence[Command | None], timeout: float) -> list[Reply]:
        """Send ``cmds[i]`` to worker i (None: nothing); wait for all; raise on any error."""
        active = [(c, cmd) for c, cmd in zip(self.conns, cmds, strict=False) if cmd is not None]
        for conn, cmd in active:
            conn.send(cmd)
        deadline = time.monotonic() + timeout
        replies = [self._recv(c, max(0.1, deadline - time.monotonic())) for c, _ in active]
        failed = [r for r in replies if not r.get("ok")]
        if failed:
            raise BenchError(f"worker failed: {failed[0]['error']}\n{failed[0]['traceback']}")
        return replies

    def all(self, cmd: Command, timeout: float) -> list[Reply]:
        return self.call([cmd] * self.size, timeout)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send({"op": "shutdown"})
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(2)


def split(items: Sequence[Any], n: int) -> list[list[Any]]:
    """Deal ``items`` round-robin into ``n`` lists."""
    return [list(items[i::n]) for i in range(n)]


def unpack(raw: bytes) -> array[int]:
    a = array("q")
    a.frombytes(raw)
    return a


def merged(replies: Sequence[Reply], key: str) -> Iterator[int]:
    for r in replies:
        yield from unpack(r[key])
