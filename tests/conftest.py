"""Shared fixtures: a real xmlchat server process on free loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from postgres import postgres_schema

from xmlchat.config import load as load_config
from xmlchat.jid import JID
from xmlchat.server.tls import client_context
from xmlchat.storage.opening import open_storage

LISTEN_LINE = re.compile(r"^listening: (\S+) (\S+) port (\d+) tls=(\S+) \((\w+)\)$")

# Small timeouts so the heartbeat tests run in seconds; everything else at defaults.
BASE_CONFIG = """
hosts = ["localhost"]

[listeners.native]
port = 0
[listeners.native_plain]
enabled = true
port = 0
[listeners.xmpp]
port = 0
[listeners.xmpp_tls]
enabled = true
port = 0
[listeners.http]
port = 0
[listeners.https]
port = 0

[storage]
scram_iterations = 4096

[log]
level = "debug"
"""


@dataclass
class ServerProcess:
    """``xmlchat serve`` in a child process, as a user runs it."""

    data_dir: Path
    config_path: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    log_path: Path | None = None

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "xmlchat", *args, "--config", str(self.config_path)]
        return subprocess.run(
            cmd, capture_output=True, text=True, input=input, env=self._env(), timeout=60, check=False
        )

    def adduser(self, name: str, password: str) -> None:
        result = self.cli("adduser", name, "--password", password)
        assert result.returncode == 0, result.stderr + result.stdout

    def _env(self) -> dict[str, str]:
        return {**os.environ, "XMLCHAT_DATA_DIR": str(self.data_dir), **self.env}

    def start(self, timeout: float = 20.0) -> None:
        self.log_path = self.data_dir.parent / f"server-{int(time.time() * 1000)}.log"
        log = open(self.log_path, "w")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xmlchat", "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=self._env(),
        )
        self.ports = {}
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            if line.startswith("{"):  # log.format = "json": the same lines as JSON objects
                line = json.loads(line).get("message", "")
            if line.startswith("ready:"):
                return
            match = LISTEN_LINE.match(line.strip())
            if match:
                self.ports[match.group(5)] = int(match.group(3))
        raise RuntimeError("server did not start in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    @property
    def cafile(self) -> str:
        return str(self.data_dir / "tls" / "cert.pem")

    def client_ssl(self) -> ssl.SSLContext:
        return client_context(self.cafile)


def create_users(server: ServerProcess, users: dict[str, str]) -> None:
    """Accounts in bulk, straight into the server's store (``xmlchat adduser``
    is tested on its own; a process per user would dominate test time)."""
    config = load_config(server.config_path, env={"XMLCHAT_DATA_DIR": str(server.data_dir), **server.env})

    async def create() -> None:
        storage = await open_storage(config)
        try:
            for name, password in users.items():
                await storage.create_user(JID.user(name, config.domain), password)
        finally:
            await storage.close()

    asyncio.run(create())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test (see :func:`postgres_schema`)."""
    with postgres_schema() as url:
        yield url


def make_server(tmp_path: Path, extra_config: str = "") -> ServerProcess:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    config_path = tmp_path / "xmlchat.toml"
    config_path.write_text(textwrap.dedent(BASE_CONFIG) + textwrap.dedent(extra_config))
    return ServerProcess(data, config_path)


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Call with extra TOML to get a started server; all are stopped at the end."""
    started: list[ServerProcess] = []

    def factory(extra_config: str = "", users: dict[str, str] | None = None) -> ServerProcess:
        server = make_server(tmp_path / f"s{len(started)}", extra_config)
        if users:
            create_users(server, users)
        server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """A running server with alice, bob and carol (passwords: NAMEpw)."""
    return server_factory(users={n: f"{n}pw" for n in ("alice", "bob", "carol")})


# A scripted fake server for client-library tests: each test's script plays the server.
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Start = Callable[[Script], Awaitable[int]]


@pytest.fixture
async def scripted() -> AsyncIterator[Start]:
    """``port = await scripted(script)``: a loopback server running ``script``
    for each connection; closed after the test."""
    servers: list[asyncio.base_events.Server] = []

    async def start(script: Script) -> int:
        server = await asyncio.start_server(script, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
