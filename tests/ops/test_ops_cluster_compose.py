"""docker-compose.cluster.yml: three nodes, PostgreSQL and NATS, checked
without a container engine (the nodes themselves run in tests/e2e/test_cluster_e2e.py)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from typing import Any

import yaml
from ops.helpers import REPO

from xmlchat import configdoc

CLUSTER_FILE = REPO / "docker-compose.cluster.yml"


def cluster_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CLUSTER_FILE.read_text())
    return data


def test_cluster_compose_matches_the_compose_spec() -> None:
    check = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [*check, str(CLUSTER_FILE)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_three_nodes_share_one_store_and_one_nats() -> None:
    services = cluster_compose()["services"]
    nodes = {name: service for name, service in services.items() if name.startswith("node")}
    assert len(nodes) == 3 and {"postgres", "nats"} <= set(services)
    environments = [node["environment"] for node in nodes.values()]
    assert len({env["XMLCHAT_CLUSTER_NODE_NAME"] for env in environments}) == 3
    assert len({env["XMLCHAT_STORAGE_URL"] for env in environments}) == 1
    assert {env["XMLCHAT_CLUSTER_NATS_URL"] for env in environments} == {"nats://nats:4222"}
    documented = {key.env for key in configdoc.all_keys()}
    assert all(set(env) <= documented for env in environments)
    published = [port.split(":")[0] for node in nodes.values() for port in node["ports"]]
    assert len(published) == len(set(published)) == 6  # XMPP and native per node, none shared


def test_the_image_installs_the_cluster_extra() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for node in (s for name, s in cluster_compose()["services"].items() if name.startswith("node")):
        wanted = node["build"]["args"]["XMLCHAT_EXTRAS"].split(",")
        assert "cluster" in wanted and set(wanted) <= set(extras)
    assert 'os.environ["XMLCHAT_EXTRAS"]' in (REPO / "Dockerfile").read_text()
