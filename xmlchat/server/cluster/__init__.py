"""Joining a cluster of nodes over NATS (:class:`NatsCluster`); see :mod:`xmlchat.routing.cluster`."""

from xmlchat.server.cluster.bus import NatsCluster

__all__ = ["NatsCluster"]
