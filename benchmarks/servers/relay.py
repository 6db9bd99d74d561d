"""The no-XML relay of :mod:`benchmarks.relay` as a benchmark target: the
yardstick for what a Python server can do, in the same run as the others."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.accounts import Account
from benchmarks.servers import Server, free_port


class Relay(Server):
    name = "relay"

    @classmethod
    def unavailable(cls) -> str | None:
        return None

    def prepare(self, accounts: Sequence[Account]) -> None:
        # Logins are canned: any account, any password.
        self.ports = {"xmpp": free_port()}

    def command(self) -> tuple[list[str], dict[str, str]]:
        # The harness starts servers in their work directory: point it at this checkout.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        return [sys.executable, "-m", "benchmarks.relay", str(self.ports["xmpp"])], {"PYTHONPATH": path}

    def version(self) -> str:
        return "no-XML relay (benchmarks/relay.py)"
