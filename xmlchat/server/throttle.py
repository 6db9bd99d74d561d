"""Inbound rate limits, karma-style like Prosody's mod_limits: a client over
its rate is read more slowly (reads pause, TCP pushes back on the sender),
never cut off for it.

Four token buckets charge every read: the connection's stanzas and bytes, and
its client IP's, shared by all connections from that address (so opening more
connections buys no more rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from xmlchat.config import Limits

# A client IP's burst: this many seconds' worth of its rate.
IP_BURST_SECONDS: Final = 5.0


class TokenBucket:
    """A rate with a burst; a deficit becomes a pause in reading, so a
    flooding client slows itself down and nobody else (TCP backpressure)."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.updated = float(burst), now

    def take(self, n: float, now: float) -> float:
        """Spend ``n`` tokens; return how long to wait before reading again."""
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(slots=True)
class _Address:
    stanzas: TokenBucket
    bytes: TokenBucket
    users: int = 0


@dataclass(slots=True)
class AddressBuckets:
    """The per-IP buckets, kept while the IP has a connection open."""

    limits: Limits
    _by_ip: dict[str, _Address] = field(default_factory=dict)

    def acquire(self, ip: str, now: float) -> _Address:
        address = self._by_ip.get(ip)
        if address is None:
            rate, byte_rate = self.limits.ip_stanzas_per_second, self.limits.ip_bytes_per_second
            address = _Address(
                TokenBucket(rate, rate * IP_BURST_SECONDS, now),
                TokenBucket(byte_rate, byte_rate * IP_BURST_SECONDS, now),
            )
            self._by_ip[ip] = address
        address.users += 1
        return address

    def release(self, ip: str) -> None:
        address = self._by_ip.get(ip)
        if address is not None:
            address.users -= 1
            if address.users <= 0:
                del self._by_ip[ip]


@dataclass(frozen=True, slots=True)
class Pause:
    """How long to stop reading, and which limit asked for it (as
    ``Metrics.limit_hit`` names it: ``stanza_rate``, ``byte_rate``,
    ``ip_stanza_rate``, ``ip_byte_rate``)."""

    seconds: float
    limit: str


NO_PAUSE: Final = Pause(0.0, "")


class Throttle:
    """One connection's buckets and its IP's."""

    def __init__(self, limits: Limits, addresses: AddressBuckets | None, ip: str, now: float) -> None:
        self.stanzas = TokenBucket(limits.stanzas_per_second, limits.stanza_burst, now)
        self.bytes = TokenBucket(limits.bytes_per_second, limits.byte_burst, now)
        self._addresses, self._ip = addresses, ip
        self._address = addresses.acquire(ip, now) if addresses is not None else None

    def limits_changed(self, limits: Limits) -> None:
        """A reload: this connection's rates follow at once (its IP's, once the
        IP has no connection left and starts afresh)."""
        self.stanzas.rate, self.stanzas.burst = limits.stanzas_per_second, float(limits.stanza_burst)
        self.bytes.rate, self.bytes.burst = limits.bytes_per_second, float(limits.byte_burst)

    def charge(self, stanzas: int, size: int, now: float) -> Pause:
        """Charge one read: ``stanzas`` handled, ``size`` bytes; the longest pause asked for."""
        seconds, limit = self.stanzas.take(stanzas, now), "stanza_rate"
        wait = self.bytes.take(size, now)
        if wait > seconds:
            seconds, limit = wait, "byte_rate"
        address = self._address
        if address is not None:
            wait = address.stanzas.take(stanzas, now)
            if wait > seconds:
                seconds, limit = wait, "ip_stanza_rate"
            wait = address.bytes.take(size, now)
            if wait > seconds:
                seconds, limit = wait, "ip_byte_rate"
        return Pause(seconds, limit) if seconds > 0 else NO_PAUSE

    def close(self) -> None:
        if self._addresses is not None and self._address is not None:
            self._addresses.release(self._ip)
            self._address = None
