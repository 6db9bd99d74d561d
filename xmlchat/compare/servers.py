"""The servers under measurement: started here, or one already running.

``xmlchat compare`` starts two ``xmlchat serve`` processes, each with its own
temporary data directory, so that every listener runs at its real settings:

* **secure** — the defaults: native over TLS, XMPP with STARTTLS required,
  XMPP over direct TLS (XEP-0368);
* **plain** — plaintext only: the native plaintext listener, and an XMPP
  listener without TLS (``[xmpp] require_encryption = false``), which then
  offers no STARTTLS at all, as a plaintext-only server would.

Both disable the per-connection stanza rate limit, so the throughput run
measures the protocols rather than the limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from xmlchat import config as config_mod
from xmlchat.config import Config
from xmlchat.jid import JID
from xmlchat.storage import SqliteStorage, UserExists

LISTEN_LINE: Final = re.compile(r"^listening: (\S+) (\S+) port (\d+) tls=(\S+) \((\w+)\)$")
START_TIMEOUT: Final = 60.0

COMMON_CONFIG: Final = """
hosts = ["localhost"]

[limits]
# Measure the protocols, not the flood limiters.
stanzas_per_second = 0
bytes_per_second = 0
ip_stanzas_per_second = 0
ip_bytes_per_second = 0

[log]
level = "warning"
"""

SECURE_CONFIG: Final = """
[listeners.native]
port = 0
[listeners.native_plain]
enabled = false
[listeners.xmpp]
port = 0
[listeners.xmpp_tls]
enabled = true
port = 0
[listeners.http]
port = 0
[listeners.https]
enabled = true
port = 0

[http]
# The short-polling client logs in asking at this interval, then every
# POLL_INTERVAL (targets.py); XEP-0124 §12's minimum, lowered from 2 s.
bosh_polling = 0.25
"""

PLAIN_CONFIG: Final = """
[listeners.native]
enabled = false
[listeners.native_plain]
enabled = true
port = 0
[listeners.xmpp]
port = 0
tls = "none"
[listeners.xmpp_tls]
enabled = false
[listeners.http]
port = 0
[listeners.https]
port = 0

[xmpp]
require_encryption = false
allow_unencrypted_plain_auth = true
"""


class ServerFailed(RuntimeError):
    pass


def password_of(user: str) -> str:
    return f"{user}-compare-pw"


@dataclass
class ServerHandle:
    """Where a server listens, how to trust it and how to read its CPU time."""

    name: str
    config: Config
    ports: dict[str, int] = field(default_factory=dict)  # listener name -> port
    pid: int | None = None
    host: str = "127.0.0.1"

    @property
    def domain(self) -> str:
        return self.config.domain

    @property
    def cafile(self) -> str:
        if self.config.tls.cert_file:
            return self.config.tls.cert_file
        return str(self.config.data_path / "tls" / "cert.pem")

    @property
    def require_encryption(self) -> bool:
        return self.config.xmpp.require_encryption

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process (all its threads), or None."""
        if self.pid is None:
            return None
        return process_cpu_seconds(self.pid)

    async def create_users(self, users: list[str]) -> None:
        """Create (or reset the password of) each user in the server's storage."""
        self.config.data_path.mkdir(parents=True, exist_ok=True)
        storage = await SqliteStorage.open(self.config.database_path, self.config.storage.scram_iterations)
        try:
            for user in users:
                jid = JID(user, self.domain)
                try:
                    await storage.create_user(jid, password_of(user))
                except UserExists:
                    await storage.set_password(jid, password_of(user))
        finally:
            await storage.close()

    async def stop(self) -> None:
        pass


def process_cpu_seconds(pid: int) -> float | None:
    """From ``/proc/PID/stat``: fields 14 and 15 (utime, stime), in clock ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    # fields[0] is field 3 (state), so field N is fields[N - 3].
    ticks = int(fields[14 - 3]) + int(fields[15 - 3])
    return ticks / os.sysconf("SC_CLK_TCK")


def clock_tick() -> float:
    """The resolution of :func:`process_cpu_seconds`."""
    return 1 / os.sysconf("SC_CLK_TCK")


class ManagedServer(ServerHandle):
    """``xmlchat serve`` in a child process, on a temporary data directory."""

    def __init__(self, name: str, extra_config: str, users: list[str]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"xmlchat-compare-{name}-")
        root = Path(self._tmp.name)
        self.config_path = root / "xmlchat.toml"
        # data_dir is a top-level key, so it goes before the first table.
        self.config_path.write_text(
            f"data_dir = '{(root / 'data').as_posix()}'\n"
            + textwrap.dedent(COMMON_CONFIG)
            + textwrap.dedent(extra_config)
        )
        super().__init__(name, config_mod.load(str(self.config_path), env={}))
        self._users = users
        self.log_path = root / "server.log"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        await self.create_users(self._users)
        env = {k: v for k, v in os.environ.items() if not k.startswith("XMLCHAT_")}
        with open(self.log_path, "wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "xmlchat",
                "serve",
                "--config",
                str(self.config_path),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
            )
        self.pid = self._proc.pid
        try:
            await asyncio.wait_for(self._read_ports(), START_TIMEOUT)
        except (TimeoutError, ServerFailed) as e:
            await self.stop()
            raise ServerFailed(f"{self.name} server did not start: {e}\n{self.log()}") from None

    async def _read_ports(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            line = (await self._proc.stdout.readline()).decode()
            if not line:
                raise ServerFailed("exited early")
            if line.startswith("ready:"):
                return
            match = LISTEN_LINE.match(line.strip())
            if match:
                self.ports[match.group(5)] = int(match.group(3))

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._tmp.cleanup()


def target_server(config_path: str, pid: int | None = None) -> ServerHandle:
    """A server someone else runs, described by its configuration file."""
    config = config_mod.load(config_path)
    handle = ServerHandle("target", config)
    for name in config.listeners.__dataclass_fields__:
        listener = getattr(config.listeners, name)
        if listener.enabled and listener.port:
            handle.ports[name] = listener.port
            if listener.address not in ("", "0.0.0.0", "::"):
                handle.host = listener.address
    handle.pid = pid if pid is not None else find_listening_pid(list(handle.ports.values()))
    return handle


def find_listening_pid(ports: list[int]) -> int | None:
    """The process holding a listening TCP socket on one of ``ports`` (Linux,
    same user only), found through ``/proc/net/tcp*`` and ``/proc/*/fd``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                port = int(cols[1].rpartition(":")[2], 16)
                if cols[3] == "0A" and port in ports:  # 0A: TCP_LISTEN
                    inodes.add(cols[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return int(proc.name)
    return None
