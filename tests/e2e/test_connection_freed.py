"""An ended connection is freed at once, not by the garbage collector.

The server runs the collector rarely (``[runtime] gc_threshold``, after
``gc.freeze()``), so a connection caught in a reference cycle kept its
session, buffers and parser for minutes: RSS grew by ~15 KiB per login that
came and went. The real server in this process, the collector off, real
sockets: after the clients leave, no connection object may be left.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_write_coalescing import XMPP_OPEN, Peer, _native, _until, _xmpp, _xmpp_sm

from xmlchat.config import load
from xmlchat.jid import JID
from xmlchat.server.app import Server
from xmlchat.server.connection import REST_AFTER


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


async def test_a_session_idle_after_its_initial_presence_holds_no_parser(running: Server) -> None:
    """A client sends its initial presence in a read after the bind's: the
    parser (~10 KiB) is freed once that read is handled, not only by the
    sweeper after REST_AFTER seconds of silence (most of an idle session)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port_of("xmpp"))
    try:
        writer.write(XMPP_OPEN.encode())
        await _until(reader, b"</stream:features>")
        token = base64.b64encode(b"\0alice\0pw").decode()
        sasl = "urn:ietf:params:xml:ns:xmpp-sasl"
        writer.write(f"<auth xmlns='{sasl}' mechanism='PLAIN'>{token}</auth>".encode())
        await _until(reader, b"success")
        writer.write(XMPP_OPEN.encode())
        await _until(reader, b"</stream:features>")
        bind = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>"
        writer.write(f"<iq type='set' id='b1'>{bind}</iq>".encode())
        await _until(reader, b"</iq>")
        writer.write(b"<presence/>")
        await _until(reader, b"<presence")
        (connection,) = running.connections
        parser = connection.core._link.parser  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REST_AFTER / 2  # well before the sweeper would free it
        while parser._parser is not None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert parser._parser is None
    finally:
        writer.close()
