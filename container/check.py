"""``make container-test``: the README's container flow on a real Docker engine.

Builds the image (the Debian base first, if missing), then with Compose: up,
healthy, accounts, a native and an XMPP message, restart, the data still there;
and what issue 15 asked of the container: one uid/gid, the client service without
the server's health check, JSON logs only, the certificate made again when the
hosts change, one clear line for a data directory it cannot write, the
dependency layers cached across a source change. Prints how long each step took.

Runs under its own Compose project name on free host ports, and removes its
containers and volumes at the end. Needs root (or the docker group), Docker
and Compose; the README says which versions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from xmlchat.client.native import NativeClient

REPO = Path(__file__).resolve().parents[1]
PROJECT = "xmlchat-container-test"
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(
    *argv: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None, input: str = ""
) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False, cwd=REPO, input=input
    )
    if check and result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def compose_command(workdir: Path) -> list[str]:
    """``docker compose`` (v2) with the repository's file as it is; else Debian 12's
    docker-compose 1.29, which predates ``start_interval``: the same file without
    that line (the engine it comes with, 20.10, predates it too)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose", "-p", PROJECT, "-f", str(REPO / "docker-compose.yml")]
    if shutil.which("docker-compose") is None:
        raise SystemExit("no Docker Compose: install Compose v2 (or Debian's docker-compose)")
    text = (REPO / "docker-compose.yml").read_text()
    legacy = workdir / "docker-compose.yml"
    legacy.write_text("".join(line for line in text.splitlines(True) if "start_interval:" not in line))
    print("~ docker-compose 1.x: start_interval left out (it needs Compose 2.20.2+ and Engine 25+)")
    return ["docker-compose", "-p", PROJECT, "-f", str(legacy), "--project-directory", str(REPO)]


class Flow:
    def __init__(self, compose: list[str], env: dict[str, str]) -> None:
        self.compose, self.env = compose, env
        self.native_port = int(env["XMLCHAT_NATIVE_PORT"])
        self.xmpp_port = int(env["XMLCHAT_XMPP_PORT"])
        self.timings: list[tuple[str, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        print(f"- {name} ...", flush=True)
        yield
        took = time.monotonic() - started
        self.timings.append((name, took))
        print(f"  ok ({took:.1f} s)", flush=True)

    def dc(self, *args: str, check: bool = True, env: dict[str, str] | None = None, input: str = "") -> str:
        return run(*self.compose, *args, check=check, env=env or self.env, input=input)

    def container(self) -> str:
        return self.dc("ps", "-q", "xmlchat").strip().splitlines()[-1]

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = run("docker", "inspect", "-f", "{{.State.Health.Status}}", self.container(), check=False)
            if status.strip() == "healthy":
                return
            time.sleep(0.5)  # poll interval
        raise SystemExit(f"not healthy after {timeout} s:\n{self.dc('logs', '--no-color', 'xmlchat')}")

    def cafile(self, workdir: Path) -> str:
        path = workdir / "cert.pem"
        run("docker", "cp", f"{self.container()}:/var/lib/xmlchat/tls/cert.pem", str(path))
        return str(path)

    def host_cli(self, *args: str) -> str:
        return run(sys.executable, "-m", "xmlchat", *args, env={**os.environ, "XMLCHAT_LOG_LEVEL": "warning"})


def read_messages(port: int, cafile: str, user: str, count: int) -> list[str]:
    async def read() -> list[str]:
        client = NativeClient(user, PASSWORDS[user], port=port, ssl=ssl.create_default_context(cafile=cafile))
        await client.start()
        try:
            return [(await asyncio.wait_for(client.incoming.get(), 20)).body for _ in range(count)]
        finally:
            await client.close()

    return asyncio.run(read())


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"failed: {what}")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "XMLCHAT_NATIVE_PORT": str(free_port()),
            "XMLCHAT_XMPP_PORT": str(free_port()),
            "XMLCHAT_HTTPS_PORT": str(free_port()),
            "XMLCHAT_LOG_FORMAT": "json",
        }
        flow = Flow(compose_command(workdir), env)
        try:
            steps(flow, workdir)
        finally:
            flow.dc("--profile", "client", "down", "-v", "--remove-orphans", check=False)
        total = time.monotonic() - started
    print("\ncontainer-test passed:")
    for name, took in flow.timings:
        print(f"  {took:6.1f} s  {name}")
    print(f"  {total:6.1f} s  in all")
    return 0


def steps(flow: Flow, workdir: Path) -> None:
    with flow.step("base image (container/base.sh; made once)"):
        run("sh", str(REPO / "container" / "base.sh"))
    with flow.step("build"):
        flow.dc("build")
    with flow.step("one uid and gid"):
        ids = run("docker", "run", "--rm", "xmlchat:local", "id")
        expect(ids.strip() == "uid=10001(xmlchat) gid=10001(xmlchat) groups=10001(xmlchat)", ids)
    with flow.step("a source change keeps the dependency layers"):
        source_change_uses_cache(workdir)
    with flow.step("up, until healthy"):
        flow.dc("up", "-d")
        flow.wait_healthy()
    with flow.step("adduser alice and bob, through the running server's admin channel"):
        for user, password in PASSWORDS.items():
            adduser = ("exec", "-T", "xmlchat", "xmlchat", "adduser", user, "--password-stdin")
            out = flow.dc(*adduser, input=password)
            expect("(through the running server)" in out and f"created {user}@localhost" in out, out)
    cafile = flow.cafile(workdir)
    with flow.step("a native message, from the client service (no health check of its own)"):
        client_has_no_health_check(flow)
        send = ["xmlchat", "send", "alice", "bob", "native hello", "--password", PASSWORDS["alice"]]
        out = flow.dc("--profile", "client", "run", "--rm", "-T", "client", *send, "--server", "xmlchat:5290",
                      "--insecure")  # fmt: skip
        expect("sent (id" in out, out)
    with flow.step("an XMPP message, from the host, pinning the certificate"):
        flow.host_cli("xmpp-send", "alice", "bob", "xmpp hello", "--password", PASSWORDS["alice"],
                      "--server", f"127.0.0.1:{flow.xmpp_port}", "--cafile", cafile)  # fmt: skip
    with flow.step("restart, until healthy"):
        flow.dc("restart", "xmlchat")
        flow.wait_healthy()
    with flow.step("the data is still there: bob's two messages wait for him"):
        got = read_messages(flow.native_port, cafile, "bob", 2)
        expect(sorted(got) == ["native hello", "xmpp hello"], str(got))
    with flow.step("every log line is JSON"):
        logs = run("docker", "logs", flow.container())
        lines = logs.splitlines()
        expect(bool(lines) and all(is_json(line) for line in lines), logs)
    with flow.step("new hosts, new certificate"):
        hosts_env = {**flow.env, "XMLCHAT_HOSTS": "localhost,chat.example"}
        flow.dc("up", "-d", env=hosts_env)
        flow.wait_healthy()
        names = certificate_names(flow.cafile(workdir))
        expect(names == {"localhost", "chat.example"}, str(names))
    with flow.step("a data directory it cannot write: one clear line, no traceback"):
        unwritable(workdir)


def is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def certificate_names(path: str) -> set[str]:
    from xmlchat.server.tls import dns_names

    return dns_names(Path(path))


def client_has_no_health_check(flow: Flow) -> None:
    name = f"{PROJECT}-client-probe"
    flow.dc("--profile", "client", "run", "-d", "--name", name, "client", "sleep", "60")
    try:
        health = json.loads(run("docker", "inspect", "-f", "{{json .Config.Healthcheck}}", name))
        expect(health is None or health["Test"] == ["NONE"], f"client health check: {health}")
    finally:
        run("docker", "rm", "-f", name, check=False)


def unwritable(workdir: Path) -> None:
    data = workdir / "root-owned"
    data.mkdir(mode=0o755)
    os.chown(data, 0, 0)
    result = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{data}:/var/lib/xmlchat", "xmlchat:local"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out = result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()  # stdout has the informational "data directory:" line
    expect(result.returncode == 1 and len(errors) == 1, out)
    expect("cannot write in the data directory /var/lib/xmlchat" in errors[0], out)
    expect("uid 10001 gid 10001" in errors[0] and "Traceback" not in out, out)


def source_change_uses_cache(workdir: Path) -> None:
    """The build context with one source file changed: the dependency step must come from the cache."""
    context = workdir / "context"
    ignore: Callable[[str, list[str]], set[str]] = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", "xmlchat-data"
    )
    shutil.copytree(REPO, context, ignore=ignore, symlinks=True)
    (context / "xmlchat" / "__init__.py").open("a").write("\n# changed\n")
    out = run("docker", "build", "-t", f"{PROJECT}:changed", str(context))
    run("docker", "rmi", f"{PROJECT}:changed", check=False)
    # The step's own output follows its command: the classic builder says
    # "Using cache", BuildKit "CACHED".
    after = out[out.index("pip install -r") :][:600]
    expect("Using cache" in after or "CACHED" in after, out)
    expect("Using cache" not in out[out.index("pip install --no-deps") :][:600], "the source step was cached")


if __name__ == "__main__":
    sys.exit(main())
