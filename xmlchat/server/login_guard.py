"""Brute-force protection: failed logins counted per account and IP and per IP.

After ``limits.login_backoff_after`` failed logins for an account from an IP,
the next attempt for that account from that IP must wait ``login_backoff``
seconds, doubling with each failure up to ``login_backoff_max``; earlier attempts are refused
unchecked (:class:`~xmlchat.errors.LoginRefused`), so guessing faster gains
nothing. ``login_lockout_after`` failures lock the account out *for that IP*
only; ``login_ban_after`` failures from one IP, whatever the accounts, lock
the IP out (ejabberd's ``mod_fail2ban``). A lock-out lasts
``login_lockout_seconds`` and failures are forgotten as long after the last.

The front ends count a failure once per connection and account
(``Connection.guard_failed``). Keyed by IP on purpose: the account's owner logging in from elsewhere never
waits for an attacker's guesses (a lock per account alone would let anyone
lock anyone out). Per account in all, failures are only counted, for the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from xmlchat.config import Limits
from xmlchat.errors import LoginRefused
from xmlchat.metrics import Metrics

log = logging.getLogger("xmlchat.security")

K = TypeVar("K", str, tuple[str, str])

# Records kept at most; past it the stalest are forgotten first (memory stays
# bounded however many addresses an attacker has).
MAX_RECORDS = 100_000


@dataclass(slots=True)
class _Strikes:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginGuard:
    def __init__(self, limits: Limits, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.metrics = metrics
        self.clock = clock
        self._by_ip: dict[str, _Strikes] = {}
        self._by_pair: dict[tuple[str, str], _Strikes] = {}

    def locked_out(self, ip: str) -> bool:
        """Is this IP locked out of every account (asked when it connects)?"""
        strikes = self._current(self._by_ip, ip)
        return strikes is not None and strikes.locked_until > self.clock()

    def check(self, ip: str, account: str) -> None:
        """Before a password is checked: raise LoginRefused while the IP, or this
        account from this IP, is locked out or in back-off."""
        now = self.clock()
        by_ip = self._current(self._by_ip, ip)
        if by_ip is not None and by_ip.locked_until > now:
            raise LoginRefused(by_ip.locked_until - now)
        pair = self._current(self._by_pair, (account, ip))
        if pair is None or pair.failures == 0:
            return
        if pair.locked_until > now:
            raise LoginRefused(pair.locked_until - now)
        allowed = pair.last + self.backoff(pair.failures)
        if allowed > now:
            raise LoginRefused(allowed - now)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures."""
        limits = self.limits
        over = failures - limits.login_backoff_after
        if limits.login_backoff <= 0 or over < 0:
            return 0.0
        return float(min(limits.login_backoff_max, limits.login_backoff * 2 ** min(over, 30)))

    def failed(self, ip: str, account: str) -> None:
        now = self.clock()
        limits = self.limits
        pair = self._record(self._by_pair, (account, ip), now)
        by_ip = self._record(self._by_ip, ip, now)
        if pair.failures >= limits.login_lockout_after and pair.locked_until <= now:
            pair.locked_until = now + limits.login_lockout_seconds
            self._locked_out("account", f"account {account} for IP {ip}", pair.failures)
        if by_ip.failures >= limits.login_ban_after and by_ip.locked_until <= now:
            by_ip.locked_until = now + limits.login_lockout_seconds
            self._locked_out("ip", f"IP {ip}", by_ip.failures)

    def succeeded(self, ip: str, account: str) -> None:
        """A good password clears this account's record for this IP (not the IP's)."""
        self._by_pair.pop((account, ip), None)

    def _locked_out(self, scope: str, what: str, failures: int) -> None:
        log.warning(
            "locking out %s for %.0f s after %d failed logins",
            what,
            self.limits.login_lockout_seconds,
            failures,
        )
        self.metrics.limit_hit(f"lockout_{scope}")

    def _current(self, table: dict[K, _Strikes], key: K) -> _Strikes | None:
        """The record, or None once it is stale (forgotten)."""
        strikes = table.get(key)
        if strikes is None:
            return None
        now = self.clock()
        if strikes.locked_until <= now and now - strikes.last > self.limits.login_lockout_seconds:
            del table[key]
            return None
        return strikes

    def _record(self, table: dict[K, _Strikes], key: K, now: float) -> _Strikes:
        strikes = self._current(table, key)
        if strikes is None:
            if len(table) >= MAX_RECORDS:
                self._forget_stalest(table)
            strikes = table[key] = _Strikes()
        strikes.failures += 1
        strikes.last = now
        return strikes

    @staticmethod
    def _forget_stalest(table: dict[K, _Strikes]) -> None:
        # Dicts keep insertion order: the first tenth are the oldest records.
        for key in list(table)[: max(1, len(table) // 10)]:
            del table[key]
