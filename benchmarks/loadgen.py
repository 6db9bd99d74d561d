"""The load generator: asyncio worker processes driven by the coordinator.

Each worker is a process with its own event loop (uvloop when installed) and keeps
its sessions between commands, so idle sessions stay connected while other
commands run. The coordinator sends one command per worker over a pipe and
waits for all the answers; every command is bounded in time. Message bodies are
``RUN SEQ T`` where T is ``time.monotonic_ns()`` at sending: CLOCK_MONOTONIC is one
clock for every process on the machine, so any worker can compute a one-way
latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
import traceback
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.accounts import Account
from benchmarks.drivers import Driver, Endpoint, Session, get_driver

Command = dict[str, Any]
Reply = dict[str, Any]
now_ns = time.monotonic_ns


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# Workloads that run inside a worker


@dataclass
class OrderTracker:
    """Counts what one receiver got from one sender: lost, misordered, duplicated."""

    highest: int = -1
    unique: int = 0
    misordered: int = 0
    duplicates: int = 0
    missing: set[int] = field(default_factory=set)

    def see(self, seq: int) -> None:
        if seq > self.highest:
            if seq > self.highest + 1:
                self.missing.update(range(self.highest + 1, seq))
            self.highest = seq
            self.unique += 1
        elif seq in self.missing:
            self.missing.discard(seq)
            self.misordered += 1
            self.unique += 1
        else:
            self.duplicates += 1


class PairRun:
    """One sender keeping ``window`` messages in flight to one receiver.

    Every arrival triggers the next send until the deadline, so the window stays
    full (closed loop); afterwards the in-flight messages are drained.
    """

    def __init__(self, sender: Session, receiver: Session, run_id: str, window: int,
                 deadline: int, latencies: array[int]) -> None:
        self.sender, self.receiver = sender, receiver
        self.run_id, self.window, self.deadline = run_id, window, deadline
        self.latencies = latencies
        self.seq = 0
        self.order = OrderTracker()
        self.strays = 0
        self.sending = True
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        receiver.on_message = self.on_message

    def _send(self) -> None:
        self.sender.send_message(self.receiver.address, f"{self.run_id} {self.seq} {now_ns()}")
        self.seq += 1

    def start(self) -> None:
        for _ in range(self.window):
            self._send()

    def on_message(self, _frm: str, body: str, mtype: str | None) -> None:
        t = now_ns()
        parts = body.split()
        if mtype == "error" or len(parts) != 3 or parts[0] != self.run_id:
            self.strays += 1
            return
        self.latencies.append(t - int(parts[2]))
        self.order.see(int(parts[1]))
        if self.sending:
            if t < self.deadline:
                self._send()
                return
            self.sending = False
        if self.order.unique >= self.seq and not self.done.done():
            self.done.set_result(None)

    def stop(self) -> None:
        self.sending = False
        if self.order.unique >= self.seq and not self.done.done():
            self.done.set_result(None)


class FanoutRun:
    """One sender; each broadcast is one message to every recipient; ``window``
    broadcasts in flight, the next one sent when a broadcast has fully arrived."""

    def __init__(self, sender: Session, recipients: Sequence[Session], run_id: str,
                 broadcasts: int, window: int) -> None:
        self.sender, self.recipients = sender, list(recipients)
        self.run_id, self.total, self.window = run_id, broadcasts, window
        self.sent = 0
        self.sent_at: list[int] = []
        self.arrived: list[int] = []
        self.delivery_ns = array("q")
        self.broadcast_ns = array("q")
        self.orders = [OrderTracker() for _ in recipients]
        self.strays = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for i, r in enumerate(self.recipients):
            r.on_message = self._callback(i)

    def _broadcast(self) -> None:
        b = self.sent
        t = now_ns()
        self.sent_at.append(t)
        self.arrived.append(0)
        body = f"{self.run_id} {b} {t}"
        self.sender.send_messages([(r.address, body) for r in self.recipients])
        self.sent += 1

    def start(self) -> None:
        for _ in range(min(self.window, self.total)):
            self._broadcast()

    def _callback(self, index: int) -> Any:
        def on_message(_frm: str, body: str, mtype: str | None) -> None:
            t = now_ns()
            parts = body.split()
            if mtype == "error" or len(parts) != 3 or parts[0] != self.run_id:
                self.strays += 1
                return
            b = int(parts[1])
            self.delivery_ns.append(t - int(parts[2]))
            self.orders[index].see(b)
            self.arrived[b] += 1
            if self.arrived[b] == len(self.recipients):
                self.broadcast_ns.append(t - self.sent_at[b])
                if self.sent < self.total:
                    self._broadcast()
                elif len(self.broadcast_ns) == self.total and not self.done.done():
                    self.done.set_result(None)
        return on_message


# ---------------------------------------------------------------------------
# The worker process


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.driver: Driver | None = None
        self.endpoint: Endpoint | None = None
        self.tags: dict[str, list[Session]] = {}
        self.pairs: list[tuple[Session, Session]] = []
        self.fanout: tuple[Session, list[Session]] | None = None
        self.resource = f"w{index}"

    async def handle(self, cmd: Command) -> Reply:
        op = cmd["op"]
        method = getattr(self, f"op_{op}", None)
        if method is None:
            raise BenchError(f"unknown command {op!r}")
        result: Reply = await method(**{k: v for k, v in cmd.items() if k != "op"})
        return result

    async def _login(self, account: Account, timeout: float) -> Session:
        assert self.driver is not None and self.endpoint is not None, "configure first"
        return await self.driver.login(self.endpoint, account, self.resource, timeout)

    async def _login_many(self, accounts: Sequence[Account], concurrency: int, timeout: float,
                          keep: str | None) -> Reply:
        """Log every account in, ``concurrency`` at a time; keep the sessions under a tag
        or close each one right after its login."""
        latencies = array("q")
        errors: list[str] = []
        kept = self.tags.setdefault(keep, []) if keep else None
        it = iter(accounts)

        async def runner() -> None:
            for account in it:
                t0 = now_ns()
                try:
                    session = await self._login(account, timeout)
                except Exception as e:
                    errors.append(f"{account.user}: {type(e).__name__}: {e}")
                    continue
                latencies.append(now_ns() - t0)
                if kept is not None:
                    kept.append(session)
                else:
                    session.close()

        t_start = now_ns()
        await asyncio.gather(*(runner() for _ in range(max(1, min(concurrency, len(accounts))))))
        t_end = now_ns()
        await asyncio.sleep(0)  # let the closing transports flush
        return {"latencies_ns": latencies.tobytes(), "errors": len(errors),
                "error_samples": errors[:5], "t_start": t_start, "t_end": t_end}

    async def op_configure(self, driver: str, host: str, port: int, domain: str) -> Reply:
        self.driver = get_driver(driver)
        self.endpoint = Endpoint(host, port, domain)
        return {"pid": os.getpid()}

    async def op_login(self, accounts: list[Account], concurrency: int, timeout: float,
                       keep: str | None = None) -> Reply:
        return await self._login_many(accounts, concurrency, timeout, keep)

    async def op_close(self, tag: str) -> Reply:
        sessions = self.tags.pop(tag, [])
        for s in sessions:
            s.close()
        await asyncio.sleep(0.05)
        return {"closed": len(sessions)}

    async def op_close_all(self) -> Reply:
        n = 0
        for tag in list(self.tags):
            n += (await self.op_close(tag))["closed"]
        return {"closed": n + (await self.op_close_workload())["closed"]}

    async def op_close_workload(self) -> Reply:
        """Close the pair and fan-out sessions (not the tagged ones, e.g. idle)."""
        n = 0
        for a, b in self.pairs:
            a.close()
            b.close()
            n += 2
        self.pairs = []
        if self.fanout is not None:
            self.fanout[0].close()
            for r in self.fanout[1]:
                r.close()
            n += 1 + len(self.fanout[1])
            self.fanout = None
        await asyncio.sleep(0.05)
        return {"closed": n}

    async def op_open_count(self, tag: str) -> Reply:
        sessions = self.tags.get(tag, [])
        return {"open": sum(1 for s in sessions if s.is_open), "total": len(sessions)}

    async def op_pairs_setup(self, pairs: list[tuple[Account, Account]], timeout: float) -> Reply:
        flat = [a for p in pairs for a in p]
        r = await self._login_many(flat, 20, timeout, keep="_pairs")
        sessions = self.tags.pop("_pairs")
        if r["errors"]:
            for s in sessions:
                s.close()
            raise BenchError(f"pair logins failed: {r['error_samples']}")
        self.pairs = [(sessions[i], sessions[i + 1]) for i in range(0, len(sessions), 2)]
        return {"pairs": len(self.pairs)}

    async def op_pairs_run(self, run_id: str, window: int, duration: float,
                           drain_timeout: float) -> Reply:
        latencies = array("q")
        t_start = now_ns()
        deadline = t_start + int(duration * 1e9)
        runs = [PairRun(s, r, run_id, window, deadline, latencies) for s, r in self.pairs]
        for run in runs:
            run.start()
        await asyncio.sleep(duration)
        for run in runs:
            run.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.done for r in runs)), drain_timeout)
        t_end = now_ns()
        for _, r in self.pairs:
            r.on_message = None
        sent = sum(r.seq for r in runs)
        unique = sum(r.order.unique for r in runs)
        return {
            "sent": sent, "received": unique, "lost": sent - unique,
            "misordered": sum(r.order.misordered for r in runs),
            "duplicates": sum(r.order.duplicates for r in runs),
            "strays": sum(r.strays for r in runs),
            "errors": sum(s.errors + r.errors for s, r in self.pairs),
            "latencies_ns": latencies.tobytes(), "t_start": t_start, "t_end": t_end,
        }

    async def op_fanout_setup(self, sender: Account, recipients: list[Account],
                              timeout: float) -> Reply:
        r = await self._login_many([sender, *recipients], 50, timeout, keep="_fanout")
        sessions = self.tags.pop("_fanout")
        if r["errors"]:
            for s in sessions:
                s.close()
            raise BenchError(f"fan-out logins failed: {r['error_samples']}")
        self.fanout = (sessions[0], sessions[1:])
        return {"recipients": len(sessions) - 1}

    async def op_fanout_run(self, run_id: str, broadcasts: int, window: int,
                            timeout: float) -> Reply:
        assert self.fanout is not None
        sender, recipients = self.fanout
        run = FanoutRun(sender, recipients, run_id, broadcasts, window)
        t_start = now_ns()
        run.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.done, timeout)
        t_end = now_ns()
        for r in recipients:
            r.on_message = None
        expected = run.sent * len(recipients)
        received = sum(o.unique for o in run.orders)
        return {
            "broadcasts": len(run.broadcast_ns), "sent": expected, "received": received,
            "lost": expected - received,
            "misordered": sum(o.misordered for o in run.orders),
            "duplicates": sum(o.duplicates for o in run.orders),
            "strays": run.strays,
            "errors": sender.errors + sum(r.errors for r in recipients),
            "delivery_ns": run.delivery_ns.tobytes(), "broadcast_ns": run.broadcast_ns.tobytes(),
            "t_start": t_start, "t_end": t_end,
        }

    async def op_pingpong(self, a: Account, b: Account, rounds: int, run_id: str,
                          timeout: float) -> Reply:
        sa = await self._login(a, timeout)
        sb = await self._login(b, timeout)
        rtts = array("q")
        order = OrderTracker()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        seq = 0

        def ping() -> None:
            sa.send_message(sb.address, f"{run_id} {seq} {now_ns()}")

        def on_b(_frm: str, body: str, mtype: str | None) -> None:
            if mtype != "error":
                sb.send_message(sa.address, body)  # echo

        def on_a(_frm: str, body: str, mtype: str | None) -> None:
            nonlocal seq
            t = now_ns()
            parts = body.split()
            if mtype == "error" or len(parts) != 3 or parts[0] != run_id:
                return
            rtts.append(t - int(parts[2]))
            order.see(int(parts[1]))
            seq += 1
            if seq < rounds:
                ping()
            elif not done.done():
                done.set_result(None)

        sb.on_message = on_b
        sa.on_message = on_a
        await asyncio.sleep(0.2)  # let presence and any login-time traffic settle
        ping()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, timeout)
        sa.close()
        sb.close()
        return {"rtt_ns": rtts.tobytes(), "sent": seq + (0 if done.done() else 1),
                "received": order.unique, "misordered": order.misordered,
                "errors": sa.errors + sb.errors}


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _worker_main(index: int, conn: multiprocessing.connection.Connection) -> None:
    loop_name = _install_uvloop()

    async def main() -> None:
        worker = Worker(index)
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Command | None] = asyncio.Queue()

        def reader() -> None:
            # A thread doing blocking reads: the event loop's add_reader() would make the
            # pipe non-blocking, and Connection.recv() cannot cope with partial reads.
            while True:
                try:
                    cmd: Command | None = conn.recv()
                except (EOFError, OSError):
                    cmd = None
                loop.call_soon_threadsafe(inbox.put_nowait, cmd)
                if cmd is None or cmd.get("op") == "shutdown":
                    return

        threading.Thread(target=reader, name="commands", daemon=True).start()
        conn.send({"ready": True, "loop": loop_name, "pid": os.getpid()})
        while True:
            cmd = await inbox.get()
            if cmd is None or cmd.get("op") == "shutdown":
                await worker.op_close_all()
                conn.send({"ok": True})
                return
            try:
                reply = await worker.handle(cmd)
                conn.send({"ok": True, **reply})
            except Exception as e:
                conn.send({"ok": False, "error": f"{type(e).__name__}: {e}",
                           "traceback": traceback.format_exc()})

    asyncio.run(main())


# ---------------------------------------------------------------------------
# The coordinator's side


class LoadGen:
    """A pool of worker processes; :meth:`call` runs one command in each, in parallel."""

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conns: list[multiprocessing.connection.Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for i in range(workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(i, child), name=f"bench-worker-{i}",
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
