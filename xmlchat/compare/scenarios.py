"""The measurements: one function per scenario, each returning plain records.

Every scenario runs the same steps over each protocol variant, through the
project's two clients (:mod:`xmlchat.compare.clients`). Bytes and round trips
are read from the wire by :class:`~xmlchat.compare.proxy.CountingProxy`;
latency and throughput connect directly (a proxy hop would add its own delay
and CPU to the clients' process) and read the server's CPU from ``/proc``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from xmlchat.compare.clients import ChatDriver, NativeDriver, XmppDriver, XmppMode
from xmlchat.compare.proxy import CountingProxy, Flow
from xmlchat.compare.servers import ServerHandle, password_of

TIMEOUT: Final = 20.0
# Silence on the wire that ends a measurement: trailing acks, presence echoes.
QUIET: Final = 0.04

CHINESE: Final = (
    "我们在同一个服务器上同时运行两种协议，用同一批用户，测量每条消息在网络上真正花费的字节数和往返次数。"
    "标准协议带来了生态、联邦和扩展，自定义协议换来了更少的字节和更简单的实现。"
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One protocol over one transport, as a client connects to it."""

    key: str
    label: str
    protocol: Literal["native", "xmpp"]
    listener: str  # the server's listener name
    tls: Literal["none", "starttls", "direct"]
    xmpp_mode: XmppMode | None = None
    sasl: str | None = None  # force a SASL mechanism (otherwise the client picks)
    full: bool = True  # also per-message, latency and throughput (else connect and reconnect only)

    @property
    def encrypted(self) -> bool:
        return self.tls != "none"


VARIANTS: Final = (
    Variant("native-tls", "native, TLS", "native", "native", "direct"),
    Variant("native-plain", "native, plaintext", "native", "native_plain", "none"),
    Variant("xmpp-starttls", "XMPP, STARTTLS", "xmpp", "xmpp", "starttls", "starttls"),
    Variant("xmpp-directtls", "XMPP, direct TLS", "xmpp", "xmpp_tls", "direct", "direct", full=False),
    Variant(
        "xmpp-directtls-plain",
        "XMPP, direct TLS, SASL PLAIN",
        "xmpp",
        "xmpp_tls",
        "direct",
        "direct",
        sasl="PLAIN",
        full=False,
    ),
    Variant("xmpp-plain", "XMPP, plaintext", "xmpp", "xmpp", "none", "plain"),
)


@dataclass
class Target:
    """A variant bound to the server that offers it."""

    variant: Variant
    server: ServerHandle

    @property
    def port(self) -> int:
        return self.server.ports[self.variant.listener]

    def driver(self, user: str, port: int | None = None) -> ChatDriver:
        server, v = self.server, self.variant
        cafile = server.cafile if v.encrypted else None
        host, port = server.host, self.port if port is None else port
        if port != self.port:
            host = "127.0.0.1"  # the proxy
        if v.protocol == "native":
            return NativeDriver(user, password_of(user), server.domain, host, port, cafile)
        assert v.xmpp_mode is not None
        return XmppDriver(user, password_of(user), server.domain, host, port, cafile, v.xmpp_mode, v.sasl)


def bind_targets(servers: Sequence[ServerHandle], quick: bool = False) -> list[Target]:
    """Each variant on the first server with a listener of the right kind."""
    targets = []
    for variant in VARIANTS:
        for server in servers:
            listener = getattr(server.config.listeners, variant.listener)
            if variant.listener not in server.ports or listener.tls != variant.tls:
                continue
            if variant.key == "xmpp-plain" and server.require_encryption:
                continue
            targets.append(Target(variant, server))
            break
    return targets


def users_for(pairs: int) -> list[str]:
    return [f"{side}{i}" for i in range(pairs) for side in ("a", "b")] + ["alice", "bob"]


# ---- helpers


async def quiet(flows: Sequence[Flow], period: float = QUIET, limit: float = 5.0) -> None:
    """Return once no flow has moved a byte for ``period`` seconds."""
    deadline = time.perf_counter() + limit
    before = [len(f.chunks) for f in flows]
    while time.perf_counter() < deadline:
        await asyncio.sleep(period)
        now = [len(f.chunks) for f in flows]
        if now == before:
            return
        before = now


async def close_all(drivers: Sequence[ChatDriver]) -> None:
    await asyncio.gather(*(d.close() for d in drivers), return_exceptions=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median_int(values: Sequence[int]) -> int:
    return int(statistics.median(values))


def stamp_body(seq: int, text: str = "hello") -> str:
    return f"{time.perf_counter_ns()} {seq} {text}"


def stamp_of(body: str) -> float:
    return int(body.partition(" ")[0]) / 1e9


# ---- connect to first message


@dataclass
class ConnectResult:
    variant: str
    label: str
    encrypted: bool
    runs: int
    round_trips: int
    injected_rtt_ms: float
    time_ms: float  # median, loopback
    time_at_rtt_ms: float  # with the injected round-trip time
    bytes_up: int
    bytes_down: int
    detail: str

    @property
    def bytes_total(self) -> int:
        return self.bytes_up + self.bytes_down


async def _login_through_proxy(
    target: Target, user: str, delay: float
) -> tuple[float, Flow, ChatDriver, CountingProxy]:
    proxy = CountingProxy(target.server.host, target.port, delay=delay)
    await proxy.start()
    driver = target.driver(user, proxy.port)
    started = time.perf_counter()
    try:
        await driver.start(TIMEOUT)
        flow = await proxy.flow(0)
        await quiet([flow])
    except BaseException:
        await driver.close()
        await proxy.close()
        raise
    return driver.ready_at - started, flow, driver, proxy


async def connect(target: Target, runs: int, rtt: float) -> ConnectResult:
    """From TCP connect until the user can send a first message and is online."""
    times, ups, downs = [], [], []
    detail = ""
    for _ in range(runs):
        elapsed, flow, driver, proxy = await _login_through_proxy(target, "a0", 0.0)
        times.append(elapsed)
        ups.append(flow.up)
        downs.append(flow.down)
        detail = driver.detail
        await driver.close()
        await proxy.close()
    # Round trips: again with every answer held back for `rtt` (see proxy.py).
    elapsed_rtt, flow, driver, proxy = await _login_through_proxy(target, "a0", rtt)
    round_trips = flow.round_trips_until(driver.ready_at)
    await driver.close()
    await proxy.close()
    v = target.variant
    return ConnectResult(
        v.key,
        v.label,
        v.encrypted,
        runs,
        round_trips,
        rtt * 1000,
        statistics.median(times) * 1000,
        elapsed_rtt * 1000,
        median_int(ups),
        median_int(downs),
        detail,
    )


# ---- bytes per message


@dataclass
class MessageResult:
    variant: str
    label: str
    encrypted: bool
    script: Literal["ascii", "chinese"]
    body_chars: int
    body_bytes: int
    sender_up: int
    sender_down: int  # the native <ack>; nothing for XMPP without receipts
    recipient_down: int
    recipient_up: int

    @property
    def wire_bytes(self) -> int:
        """What one message costs on the two links it crosses."""
        return self.sender_up + self.recipient_down

    @property
    def overhead_ratio(self) -> float:
        """Wire bytes per body byte per link: 1.0 would be the body alone."""
        return self.wire_bytes / (2 * self.body_bytes)


def ascii_body(size: int) -> str:
    if size == 5:
        return "hello"
    base = "The quick brown fox jumps over the lazy dog. "
    return (base * (size // len(base) + 1))[:size]


def chinese_body(size: int) -> str:
    """Chinese text of at most ``size`` UTF-8 bytes (3 bytes a character)."""
    chars = max(1, size // 3)
    return (CHINESE * (chars // len(CHINESE) + 1))[:chars]


def bodies(sizes: Sequence[int]) -> list[tuple[Literal["ascii", "chinese"], str]]:
    out: list[tuple[Literal["ascii", "chinese"], str]] = []
    for size in sizes:
        out.append(("ascii", ascii_body(size)))
        out.append(("chinese", chinese_body(size)))
    return out


async def message_bytes(
    target: Target, sizes: Sequence[int], repeats: int, progress: Callable[[], None] | None = None
) -> list[MessageResult]:
    """Bytes on the sender's and the recipient's links for one message."""
    proxies = [CountingProxy(target.server.host, target.port) for _ in range(2)]
    for proxy in proxies:
        await proxy.start()
    sender, recipient = target.driver("a0", proxies[0].port), target.driver("b0", proxies[1].port)
    received: asyncio.Queue[str] = asyncio.Queue()
    recipient.on_body = lambda body, _t: received.put_nowait(body)
    results = []
    try:
        await asyncio.gather(sender.start(TIMEOUT), recipient.start(TIMEOUT))
        flows = [await proxies[0].flow(0), await proxies[1].flow(0)]
        await quiet(flows)
        for script, body in bodies(sizes):
            samples: list[list[int]] = []
            for _ in range(repeats):
                before = [flows[0].up, flows[0].down, flows[1].down, flows[1].up]
                sender.send(recipient.user, body)
                got = await asyncio.wait_for(received.get(), TIMEOUT)
                if got != body:
                    raise RuntimeError(f"{target.variant.key}: body changed in transit")
                await quiet(flows)
                after = [flows[0].up, flows[0].down, flows[1].down, flows[1].up]
                samples.append([a - b for a, b in zip(after, before, strict=True)])
            v = target.variant
            medians = [median_int([s[i] for s in samples]) for i in range(4)]
            results.append(
                MessageResult(v.key, v.label, v.encrypted, script, len(body), len(body.encode()), *medians)
            )
            if progress is not None:
                progress()
    finally:
        await close_all([sender, recipient])
        for proxy in proxies:
            await proxy.close()
    return results


# ---- latency


@dataclass
class LatencyResult:
    variant: str
    label: str
    encrypted: bool
    messages: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    samples_ms: list[float] = field(repr=False)


async def latency(target: Target, messages: int) -> LatencyResult:
    """One-way delivery time between two online users, one message at a time."""
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


@dataclass
class ThroughputResult:
    variant: str
    label: str
    encrypted: bool
    pairs: int
    messages_per_pair: int
    window: int
    delivered: int
    seconds: float
    messages_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_seconds: float | None
    cpu_seconds_per_1000: float | None
    login_cpu_ms: float | None  # server CPU per login, from the pairs' logins
    client_cpu_seconds_per_1000: float  # this process: every client, both sides
    failed_sends: int


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


# ---- reconnect


@dataclass
class ReconnectResult:
    variant: str
    label: str
    encrypted: bool
    runs: int
    time_ms: float
    bytes_up: int
    bytes_down: int

    @property
    def bytes_total(self) -> int:
        return self.bytes_up + self.bytes_down


async def reconnect(target: Target, runs: int) -> ReconnectResult:
    """The connection drops (the proxy cuts both sides); the client notices,
    connects again at once and logs in: time and bytes until it is ready."""
    proxy = CountingProxy(target.server.host, target.port)
    await proxy.start()
    driver = target.driver("a0", proxy.port)
    times, ups, downs = [], [], []
    try:
        await driver.start(TIMEOUT)
        for run in range(runs):
            flow = await proxy.flow(run)
            await quiet([flow])
            dropped = time.perf_counter()
            flow.abort()
            ready = await driver.wait_ready(TIMEOUT, after=dropped)
            new = await proxy.flow(run + 1)
            await quiet([new])
            times.append(ready - dropped)
            ups.append(new.up)
            downs.append(new.down)
    finally:
        await driver.close()
        await proxy.close()
    v = target.variant
    return ReconnectResult(
        v.key, v.label, v.encrypted, runs, statistics.median(times) * 1000, median_int(ups), median_int(downs)
    )


# ---- a recorded conversation (plaintext variants: the XML is readable)


@dataclass
class Transcript:
    variant: str
    lines: list[tuple[str, float, str, str]]  # (user, seconds, "C"/"S", text)


async def conversation(target: Target) -> Transcript:
    """alice logs in, bob logs in, alice says hello, bob answers, both leave."""
    proxies = {user: CountingProxy(target.server.host, target.port, record=True) for user in ("alice", "bob")}
    for proxy in proxies.values():
        await proxy.start()
    alice = target.driver("alice", proxies["alice"].port)
    bob = target.driver("bob", proxies["bob"].port)
    inbox: dict[str, asyncio.Queue[str]] = {"alice": asyncio.Queue(), "bob": asyncio.Queue()}
    alice.on_body = lambda body, _t: inbox["alice"].put_nowait(body)
    bob.on_body = lambda body, _t: inbox["bob"].put_nowait(body)
    started = time.perf_counter()
    try:
        await alice.start(TIMEOUT)
        await _settle(proxies["alice"])
        await bob.start(TIMEOUT)
        await _settle(proxies["bob"], proxies["alice"])
        alice.send("bob", "hello 你好")
        await asyncio.wait_for(inbox["bob"].get(), TIMEOUT)
        await _settle(proxies["bob"], proxies["alice"])
        bob.send("alice", "hi alice")
        await asyncio.wait_for(inbox["alice"].get(), TIMEOUT)
        await _settle(proxies["bob"], proxies["alice"])
    finally:
        await alice.close()
        await _settle(proxies["bob"], proxies["alice"])
        await bob.close()
        await _settle(proxies["bob"])
        for proxy in proxies.values():
            await proxy.close()
    lines = []
    for user, proxy in proxies.items():
        for flow in proxy.flows:
            for chunk in flow.chunks:
                direction = "C" if chunk.direction == "up" else "S"
                lines.append((user, chunk.time - started, direction, chunk.data.decode(errors="replace")))
    lines.sort(key=lambda line: line[1])
    return Transcript(target.variant.key, lines)


async def _settle(*proxies: CountingProxy) -> None:
    flows = [flow for proxy in proxies for flow in proxy.flows]
    await quiet(flows, period=0.1)
