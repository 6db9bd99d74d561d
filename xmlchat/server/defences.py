"""The limits of docs/security.md that the server shares among its listeners:
the admission of connections not logged in yet, the login guard and the
per-IP rate buckets, kept together so a reload reaches them all."""

from __future__ import annotations

import logging
import time

from xmlchat.config import Limits
from xmlchat.errors import AdmissionRefused
from xmlchat.metrics import Metrics
from xmlchat.server.admission import Admission, Pending
from xmlchat.server.login_guard import LoginGuard
from xmlchat.server.throttle import AddressBuckets

log = logging.getLogger("xmlchat.server.app")


class Defences:
    def __init__(self, limits: Limits, metrics: Metrics) -> None:
        self.metrics = metrics
        self.login_guard = LoginGuard(limits, metrics, time.monotonic)
        self.admission = Admission(limits.max_pending_per_ip, limits.max_pending, self.login_guard.locked_out)
        self.addresses = AddressBuckets(limits)

    def admit(self, where: str, address: str) -> Pending:
        """A place for a connection to ``where`` from ``address``; a refusal is
        logged and counted, then raised (AdmissionRefused) for the caller to
        say in its protocol, or not at all before a TLS handshake."""
        try:
            return self.admission.admit(address)
        except AdmissionRefused as refusal:
            self.metrics.limit_hit(refusal.reason)
            log.info("refused a connection to %s from %s: %s", where, address, refusal.text)
            raise

    def limits_changed(self, limits: Limits) -> None:
        """A reload: the caps and the login guard follow at once, per-IP rates
        for addresses seen from then on."""
        self.login_guard.limits = limits
        self.admission.per_ip, self.admission.total = limits.max_pending_per_ip, limits.max_pending
        self.addresses.limits = limits
