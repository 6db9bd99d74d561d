"""Each front end counts every stanza in and out when metrics are on, and logs
it with ``[log] stanzas``: with both off it skips even the calls (a stanza's
kind costs ~1 % of an XMPP message), so both on must still see everything.

The real server in this process, real sockets, both protocols.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from e2e.inprocess_peers import LOGINS, plaintext_server, until

from xmlchat.metrics import PrometheusMetrics
from xmlchat.server.app import Server

PROTOCOLS = ["native", "xmpp", "xmpp-sm"]


def _message(protocol: str, body: str) -> bytes:
    if protocol == "native":
        return f"<message><to>bob</to><body>{body}</body></message>".encode()
    return f"<message to='bob@localhost' type='chat' id='m1'><body>{body}</body></message>".encode()


def _count(server: Server, name: str, protocol: str) -> float:
    assert isinstance(server.metrics, PrometheusMetrics)
    labels = {"protocol": protocol.removesuffix("-sm"), "kind": "message"}
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


async def _until_counted(server: Server, name: str, protocol: str, count: float) -> float:
    """The counter once it reached ``count`` (an XMPP sender's message is counted
    by its worker, maybe after the delivery), or as it is after 10 s."""
    deadline = asyncio.get_running_loop().time() + 10
    while _count(server, name, protocol) < count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    return _count(server, name, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_metrics_count_each_message_in_and_out(tmp_path: Path, protocol: str) -> None:
    metrics = {"metrics.enabled": True, "metrics.port": 0}
    async with plaintext_server(tmp_path, overrides=metrics) as server:
        port = server.port_of("native_plain" if protocol == "native" else "xmpp")
        alice = await LOGINS[protocol](port, "alice")
        bob = await LOGINS[protocol](port, "bob")
        alice[1].write(_message(protocol, "hello"))
        await until(bob[0], b"</message>")
        assert await _until_counted(server, "xmlchat_stanzas_received_total", protocol, 1) == 1
        assert await _until_counted(server, "xmlchat_stanzas_sent_total", protocol, 1) == 1
        for _, writer in (alice, bob):
            writer.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stanza_logging_shows_each_message_in_and_out(
    tmp_path: Path, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="xmlchat.connection")
    async with plaintext_server(tmp_path, overrides={"log.stanzas": True}) as server:
        port = server.port_of("native_plain" if protocol == "native" else "xmpp")
        alice = await LOGINS[protocol](port, "alice")
        bob = await LOGINS[protocol](port, "bob")
        alice[1].write(_message(protocol, "logged-body"))
        await until(bob[0], b"</message>")
        deadline = asyncio.get_running_loop().time() + 10
        lines: list[str] = []
        while len(lines) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
            lines = [r.getMessage() for r in caplog.records if "logged-body" in r.getMessage()]
        assert sorted(line.split(" ", 1)[0] for line in lines) == ["in", "out"]
        for _, writer in (alice, bob):
            writer.close()
