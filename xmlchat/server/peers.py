"""Connections per IP address, counted in one place for every listener.

TCP connections, WebSockets and BOSH sessions all take a place here while
they last (``limits.max_connections_per_ip``), so one address cannot open
more by switching transports.
"""

from __future__ import annotations

import ipaddress
from collections import Counter


class PeerLimit:
    def __init__(self, limit: int, exempt_loopback: bool) -> None:
        self.limit = limit  # 0: no limit
        self.exempt_loopback = exempt_loopback
        self._open: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        """Take a place for ``address``; False when it has its limit already."""
        if not self._counted(address):
            return True
        if self._open[address] >= self.limit:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        if self._counted(address):
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]

    def _counted(self, address: str) -> bool:
        if self.limit <= 0:
            return False
        if self.exempt_loopback:
            try:
                return not ipaddress.ip_address(address).is_loopback
            except ValueError:
                return True
        return True
