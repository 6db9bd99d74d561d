"""The scenarios. Each one runs on a freshly started server and returns groups of
metrics: ``{group: {metric: value}}``. Latencies are in milliseconds, rates per
second of wall time, "per_cpu_s" figures per second of server CPU (user+system,
all threads and child processes).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from benchmarks import procstat
from benchmarks.accounts import AccountPool
from benchmarks.loadgen import LoadGen, Reply, merged, split
from benchmarks.servers import Server

Metrics = dict[str, float]
Groups = dict[str, Metrics]


@dataclass(frozen=True)
class Sizes:
    logins: int = 5000  # logins that come and go (rate, latency; then churn)
    login_concurrency: int = 50  # logins in progress at once, over all workers
    idle_small: int = 1000  # idle sessions: RSS reading 1
    idle_attached: int = 5000  # idle sessions during the second message run
    idle_large: int = 10000  # idle sessions: RSS reading 2
    open_concurrency: int = 100  # logins at once while opening idle sessions
    pairs: int = 50  # sender -> receiver pairs
    window: int = 10  # messages in flight per pair
    duration: float = 10.0  # seconds of each message run
    fanout_recipients: int = 500
    broadcasts: int = 40
    fanout_window: int = 1  # broadcasts in flight
    pingpong_rounds: int = 500
    room_occupants: int = 500  # one XEP-0045 room (the sender among them)
    room_broadcasts: int = 40
    settle: float = 2.0  # seconds to wait before reading RSS

    def pool(self) -> AccountPool:
        recipients = max(self.fanout_recipients, self.room_occupants - 1)
        return AccountPool(max(self.logins, self.idle_large), self.pairs, recipients)


FULL = Sizes()
QUICK = Sizes(logins=100, login_concurrency=20, idle_small=50, idle_attached=100,
              idle_large=200, open_concurrency=50, pairs=20, duration=2.0,
              fanout_recipients=50, broadcasts=10, pingpong_rounds=100, settle=0.5,
              room_occupants=50, room_broadcasts=10)


@dataclass
class Context:
    server: Server
    lg: LoadGen
    pool: AccountPool
    sizes: Sizes
    log: Callable[[str], None] = print
    timeout: float = 600.0  # bound on any one load-generator command
    notes: list[str] = field(default_factory=list)


@dataclass
class Usage:
    server_cpu_s: float
    loadgen_cpu_s: float
    wall_s: float
    after: procstat.Sample
    # CPU seconds used by everything else on the machine meanwhile (other jobs, the
    # coordinator): non-zero means the measurement shared the CPUs.
    other_cpu_s: float


class Meter:
    """Server and load-generator CPU over a stretch of wall time."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.s0 = procstat.sample(ctx.server.pid)
        self.l0 = procstat.cpu_seconds(ctx.lg.pids)
        self.m0 = procstat.machine_busy_seconds()
        self.t0 = time.monotonic()

    def stop(self) -> Usage:
        s1 = procstat.sample(self.ctx.server.pid)
        server = s1.cpu_s - self.s0.cpu_s
        loadgen = procstat.cpu_seconds(self.ctx.lg.pids) - self.l0
        other = procstat.machine_busy_seconds() - self.m0 - server - loadgen
        return Usage(server, loadgen, time.monotonic() - self.t0, s1, max(0.0, other))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _ms(values_ns: Iterable[int]) -> list[float]:
    return sorted(v / 1e6 for v in values_ns)


def _span(replies: Sequence[Reply]) -> float:
    end: int = max(r["t_end"] for r in replies)
    start: int = min(r["t_start"] for r in replies)
    return (end - start) / 1e9


def _usage_metrics(u: Usage, work: float) -> Metrics:
    return {
        "per_cpu_s": work / u.server_cpu_s if u.server_cpu_s > 0 else math.nan,
        "server_cpu_s": u.server_cpu_s,
        "server_cores": u.server_cpu_s / u.wall_s,
        "loadgen_cores": u.loadgen_cpu_s / u.wall_s,
        "other_cores": u.other_cpu_s / u.wall_s,
    }


def _settled_rss(ctx: Context) -> int:
    """RSS after ``settle`` seconds: the median of five readings 0.2 s apart."""
    time.sleep(ctx.sizes.settle)
    readings = []
    for i in range(5):
        if i:
            time.sleep(0.2)
        readings.append(procstat.sample(ctx.server.pid).rss_kib)
    return sorted(readings)[2]


def _warm_up(ctx: Context) -> None:
    """A few logins and logouts, so code loaded lazily on the first login (ejabberd's
    modules, for one) is not counted as per-session memory."""
    accounts = [a for pair in ctx.pool.pairs()[:10] for a in pair]
    _login(ctx, accounts, 10, keep=None)


def _per_worker(ctx: Context, op: str, items: Sequence[object], key: str,
                **extra: object) -> list[Reply]:
    chunks = split(items, ctx.lg.size)
    return ctx.lg.call([{"op": op, key: c, **extra} if c else None for c in chunks], ctx.timeout)


def _login(ctx: Context, accounts: Sequence[object], concurrency: int,
           keep: str | None) -> list[Reply]:
    per_worker = max(1, concurrency // ctx.lg.size)
    return _per_worker(ctx, "login", accounts, "accounts", concurrency=per_worker,
                       timeout=120.0, keep=keep)


def _login_errors(ctx: Context, replies: Sequence[Reply], what: str) -> int:
    n: int = sum(r["errors"] for r in replies)
    if n:
        samples = [s for r in replies for s in r["error_samples"]][:3]
        ctx.notes.append(f"{what}: {n} failed logins, e.g. {samples}")
    return n


# ---------------------------------------------------------------------------


def run_pairs(ctx: Context) -> Metrics:
    """``pairs`` sender->receiver pairs, ``window`` messages in flight each, for
    ``duration`` seconds; one-way latency from the timestamp in the body."""
    sz = ctx.sizes
    _per_worker(ctx, "pairs_setup", ctx.pool.pairs(), "pairs", timeout=120.0)
    time.sleep(0.2)
    m = Meter(ctx)
    n_active = min(ctx.lg.size, sz.pairs)
    cmd = {"op": "pairs_run", "run_id": uuid.uuid4().hex[:8], "window": sz.window,
           "duration": sz.duration, "drain_timeout": 10.0}
    replies = ctx.lg.call([cmd] * n_active + [None] * (ctx.lg.size - n_active), ctx.timeout)
    u = m.stop()
    ctx.lg.all({"op": "close_workload"}, ctx.timeout)
    lat = _ms(merged(replies, "latencies_ns"))
    received = sum(r["received"] for r in replies)
    return {
        "msgs_per_s": received / _span(replies),
        **_usage_metrics(u, received),
        "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1] if lat else math.nan,
        "sent": sum(r["sent"] for r in replies), "received": received,
        "lost": sum(r["lost"] for r in replies),
        "misordered": sum(r["misordered"] for r in replies),
        "duplicates": sum(r["duplicates"] for r in replies),
        "error_stanzas": sum(r["errors"] for r in replies),
    }


def messages(ctx: Context) -> Groups:
    return {"messages": run_pairs(ctx)}


def pingpong(ctx: Context) -> Groups:
    """Two clients; A sends, B echoes, A sends the next on arrival: one message in
    flight, round-trip time through the server twice."""
    a, b = ctx.pool.pingpong()
    r = ctx.lg.call([{"op": "pingpong", "a": a, "b": b, "rounds": ctx.sizes.pingpong_rounds,
                      "run_id": uuid.uuid4().hex[:8], "timeout": 120.0}]
                    + [None] * (ctx.lg.size - 1), ctx.timeout)[0]
    rtt = _ms(merged([r], "rtt_ns"))
    return {"pingpong": {
        "rtt_p50_ms": percentile(rtt, 50), "rtt_p99_ms": percentile(rtt, 99),
        "rtt_max_ms": rtt[-1] if rtt else math.nan,
        "rounds": len(rtt), "lost": ctx.sizes.pingpong_rounds - r["received"],
        "misordered": r["misordered"], "error_stanzas": r["errors"],
    }}


def fanout(ctx: Context) -> Groups:
    """One sender, ``fanout_recipients`` recipients: a broadcast is one message per
    recipient (XMPP has no multicast to a list of users without MUC or PEP, so 500
    separate stanzas, written in one go). The next broadcast goes out when the last
    recipient has the previous one. All in one worker process: the sender must see
    every arrival to pace itself."""
    sz = ctx.sizes
    sender, recipients = ctx.pool.fanout()
    only_first = [None] * (ctx.lg.size - 1)
    ctx.lg.call([{"op": "fanout_setup", "sender": sender, "recipients": recipients,
                  "timeout": 120.0}, *only_first], ctx.timeout)
    time.sleep(0.2)
    m = Meter(ctx)
    r = ctx.lg.call([{"op": "fanout_run", "run_id": uuid.uuid4().hex[:8],
                      "broadcasts": sz.broadcasts, "window": sz.fanout_window,
                      "timeout": 120.0}, *only_first], ctx.timeout)[0]
    u = m.stop()
    ctx.lg.all({"op": "close_all"}, ctx.timeout)
    deliveries = _ms(merged([r], "delivery_ns"))
    bcast = _ms(merged([r], "broadcast_ns"))
    return {"fanout": {
        "deliveries_per_s": r["received"] / _span([r]),
        **_usage_metrics(u, r["received"]),
        "broadcast_p50_ms": percentile(bcast, 50), "broadcast_p99_ms": percentile(bcast, 99),
        "delivery_p50_ms": percentile(deliveries, 50),
        "delivery_p99_ms": percentile(deliveries, 99),
        "broadcasts": r["broadcasts"], "lost": r["lost"], "misordered": r["misordered"],
        "duplicates": r["duplicates"], "error_stanzas": r["errors"],
    }}


def room_fanout(ctx: Context) -> Groups:
    """One XEP-0045 room with ``room_occupants`` occupants; one of them sends
    ``room_broadcasts`` groupchat messages, and the room delivers each to every
    occupant (the sender too). The next message goes when the last occupant has
    the previous one. Deliveries per server CPU-second is the figure to compare:
    what the room costs, with the occupants' joins (setup) not counted."""
    sz = ctx.sizes
    assert ctx.server.rooms is not None  # run.py skips servers without a room service
    sender, recipients = ctx.pool.fanout()
    occupants = [sender, *recipients[: sz.room_occupants - 1]]
    only_first = [None] * (ctx.lg.size - 1)
    room = f"fanout@{ctx.server.rooms}"
    ctx.lg.call([{"op": "room_setup", "occupants": occupants, "room": room, "timeout": 300.0},
                 *only_first], ctx.timeout)
    time.sleep(0.5)
    m = Meter(ctx)
    r = ctx.lg.call([{"op": "room_run", "run_id": uuid.uuid4().hex[:8],
                      "broadcasts": sz.room_broadcasts, "window": sz.fanout_window,
                      "timeout": 120.0}, *only_first], ctx.timeout)[0]
    u = m.stop()
    ctx.lg.all({"op": "close_all"}, ctx.timeout)
    deliveries = _ms(merged([r], "delivery_ns"))
    bcast = _ms(merged([r], "broadcast_ns"))
    return {"room_fanout": {
        "deliveries_per_s": r["received"] / _span([r]),
        **_usage_metrics(u, r["received"]),
        "broadcast_p50_ms": percentile(bcast, 50), "broadcast_p99_ms": percentile(bcast, 99),
        "delivery_p50_ms": percentile(deliveries, 50),
        "delivery_p99_ms": percentile(deliveries, 99),
        "occupants": len(occupants), "broadcasts": r["broadcasts"], "lost": r["lost"],
        "misordered": r["misordered"], "duplicates": r["duplicates"], "error_stanzas": r["errors"],
    }}


def login_churn(ctx: Context) -> Groups:
    """``logins`` logins, ``login_concurrency`` in progress at a time, each closed right
    after its initial presence; then the message run on the server they left behind."""
    sz = ctx.sizes
    _warm_up(ctx)
    rss0 = _settled_rss(ctx)
    m = Meter(ctx)
    replies = _login(ctx, ctx.pool.general(sz.logins), sz.login_concurrency, keep=None)
    u = m.stop()
    lat = _ms(merged(replies, "latencies_ns"))
    ok = len(lat)
    login = {
        "logins_per_s": ok / _span(replies),
        **_usage_metrics(u, ok),
        "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
        "errors": _login_errors(ctx, replies, "login"),
    }
    rss1 = _settled_rss(ctx)
    after = run_pairs(ctx)
    after["rss_growth_kib"] = rss1 - rss0
    return {"login": login, "messages_after_churn": after}


def idle(ctx: Context) -> Groups:
    """Idle authenticated sessions: RSS per session at ``idle_small`` and ``idle_large``
    sessions, and the message run with ``idle_attached`` of them connected."""
    sz = ctx.sizes
    accounts = ctx.pool.general(sz.idle_large)
    _warm_up(ctx)
    base = _settled_rss(ctx)
    out: Metrics = {"rss_base_kib": base}
    errors = 0
    opened = 0
    mem: Metrics = {}
    for step, target in (("small", sz.idle_small), ("attached", sz.idle_attached),
                         ("large", sz.idle_large)):
        replies = _login(ctx, accounts[opened:target], sz.open_concurrency, keep="idle")
        errors += _login_errors(ctx, replies, f"opening {target} idle sessions")
        opened = target
        alive = sum(r["open"] for r in ctx.lg.all({"op": "open_count", "tag": "idle"},
                                                  ctx.timeout))
        if step == "attached":
            msgs = run_pairs(ctx)
            msgs["idle_sessions"] = alive
            continue
        rss = _settled_rss(ctx)
        s = procstat.sample(ctx.server.pid)
        mem[f"rss_kib_{target}"] = rss
        mem[f"kib_per_session_{target}"] = (rss - base) / max(1, alive)
        mem[f"server_fds_{target}"] = s.fds
        mem[f"open_sessions_{target}"] = alive
    out.update(mem)
    out["open_errors"] = errors
    ctx.lg.all({"op": "close_all"}, ctx.timeout)
    return {"idle_memory": out, "messages_idle": msgs}


# Scenarios only servers with a room service (Server.rooms) run; others skip them.
NEEDS_ROOMS = frozenset({"room_fanout"})

SCENARIOS: dict[str, Callable[[Context], Groups]] = {
    "pingpong": pingpong,
    "messages": messages,
    "fanout": fanout,
    "room_fanout": room_fanout,
    "login_churn": login_churn,
    "idle": idle,
}
