"""The workloads that run inside a load-generator worker (benchmarks/worker.py).

Message bodies are ``RUN SEQ T`` where T is ``time.monotonic_ns()`` at sending:
CLOCK_MONOTONIC is one clock for every process on the machine, so any worker can
compute a one-way latency.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.drivers import Session

now_ns = time.monotonic_ns


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
        self._send(f"{self.run_id} {b} {t}")
        self.sent += 1

    def _send(self, body: str) -> None:
        self.sender.send_messages([(r.address, body) for r in self.recipients])

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


class RoomRun(FanoutRun):
    """The same pacing in one XEP-0045 room: each broadcast is one groupchat
    message, which the room delivers to every occupant, the sender included
    (§7.4 reflects it)."""

    def __init__(self, sender: Session, occupants: Sequence[Session], room: str, run_id: str,
                 broadcasts: int, window: int) -> None:
        super().__init__(sender, occupants, run_id, broadcasts, window)
        self.room = room

    def _send(self, body: str) -> None:
        self.sender.send_groupchat(self.room, body)
