"""One load-generator worker process and the commands it runs.

Each worker is a process with its own event loop (uvloop when installed) and keeps
its sessions between commands, so idle sessions stay connected while other
commands run. Commands arrive over a pipe from the coordinator (benchmarks/loadgen.py)
as ``{"op": NAME, ...}`` and are answered with ``{"ok": True, ...}`` or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing.connection
import os
import threading
import traceback
from array import array
from collections.abc import Sequence
from typing import Any

from benchmarks.accounts import Account
from benchmarks.drivers import Driver, Endpoint, Session, get_driver
from benchmarks.workloads import FanoutRun, OrderTracker, PairRun, RoomRun, now_ns

Command = dict[str, Any]
Reply = dict[str, Any]


class BenchError(RuntimeError):
    pass


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.driver: Driver | None = None
        self.endpoint: Endpoint | None = None
        self.tags: dict[str, list[Session]] = {}
        self.pairs: list[tuple[Session, Session]] = []
        self.fanout: tuple[Session, list[Session]] | None = None
        self.room = ""  # the room of the room fan-out, once its occupants are in
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
        return await self._broadcasts(FanoutRun(sender, recipients, run_id, broadcasts, window), timeout)

    async def op_room_setup(self, occupants: list[Account], room: str, timeout: float) -> Reply:
        """Log every occupant in, then each enters ``room`` (50 joins at a time);
        the first one in creates it. Every occupant receives the broadcasts."""
        await self.op_fanout_setup(occupants[0], occupants[1:], timeout)
        assert self.fanout is not None
        sessions = [self.fanout[0], *self.fanout[1]]
        await sessions[0].join_room(room, "o0", timeout)
        for start in range(1, len(sessions), 50):
            batch = sessions[start:start + 50]
            await asyncio.gather(*(s.join_room(room, f"o{start + i}", timeout) for i, s in enumerate(batch)))
        self.fanout = (sessions[0], sessions)
        self.room = room
        return {"occupants": len(sessions)}

    async def op_room_run(self, run_id: str, broadcasts: int, window: int, timeout: float) -> Reply:
        assert self.fanout is not None and self.room
        sender, occupants = self.fanout
        run = RoomRun(sender, occupants, self.room, run_id, broadcasts, window)
        return await self._broadcasts(run, timeout)

    async def _broadcasts(self, run: FanoutRun, timeout: float) -> Reply:
        sender, recipients = run.sender, run.recipients
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


def worker_main(index: int, conn: multiprocessing.connection.Connection) -> None:
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
