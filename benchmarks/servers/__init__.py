"""Server launchers: each starts one server as our child process, on loopback, with a
private configuration and data directory under a temporary directory.

Common shape: ``prepare(accounts)`` writes the configuration and the accounts once;
``start()`` launches and waits until the XMPP port answers a stream header with
stream features; ``pid`` is the process whose tree is measured; ``stop()`` ends it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from benchmarks.accounts import Account

DOMAIN = "localhost"
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def probe_xmpp(host: str, port: int, domain: str, timeout: float = 2.0) -> bool:
    """True when the port takes a stream header and answers with stream features."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(
                f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>".encode()
            )
            got = b""
            deadline = time.monotonic() + timeout
            while b"features" not in got and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                got += chunk
            with contextlib.suppress(OSError):
                s.sendall(b"</stream:stream>")
            return b"features" in got
    except OSError:
        return False


class Server(ABC):
    name: str
    # How each protocol driver reaches this server: driver name -> port.
    ports: dict[str, int]
    # The XEP-0045 room service its configuration sets up, if any (room fan-out).
    rooms: str | None = None
    # Whether a message is stored before it is acknowledged (xmlchat's
    # delivery.durable); None where the launcher does not say.
    durable: bool | None = None

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.domain = DOMAIN
        self.host = HOST
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports = {}
        self._log: Path = workdir / f"{self.name}.out"

    # -- to implement ---------------------------------------------------------

    @classmethod
    @abstractmethod
    def unavailable(cls) -> str | None:
        """Why this server cannot run here (e.g. not installed), or None."""

    @abstractmethod
    def prepare(self, accounts: Sequence[Account]) -> None:
        """Write the configuration and create the accounts (once per harness run)."""

    @abstractmethod
    def command(self) -> tuple[list[str], dict[str, str]]:
        """Argv and extra environment to start the server in the foreground."""

    @abstractmethod
    def version(self) -> str: ...

    def describe(self) -> str:
        """One line on how it is started, for the report: the scratch directory
        as $WORKDIR and the checkout's own files relative to it, so a committed
        report names no machine's paths."""
        line = " ".join(self.command()[0]).replace(str(self.workdir), "$WORKDIR")
        return line.replace(f"{Path(__file__).resolve().parents[2]}/", "")

    def measured_pid(self) -> int:
        """The process whose tree is measured (by default the one we started)."""
        assert self.proc is not None
        return self.proc.pid

    # -- common ---------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.measured_pid()

    def start(self, timeout: float = 60.0) -> None:
        if self.proc is not None:
            raise ServerError(f"{self.name} already running")
        argv, env = self.command()
        log = open(self._log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        port = self.ports["xmpp"]
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if probe_xmpp(self.host, port, self.domain):
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Only our own child's process group (start_new_session above).
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def cleanup(self) -> None:
        self.stop()


SERVERS: dict[str, str] = {
    "prosody": "benchmarks.servers.prosody:Prosody",
    "prosody-smacks": "benchmarks.servers.prosody:ProsodySmacks",
    "ejabberd": "benchmarks.servers.ejabberd:Ejabberd",
    "xmlchat": "benchmarks.servers.xmlchat:Xmlchat",
    "xmlchat-memory": "benchmarks.servers.xmlchat:XmlchatInMemory",
    "relay": "benchmarks.servers.relay:Relay",
}


def server_class(name: str) -> type[Server]:
    try:
        module_name, cls_name = SERVERS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown server {name!r}; known: {', '.join(SERVERS)}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"launcher for {name!r} cannot be imported: {e}") from e
    cls: type[Server] = getattr(module, cls_name)
    assert issubclass(cls, Server)
    return cls


def which(program: str) -> str | None:
    return shutil.which(program)
