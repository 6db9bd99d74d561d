"""The container, without a container engine: the compose file validated, and the
image's exact command (its ENV, the compose environment, its CMD, the compose
healthcheck) run natively with a temporary data directory and free ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops.helpers import REPO, clean_env, free_port

from xmlchat import configdoc
from xmlchat.client.native import NativeClient
from xmlchat.config import Config
from xmlchat.server.app import PROTOCOLS
from xmlchat.server.tls import client_context

ENV_KEYS = {key.env for key in configdoc.all_keys()}
PORT_VARS = {
    "XMLCHAT_LISTENERS_NATIVE_PORT": "native",
    "XMLCHAT_LISTENERS_XMPP_PORT": "xmpp",
    "XMLCHAT_LISTENERS_XMPP_TLS_PORT": "xmpp_tls",
    "XMLCHAT_LISTENERS_HTTP_PORT": "http",
    "XMLCHAT_LISTENERS_HTTPS_PORT": "https",
    "XMLCHAT_METRICS_PORT": "metrics",
}


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    @property
    def env(self) -> dict[str, str]:
        out = {}
        for rest in self.all("ENV"):
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                out[name] = value
        return out


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages: continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    args: dict[str, str] = {}  # ARGs before the first FROM: what FROM may name
    for line in filter(str.strip, logical):
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            base = rest.split()[0]
            stages.append(Stage(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)))
        elif not stages and keyword.upper() == "ARG":
            name, _, default = rest.strip().partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((keyword.upper(), rest.strip()))
    return stages


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} with nothing set: the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


# ---- the files


def test_dockerfile_builds_a_non_root_image_with_a_data_volume() -> None:
    (run,) = dockerfile_stages()
    assert run.base == "xmlchat-base:bookworm"  # made by container/base.sh, no registry
    assert "xmlchat-base:bookworm" in (REPO / "container" / "base.sh").read_text()
    assert run.all("USER") == ["10001:10001"]  # the xmlchat user, not root
    # One id for the user and its group.
    assert any("groupadd" in r and "--gid 10001" in r for r in run.all("RUN"))
    assert any("useradd" in r and "--uid 10001 --gid 10001" in r for r in run.all("RUN"))
    assert json.loads(run.all("VOLUME")[0]) == ["/var/lib/xmlchat"]
    exposed = {int(p) for p in run.all("EXPOSE")[0].split()}
    assert exposed == {5222, 5223, 5290, Config().listeners.https.port, Config().metrics.port}
    assert json.loads(run.all("CMD")[0]) == ["xmlchat", "serve"]
    env = run.env
    assert env["XMLCHAT_DATA_DIR"] == "/var/lib/xmlchat"
    for name in ("NATIVE", "XMPP", "XMPP_TLS", "HTTPS"):
        assert env[f"XMLCHAT_LISTENERS_{name}_ADDRESS"] == "0.0.0.0"
    assert "XMLCHAT_LISTENERS_NATIVE_PLAIN_ADDRESS" not in env  # plaintext stays loopback-only
    assert {k for k in env if k.startswith("XMLCHAT_")} <= ENV_KEYS
    # The extras installed come from XMLCHAT_EXTRAS (docker-compose.cluster.yml adds "cluster").
    assert run.all("ARG") == ["XMLCHAT_EXTRAS=metrics,chat"]
    assert any('os.environ["XMLCHAT_EXTRAS"]' in r for r in run.all("RUN"))
    health = run.all("HEALTHCHECK")[0]
    assert (
        json.loads(health.partition("CMD")[2]) == compose()["services"]["xmlchat"]["healthcheck"]["test"][1:]
    )
    assert "--start-period" in health


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    """A change of the source must not re-download the dependencies: the layer
    that installs them sees pyproject.toml only."""
    (run,) = dockerfile_stages()
    steps = run.instructions
    copies = [rest for kw, rest in steps if kw == "COPY"]
    assert copies[0] == "pyproject.toml /src/pyproject.toml"
    deps = next(i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "pip install -r" in rest)
    source = next(i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and rest.startswith("xmlchat "))
    install = next(i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "pip install --no-deps" in rest)
    assert deps < source < install
    # The extras named by XMLCHAT_EXTRAS (metrics and chat unless a build asks for more).
    assert 'os.environ["XMLCHAT_EXTRAS"]' in steps[deps][1]
    assert "--no-build-isolation" in steps[install][1]  # setuptools came with the dependencies
    assert not any(kw == "RUN" and "--mount" in rest for kw, rest in steps)  # no BuildKit needed


def test_the_wheel_ships_the_schema_through_the_symlink() -> None:
    link = REPO / "xmlchat" / "schemas"
    assert link.is_symlink() and (link / "native.xsd").is_file()
    assert '"schemas/*.xsd"' in (REPO / "pyproject.toml").read_text()
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "schemas" not in ignored and "xmlchat" not in ignored


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(REPO / "docker-compose.yml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_catches_mistakes(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["xmlchat"]["healthcheck"]["intervall"] = "30s"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "intervall" in result.stdout


def compose_cli() -> list[str] | None:
    """Compose v2: docker-compose 1.x (Debian 12's) predates start_interval and
    refuses the file; make container-test runs it on a copy without that line."""
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) is None:
            continue
        version = subprocess.run([*cli, "version", "--short"], capture_output=True, text=True, check=False)
        if version.returncode == 0 and not version.stdout.strip().lstrip("v").startswith("1."):
            return cli
    return None


@pytest.mark.skipif(compose_cli() is None, reason="no Docker Compose v2 CLI")
def test_compose_config_accepts_the_file() -> None:
    cli = compose_cli()
    assert cli is not None
    for args in ([], ["--profile", "client"]):
        result = subprocess.run(
            [*cli, "-f", str(REPO / "docker-compose.yml"), *args, "config", "-q"],
            capture_output=True, text=True, check=False, timeout=60, env=clean_env(),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


def test_compose_service_is_what_the_issue_asks_for() -> None:
    data = compose()
    service = data["services"]["xmlchat"]
    assert service["restart"] == "unless-stopped"
    # Host ports from variables, with the standard ports as defaults.
    assert service["ports"][:3] == [
        "${XMLCHAT_XMPP_PORT:-5222}:5222",
        "${XMLCHAT_NATIVE_PORT:-5290}:5290",
        "${XMLCHAT_HTTPS_PORT:-5443}:5443",
    ]
    volume, _, target = service["volumes"][0].partition(":")
    assert target == "/var/lib/xmlchat" and volume in data["volumes"]  # a named volume
    health = service["healthcheck"]
    assert health["test"] == ["CMD", "xmlchat", "health", "--timeout", "5"]
    assert health["start_period"] == "30s" and health["start_interval"] == "1s"
    assert set(service["environment"]) <= ENV_KEYS  # only real settings, documented ones
    client = data["services"]["client"]
    assert client["profiles"] == ["client"] and client["image"] == service["image"]
    assert client["healthcheck"] == {"disable": True}  # the image's check is the server's
    assert "build" not in client  # one image, built once by the server's service


# ---- the container's command, natively


def container_env(data_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Image ENV + compose environment, then the test's data dir and free ports."""
    env = clean_env()
    env.update(dockerfile_stages()[-1].env)
    env.update({k: interpolate(str(v)) for k, v in compose()["services"]["xmlchat"]["environment"].items()})
    env["XMLCHAT_DATA_DIR"] = str(data_dir)
    ports = {name: free_port("0.0.0.0") for name in PORT_VARS.values()}
    env.update({var: str(ports[name]) for var, name in PORT_VARS.items()})
    # "xmlchat" resolves to this environment's console script, as to the image's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env, ports


def run_in_container(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=30, check=False)


def test_the_container_command_runs_natively(tmp_path: Path) -> None:
    data = tmp_path / "data"  # the volume; WORKDIR /var/lib/xmlchat
    data.mkdir()
    env, ports = container_env(data)
    stage = dockerfile_stages()[-1]
    cmd = json.loads(stage.all("CMD")[0])
    assert shutil.which(cmd[0], path=env["PATH"]), "the xmlchat console script is not installed"
    proc = subprocess.Popen(cmd, env=env, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"server exited: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line.strip())
            if line.startswith("ready:"):
                break
        assert f"listening: native 0.0.0.0 port {ports['native']} tls=direct (native)" in lines
        if "xmpp" in PROTOCOLS:
            assert f"listening: xmpp 0.0.0.0 port {ports['xmpp']} tls=starttls (xmpp)" in lines
        assert not any("(metrics)" in line for line in lines)  # off unless enabled
        assert lines[-1] == f"ready: serving localhost; data in {data}"

        health = compose()["services"]["xmlchat"]["healthcheck"]["test"]
        assert health[0] == "CMD"
        result = run_in_container(health[1:], env, data)
        assert result.returncode == 0, result.stdout + result.stderr

        # docs/operations.md: docker compose exec xmlchat xmlchat adduser alice@localhost
        result = run_in_container(["xmlchat", "adduser", "alice@localhost", "--password", "pw-a"], env, data)
        assert result.returncode == 0, result.stderr
        ssl = client_context(insecure=True)
        alice = NativeClient("alice@localhost", "pw-a", port=ports["native"], ssl=ssl, reconnect=False)

        async def login() -> str | None:
            await alice.start()
            await alice.close()
            return alice.address

        assert str(asyncio.run(login())).startswith("alice@localhost/")

        # docs/operations.md: the online backup (through the running server's
        # admin channel), with /var/lib/xmlchat being this data dir.
        docs = (REPO / "docs" / "operations.md").read_text()
        backup = re.search(r"docker compose exec xmlchat (xmlchat backup /var/lib/xmlchat/\S+)", docs)
        assert backup is not None
        argv = shlex.split(backup.group(1).replace("/var/lib/xmlchat/", f"{data}/"))
        result = run_in_container(argv, env, data)
        assert result.returncode == 0, result.stderr
        copy = sqlite3.connect(data / "backup.sqlite3")
        assert copy.execute("SELECT COUNT(*) FROM users").fetchone() == (1,)
        copy.close()
    finally:
        # docker stop: SIGTERM, then SIGKILL after the grace period.
        grace = float(compose()["services"]["xmlchat"]["stop_grace_period"].rstrip("s"))
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        stderr = proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert code == 0, stderr
    assert "stopped" in stderr
