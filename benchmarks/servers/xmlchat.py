"""xmlchat, run as ``python -m xmlchat serve --config TOML`` in the foreground.

What this launcher expects from xmlchat's command line:

* ``xmlchat serve --config FILE`` serves until SIGTERM, then exits;
* the TOML keys of :mod:`xmlchat.config` (also honoured as ``XMLCHAT_*`` environment
  variables, which are set too, so ``adduser`` finds the same data directory whether
  or not it takes ``--config``);
* ``xmlchat adduser NAME@localhost --password P`` creates one account.

One account is created with ``adduser`` (checking that path works); the rest in one
process through :class:`xmlchat.storage.sqlite.SqliteStorage`, which is what ``adduser``
writes with: a process per account would take about an hour for 10,000 of them.
Where that API is missing, every account goes through ``adduser``.

The XMPP listener is plaintext with SASL PLAIN allowed, the native listener
plaintext on loopback (for the native driver), TLS listeners off, the per-connection
stanza rate limit off, PBKDF2 iterations 4096 like the other servers. Note: xmlchat
checks a PLAIN password against its SCRAM-SHA-256 row (PBKDF2-HMAC-SHA-256), the
others against SCRAM-SHA-1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.accounts import ITERATIONS, Account
from benchmarks.servers import DOMAIN, Server, ServerError, free_port

CONFIG = """\
# Written by benchmarks/servers/xmlchat.py
hosts = ["{domain}"]
data_dir = "{work}/data"

[listeners.xmpp]
enabled = true
address = "127.0.0.1"
port = {xmpp_port}
tls = "none"

[listeners.xmpp_tls]
enabled = false

[listeners.native]
enabled = false

[listeners.http]
enabled = false

[listeners.https]
enabled = false

[listeners.native_plain]
enabled = true
address = "127.0.0.1"
port = {native_port}
tls = "none"

[xmpp]
require_encryption = false
allow_unencrypted_plain_auth = true

[native]
allow_plaintext_login = true

[limits]
# All the load comes from one address: no rates, and logins in flight by the hundred.
stanzas_per_second = 0.0
bytes_per_second = 0.0
ip_stanzas_per_second = 0.0
ip_bytes_per_second = 0.0
max_pending_per_ip = 100000
max_pending = 100000

[muc]
messages_per_second = 0.0

[storage]
scram_iterations = {iterations}

[log]
level = "warning"

[metrics]
enabled = false
"""

# Creates accounts NAME<TAB>PASSWORD read from stdin, through xmlchat's storage API.
BULK = """\
import asyncio, sys
from xmlchat.config import load
from xmlchat.jid import JID
from xmlchat.storage.sqlite import SqliteStorage

async def main() -> None:
    cfg = load(sys.argv[1])
    store = await SqliteStorage.open(cfg.database_path, cfg.storage.scram_iterations)
    lines = [line.split("\\t") for line in sys.stdin.read().splitlines() if line]
    sem = asyncio.Semaphore(4)
    async def one(name: str, password: str) -> None:
        async with sem:
            await store.create_user(JID.parse(f"{name}@{cfg.domain}"), password)
    try:
        await asyncio.gather(*(one(n, p) for n, p in lines))
    finally:
        await store.close()
    print(f"created {len(lines)}")

asyncio.run(main())
"""


# The data directory of the first xmlchat prepared in this harness run, per
# account list: the next ones (native, in-memory, SM targets) copy it instead
# of hashing 10,000 passwords again (about 40 s each).
_prepared: dict[tuple[Account, ...], Path] = {}


class Xmlchat(Server):
    name = "xmlchat"
    rooms = "conference.localhost"
    durable = True

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            out = subprocess.run([sys.executable, "-m", "xmlchat", "serve", "--help"],
                                 capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"cannot run xmlchat: {e}"
        if out.returncode != 0:
            last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["?"]
            return f"`xmlchat serve --help` failed: {last[0]}"
        return None

    @property
    def config_path(self) -> Path:
        return self.workdir / "xmlchat.toml"

    def _env(self) -> dict[str, str]:
        return {"XMLCHAT_DATA_DIR": str(self.workdir / "data"),
                "XMLCHAT_STORAGE_SCRAM_ITERATIONS": str(ITERATIONS)}

    def _adduser(self, account: Account) -> subprocess.CompletedProcess[str]:
        base = [sys.executable, "-m", "xmlchat", "adduser", f"{account.user}@{DOMAIN}",
                "--password", account.password]
        env = {**os.environ, **self._env()}
        out = subprocess.run([*base, "--config", str(self.config_path)], capture_output=True,
                             text=True, timeout=60, env=env, check=False)
        if out.returncode != 0 and "--config" in out.stderr:
            out = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env,
                                 check=False)
        return out

    def prepare(self, accounts: Sequence[Account]) -> None:
        self.ports = {"xmpp": free_port(), "native": free_port()}
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG.format(
            domain=DOMAIN, work=self.workdir, xmpp_port=self.ports["xmpp"],
            native_port=self.ports["native"], iterations=ITERATIONS))
        earlier = _prepared.get(tuple(accounts))
        if earlier is not None and earlier.is_dir():
            shutil.rmtree(self.workdir / "data")
            shutil.copytree(earlier, self.workdir / "data")
            return
        self._create_accounts(accounts)
        _prepared[tuple(accounts)] = self.workdir / "data"

    def _create_accounts(self, accounts: Sequence[Account]) -> None:
        first, rest = accounts[0], list(accounts[1:])
        out = self._adduser(first)
        if out.returncode != 0:
            raise ServerError(f"xmlchat adduser failed: {out.stderr.strip() or out.stdout}")
        bulk = subprocess.run(
            [sys.executable, "-c", BULK, str(self.config_path)],
            input="".join(f"{a.user}\t{a.password}\n" for a in rest), capture_output=True,
            text=True, timeout=1800, env={**os.environ, **self._env()}, check=False)
        if bulk.returncode == 0:
            return
        if "ModuleNotFoundError" not in bulk.stderr and "ImportError" not in bulk.stderr:
            raise ServerError(f"xmlchat bulk account creation failed: {bulk.stderr[-2000:]}")
        # No storage API to call: one adduser process per account, two at a time.
        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            for account, result in zip(rest, pool.map(self._adduser, rest), strict=True):
                if result.returncode != 0:
                    raise ServerError(f"xmlchat adduser {account.user} failed: {result.stderr}")

    def command(self) -> tuple[list[str], dict[str, str]]:
        return ([sys.executable, "-m", "xmlchat", "serve", "--config", str(self.config_path)],
                self._env())

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return version("xmlchat")
        except Exception:
            return "?"


class XmlchatInMemory(Xmlchat):
    """xmlchat with ``delivery.durable`` off: a message for a recipient keeping
    up is written without being stored first. Beside ``xmlchat`` in one run,
    it shows what durable acknowledgements cost (docs/delivery.md)."""

    name = "xmlchat-memory"
    durable = False

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "XMLCHAT_DELIVERY_DURABLE": "false"}
