"""Joining the configured cluster, if any: the composition root's one call."""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING

from xmlchat.config import Config
from xmlchat.routing.hub import Hub
from xmlchat.storage.opening import is_postgres_url

if TYPE_CHECKING:
    from xmlchat.server.cluster import NatsCluster

__all__ = ["join_cluster", "node_name"]


def node_name(config: Config) -> str:
    """The configured name, else the host name made subject-safe."""
    return config.cluster.node_name or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64]


async def join_cluster(config: Config, hub: Hub) -> NatsCluster:
    """Connect to NATS and make the other nodes' sessions routable here.

    A cluster needs one shared store: with each node's own SQLite file a
    message stored for an offline user would wait on the node that stored it.
    """
    if not is_postgres_url(config.storage.url):
        raise ValueError("cluster.nats_url needs a shared PostgreSQL store: set storage.url")
    try:
        from xmlchat.server.cluster import NatsCluster
    except ImportError as e:  # an optional extra
        raise ValueError(f"clustering needs nats-py: pip install 'xmlchat[cluster]' ({e})") from None
    return await NatsCluster.join(config.cluster, node_name(config), hub)
