"""What the scenarios run against: the protocol variants and the servers offering them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from xmlchat.compare.clients import ChatDriver, NativeDriver, XmppDriver, XmppMode, client_tls
from xmlchat.compare.servers import ServerHandle, password_of
from xmlchat.compare.web_drivers import BoshDriver, WebSocketDriver

# How long any one step of a scenario (a login, a delivery) may take.
TIMEOUT: Final = 20.0

# The short-polling client asks this often once online (seconds). While it
# logs in it asks at the server's minimum, http.bosh_polling (servers.py).
POLL_INTERVAL: Final = 2.0
# The long-polling client's 'wait': the longest the server holds a request.
BOSH_WAIT: Final = 60

Transport = Literal["tcp", "websocket", "bosh", "poll"]


@dataclass(frozen=True, slots=True)
class Variant:
    """One protocol over one transport, as a client connects to it."""

    key: str
    label: str
    protocol: Literal["native", "xmpp"]
    listener: str  # the server's listener name
    tls: Literal["none", "starttls", "direct"]
    xmpp_mode: XmppMode | None = None
    sasl: str | None = None  # force a SASL mechanism (otherwise the client picks)
    full: bool = True  # also per-message, latency and throughput (else connect and reconnect only)
    transport: Transport = "tcp"

    @property
    def http(self) -> bool:
        return self.transport != "tcp"

    @property
    def encrypted(self) -> bool:
        return self.tls != "none"


VARIANTS: Final = (
    Variant("native-tls", "native, TLS", "native", "native", "direct"),
    Variant("native-plain", "native, plaintext", "native", "native_plain", "none"),
    Variant("xmpp-starttls", "XMPP, STARTTLS", "xmpp", "xmpp", "starttls", "starttls"),
    Variant("xmpp-directtls", "XMPP, direct TLS", "xmpp", "xmpp_tls", "direct", "direct", full=False),
    Variant(
        "xmpp-directtls-plain",
        "XMPP, direct TLS, SASL PLAIN",
        "xmpp",
        "xmpp_tls",
        "direct",
        "direct",
        sasl="PLAIN",
        full=False,
    ),
    Variant("xmpp-plain", "XMPP, plaintext", "xmpp", "xmpp", "none", "plain"),
    # The HTTP side, all over https (what a browser may use for a login).
    Variant("xmpp-websocket", "XMPP, WebSocket", "xmpp", "https", "direct", transport="websocket"),
    Variant("xmpp-bosh", "XMPP, BOSH long polling", "xmpp", "https", "direct", transport="bosh"),
    Variant(
        "xmpp-poll",
        f"XMPP, HTTP short polling every {POLL_INTERVAL:g} s",
        "xmpp",
        "https",
        "direct",
        transport="poll",
    ),
)


@dataclass
class Target:
    """A variant bound to the server that offers it."""

    variant: Variant
    server: ServerHandle

    @property
    def port(self) -> int:
        return self.server.ports[self.variant.listener]

    def driver(self, user: str, port: int | None = None) -> ChatDriver:
        server, v = self.server, self.variant
        cafile = server.cafile if v.encrypted else None
        host, port = server.host, self.port if port is None else port
        if port != self.port:
            host = "127.0.0.1"  # the proxy
        tls = client_tls(cafile) if cafile else None
        if v.transport == "websocket":
            return WebSocketDriver(user, password_of(user), server.domain, host, port, tls)
        if v.transport in ("bosh", "poll"):
            hold = 1 if v.transport == "bosh" else 0
            return BoshDriver(
                user,
                password_of(user),
                server.domain,
                host,
                port,
                tls,
                hold=hold,
                wait=BOSH_WAIT,
                interval=POLL_INTERVAL,
                login_interval=server.config.http.bosh_polling,
            )
        if v.protocol == "native":
            return NativeDriver(user, password_of(user), server.domain, host, port, cafile)
        assert v.xmpp_mode is not None
        return XmppDriver(user, password_of(user), server.domain, host, port, cafile, v.xmpp_mode, v.sasl)


def bind_targets(servers: Sequence[ServerHandle], quick: bool = False) -> list[Target]:
    """Each variant on the first server with a listener of the right kind."""
    targets = []
    for variant in VARIANTS:
        for server in servers:
            listener = getattr(server.config.listeners, variant.listener)
            if variant.listener not in server.ports or listener.tls != variant.tls:
                continue
            if variant.key == "xmpp-plain" and server.require_encryption:
                continue
            targets.append(Target(variant, server))
            break
    return targets


def users_for(pairs: int) -> list[str]:
    pairs_users = [f"{side}{i}" for i in range(pairs) for side in ("a", "b")]
    return pairs_users + ["alice", "bob"] + [f"idle{i}" for i in range(len(VARIANTS))]


async def close_all(drivers: Sequence[ChatDriver]) -> None:
    await asyncio.gather(*(d.close() for d in drivers), return_exceptions=True)
