"""Raw asyncio peers for tests that run the real server in this process (to
look inside it: its connections, its transport's writes) on loopback ports.

``rawsock.RawPeer`` blocks, so it serves tests whose server is another
process; here the server shares the test's event loop, so the peers are
asyncio streams.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from e2e.rawsock import NATIVE_OPEN

from xmlchat.config import load
from xmlchat.jid import JID
from xmlchat.server.app import Server

XMPP_OPEN = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)

Peer = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def plaintext_server(
    data_dir: Path, users: tuple[str, ...] = ("alice", "bob")
) -> AsyncIterator[Server]:
    """The server with plaintext XMPP and native listeners on free ports, PLAIN
    allowed without TLS, HTTP off; each of ``users`` has the password "pw"."""
    overrides = {
        "data_dir": str(data_dir),
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
    for name in users:
        await server.storage.create_user(JID(name, "localhost"), "pw")
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1)


async def until(reader: asyncio.StreamReader, marker: bytes, count: int = 1) -> bytes:
    """Read until ``marker`` arrived ``count`` times (10 s at most per read); all that was read."""
    received = b""
    while received.count(marker) < count:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data, f"closed before {marker!r}"
        received += data
    return received


async def native_login(port: int, user: str) -> Peer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{NATIVE_OPEN}<login><user>{user}</user><password>pw</password></login>".encode())
    await until(reader, b"</login-ok>")
    return reader, writer


async def xmpp_login(port: int, user: str, sm: bool = False, presence_apart: bool = False) -> Peer:
    """RFC 6120 over plaintext: stream, SASL PLAIN, restart, bind, initial
    presence (with the bind in one write, or in a write of its own after the
    bind's answer: ``presence_apart``); with ``sm``, XEP-0198 enabled."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(XMPP_OPEN.encode())
    await until(reader, b"</stream:features>")
    token = base64.b64encode(f"\0{user}\0pw".encode()).decode()
    writer.write(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode())
    await until(reader, b"success")
    writer.write(XMPP_OPEN.encode())
    await until(reader, b"</stream:features>")
    bind = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>"
    bind = f"<iq type='set' id='b1'>{bind}</iq>"
    if presence_apart:
        writer.write(bind.encode())
        await until(reader, b"</iq>")
        writer.write(b"<presence/>")
    else:
        writer.write(f"{bind}<presence/>".encode())
    await until(reader, b"<presence")
    if sm:  # XEP-0198: the client's stanzas go through the connection's in-order worker
        writer.write(b"<enable xmlns='urn:xmpp:sm:3'/>")
        await until(reader, b"<enabled")
    return reader, writer


async def xmpp_sm_login(port: int, user: str) -> Peer:
    return await xmpp_login(port, user, sm=True)


LOGINS = {"native": native_login, "xmpp": xmpp_login, "xmpp-sm": xmpp_sm_login}
