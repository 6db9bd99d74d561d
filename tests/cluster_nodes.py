"""Several server processes on loopback sharing one NATS and one PostgreSQL
schema: a cluster as ``xmlchat serve --node-name`` runs it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import ServerProcess, create_users, make_server
from postgres import postgres_schema

NATS_URL = "nats://127.0.0.1:4222"

# Heartbeats fast enough that a dead node is forgotten within a test's patience.
CLUSTER_CONFIG = """
[cluster]
heartbeat_interval = 0.2
node_timeout = 1.5
relay_timeout = 3.0
"""


def _nats_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def running_cluster(
    tmp_path: Path,
    count: int,
    users: dict[str, str],
    config: str = "",
    *,
    cluster_config: str = CLUSTER_CONFIG,
    nats_urls: Sequence[str] = (),
) -> Iterator[list[ServerProcess]]:
    """``count`` started nodes named n0, n1, …; accounts in the shared store;
    ``config``: more of each node's configuration file, after ``cluster_config``;
    ``nats_urls``: where each node reaches NATS (default: all at NATS_URL).
    Every run has its own NATS subject prefix and PostgreSQL schema, so runs
    side by side never hear each other."""
    if not _nats_reachable(NATS_URL):
        pytest.skip(f"NATS unreachable at {NATS_URL}")
    prefix = f"xmlchat-test-{uuid.uuid4().hex[:12]}"
    with postgres_schema() as storage_url:
        nodes: list[ServerProcess] = []
        try:
            for index in range(count):
                node = make_server(tmp_path / f"n{index}", cluster_config + config)
                node.env.update({
                    "XMLCHAT_STORAGE_URL": storage_url,
                    "XMLCHAT_CLUSTER_NATS_URL": nats_urls[index] if nats_urls else NATS_URL,
                    "XMLCHAT_CLUSTER_NODE_NAME": f"n{index}",
                    "XMLCHAT_CLUSTER_SUBJECT_PREFIX": prefix,
                })
                if index == 0:
                    create_users(node, users)
                node.start()
                nodes.append(node)
            yield nodes
        finally:
            for node in nodes:
                node.stop()
