"""ejabberd (Debian's package), run in the foreground as our child.

Started with ``erl`` directly, with the arguments ``ejabberdctl foreground`` would
use: Debian's ``ejabberdctl`` switches to the ``ejabberd`` user when run as root,
which could not write our temporary directory. Erlang distribution (needed only to
create the accounts) listens on a private loopback port with ``-start_epmd false``,
so no epmd daemon is left behind.

Accounts: one hidden Erlang node connects to the server and calls
``ejabberd_auth:try_register/3`` with a ready ``#scram{}`` record per user, i.e. the
SCRAM-SHA-1 keys computed by :mod:`benchmarks.accounts` (same salts and iteration
count as Prosody's). About 1 ms per user; ``ejabberdctl register`` costs about half a
second per user, and registering with a plain password makes ejabberd run PBKDF2
itself (~20 ms per user here).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path

from benchmarks.accounts import ITERATIONS, Account, derive_all
from benchmarks.servers import Server, ServerError, free_port, which

ERL_LIBS = "/usr/lib/x86_64-linux-gnu"

CONFIG = """\
# Written by benchmarks/servers/ejabberd.py
loglevel: warning
log_rotate_count: 0
hosts:
  - localhost
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 262144
    # no traffic shaping, no TLS
    shaper: none
    access: c2s
    starttls: false
    starttls_required: false
auth_method: internal
# Passwords stored as SCRAM-SHA-1; ejabberd's iteration count is 4096
auth_password_format: scram
disable_sasl_mechanisms: []
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
shaper: {{}}
shaper_rules: {{}}
# Not rate-limited: no max_user_sessions cap beyond the default infinity
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
"""


class Ejabberd(Server):
    name = "ejabberd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.node = "ejbench@localhost"
        self.cookie = secrets.token_hex(16)
        self.dist_port = 0

    @classmethod
    def unavailable(cls) -> str | None:
        if which("erl") is None or not list(Path(ERL_LIBS).glob("ejabberd-*")):
            return "ejabberd is not installed (apt-get install ejabberd)"
        return None

    @property
    def config_path(self) -> Path:
        return self.workdir / "ejabberd.yml"

    def _env(self) -> dict[str, str]:
        return {
            "EJABBERD_CONFIG_PATH": str(self.config_path),
            "EJABBERD_LOG_PATH": str(self.workdir / "logs" / "ejabberd.log"),
            "ERL_LIBS": ERL_LIBS,
            "ERL_MAX_PORTS": "65536",
            "ERL_MAX_ETS_TABLES": "2800",
            "ERL_CRASH_DUMP": str(self.workdir / "logs" / "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
            "HOME": str(self.workdir),
        }

    def _dist_args(self) -> list[str]:
        return ["-setcookie", self.cookie, "-erl_epmd_port", str(self.dist_port),
                "-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}"]

    def prepare(self, accounts: Sequence[Account]) -> None:
        self.ports = {"xmpp": free_port()}
        self.dist_port = free_port()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        (self.workdir / "spool").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG.format(port=self.ports["xmpp"]))
        creds = derive_all(accounts, ITERATIONS)
        terms = self.workdir / "accounts.terms"
        with terms.open("w") as f:
            for c in creds:
                f.write(
                    f'{{<<"{c.user}">>,<<"{c.b64(c.stored_key)}">>,<<"{c.b64(c.server_key)}">>,'
                    f'<<"{c.b64(c.salt)}">>,{c.iterations}}}.\n'
                )
        self.start()
        try:
            self._register(terms, len(creds))
        finally:
            self.stop()

    def _register(self, terms: Path, expected: int) -> None:
        script = (
            f"N='{self.node}', {{ok,T}}=file:consult(\"{terms}\"), "
            "R=[rpc:call(N, ejabberd_auth, try_register, "
            "[U, <<\"localhost\">>, {scram,SK,SvK,S,sha,I}]) || {U,SK,SvK,S,I} <- T], "
            "Bad=[X || X <- R, X =/= ok], "
            "io:format(\"registered ~p failed ~p ~p~n\", "
            "[length(R)-length(Bad), length(Bad), lists:sublist(Bad, 3)]), "
            "halt(case Bad of [] -> 0; _ -> 1 end)."
        )
        argv = ["erl", "-sname", f"ctl{secrets.token_hex(3)}@localhost", "-hidden", "-noshell",
                *self._dist_args(), "-dist_listen", "false", "-eval", script]
        out = subprocess.run(argv, cwd=self.workdir, env=self._full_env(), capture_output=True,
                             text=True, timeout=600, check=False)
        if out.returncode != 0 or f"registered {expected} " not in out.stdout:
            raise ServerError(f"ejabberd account import failed: {out.stdout}{out.stderr}")

    def _full_env(self) -> dict[str, str]:
        return {**os.environ, **self._env()}

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = ["erl", "-sname", self.node, "+K", "true", "+P", "1000000", *self._dist_args(),
                "-mnesia", "dir", f'"{self.workdir / "spool"}"', "-s", "ejabberd", "-noinput"]
        return argv, self._env()

    def measured_pid(self) -> int:
        # erl execs erlexec, which execs beam.smp: the same pid, normally. Measure the
        # tree anyway (it also holds erl_child_setup).
        assert self.proc is not None
        return self.proc.pid

    def version(self) -> str:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ejabberd"],
                             capture_output=True, text=True, check=False)
        return out.stdout.strip() or "?"

