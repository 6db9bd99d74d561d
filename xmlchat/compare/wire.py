"""The scenarios read on the wire: bytes and round trips, through the counting proxy.

Connect to first message, bytes per message, reconnect, and a recorded
conversation. Bytes and round trips are read from the wire by
:class:`~xmlchat.compare.proxy.CountingProxy`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Final, Literal

from xmlchat.compare.clients import ChatDriver
from xmlchat.compare.proxy import CountingProxy, Flow
from xmlchat.compare.proxy import round_trips as count_round_trips
from xmlchat.compare.records import ConnectResult, MessageResult, ReconnectResult, Transcript, median_int
from xmlchat.compare.targets import TIMEOUT, Target, close_all

# Silence on the wire that ends a measurement: trailing acks, presence echoes.
QUIET: Final = 0.04

CHINESE: Final = (
    "我们在同一个服务器上同时运行两种协议，用同一批用户，测量每条消息在网络上真正花费的字节数和往返次数。"
    "标准协议带来了生态、联邦和扩展，自定义协议换来了更少的字节和更简单的实现。"
)


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


# ---- connect to first message


def flows_of(*proxies: CountingProxy) -> list[Flow]:
    """Every connection the proxies carried: an HTTP client may open more than one."""
    return [flow for proxy in proxies for flow in proxy.flows]


async def _login_through_proxy(
    target: Target, user: str, delay: float
) -> tuple[float, ChatDriver, CountingProxy]:
    proxy = CountingProxy(target.server.host, target.port, delay=delay)
    await proxy.start()
    driver = target.driver(user, proxy.port)
    started = time.perf_counter()
    try:
        await driver.start(TIMEOUT)
        await proxy.flow(0)
        await quiet(flows_of(proxy))
    except BaseException:
        await driver.close()
        await proxy.close()
        raise
    return driver.ready_at - started, driver, proxy


async def connect(target: Target, runs: int, rtt: float) -> ConnectResult:
    """From TCP connect until the user can send a first message and is online."""
    times, ups, downs = [], [], []
    detail = ""
    for _ in range(runs):
        elapsed, driver, proxy = await _login_through_proxy(target, "a0", 0.0)
        times.append(elapsed)
        ups.append(proxy.up)
        downs.append(proxy.down)
        detail = driver.detail
        await driver.close()
        await proxy.close()
    # Round trips: again with every answer held back for `rtt` (see proxy.py).
    elapsed_rtt, driver, proxy = await _login_through_proxy(target, "a0", rtt)
    chunks = [c for flow in flows_of(proxy) for c in flow.chunks if c.time <= driver.ready_at]
    round_trips = count_round_trips(chunks)
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
        await proxies[0].flow(0)
        await proxies[1].flow(0)
        # One message first, so that what follows is the steady state: an HTTP
        # client opens its second connection (and TLS handshake) on first use.
        sender.send(recipient.user, "warm-up")
        await asyncio.wait_for(received.get(), TIMEOUT)
        await quiet(flows_of(*proxies))
        for script, body in bodies(sizes):
            samples: list[list[int]] = []
            for _ in range(repeats):
                before = [proxies[0].up, proxies[0].down, proxies[1].down, proxies[1].up]
                sender.send(recipient.user, body)
                got = await asyncio.wait_for(received.get(), TIMEOUT)
                if got != body:
                    raise RuntimeError(f"{target.variant.key}: body changed in transit")
                await quiet(flows_of(*proxies))
                after = [proxies[0].up, proxies[0].down, proxies[1].down, proxies[1].up]
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


# ---- reconnect


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
