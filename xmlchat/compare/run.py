"""Running every scenario over every variant: sizes, order and progress."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from xmlchat.compare import datagrams, idle, timing, wire
from xmlchat.compare.clients import quiet_slixmpp
from xmlchat.compare.records import (
    ConnectResult,
    IdleResult,
    LatencyResult,
    MessageResult,
    ReconnectResult,
    ThroughputResult,
    Transcript,
)
from xmlchat.compare.servers import (
    PLAIN_CONFIG,
    SECURE_CONFIG,
    ManagedServer,
    ServerHandle,
    clock_tick,
    target_server,
)
from xmlchat.compare.targets import POLL_INTERVAL, Target, bind_targets, users_for

T = TypeVar("T")

# The two bodies of the per-message table: "hello" and 1 KB of Chinese.
TABLE_SIZES = (5, 1024)


@dataclass(frozen=True)
class Options:
    pairs: int = 10
    messages: int = 300  # per pair, throughput run
    window: int = 32  # messages in flight per pair
    connect_runs: int = 5
    rtt_ms: float = 30.0  # injected to count round trips
    sizes: tuple[int, ...] = (5, 16, 64, 256, 1024, 4096, 16384)
    repeats: int = 2  # per body size
    latency_messages: int = 400
    reconnect_runs: int = 3
    transcripts: bool = True  # record a conversation over each plaintext variant
    poll_latency_messages: int = 15  # short polling: each takes up to the poll interval
    idle_seconds: float = 60.0
    datagrams: int = 400  # per path in the UDP experiment
    quick: bool = False

    @classmethod
    def make(cls, quick: bool = False, pairs: int | None = None, messages: int | None = None) -> Options:
        base = (
            cls(
                pairs=2,
                messages=100,
                connect_runs=1,
                sizes=TABLE_SIZES,
                repeats=1,
                latency_messages=50,
                reconnect_runs=1,
                transcripts=False,
                poll_latency_messages=3,
                idle_seconds=3.0,
                datagrams=100,
                quick=True,
            )
            if quick
            else cls()
        )
        return dataclasses.replace(
            base,
            pairs=pairs if pairs is not None else base.pairs,
            messages=messages if messages is not None else base.messages,
        )


@dataclass
class Results:
    options: Options
    servers: list[dict[str, Any]] = field(default_factory=list)
    connect: list[ConnectResult] = field(default_factory=list)
    messages: list[MessageResult] = field(default_factory=list)
    latency: list[LatencyResult] = field(default_factory=list)
    throughput: list[ThroughputResult] = field(default_factory=list)
    reconnect: list[ReconnectResult] = field(default_factory=list)
    transcripts: list[Transcript] = field(default_factory=list)
    idle: list[IdleResult] = field(default_factory=list)
    datagrams: datagrams.Experiment | None = None
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Progress:
    """``compare: [3/20] xmpp-starttls: connect`` lines on stderr."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        print(f"compare: [{self.done}/{self.total}] {what} ({elapsed:.0f} s)", file=self.stream, flush=True)

    def note(self, what: str) -> None:
        print(f"compare: {what}", file=self.stream, flush=True)


async def run(
    options: Options,
    server_config: str | None = None,
    server_pid: int | None = None,
    stream: TextIO | None = None,
) -> Results:
    quiet_slixmpp()
    started = time.monotonic()
    results = Results(options)
    users = users_for(options.pairs)
    servers: list[ServerHandle]
    log = Progress(0, stream)
    if server_config is None:
        log.note("starting two servers (secure: TLS listeners; plain: plaintext listeners)")
        managed = [ManagedServer("secure", SECURE_CONFIG, users), ManagedServer("plain", PLAIN_CONFIG, users)]
        servers = list(managed)
        outcomes = await asyncio.gather(*(s.start() for s in managed), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            for server in servers:
                await server.stop()
            raise failures[0]
    else:
        servers = [target_server(server_config, server_pid)]
        await servers[0].create_users(users)
    try:
        targets = bind_targets(servers)
        if not targets:
            raise RuntimeError("no listener to measure")
        for server in servers:
            results.servers.append(
                {
                    "name": server.name,
                    "pid": server.pid,
                    "ports": dict(server.ports),
                    "require_encryption": server.require_encryption,
                    "cpu_clock_tick_s": clock_tick(),
                }
            )
        await _run_all(options, targets, results, Progress(_count_steps(options, targets), stream))
    finally:
        for server in servers:
            await server.stop()
    results.seconds = time.monotonic() - started
    return results


def _count_steps(options: Options, targets: list[Target]) -> int:
    full = sum(1 for t in targets if t.variant.full)
    plain = sum(1 for t in targets if t.variant.full and not t.variant.encrypted)
    plain = plain if options.transcripts else 0
    web = sum(1 for t in targets if t.variant.http)
    return 2 * len(targets) - web + full * (len(options.sizes) * 2 + 2) + plain + 2


async def _run_all(options: Options, targets: list[Target], results: Results, progress: Progress) -> None:
    async def attempt(what: str, step: Awaitable[T]) -> T | None:
        """One scenario on one variant; a failure is reported and the run goes on."""
        try:
            return await step
        except Exception as e:
            results.errors.append(f"{what}: {type(e).__name__}: {e}")
            progress.note(f"FAILED {what}: {type(e).__name__}: {e}")
            return None

    o = options
    for t in targets:
        key = t.variant.key
        connected = await attempt(f"{key}: connect", wire.connect(t, o.connect_runs, o.rtt_ms / 1000))
        results.connect += [connected] if connected else []
        progress.step(f"{key}: connect to first message")
    # A variant that cannot log in is not measured further.
    working = {r.variant for r in results.connect}
    skipped = [t for t in targets if t.variant.key not in working]
    progress.total -= sum(_count_steps(o, [t]) - 1 for t in skipped)
    targets = [t for t in targets if t.variant.key in working]
    for t in targets:
        key = t.variant.key
        if not t.variant.full:
            continue
        step = functools.partial(progress.step, f"{key}: bytes per message")
        per_message = await attempt(f"{key}: bytes", wire.message_bytes(t, o.sizes, o.repeats, step))
        results.messages += per_message or []
        polling = t.variant.transport == "poll"
        count = o.poll_latency_messages if polling else o.latency_messages
        # A poll comes every POLL_INTERVAL: messages written at random moments
        # between polls, not in step with them.
        gap = POLL_INTERVAL if polling else 0.0
        lat = await attempt(f"{key}: latency", timing.latency(t, count, gap))
        results.latency += [lat] if lat else []
        progress.step(f"{key}: latency, {count} messages")
        tput = await attempt(f"{key}: throughput", timing.throughput(t, o.pairs, o.messages, o.window))
        results.throughput += [tput] if tput else []
        progress.step(f"{key}: throughput, {o.pairs} pairs x {o.messages} messages")
    for t in targets:
        key = t.variant.key
        if t.variant.http:
            continue  # the web clients log in again as in 'connect'; no reconnect logic of their own
        rec = await attempt(f"{key}: reconnect", wire.reconnect(t, o.reconnect_runs))
        results.reconnect += [rec] if rec else []
        progress.step(f"{key}: reconnect")
    full = [t for t in targets if t.variant.full and t.variant.encrypted]
    idle_rows = await attempt("idle", idle.idle(full, o.idle_seconds))
    results.idle += idle_rows or []
    progress.step(f"{len(full)} variants idle together for {o.idle_seconds:g} s")
    results.datagrams = await attempt("datagrams", datagrams.experiment(o.datagrams))
    progress.step("UDP and TCP over an impaired path")
    for t in targets:
        if o.transcripts and t.variant.full and not t.variant.encrypted:
            transcript = await attempt(f"{t.variant.key}: transcript", wire.conversation(t))
            results.transcripts += [transcript] if transcript else []
            progress.step(f"{t.variant.key}: recorded conversation")
