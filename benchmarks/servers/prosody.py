"""Prosody (Debian's package), run in the foreground as our child.

Accounts are written straight into Prosody's internal store, one file per user
(``DATA/localhost/accounts/NAME.dat``, a Lua table), with SCRAM-SHA-1 keys computed
by :mod:`benchmarks.accounts`: exactly what ``mod_auth_internal_hashed`` writes
itself, with the same iteration count as the other servers. ``prosodyctl register``
would do the same at about a second per user.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from benchmarks.accounts import ITERATIONS, Account, derive_all
from benchmarks.servers import Server, free_port, which

CONFIG = """\
-- Written by benchmarks/servers/prosody.py
run_as_root = true            -- the harness may run as root; never switch users
daemonize = false
pidfile = "{work}/prosody.pid"
data_path = "{work}/data"
certificates = "{work}/certs"
log = {{ warn = "{work}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
network_settings = {{ tcp_backlog = 1024 }}
-- Plain TCP; SASL PLAIN allowed without TLS
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- Passwords stored as SCRAM-SHA-1 with {iterations} PBKDF2 rounds
authentication = "internal_hashed"
default_iteration_count = {iterations}
storage = "internal"
-- No rate limits: mod_limits is simply not loaded
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping";{extra_modules} }}
modules_disabled = {{ "s2s"; "limits"; "tls"; "offline"; "c2s_limits"; }}
VirtualHost "localhost"
-- The room fan-out scenario's rooms: any user creates one, open at once
-- (no locking until configured), history as xmlchat's (20), no mod_muc_limits.
Component "conference.localhost" "muc"
    restrict_room_creation = false
    muc_room_locking = false
    max_history_messages = 20
"""

ACCOUNT = """\
return {{
\t["iteration_count"] = {iterations};
\t["salt"] = "{salt}";
\t["server_key"] = "{server_key}";
\t["stored_key"] = "{stored_key}";
}};
"""


class Prosody(Server):
    name = "prosody"
    rooms = "conference.localhost"
    extra_modules: tuple[str, ...] = ()

    @classmethod
    def unavailable(cls) -> str | None:
        if which("prosody") is None:
            return "prosody is not installed (apt-get install prosody)"
        return None

    @property
    def config_path(self) -> Path:
        return self.workdir / "prosody.cfg.lua"

    def prepare(self, accounts: Sequence[Account]) -> None:
        self.ports = {"xmpp": free_port()}
        (self.workdir / "certs").mkdir(parents=True, exist_ok=True)
        store = self.workdir / "data" / "localhost" / "accounts"
        store.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            CONFIG.format(work=self.workdir, port=self.ports["xmpp"], iterations=ITERATIONS,
                          extra_modules="".join(f' "{m}";' for m in self.extra_modules))
        )
        for c in derive_all(accounts, ITERATIONS):
            # Prosody's own salts are UUID strings; ours are hex strings. Keys are hex.
            (store / f"{c.user}.dat").write_text(
                ACCOUNT.format(iterations=c.iterations, salt=c.salt.decode(),
                               server_key=c.server_key.hex(), stored_key=c.stored_key.hex())
            )

    def command(self) -> tuple[list[str], dict[str, str]]:
        return ["prosody", "--config", str(self.config_path), "-F"], {}

    def version(self) -> str:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prosody"],
                             capture_output=True, text=True, check=False)
        return out.stdout.strip() or "?"


class ProsodySmacks(Prosody):
    """Prosody with ``mod_smacks`` (XEP-0198, in 0.12's core modules) loaded, its
    settings Prosody's defaults: an ``<r/>`` whenever a stanza is unacknowledged
    and none is outstanding, a queue of 500, resumption offered. Driven with
    the ``xmpp-sm`` driver, it is the like-for-like comparison for xmlchat's
    durable acknowledgements (issue 11)."""

    name = "prosody-smacks"
    extra_modules = ("smacks",)
