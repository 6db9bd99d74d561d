"""The goals of issue 16 and issue 11's durability goal, evaluated on a results
file of ``python -m benchmarks.run``: every figure from that one run, so the
ratios compare servers measured side by side.

Each :class:`Goal` computes its measured value from the run's medians (or from
its ``session_memory`` figures) and compares it with a limit; a figure the run
did not measure (a target or scenario left out) makes the goal "not measured",
never "met".
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]

XMPP, NATIVE = "xmlchat", "xmlchat:native"
PROSODY, RELAY = "prosody", "relay"
MEMORY, MEMORY_NATIVE = "xmlchat-memory", "xmlchat-memory:native"
SM_XMLCHAT, SM_PROSODY = "xmlchat:xmpp-sm", "prosody-smacks:xmpp-sm"

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"


@dataclass(frozen=True)
class Measured:
    value: float
    shown: str  # the value as the report prints it, with what it was computed from


@dataclass(frozen=True)
class Goal:
    issue: str  # where the goal is written, e.g. "16 (1)"
    text: str
    op: str  # ">=", "<=" or ">"
    limit: float
    limit_shown: str
    measure: Callable[[Doc], Measured | None]


@dataclass(frozen=True)
class Outcome:
    goal: Goal
    measured: Measured | None
    status: str


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt}


def fmt(v: float) -> str:
    """Numbers as the report prints them: thousands separated, 3 significant digits."""
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3f}"


def median(doc: Doc, target: str, group: str, metric: str) -> float | None:
    v = doc.get("servers", {}).get(target, {}).get("median", {}).get(group, {}).get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


def ratio(a: str, b: str, group: str, metric: str = "per_cpu_s") -> Callable[[Doc], Measured | None]:
    def measure(doc: Doc) -> Measured | None:
        x, y = median(doc, a, group, metric), median(doc, b, group, metric)
        if x is None or y is None or y == 0:
            return None
        return Measured(x / y, f"{x / y:.2f}× ({fmt(x)} / {fmt(y)})")
    return measure


def value(target: str, group: str, metric: str, unit: str,
          scale: float = 1.0) -> Callable[[Doc], Measured | None]:
    def measure(doc: Doc) -> Measured | None:
        v = median(doc, target, group, metric)
        if v is None:
            return None
        return Measured(v * scale, f"{fmt(v * scale)} {unit}")
    return measure


def idle_kib(target: str) -> Callable[[Doc], Measured | None]:
    """KiB per idle plaintext session at the largest count the run opened."""
    def measure(doc: Doc) -> Measured | None:
        groups = doc.get("servers", {}).get(target, {}).get("median", {})
        sizes = [int(k.rsplit("_", 1)[1]) for k in groups.get("idle_memory", {})
                 if k.startswith("kib_per_session_")]
        if not sizes:
            return None
        n = max(sizes)
        v = median(doc, target, "idle_memory", f"kib_per_session_{n}")
        return None if v is None else Measured(v, f"{fmt(v)} KiB at {n:,} sessions")
    return measure


def session_memory(kind: str) -> Callable[[Doc], Measured | None]:
    """From ``make bench-memory``'s measurement, folded into the run."""
    def measure(doc: Doc) -> Measured | None:
        sm = doc.get("session_memory") or {}
        v = (sm.get("kib_per_session") or {}).get(kind)
        if v is None:
            return None
        return Measured(float(v), f"{fmt(v)} KiB ({sm.get('protocol', '?')}, "
                                  f"{sm.get('loop', '?')}, {sm.get('sessions', 0):,} sessions)")
    return measure


def durable(doc: Doc) -> Measured | None:
    """1 when every xmlchat target but the in-memory ones stored before acking."""
    servers = doc.get("servers", {})
    flags = {k: v.get("durable") for k, v in servers.items()
             if k.split(":")[0] == "xmlchat" and "median" in v}
    if not flags or any(f is None for f in flags.values()):
        return None
    off = [k for k, f in flags.items() if not f]
    shown = "on in " + ", ".join(k for k, f in flags.items() if f)
    return Measured(0.0 if off else 1.0, shown + (f"; off in {', '.join(off)}" if off else ""))


def _scenario_goals() -> list[Goal]:
    where = [("messages", "pairs (50 × 10 in flight)"),
             ("messages_idle", "pairs with 5,000 idle sessions"),
             ("messages_after_churn", "pairs after 5,000 logins came and went"),
             ("fanout", "fan-out to 500")]
    out = [Goal("16 (2)", f"XMPP / Prosody, per server CPU-second: {what}", ">=", 2.5,
                "≥ 2.5×", ratio(XMPP, PROSODY, group)) for group, what in where]
    out += [Goal("16 (2)", f"relay / XMPP, per server CPU-second: {what}", "<=", 3.0,
                 "≤ 3×", ratio(RELAY, XMPP, group)) for group, what in where]
    return out


GOALS: list[Goal] = [
    Goal("16 (1)", "native / XMPP, messages per server CPU-second", ">=", 1.3, "≥ 1.3×",
         ratio(NATIVE, XMPP, "messages")),
    Goal("16 (1)", "native / Prosody, messages per server CPU-second", ">=", 2.0, "≥ 2×",
         ratio(NATIVE, PROSODY, "messages")),
    *_scenario_goals(),
    Goal("16 (3)", "max one-way latency with 5,000 idle sessions, XMPP", "<=", 250, "≤ 250 ms",
         value(XMPP, "messages_idle", "max_ms", "ms")),
    Goal("16 (3)", "max one-way latency with 5,000 idle sessions, native", "<=", 250,
         "≤ 250 ms", value(NATIVE, "messages_idle", "max_ms", "ms")),
    Goal("16 (3)", "ping-pong round trip p99, low load, XMPP", "<=", 1.5, "≤ 1.5 ms",
         value(XMPP, "pingpong", "rtt_p99_ms", "ms")),
    Goal("16 (3)", "ping-pong round trip p99, low load, native", "<=", 1.5, "≤ 1.5 ms",
         value(NATIVE, "pingpong", "rtt_p99_ms", "ms")),
    Goal("16 (4)", "KiB per idle authenticated session, plaintext, XMPP", "<=", 20, "≤ 20",
         idle_kib(XMPP)),
    Goal("16 (4)", "KiB per idle authenticated session, plaintext, native", "<=", 20, "≤ 20",
         idle_kib(NATIVE)),
    Goal("16 (4)", "KiB per idle authenticated session, TLS", "<=", 40, "≤ 40",
         session_memory("tls")),
    Goal("16 (4)", "KiB per pending TLS handshake", "<=", 40, "≤ 40",
         session_memory("tls_handshake_pending")),
    Goal("16 (4)", "RSS growth after 5,000 logins came and went, XMPP", "<=", 30, "≤ 30 MB",
         value(XMPP, "messages_after_churn", "rss_growth_kib", "MB", 1 / 1024)),
    Goal("16 (4)", "RSS growth after 5,000 logins came and went, native", "<=", 30, "≤ 30 MB",
         value(NATIVE, "messages_after_churn", "rss_growth_kib", "MB", 1 / 1024)),
    Goal("16 (5)", "durable acknowledgements on in the xmlchat figures", ">=", 1, "on",
         durable),
    Goal("11 (8)", "durable / in-memory, messages per server CPU-second, XMPP", ">=", 0.75,
         "≥ 0.75×", ratio(XMPP, MEMORY, "messages")),
    Goal("11 (8)", "durable / in-memory, messages per server CPU-second, native", ">=", 0.75,
         "≥ 0.75×", ratio(NATIVE, MEMORY_NATIVE, "messages")),
    Goal("11 (8)", "xmlchat / Prosody with mod_smacks, both with XEP-0198 and an `<r/>` per "
         "message, messages per server CPU-second", ">", 1.0, "> 1×",
         ratio(SM_XMLCHAT, SM_PROSODY, "messages")),
]


def evaluate(doc: Doc, goals: list[Goal] | None = None) -> list[Outcome]:
    out = []
    for g in GOALS if goals is None else goals:
        m = g.measure(doc)
        status = NOT_MEASURED if m is None else MET if _OPS[g.op](m.value, g.limit) else NOT_MET
        out.append(Outcome(g, m, status))
    return out
