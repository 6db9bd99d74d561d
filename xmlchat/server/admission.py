"""Who may open a connection: at most so many not yet logged in, per client IP
and in all, and none from an IP locked out for guessing passwords.

Every listener asks before it spends anything on a connection (a TLS
handshake holds ~85 KiB until it finishes)::

    try:
        pending = admission.admit(ip)       # raises AdmissionRefused (policy-violation)
    except AdmissionRefused as refusal:
        ...                                 # say so if the protocol can, close
    ...
    pending.release()                       # once logged in, and when it ends

A pending connection counts until :meth:`Pending.release`; releasing twice is
harmless, so a front end releases at login and its ``finally`` again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Final

from xmlchat.errors import AdmissionRefused

# Why a connection was refused, as the metrics label it.
PER_IP: Final = "pending_per_ip"
TOTAL: Final = "pending_total"
LOCKED_OUT: Final = "ip_locked_out"


class Pending:
    """One admitted connection's place until it is logged in or gone."""

    __slots__ = ("_admission", "ip")

    def __init__(self, admission: Admission, ip: str) -> None:
        self._admission: Admission | None = admission
        self.ip = ip

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._release(self.ip)


class Admission:
    """The caps on connections not yet logged in (``limits.max_pending_per_ip``,
    ``limits.max_pending``); ``locked_out(ip)`` says whether the login guard
    has locked an address out."""

    def __init__(
        self, per_ip: int, total: int, locked_out: Callable[[str], bool] = lambda _ip: False
    ) -> None:
        self.per_ip, self.total = per_ip, total
        self._locked_out = locked_out
        self._by_ip: Counter[str] = Counter()
        self._count = 0

    @property
    def pending(self) -> int:
        return self._count

    def admit(self, ip: str) -> Pending:
        if self._locked_out(ip):
            raise AdmissionRefused(LOCKED_OUT, "too many failed logins from your address; try again later")
        if self._by_ip[ip] >= self.per_ip:
            raise AdmissionRefused(PER_IP, "too many connections not logged in from your address")
        if self._count >= self.total:
            raise AdmissionRefused(TOTAL, "too many connections not logged in; try again later")
        self._by_ip[ip] += 1
        self._count += 1
        return Pending(self, ip)

    def _release(self, ip: str) -> None:
        self._count -= 1
        self._by_ip[ip] -= 1
        if self._by_ip[ip] <= 0:
            del self._by_ip[ip]
