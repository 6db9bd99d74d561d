"""The composition root: Config -> Storage -> Router -> Modules -> Listeners.

Everything a module or connection needs is reachable from :class:`Server`;
there is no global state.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from xmlchat.config import Config, Listener
from xmlchat.errors import StreamCondition, StreamError
from xmlchat.metrics import Metrics
from xmlchat.modules.base import Module, ModuleFactory, Registry
from xmlchat.modules.disco import Disco
from xmlchat.modules.messages import Messages
from xmlchat.modules.ping import Ping
from xmlchat.modules.presence import Presence
from xmlchat.modules.roster import Roster
from xmlchat.modules.time import Time
from xmlchat.modules.version import Version
from xmlchat.server import tls
from xmlchat.server.dispatch import Dispatch
from xmlchat.server.native import NativeConnection
from xmlchat.server.router import Router
from xmlchat.server.session import Session
from xmlchat.server.xmpp import XmppConnection
from xmlchat.storage import SqliteStorage, Storage

if TYPE_CHECKING:
    from xmlchat.server.connection import Connection

log = logging.getLogger(__name__)

ConnectionFactory = Callable[..., "Connection[Any]"]

# Which connection class serves which listener of config.listeners.
PROTOCOLS: dict[str, tuple[str, ConnectionFactory]] = {
    "native": ("native", NativeConnection),
    "native_plain": ("native", NativeConnection),
    "xmpp": ("xmpp", XmppConnection),
    "xmpp_tls": ("xmpp", XmppConnection),
}


@dataclass(frozen=True, slots=True)
class Bound:
    """A listening socket, as printed at start-up."""

    name: str
    protocol: str
    address: str
    port: int
    tls: str

    def __str__(self) -> str:
        return f"listening: {self.protocol} {self.address} port {self.port} tls={self.tls} ({self.name})"


class Server:
    def __init__(
        self, config: Config, storage: Storage, extra_modules: tuple[ModuleFactory, ...] = ()
    ) -> None:
        self.config = config
        self.storage = storage
        self.router = Router()
        self.metrics = Metrics.create(config.metrics)
        self.registry = Registry()
        self.messages = Messages(self)
        self.presence = Presence(self)
        self.roster = Roster(self)
        self.dispatch = Dispatch(self)
        self.modules: list[Module] = [self.messages, self.presence, self.roster]
        self.modules += [Disco(self), Ping(self), Version(self), Time(self)]
        self.modules += [factory(self) for factory in extra_modules]
        for module in self.modules:
            self.registry.add(module.name, module.setup())
        self.connections: set[Connection[Any]] = set()
        self.bound: list[Bound] = []
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls_context: ssl.SSLContext | None = None
        # RFC 5929 tls-server-end-point data for SCRAM-*-PLUS (the same for every connection).
        self.channel_binding: dict[str, bytes] | None = None
        # Keeps SCRAM's fake salts for unknown users stable across connections (RFC 5802 §5.1).
        self.scram_secret = secrets.token_bytes(32)

    @classmethod
    async def open(cls, config: Config) -> Server:
        """Open storage and make sure a certificate exists."""
        config.data_path.mkdir(parents=True, exist_ok=True)
        storage = await SqliteStorage.open(config.database_path, config.storage.scram_iterations)
        server = cls(config, storage)
        if any(listener.enabled and listener.tls != "none" for listener in _listeners(config).values()):
            cert, key = tls.ensure_certificate(config)
            server._tls_context = tls.server_context(cert, key)
            server.channel_binding = {"tls-server-end-point": tls.server_end_point(cert)}
        return server

    @property
    def tls_context(self) -> ssl.SSLContext | None:
        return self._tls_context

    def xmpp_features(self) -> list[etree._Element]:
        """Post-authentication stream features beyond bind and session."""
        return [
            etree.Element(f"{{{ns}}}{name}", nsmap={None: ns}) for ns, name in self.registry.stream_features
        ]

    # ---- listeners

    async def start(self) -> list[Bound]:
        for name, listener in _listeners(self.config).items():
            if listener.enabled and name in PROTOCOLS:
                await self._listen(name, listener)
        self.bound += await self.metrics.start(self)
        self._spawn(self._sweep())
        return self.bound

    async def _listen(self, name: str, listener: Listener) -> None:
        protocol, factory = PROTOCOLS[name]
        if listener.tls == "none" and name == "native_plain":
            _check_plaintext_address(listener, self.config.native.allow_plaintext_on_network)
        direct = listener.tls == "direct"

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connection = factory(self, reader, writer, direct)
            self.connections.add(connection)
            try:
                await connection.run()
            finally:
                self.connections.discard(connection)

        srv = await asyncio.start_server(
            accept, listener.address, listener.port, ssl=self._tls_context if direct else None, limit=2**16
        )
        self._servers.append(srv)
        for sock in srv.sockets:
            host, port = sock.getsockname()[:2]
            self.bound.append(Bound(name, protocol, host, port, listener.tls))

    def port_of(self, name: str) -> int:
        return next(b.port for b in self.bound if b.name == name)

    # ---- sessions

    async def session_started(self, session: Session) -> None:
        replaced = self.router.add(session)
        if replaced is not None:
            # RFC 6120 §7.7.2.2: the newer session wins; the old one gets conflict.
            replaced.close(StreamError(StreamCondition.CONFLICT, "replaced by a new connection"))
        for _, hook in self.registry.session_started:
            await hook(session)

    async def session_ended(self, session: Session) -> None:
        was_current = self.router.get(session.jid) is session
        self.router.remove(session)
        if not was_current:
            return  # replaced: the newer session now owns this full JID
        for _, hook in self.registry.session_ended:
            await hook(session)
        if session.available:
            await self.presence.broadcast_unavailable(session)

    # ---- timers

    async def _sweep(self) -> None:
        """Ping idle connections, drop dead ones (one timer for all connections)."""
        limits = self.config.limits
        interval = max(0.05, min(limits.idle_timeout, limits.login_timeout) / 8)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for connection in list(self.connections):
                if not connection.closing:
                    connection.check_idle(now)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- shutdown

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, close every stream properly, flush storage."""
        for srv in self._servers:
            srv.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self.connections):
            connection.close(StreamError(StreamCondition.SYSTEM_SHUTDOWN, "server shutting down"))
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 1)
        await self.metrics.stop()
        await self.storage.close()
        log.info("stopped")


def _listeners(config: Config) -> dict[str, Listener]:
    return {name: getattr(config.listeners, name) for name in config.listeners.__dataclass_fields__}


def _check_plaintext_address(listener: Listener, allowed: bool) -> None:
    try:
        loopback = ipaddress.ip_address(listener.address).is_loopback
    except ValueError:
        loopback = listener.address == "localhost"
    if not loopback and not allowed:
        raise ValueError(
            f"the plaintext native listener may only bind loopback ({listener.address} given); "
            "set native.allow_plaintext_on_network = true to override"
        )
