"""An ended connection is freed at once, not by the garbage collector.

The server runs the collector rarely (``[runtime] gc_threshold``, after
``gc.freeze()``), so a connection caught in a reference cycle kept its
session, buffers and parser for minutes: RSS grew by ~15 KiB per login that
came and went. The real server in this process, the collector off, real
sockets: after the clients leave, no connection object may be left.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_write_coalescing import Peer, _native, _xmpp, _xmpp_sm

from xmlchat.config import load
from xmlchat.jid import JID
from xmlchat.server.app import Server


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Server]:
    overrides = {
        "data_dir": str(tmp_path),
        "listeners.native.enabled": False,
        "listeners.native_plain.enabled": True,
        "listeners.native_plain.port": 0,
        "listeners.xmpp.port": 0,
        "listeners.xmpp.tls": "none",
        "xmpp.require_encryption": False,
        "xmpp.allow_unencrypted_plain_auth": True,
        "listeners.http.enabled": False,
        "listeners.https.enabled": False,
    }
    server = await Server.open(load(overrides=overrides))
    for name in ("alice", "bob"):
        await server.storage.create_user(JID(name, "localhost"), "pw")
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1)


@pytest.mark.parametrize("protocol", ["native", "xmpp", "xmpp-sm"])
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_connection_that_ended_is_freed_without_the_collector(
    running: Server, protocol: str, how: str
) -> None:
    login = {"native": _native, "xmpp": _xmpp, "xmpp-sm": _xmpp_sm}[protocol]
    port = running.port_of("native_plain" if protocol == "native" else "xmpp")
    gc.collect()
    gc.disable()
    try:
        peers: list[Peer] = [await login(port, "alice"), await login(port, "bob")]
        ended = [weakref.ref(c) for c in running.connections]
        assert len(ended) == 2
        for _, writer in peers:
            if how == "reset":  # an RST: the server's read fails with ConnectionResetError
                writer.transport.abort()
            else:
                writer.close()
        deadline = asyncio.get_running_loop().time() + 10
        while running.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert not running.connections
        await asyncio.sleep(0)  # the transports' connection_lost callbacks
        alive = [ref() for ref in ended if ref() is not None]
        assert not alive, [gc.get_referrers(c) for c in alive]
    finally:
        gc.enable()
