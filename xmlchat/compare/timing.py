"""The scenarios read on the clock: latency, throughput and server CPU.

They connect directly, not through the proxy: a proxy hop would add its own
delay and CPU to the clients' process. The server's CPU is read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from xmlchat.compare.records import LatencyResult, ThroughputResult, percentile
from xmlchat.compare.targets import TIMEOUT, Target, close_all


def stamp_body(seq: int, text: str = "hello") -> str:
    return f"{time.perf_counter_ns()} {seq} {text}"


def stamp_of(body: str) -> float:
    return int(body.partition(" ")[0]) / 1e9


# ---- latency


async def latency(target: Target, messages: int, random_gap: float = 0.0) -> LatencyResult:
    """One-way delivery time between two online users, one message at a time,
    each after a random pause of up to ``random_gap`` seconds."""
    sender, recipient = target.driver("a0"), target.driver("b0")
    samples: list[float] = []
    arrived = asyncio.Event()

    def on_body(body: str, at: float) -> None:
        samples.append((at - stamp_of(body)) * 1000)
        arrived.set()

    recipient.on_body = on_body
    try:
        await asyncio.gather(sender.start(TIMEOUT), recipient.start(TIMEOUT))
        await asyncio.sleep(0.05)
        for seq in range(messages):
            arrived.clear()
            if random_gap:
                await asyncio.sleep(random.uniform(0, random_gap))
            sender.send(recipient.user, stamp_body(seq))
            await asyncio.wait_for(arrived.wait(), TIMEOUT)
    finally:
        await close_all([sender, recipient])
    v = target.variant
    return LatencyResult(
        v.key,
        v.label,
        v.encrypted,
        len(samples),
        percentile(samples, 50),
        percentile(samples, 99),
        max(samples, default=0.0),
        [round(s, 4) for s in samples],
    )


# ---- throughput and server CPU


async def throughput(target: Target, pairs: int, messages: int, window: int) -> ThroughputResult:
    """``pairs`` senders each send ``messages`` to their own recipient, at most
    ``window`` in flight (sent, not yet delivered) per pair: the same flow
    control for both protocols, whatever acks they have."""
    senders = [target.driver(f"a{i}") for i in range(pairs)]
    recipients = [target.driver(f"b{i}") for i in range(pairs)]
    delivered = [0] * pairs
    latencies: list[float] = []
    changed = asyncio.Event()

    def receiver(i: int) -> Callable[[str, float], None]:
        def on_body(body: str, at: float) -> None:
            latencies.append((at - stamp_of(body)) * 1000)
            delivered[i] += 1
            changed.set()

        return on_body

    for i, recipient in enumerate(recipients):
        recipient.on_body = receiver(i)
    server = target.server
    try:
        cpu_login_0 = server.cpu_seconds()
        await asyncio.gather(*(d.start(TIMEOUT) for d in senders + recipients))
        cpu_login_1 = server.cpu_seconds()
        await asyncio.sleep(0.2)  # presence and roster traffic settles

        async def pump(i: int) -> None:
            for seq in range(messages):
                while seq - delivered[i] >= window:
                    changed.clear()
                    await changed.wait()
                senders[i].send(recipients[i].user, stamp_body(seq))
            while delivered[i] < messages:
                changed.clear()
                await changed.wait()

        cpu_0, started, client_0 = server.cpu_seconds(), time.perf_counter(), time.process_time()
        await asyncio.wait_for(asyncio.gather(*(pump(i) for i in range(pairs))), TIMEOUT * 3)
        seconds, cpu_1 = time.perf_counter() - started, server.cpu_seconds()
        client_cpu = time.process_time() - client_0
    finally:
        await close_all(senders + recipients)
    total = sum(delivered)
    cpu = None if cpu_0 is None or cpu_1 is None else cpu_1 - cpu_0
    login_cpu = (
        None
        if cpu_login_0 is None or cpu_login_1 is None
        else (cpu_login_1 - cpu_login_0) / (2 * pairs) * 1000
    )
    v = target.variant
    return ThroughputResult(
        v.key,
        v.label,
        v.encrypted,
        pairs,
        messages,
        window,
        total,
        seconds,
        total / seconds if seconds else 0.0,
        percentile(latencies, 50),
        percentile(latencies, 99),
        cpu,
        None if cpu is None or not total else cpu / total * 1000,
        login_cpu,
        client_cpu / total * 1000 if total else 0.0,
        sum(d.failed_sends for d in senders),
    )
