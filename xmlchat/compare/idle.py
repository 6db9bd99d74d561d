"""What an idle client costs: requests and bytes per minute while nobody writes.

Every full variant's client logs in through its own counting proxy; then all
of them sit idle at once for the same window, so the run takes one window
whatever the number of variants. What crosses the proxy in that window is
the transport's price of staying reachable: heartbeats on a stream (the
native client pings after 30 s of silence, the server pings an XMPP client
after half its idle timeout), a held request answered empty every ``wait``
for BOSH, a request every interval for short polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from xmlchat.compare.clients import ChatDriver
from xmlchat.compare.proxy import CountingProxy, Flow
from xmlchat.compare.records import IdleResult
from xmlchat.compare.targets import TIMEOUT, Target, close_all
from xmlchat.compare.wire import quiet


def _requests(driver: ChatDriver) -> int:
    return int(getattr(driver, "requests", 0))


def _counts(proxy: CountingProxy) -> tuple[int, int, int, int]:
    chunks = [c for flow in proxy.flows for c in flow.chunks]
    ups = sum(1 for c in chunks if c.direction == "up")
    return ups, len(chunks) - ups, proxy.up, proxy.down


async def idle(targets: Sequence[Target], seconds: float) -> list[IdleResult]:
    """One client per target, all idle together for ``seconds``."""
    proxies = [CountingProxy(t.server.host, t.port) for t in targets]
    for proxy in proxies:
        await proxy.start()
    drivers = [t.driver(f"idle{i}", p.port) for i, (t, p) in enumerate(zip(targets, proxies, strict=True))]
    try:
        await asyncio.gather(*(d.start(TIMEOUT) for d in drivers))
        flows: list[Flow] = [f for p in proxies for f in p.flows]
        await quiet(flows, period=0.3)  # presence and roster answers are in
        before = [(_requests(d), *_counts(p)) for d, p in zip(drivers, proxies, strict=True)]
        await asyncio.sleep(seconds)  # the measurement window itself
        after = [(_requests(d), *_counts(p)) for d, p in zip(drivers, proxies, strict=True)]
    finally:
        await close_all(drivers)
        for proxy in proxies:
            await proxy.close()
    results = []
    for target, b, a in zip(targets, before, after, strict=True):
        v = target.variant
        delta = [x - y for x, y in zip(a, b, strict=True)]
        results.append(IdleResult(v.key, v.label, v.encrypted, seconds, *delta))
    return results
