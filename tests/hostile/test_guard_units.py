"""The limiters on their own, with a fake clock: admission, login guard, buckets."""

from __future__ import annotations

import pytest

from xmlchat.config import Limits
from xmlchat.errors import AdmissionRefused, LoginRefused
from xmlchat.metrics import Metrics
from xmlchat.server.admission import LOCKED_OUT, PER_IP, TOTAL, Admission
from xmlchat.server.login_guard import LoginGuard
from xmlchat.server.throttle import AddressBuckets, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__()
        self.lockouts: list[str] = []

    def limit_hit(self, limit: str) -> None:
        self.lockouts.append(limit)


def refusal(admission: Admission, ip: str) -> str:
    with pytest.raises(AdmissionRefused) as refused:
        admission.admit(ip)
    return refused.value.reason


def test_admission_caps_per_ip_and_in_all_and_a_release_frees_a_place() -> None:
    admission = Admission(per_ip=2, total=3)
    first = admission.admit("10.0.0.1")
    admission.admit("10.0.0.1")
    assert refusal(admission, "10.0.0.1") == PER_IP
    admission.admit("10.0.0.2")
    assert refusal(admission, "10.0.0.3") == TOTAL
    first.release()
    first.release()  # twice is harmless
    assert admission.pending == 2
    admission.admit("10.0.0.1")


def test_admission_refuses_a_locked_out_ip() -> None:
    admission = Admission(per_ip=5, total=5, locked_out=lambda ip: ip == "10.6.6.6")
    assert refusal(admission, "10.6.6.6") == LOCKED_OUT
    assert admission.pending == 0


def guard(**limits: float) -> tuple[LoginGuard, Clock, CountingMetrics]:
    clock, metrics = Clock(), CountingMetrics()
    settings = Limits(
        login_backoff_after=2, login_backoff=1.0, login_backoff_max=4.0, login_lockout_after=5, **limits
    )
    return LoginGuard(settings, metrics, clock), clock, metrics


def test_the_backoff_doubles_up_to_its_maximum() -> None:
    g, _, _ = guard()
    assert [g.backoff(n) for n in range(1, 7)] == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_attempts_in_backoff_are_refused_until_it_has_passed() -> None:
    g, clock, _ = guard()
    for _ in range(2):
        g.check("ip", "alice")
        g.failed("ip", "alice")
    with pytest.raises(LoginRefused) as refused:
        g.check("ip", "alice")
    assert refused.value.retry_after == pytest.approx(1.0)
    g.check("other-ip", "alice")  # the owner elsewhere waits for nothing
    clock.now += 1.0
    g.check("ip", "alice")


def test_lockouts_are_per_account_and_ip_then_per_ip_and_expire() -> None:
    g, clock, metrics = guard(login_ban_after=7, login_lockout_seconds=100.0)
    for _ in range(5):
        clock.now += 10
        g.failed("ip", "alice")
    assert metrics.lockouts == ["lockout_account"]
    with pytest.raises(LoginRefused):
        g.check("ip", "alice")
    g.check("ip", "bob")
    assert not g.locked_out("ip")
    g.failed("ip", "bob")
    g.failed("ip", "carol")
    assert metrics.lockouts == ["lockout_account", "lockout_ip"] and g.locked_out("ip")
    clock.now += 101
    assert not g.locked_out("ip")
    g.check("ip", "alice")


def test_success_clears_the_account_record_for_that_ip() -> None:
    g, _, _ = guard()
    for _ in range(3):
        g.failed("ip", "alice")
    g.succeeded("ip", "alice")
    g.check("ip", "alice")


def test_ip_buckets_are_shared_and_forgotten_with_the_last_connection() -> None:
    limits = Limits(stanzas_per_second=0, bytes_per_second=0, ip_bytes_per_second=100.0)
    addresses = AddressBuckets(limits)
    one, two = (Throttle(limits, addresses, "10.0.0.1", 0.0) for _ in range(2))
    assert one.charge(0, 400, 0.0).seconds == 0  # the IP's burst: 5 s worth, 500 bytes
    pause = two.charge(0, 200, 0.0)
    assert pause.limit == "ip_byte_rate" and pause.seconds == pytest.approx(1.0)
    one.close()
    two.close()
    assert Throttle(limits, addresses, "10.0.0.1", 0.0).charge(0, 500, 0.0).seconds == 0
