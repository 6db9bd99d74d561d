"""A real XMPP client (slixmpp) against the test server, with queues to assert on.

    peer = await connect(server, "alice", resource="laptop")
    await peer.client.get_roster()                     # or connect(..., roster=True)
    presence = await peer.next_presence(type_="available", sender="bob@localhost")
    await peer.close()                                 # </stream:stream>, waits for the server
    peer.kill()                                        # drop the socket, no stream close

Everything the server sends lands in a queue (messages, presences, roster
pushes), so tests read it in order with a timeout. The client does no
subscription handling of its own (``auto_authorize = None``): tests answer
requests explicitly.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import slixmpp
from conftest import ServerProcess
from slixmpp.exceptions import IqError
from slixmpp.stanza import Iq, Message, Presence

TIMEOUT = 5.0
DOMAIN = "localhost"


@dataclass
class XmppPeer:
    """A connected, bound slixmpp client and what it received."""

    client: slixmpp.ClientXMPP
    messages: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    presences: asyncio.Queue[Presence] = field(default_factory=asyncio.Queue)
    roster_pushes: asyncio.Queue[Iq] = field(default_factory=asyncio.Queue)

    @property
    def jid(self) -> str:
        """The bound full JID."""
        return str(self.client.boundjid.full)

    async def next_message(self, timeout: float = TIMEOUT) -> Message:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def next_presence(
        self, type_: str | None = None, sender: str | None = None, timeout: float = TIMEOUT
    ) -> Presence:
        """The next presence matching ``type_`` ('available', 'subscribe', …) and
        ``sender`` (bare or full JID); others before it are dropped."""
        return await _next(self.presences, lambda p: _matches(p, type_, sender), timeout)

    async def next_push(self, jid: str | None = None, timeout: float = TIMEOUT) -> Iq:
        """The next roster push (optionally one naming ``jid``)."""
        return await _next(self.roster_pushes, lambda iq: jid is None or jid in _items(iq), timeout)

    async def no_presence(
        self, type_: str | None = None, sender: str | None = None, wait: float = 0.5
    ) -> None:
        """Assert no matching presence arrives within ``wait`` seconds."""
        try:
            got = await self.next_presence(type_, sender, wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected presence: {got}")

    def drain(self) -> None:
        """Forget everything received so far."""
        for queue in (self.messages, self.presences, self.roster_pushes):
            while not queue.empty():
                queue.get_nowait()

    def send_presence(self, type_: str | None = None, to: str | None = None, **kwargs: Any) -> None:
        self.client.send_presence(ptype=type_, pto=to, **kwargs)  # type: ignore[arg-type]

    async def roster(self, ver: str | None = None) -> Iq:
        """A roster get (RFC 6121 §2.1.3), optionally with a cached version (§2.6)."""
        iq = self.client.Iq()
        iq["type"] = "get"
        iq.enable("roster")
        if ver is not None:
            iq["roster"]["ver"] = ver
        result: Iq = await iq.send(timeout=TIMEOUT)
        return result

    async def roster_set(
        self, jid: str, name: str | None = None, groups: tuple[str, ...] = (), **attrs: str
    ) -> Iq:
        iq = self.client.Iq()
        iq["type"] = "set"
        item: dict[str, Any] = {"name": name or "", "groups": list(groups), **attrs}
        iq["roster"]["items"] = {jid: item}
        result: Iq = await iq.send(timeout=TIMEOUT)
        return result

    async def close(self) -> None:
        """A clean end: ``</stream:stream>``, wait for the server's close."""
        if self.client.transport is None:
            return
        done = self.client.disconnected
        self.client.disconnect(wait=TIMEOUT)
        await asyncio.wait_for(done, TIMEOUT)

    def kill(self) -> None:
        """Drop the TCP connection without closing the stream (a crashed client)."""
        self.client.abort()


def roster_items(iq: Iq) -> dict[str, dict[str, Any]]:
    """``{jid: {"name", "subscription", "ask", "groups", ...}}`` of a roster result or push."""
    return {str(jid): dict(values) for jid, values in iq["roster"]["items"].items()}


async def connect(
    server: ServerProcess,
    user: str,
    password: str | None = None,
    resource: str | None = None,
    *,
    roster: bool = True,
    presence: bool = True,
    port: str = "xmpp",
    plugins: tuple[str, ...] = (),
) -> XmppPeer:
    """Log ``user`` in (password defaults to ``{user}pw``, the fixture's), then
    optionally get the roster (an interested resource) and send initial presence.
    ``plugins`` are registered before connecting (some read the stream features)."""
    jid = user if "@" in user else f"{user}@{DOMAIN}"
    if resource is not None:
        jid += f"/{resource}"
    client = slixmpp.ClientXMPP(jid, password or f"{user.partition('@')[0]}pw")
    context = ssl.create_default_context(cafile=server.cafile)
    context.check_hostname = False
    client.ssl_context = context
    client.enable_direct_tls = port == "xmpp_tls"
    client.enable_starttls = port != "xmpp_tls"
    client.auto_authorize = None  # the tests answer subscription requests
    client.auto_subscribe = False
    for plugin in plugins:
        client.register_plugin(plugin)
    peer = XmppPeer(client)
    client.add_event_handler("message", peer.messages.put_nowait)
    client.add_event_handler("presence", peer.presences.put_nowait)
    client.add_event_handler(
        "roster_update", lambda iq: iq["type"] == "set" and peer.roster_pushes.put_nowait(iq)
    )
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed = lambda *_: started.done() or started.set_exception(ConnectionError(f"{jid}: login failed"))  # noqa: E731
    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(None))
    client.add_event_handler("failed_all_auth", failed)
    client.add_event_handler("connection_failed", failed)
    client.connect("127.0.0.1", server.ports[port])
    await asyncio.wait_for(started, TIMEOUT * 2)
    if roster:
        await client.get_roster(timeout=TIMEOUT)
    if presence:
        client.send_presence()
    return peer


async def error_of(request: Any) -> str:
    """The condition of the IqError that awaiting ``request`` raises."""
    with pytest.raises(IqError) as failure:
        await request
    return str(failure.value.iq["error"]["condition"])


async def subscribe_and_approve(asker: XmppPeer, contact: XmppPeer, contact_jid: str) -> None:
    """asker subscribes to contact's presence; contact approves (RFC 6121 §3.1)."""
    asker_jid = str(asker.client.boundjid.bare)
    asker.send_presence("subscribe", contact_jid)
    await contact.next_presence("subscribe", asker_jid)
    contact.send_presence("subscribed", asker_jid)
    await asker.next_presence("subscribed", contact_jid)


async def _next(queue: asyncio.Queue[Any], wanted: Callable[[Any], bool], timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        item = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
        if wanted(item):
            return item


def _matches(presence: Presence, type_: str | None, sender: str | None) -> bool:
    if type_ is not None and presence["type"] != type_:
        return False
    if sender is None:
        return True
    got = presence["from"]
    return str(got) == sender or (("/" not in sender) and str(got.bare) == sender)


def _items(iq: Iq) -> set[str]:
    return {str(jid) for jid in iq["roster"]["items"]}
