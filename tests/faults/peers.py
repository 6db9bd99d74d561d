"""The parties of the fault suite: senders that count, recipients that count,
and raw sockets that misbehave (never read, read slowly).

Every message id goes through a :class:`~faults.ledger.Ledger`: a sender
records each write and each ``<ack/>``; a recipient's client records each
message it hands to its user, labelled with the login it arrived on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Literal

from conftest import ServerProcess
from e2e.rawsock import RawPeer, native_login
from e2e.xmpp_client_helpers import raw_login
from faults.ledger import Ledger
from polling import wait_for

from xmlchat.client.native import ConnectionLost, NativeClient, RecentMessages, ServerError
from xmlchat.client.xmpp import DEFAULT_PLUGINS, XmppClient

Protocol = Literal["native", "xmpp"]
PROTOCOLS: list[Protocol] = ["native", "xmpp"]
USERS = {name: f"{name}pw" for name in ("alice", "bob", "carol")}


def fault_config(**limits: int | float) -> str:
    """Server TOML for the suite. The stanza buckets (per connection and per
    IP) are off: they only slow a sender (reads pause, nothing is dropped), and
    with them a row of thousands of messages would take minutes, not seconds."""
    off = {"stanzas_per_second": 0, "ip_stanzas_per_second": 0}
    lines = [f"{key} = {value}" for key, value in {**off, **limits}.items()]
    return "[limits]\n" + "\n".join(lines) + "\n"


def pin_ports(server: ServerProcess) -> None:
    """Restart on the same ports, so a client reconnects by itself, as it would
    to a real server (the fixture picks fresh ports at each start otherwise)."""
    for name, port in server.ports.items():
        server.env[f"XMLCHAT_LISTENERS_{name.upper()}_PORT"] = str(port)


def body(size: int, id_: str) -> str:
    return (id_ + " ").ljust(size, "x")


# ---- senders


def native_client(server: ServerProcess, user: str, **kwargs: object) -> NativeClient:
    kwargs.setdefault("port", server.ports["native"])
    return NativeClient(user, USERS[user], ssl=server.client_ssl(), **kwargs)  # type: ignore[arg-type]


async def pump(
    client: NativeClient,
    to: str,
    ids: Iterable[str],
    size: int,
    ledger: Ledger,
    *,
    window: int = 32,
    retry: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Send ``ids`` with up to ``window`` unacknowledged at once, recording
    each write and ack. Without ``retry`` it stops at the first lost
    connection; with it, an unacknowledged message is sent again under the
    same id once the client is back online (what an application does: the
    library itself re-sends nothing)."""
    slots = asyncio.Semaphore(window)
    broken = asyncio.Event()

    async def one(id_: str) -> None:
        try:
            for _attempt in range(20):
                ledger.send(id_)
                try:
                    await client.send(to, body(size, id_), id_)
                except (ConnectionLost, TimeoutError):
                    if not retry:
                        broken.set()
                        return
                    with contextlib.suppress(TimeoutError):
                        await client.wait_online(10)
                    continue
                except ServerError:
                    return  # refused (e.g. the offline queue is full): not acknowledged
                ledger.ack(id_)
                return
        finally:
            slots.release()

    tasks = []
    for id_ in ids:
        await slots.acquire()
        if broken.is_set() or stop():
            slots.release()
            break
        tasks.append(asyncio.create_task(one(id_)))
    await asyncio.gather(*tasks)


async def xmpp_burst(client: XmppClient, to: str, ids: Iterable[str], size: int, ledger: Ledger) -> None:
    """Messages from an XMPP sender: only ever *sent* (no XEP-0198 acks yet)."""
    for n, id_ in enumerate(ids):
        ledger.send(id_)
        client.send_chat(to, body(size, id_), id_)
        if n % 16 == 15:
            await asyncio.sleep(0)  # let slixmpp write, as a client sending steadily would


async def settle(
    server: ServerProcess,
    to: str,
    ledger: Ledger,
    name: str,
    timeout: float = 10.0,
    gone: Callable[[], bool] = lambda: False,
) -> bool:
    """Send one last acknowledged message and wait (bounded) until the recipient
    has it, or ``gone()`` says its connection is lost (nothing more comes then).
    The server delivers a session's stored messages before live ones
    (messages.py, XEP-0160), so once it arrives, everything owed before it has."""
    sender = native_client(server, "carol", reconnect=False)
    await sender.start()
    try:
        ledger.send(name)
        await sender.send(to, body(64, name), name)
        ledger.ack(name)
        await wait_for(lambda: ledger.has(name) or gone(), timeout, what=f"{name} reached {to}")
        return ledger.has(name)
    except (TimeoutError, ConnectionLost, ServerError):
        return False
    finally:
        await sender.close()


# ---- recipients


class Recipient:
    """One user's client on either protocol, over as many logins as a test
    makes; every message it hands out goes to the ledger as ``user/N``."""

    def __init__(self, server: ServerProcess, user: str, protocol: Protocol, ledger: Ledger) -> None:
        self.server, self.user, self.protocol, self.ledger = server, user, protocol, ledger
        self.logins = 0
        self.failed_logins = 0
        self.native: NativeClient | None = None
        self.xmpp: XmppClient | None = None
        # What the user was shown, across logins, as an app keeps it: a message
        # the server re-delivers after a crash is recognised, not shown twice.
        self.recent = RecentMessages()

    async def login(self, *, reconnect: bool = False, via: int | None = None, resource: str = "") -> None:
        """Log in (again); ``via``: the port of a proxy in front of the server's;
        ``resource`` (XMPP): a fixed one, as a client that logs in where it was."""
        self.logins += 1
        where = f"{self.user}/{self.logins}"
        if self.protocol == "native":
            self.native = native_client(
                self.server, self.user, reconnect=reconnect, min_backoff=0.1, max_backoff=0.5,
                port=via or self.server.ports["native"],
                on_message=lambda m: self.ledger.receive(m.id, f"{where}.{self.native_connects()}"),
                recent=self.recent,
            )
            await self.native.start()
        else:
            self.xmpp = XmppClient(
                f"{self.user}@localhost" + (f"/{resource}" if resource else ""), USERS[self.user],
                ssl_context=self.server.client_ssl(),
                on_message=lambda m: self.ledger.receive(m.id, where),
                plugins=(*DEFAULT_PLUGINS, "xep_0198"), recent=self.recent,
            )
            try:
                await self.xmpp.start("127.0.0.1", via or self.server.ports["xmpp"])
            except ConnectionError:
                # Cut off before the login finished (today: by a replay overflowing
                # the send buffer); what arrived is counted, the rest shows as lost.
                self.failed_logins += 1

    def dropped(self) -> bool:
        """The current login's connection is gone."""
        if self.native is not None:
            return self.native.state != "online"
        return self.xmpp is not None and self.xmpp.closed.is_set()

    def native_connects(self) -> int:
        return self.native.connects if self.native is not None else 0

    async def close(self) -> None:
        if self.native is not None:
            await self.native.close()
        if self.xmpp is not None:
            with contextlib.suppress(Exception):
                await self.xmpp.stop(wait=0.5)


async def xmpp_sender(server: ServerProcess, user: str) -> XmppClient:
    client = XmppClient(f"{user}@localhost", USERS[user], ssl_context=server.client_ssl())
    await client.start("127.0.0.1", server.ports["xmpp"])
    return client


# ---- misbehaving recipients: raw sockets


def raw_recipient(server: ServerProcess, user: str, protocol: Protocol, acks: bool = False) -> RawPeer:
    """Logged in and available, then left to the test (it may never read). With
    ``acks``, as a client that acknowledges what it reads: native receipts, or
    XEP-0198 enabled (what it never acknowledges stays stored)."""
    if protocol == "native":
        return native_login(server.ports["native_plain"], user, USERS[user], receipts=acks)
    peer = raw_login(server, user)
    if acks:
        peer.send("<enable xmlns='urn:xmpp:sm:3'/>")
        assert b"<enabled" in peer.read_until("<enabled")
    peer.send("<presence/>")  # available: messages to the bare JID come here (RFC 6121 §8.5.2.1.1)
    return peer
