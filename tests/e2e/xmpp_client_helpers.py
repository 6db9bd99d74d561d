"""Helpers for the XMPP end-to-end tests: a shared server, slixmpp clients and
a raw-socket XMPP login (direct TLS, SASL PLAIN, bind) for hostile-input tests."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from conftest import ServerProcess, make_server
from e2e.rawsock import RawPeer

from xmlchat.client.xmpp import TlsMode, XmppClient
from xmlchat.jid import JID
from xmlchat.storage import SqliteStorage

STREAM_OPEN = (
    "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
STREAM_ERROR = re.compile(rb"<stream:error><([a-z-]+) xmlns=['\"]urn:ietf:params:xml:ns:xmpp-streams['\"]")


def started_server(
    tmp: Path, users: tuple[str, ...] = ("alice", "bob", "carol"), extra_config: str = ""
) -> Iterator[ServerProcess]:
    """A server for a whole test module; users are created in-process (NAMEpw),
    which is much faster than one ``xmlchat adduser`` process each."""
    server = make_server(tmp, extra_config)

    async def add_users() -> None:
        storage = await SqliteStorage.open(server.data_dir / "xmlchat.sqlite3", 4096)
        try:
            for name in users:
                await storage.create_user(JID(name, "localhost"), f"{name}pw")
        finally:
            await storage.close()

    asyncio.run(add_users())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(
    server: ServerProcess,
    user: str,
    resource: str | None = None,
    password: str | None = None,
    **kwargs: object,
) -> XmppClient:
    jid = f"{user}@localhost" + (f"/{resource}" if resource else "")
    return XmppClient(jid, password or f"{user}pw", ssl_context=server.client_ssl(), **kwargs)  # type: ignore[arg-type]


@asynccontextmanager
async def online(
    server: ServerProcess, user: str, resource: str | None = None, tls: TlsMode = "starttls", **kwargs: object
) -> AsyncIterator[XmppClient]:
    """A logged-in slixmpp client (initial presence sent, roster fetched)."""
    c = client(server, user, resource, **kwargs)
    await c.start("127.0.0.1", server.ports["xmpp_tls" if tls == "direct" else "xmpp"], tls=tls)
    try:
        yield c
    finally:
        await c.stop()


async def next_item(queue: asyncio.Queue[object], timeout: float = 5.0) -> object:
    return await asyncio.wait_for(queue.get(), timeout)


# ---- raw sockets


def raw_login(server: ServerProcess, user: str, resource: str = "raw", bind: bool = True) -> RawPeer:
    """Log in byte by byte over the direct-TLS port: PLAIN, restart, bind
    (``bind=False``: authenticated, stream restarted, no resource yet)."""
    peer = RawPeer(server.ports["xmpp_tls"], server.client_ssl())
    peer.send(STREAM_OPEN)
    assert b"</stream:features>" in peer.read_until("</stream:features>")
    token = base64.b64encode(f"\0{user}\0{user}pw".encode()).decode()
    peer.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    assert b"<success" in peer.read_until("<success")
    peer.received = b""
    peer.send(STREAM_OPEN)
    peer.read_until("</stream:features>")
    if not bind:
        peer.received = b""
        return peer
    peer.send(
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        f"<resource>{resource}</resource></bind></iq>"
    )
    assert f"{user}@localhost/{resource}".encode() in peer.read_until("</iq>")
    peer.received = b""
    return peer


def refusal(server: ServerProcess, user: str, request: str) -> str:
    """Send ``request`` (one iq) from a raw login of ``user``; return the error
    answer, asserting it is one (its text, for the condition and any
    application-specific element)."""
    peer = raw_login(server, user, "raw")
    try:
        peer.send(request)
        data = peer.read_until("</iq>").decode()
    finally:
        peer.close()
    assert re.search(r"<iq [^>]*type=.error.", data), data
    return data


def condition_in(data: str) -> str | None:
    """The defined stanza-error condition in ``data`` (RFC 6120 §8.3.3)."""
    match = re.search(r"<([a-z-]+) xmlns=.urn:ietf:params:xml:ns:xmpp-stanzas.", data)
    return match.group(1) if match else None


def stream_error(data: bytes) -> str | None:
    """The defined condition of the ``<stream:error/>`` in ``data``, if any."""
    match = STREAM_ERROR.search(data)
    return match.group(1).decode() if match else None
