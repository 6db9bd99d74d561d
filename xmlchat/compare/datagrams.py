"""TCP versus UDP, measured: chat messages as datagrams over an impaired path.

A UDP chat protocol gets from the network exactly what the network does:
datagrams lost, duplicated, delivered out of order. This experiment sends
the same numbered chat messages over paths with increasing loss, delay
jitter (which reorders) and duplication, twice:

* **raw UDP**: one datagram per message, nothing else — what arrives, when;
* **UDP + acks**: the minimum a chat protocol must rebuild to promise what
  TCP promises: an acknowledgement per datagram, retransmission after a
  timeout, duplicates dropped by sequence number, and a reorder buffer so the
  reader sees messages in order (which is where head-of-line waiting comes
  from). It has no congestion control: it retransmits at a fixed timeout
  whatever the loss says about the path, which TCP and QUIC would not.

**The path.** ``tc netem`` in a network namespace would impair the kernel's
own loopback, under TCP as well as UDP; :func:`netem_probe` says whether this
machine can (it needs the ``sch_netem`` module and CAP_NET_ADMIN). The
figures come from :class:`ImpairedPath`, a seeded relay in this process that
drops, delays and duplicates each datagram, in both directions (acks are lost
too), so every run sees the same impairments.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import Final, cast

from xmlchat.compare.records import percentile

SEED: Final = 20261201
GAP: Final = 0.002  # seconds between two messages sent


@dataclass(frozen=True, slots=True)
class Impairment:
    name: str
    loss: float  # probability a datagram is dropped
    delay_ms: float  # one way
    jitter_ms: float  # delay varies by ± this, uniformly: reorders when > GAP
    duplicate: float  # probability a datagram arrives twice


PATHS: Final = (
    Impairment("clean, 1 ms", 0.0, 1.0, 0.0, 0.0),
    Impairment("1% loss, 10 ms", 0.01, 10.0, 0.0, 0.0),
    Impairment("5% loss, 20±15 ms, 2% duplicated", 0.05, 20.0, 15.0, 0.02),
    Impairment("20% loss, 40±30 ms, 5% duplicated", 0.20, 40.0, 30.0, 0.05),
)


@dataclass
class DatagramRow:
    path: str
    protocol: str  # "raw UDP" or "UDP + acks"
    sent: int  # chat messages
    delivered: int  # distinct messages the reader got
    lost: int
    duplicates: int  # copies the network delivered twice (raw) / that the receiver dropped
    reordered: int  # arrivals behind a later message already seen
    datagrams: int  # datagrams the sender put on the path, retransmissions included
    retransmissions: int
    acks: int
    p50_ms: float  # send to the reader seeing it (in order, for UDP + acks)
    p99_ms: float
    max_ms: float


@dataclass
class Experiment:
    path_kind: str  # what impaired the path
    netem: str  # the probe's finding
    rows: list[DatagramRow] = field(default_factory=list)


class ImpairedPath(asyncio.DatagramProtocol):
    """A UDP relay between two fixed endpoints that impairs what it forwards."""

    def __init__(self, impairment: Impairment, rng: random.Random) -> None:
        self.impairment, self.rng = impairment, rng
        self.transport: asyncio.DatagramTransport | None = None
        self.ends: list[tuple[str, int]] = []  # [sender, receiver] once known
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        other = self.ends[1] if addr == self.ends[0] else self.ends[0]
        i = self.impairment
        if self.rng.random() < i.loss:
            return
        copies = 2 if self.rng.random() < i.duplicate else 1
        for _ in range(copies):
            delay = max(0.0, i.delay_ms + self.rng.uniform(-i.jitter_ms, i.jitter_ms)) / 1000
            self._loop.call_later(delay, self._forward, data, other)

    def _forward(self, data: bytes, to: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, to)


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()  # with the time it came

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait((data, time.perf_counter()))

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)


async def _wired(impairment: Impairment, rng: random.Random) -> tuple[ImpairedPath, Endpoint, Endpoint]:
    loop = asyncio.get_running_loop()
    _, path = await loop.create_datagram_endpoint(
        lambda: ImpairedPath(impairment, rng), local_addr=("127.0.0.1", 0)
    )
    assert path.transport is not None
    relay = path.transport.get_extra_info("sockname")[:2]
    _, sender = await loop.create_datagram_endpoint(Endpoint, remote_addr=relay)
    _, receiver = await loop.create_datagram_endpoint(Endpoint, remote_addr=relay)
    assert sender.transport is not None and receiver.transport is not None
    path.ends = [_address(sender.transport), _address(receiver.transport)]
    return path, sender, receiver


def _address(transport: asyncio.DatagramTransport) -> tuple[str, int]:
    host, port = transport.get_extra_info("sockname")[:2]
    return host, port


def _close(*protocols: asyncio.DatagramProtocol) -> None:
    for protocol in protocols:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.close()


def _message(seq: int) -> bytes:
    return f"{seq} {time.perf_counter_ns()} <message><to>bob</to><body>hello {seq}</body></message>".encode()


def _parse(data: bytes) -> tuple[int, float]:
    seq, stamp, _ = data.split(b" ", 2)
    return int(seq), int(stamp) / 1e9


def _settle_time(i: Impairment) -> float:
    return (i.delay_ms + i.jitter_ms) / 1000 * 2 + 0.2


async def raw_udp(impairment: Impairment, count: int, rng: random.Random) -> DatagramRow:
    """One datagram per message; the reader takes whatever comes, as it comes."""
    path, sender, receiver = await _wired(impairment, rng)
    seen: set[int] = set()
    latencies: list[float] = []
    duplicates = reordered = 0
    highest = -1
    try:
        for seq in range(count):
            sender.send(_message(seq))
            await asyncio.sleep(GAP)
        await asyncio.sleep(_settle_time(impairment))  # the slowest copy is in
        while not receiver.inbox.empty():
            data, at = receiver.inbox.get_nowait()
            seq, sent_at = _parse(data)
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            latencies.append((at - sent_at) * 1000)
            if seq < highest:
                reordered += 1
            highest = max(highest, seq)
    finally:
        _close(path, sender, receiver)
    return DatagramRow(
        impairment.name,
        "raw UDP",
        count,
        len(seen),
        count - len(seen),
        duplicates,
        reordered,
        count,
        0,
        0,
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies, default=0.0),
    )


async def acked_udp(impairment: Impairment, count: int, rng: random.Random) -> DatagramRow:
    """Acks, retransmission at a fixed timeout, duplicate suppression, in-order delivery."""
    path, sender, receiver = await _wired(impairment, rng)
    rto = max(0.05, 3 * (impairment.delay_ms + impairment.jitter_ms) / 1000)
    unacked: dict[int, bytes] = {}
    first_sent: dict[int, float] = {}
    counters = {"datagrams": 0, "retransmissions": 0, "acks": 0, "duplicates": 0, "reordered": 0}
    latencies: list[float] = []
    done = asyncio.Event()

    async def read_acks() -> None:
        while True:
            seq = int((await sender.inbox.get())[0])
            unacked.pop(seq, None)

    async def retransmit() -> None:
        while not done.is_set():
            await asyncio.sleep(rto / 2)
            now = time.perf_counter()
            for seq, data in list(unacked.items()):
                if now - _parse(data)[1] >= rto:
                    data = f"{seq} {time.perf_counter_ns()} ".encode() + data.split(b" ", 2)[2]
                    unacked[seq] = data
                    sender.send(data)
                    counters["datagrams"] += 1
                    counters["retransmissions"] += 1

    async def read() -> None:
        buffered: dict[int, float] = {}
        next_seq = 0
        highest = -1
        while next_seq < count:
            seq, _ = _parse((await receiver.inbox.get())[0])
            receiver.send(str(seq).encode())  # ack every copy: the last ack may have been lost
            counters["acks"] += 1
            if seq < next_seq or seq in buffered:
                counters["duplicates"] += 1
                continue
            if seq < highest:
                counters["reordered"] += 1
            highest = max(highest, seq)
            buffered[seq] = time.perf_counter()
            while next_seq in buffered:  # the reader gets them in order
                del buffered[next_seq]
                latencies.append((time.perf_counter() - first_sent[next_seq]) * 1000)
                next_seq += 1
        done.set()

    tasks = [asyncio.create_task(c) for c in (read_acks(), retransmit(), read())]
    try:
        for seq in range(count):
            data = _message(seq)
            first_sent[seq] = _parse(data)[1]
            unacked[seq] = data
            sender.send(data)
            counters["datagrams"] += 1
            await asyncio.sleep(GAP)
        await asyncio.wait_for(done.wait(), 60)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _close(path, sender, receiver)
    return DatagramRow(
        impairment.name,
        "UDP + acks",
        count,
        len(latencies),
        count - len(latencies),
        counters["duplicates"],
        counters["reordered"],
        counters["datagrams"],
        counters["retransmissions"],
        counters["acks"],
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies, default=0.0),
    )


def netem_probe() -> str:
    """Whether ``tc netem`` works here: in a network namespace of our own,
    created and removed again. Returns "available" or why not."""
    if os.geteuid() != 0:
        return "unavailable: needs root (CAP_NET_ADMIN)"
    name = f"xmlchat-compare-{os.getpid()}"

    def ip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)

    try:
        made = ip("ip", "netns", "add", name)
        if made.returncode != 0:
            return f"unavailable: ip netns add: {made.stderr.strip()}"
        try:
            ip("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
            netem = ("tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "1%")
            qdisc = ip("ip", "netns", "exec", name, *netem)
            if qdisc.returncode != 0:
                return f"unavailable: tc qdisc add … netem: {qdisc.stderr.strip()}"
            return "available"
        finally:
            ip("ip", "netns", "del", name)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable: {type(e).__name__}: {e}"


async def experiment(count: int) -> Experiment:
    probe = await asyncio.to_thread(netem_probe)
    result = Experiment("harness: a seeded relay in the compare process (ImpairedPath)", probe)
    for impairment in PATHS:
        for run in (raw_udp, acked_udp):
            result.rows.append(await run(impairment, count, random.Random(SEED)))
    return result
