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
from e2e.inprocess_peers import LOGINS, Peer, plaintext_server, xmpp_login

from xmlchat.server.app import Server
from xmlchat.server.connection import REST_AFTER


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Server]:
    async with plaintext_server(tmp_path) as server:
        yield server


@pytest.mark.parametrize("protocol", ["native", "xmpp", "xmpp-sm"])
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_connection_that_ended_is_freed_without_the_collector(
    running: Server, protocol: str, how: str
) -> None:
    login = LOGINS[protocol]
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


async def test_a_session_idle_after_its_initial_presence_holds_no_parser(running: Server) -> None:
    """A client sends its initial presence in a read after the bind's: the
    parser (~10 KiB) is freed once that read is handled, not only by the
    sweeper after REST_AFTER seconds of silence (most of an idle session)."""
    _, writer = await xmpp_login(running.port_of("xmpp"), "alice", presence_apart=True)
    try:
        (connection,) = running.connections
        parser = connection.core._link.parser  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REST_AFTER / 2  # well before the sweeper would free it
        while parser._parser is not None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert parser._parser is None
    finally:
        writer.close()
