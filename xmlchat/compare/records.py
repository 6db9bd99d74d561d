"""The plain records the scenarios return, and the statistics that fill them.

:mod:`xmlchat.compare.report` reads only these; it never runs a scenario.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median_int(values: Sequence[int]) -> int:
    return int(statistics.median(values))


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


@dataclass
class Transcript:
    variant: str
    lines: list[tuple[str, float, str, str]]  # (user, seconds, "C"/"S", text)


@dataclass
class IdleResult:
    """One logged-in client that says nothing for ``seconds``, through the proxy."""

    variant: str
    label: str
    encrypted: bool
    seconds: float
    http_requests: int  # requests the client made (0 on a TCP or WebSocket connection)
    writes_up: int  # reads the proxy made on each side: a heartbeat, a poll
    writes_down: int
    bytes_up: int
    bytes_down: int

    def per_minute(self, count: int) -> float:
        return count * 60 / self.seconds if self.seconds else 0.0

    @property
    def requests_per_minute(self) -> float:
        return self.per_minute(self.http_requests)

    @property
    def bytes_per_minute(self) -> float:
        return self.per_minute(self.bytes_up + self.bytes_down)
