"""The composition root: Config -> Storage -> Hub and modules -> Listeners.

The server owns the listeners, connections and timers; a connection gets what it needs as a
:class:`ConnectionContext`, a module as a :class:`~xmlchat.routing.context.ModuleContext`
(:mod:`xmlchat.server.modules`). No global state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmlchat import config_rules
from xmlchat import log as log_mod
from xmlchat.config import Config, Listener
from xmlchat.errors import AdmissionRefused, StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.metrics import Metrics
from xmlchat.routing.context import ModuleContext
from xmlchat.server import reload, tls
from xmlchat.server.admin import AdminChannel
from xmlchat.server.admin_commands import server_commands
from xmlchat.server.admission import Pending
from xmlchat.server.clustering import join_cluster
from xmlchat.server.component import ComponentConnection
from xmlchat.server.connection import Connection, ConnectionContext
from xmlchat.server.datadir import DataDirLock, ensure_writable, scram_secret
from xmlchat.server.defences import Defences
from xmlchat.server.http.app import HttpFrontEnd, HttpSide
from xmlchat.server.listening import Bound, check_plaintext_address, configured_listeners
from xmlchat.server.modules import ModuleFactory, build_hub
from xmlchat.server.native import NativeConnection
from xmlchat.server.peers import PeerLimit
from xmlchat.server.resumption import Resumptions
from xmlchat.server.transport import StreamTransport, forget_connection_tracebacks
from xmlchat.server.xmpp import XmppConnection
from xmlchat.storage import Storage
from xmlchat.storage.opening import open_storage

if TYPE_CHECKING:
    from xmlchat.server.cluster import NatsCluster

log = logging.getLogger(__name__)

ConnectionFactory = Callable[..., Connection[Any]]

# Which connection class serves which listener of config.listeners.
PROTOCOLS: dict[str, tuple[str, ConnectionFactory]] = {
    "native": ("native", NativeConnection),
    "native_plain": ("native", NativeConnection),
    "xmpp": ("xmpp", XmppConnection),
    "xmpp_tls": ("xmpp", XmppConnection),
    "component": ("component", ComponentConnection),
}
# The HTTP listeners (WebSocket, BOSH, host-meta): one aiohttp application.
HTTP_LISTENERS = ("http", "https")


class Server:
    def __init__(
        self,
        config: Config,
        storage: Storage,
        extra_modules: tuple[ModuleFactory, ...] = (),
        load_config: Callable[[], Config] | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.metrics = Metrics.create(config.metrics)
        self._module_contexts: list[ModuleContext[Any]] = []
        self.hub = build_hub(config, storage, self.metrics, extra_modules, self._module_contexts)
        # Where a reload reads the configuration again (None: it cannot).
        self._load_config = load_config
        self.started_at = time.time()
        self._contexts: list[ConnectionContext] = []  # one per listener; a reload updates them
        self._admin: AdminChannel | None = None
        self.connections: set[Connection[Any]] = set()
        self.bound: list[Bound] = []
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls_context: ssl.SSLContext | None = None
        self.certificate: Path | None = None  # what clients must trust (printed at start)
        self._channel_binding: dict[str, bytes] | None = None
        self._scram_secret = secrets.token_bytes(32)  # stable fake salts (RFC 5802 §5.1)
        self._resumptions: Resumptions[Any] = Resumptions(config.delivery.resume_timeout)  # all listeners
        self.cluster: NatsCluster | None = None
        self._data_lock: DataDirLock | None = None  # held while serving (Server.open)
        limits = config.limits
        # docs/security.md: who may connect, guessing passwords, per-IP rates.
        self.defences = Defences(limits, self.metrics)
        # One count per IP address for every listener, TCP and HTTP alike.
        self.peers = PeerLimit(limits.max_connections_per_ip, limits.exempt_loopback)
        self._http: HttpFrontEnd | None = None

    @classmethod
    async def open(cls, config: Config, load_config: Callable[[], Config] | None = None) -> Server:
        """Open storage and make sure a certificate exists."""
        config_rules.validate(config)
        ensure_writable(config.data_path)
        lock = DataDirLock(config.data_path)
        lock.acquire()  # before the database: a second server must not touch it
        try:
            storage = await open_storage(config)
        except BaseException:
            lock.release()
            raise
        server = cls(config, storage, load_config=load_config)
        server._data_lock = lock
        server._scram_secret = scram_secret(config.data_path)
        listeners = configured_listeners(config).values()
        if any(listener.enabled and listener.tls != "none" for listener in listeners):
            tls.bound_tls_read_buffers()
            cert, key = tls.ensure_certificate(config)
            server.certificate = cert.absolute()
            server._tls_context = tls.server_context(cert, key)
            # RFC 5929 tls-server-end-point data for SCRAM-*-PLUS.
            server._channel_binding = {"tls-server-end-point": tls.server_end_point(cert)}
        return server

    @property
    def tls_context(self) -> ssl.SSLContext | None:
        return self._tls_context

    def connection_context(self, tls: bool = True) -> ConnectionContext:
        context = ConnectionContext(
            config=self.config,
            hub=self.hub,
            accounts=self.storage,
            metrics=self.metrics,
            tls_context=self._tls_context if tls else None,
            channel_binding=self._channel_binding if tls else None,
            scram_secret=self._scram_secret,
            resumptions=self._resumptions if self.config.delivery.resume_timeout > 0 else None,
            login_guard=self.defences.login_guard,
            addresses=self.defences.addresses,
        )
        self._contexts.append(context)
        return context

    async def count_offline(self) -> int:
        """For the metrics gauge."""
        return await self.storage.count_offline()

    async def count_users(self) -> int:
        return await self.storage.count_users()

    def sessions_by_protocol(self) -> Counter[str]:
        """This node's sessions (a cluster's other nodes count their own)."""
        return Counter(session.protocol for session in self.hub.router.local_sessions())

    def close_sessions(self, jid: JID, error: StreamError) -> int:
        """End the connections logged in as ``jid``: a full JID's session, or
        every connection authenticated as a bare JID (bound or not yet)."""
        closing = [
            c
            for c in list(self.connections)
            if not c.closing
            and (
                c.session is not None and c.session.jid == jid
                if jid.resource is not None
                else c.account == jid
            )
        ]
        for connection in closing:
            connection.close(error)
        return len(closing)

    # ---- reload (SIGHUP, xmlchat reload)

    async def reload(self) -> reload.ReloadPlan:
        """Read the configuration again and apply what can change while
        sessions stay up (:mod:`xmlchat.server.reload`). A configuration or
        certificate that does not load changes nothing (ValueError)."""
        if self._load_config is None:
            raise ValueError("this server was not started from a configuration it can read again")
        plan = reload.plan(self.config, await asyncio.to_thread(self._load_config))
        config_rules.validate(plan.config)  # a ConfigError is a ValueError: nothing changes
        if self._tls_context is not None:
            await asyncio.to_thread(self._reload_certificate, plan.config)
        self.config = plan.config
        for context in self._contexts:
            context.config = plan.config
        for module_context in self._module_contexts:
            module_context.limits = plan.config.limits
        self.defences.limits_changed(plan.config.limits)
        for connection in list(self.connections):
            connection.limits_changed()
        self.peers.limit = plan.config.limits.max_connections_per_ip
        self.peers.exempt_loopback = plan.config.limits.exempt_loopback
        # Said under the old log settings, so a reload to a quieter level still shows.
        log.info("reloaded: %s", ", ".join(plan.applied) or "no change")
        if plan.needs_restart:
            log.warning("changed, but needs a restart: %s", ", ".join(plan.needs_restart))
        log_mod.setup(plan.config.log.level, plan.config.log.format)
        return plan

    def _reload_certificate(self, config: Config) -> None:
        assert self._tls_context is not None and self._channel_binding is not None
        try:
            cert, key = tls.ensure_certificate(config)
            tls.server_context(cert, key)  # both load, the key matches: only then switch
        except (tls.CertificateError, ssl.SSLError, OSError) as e:
            raise ValueError(f"certificate not reloaded: {e}") from e
        # The listeners' context itself takes the new pair: new handshakes use it,
        # established sessions keep theirs.
        self._tls_context.load_cert_chain(cert, key)
        self._channel_binding["tls-server-end-point"] = tls.server_end_point(cert)

    # ---- listeners

    async def start(self) -> list[Bound]:
        forget_connection_tracebacks()
        if self.config.cluster.nats_url:
            self.cluster = await join_cluster(self.config, self.hub)
        for name, listener in configured_listeners(self.config).items():
            if listener.enabled and name in PROTOCOLS:
                await self._listen(name, listener)
        await self._listen_http()
        await self.hub.start()
        self._admin = AdminChannel(self.config.data_path, server_commands(self))
        await self._admin.start()
        metrics = await self.metrics.start(self)
        self.bound += [Bound("metrics", "http", host, port, "none") for host, port in metrics]
        self._spawn(self._sweep())
        return self.bound

    async def _listen(self, name: str, listener: Listener) -> None:
        protocol, factory = PROTOCOLS[name]
        if listener.tls == "none" and name == "native_plain":
            check_plaintext_address(listener, self.config.native.allow_plaintext_on_network)
        direct = listener.tls == "direct"
        # A listener's own tls setting decides: "none" offers no STARTTLS, even
        # when another listener has a certificate.
        context = self.connection_context(tls=listener.tls != "none")

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            transport = StreamTransport(reader, writer, direct)
            if not self.peers.admit(transport.address):
                log.info("refused %s: too many connections from its address", transport.peer)
                transport.abort()
                return
            try:
                if direct:
                    await self._admit_direct_tls(name, transport, lambda: factory(context, transport))
                else:
                    await self.serve(factory(context, transport))
            finally:
                self.peers.release(transport.address)

        srv = await asyncio.start_server(
            accept, listener.address, listener.port, limit=2**16, backlog=self.config.limits.listen_backlog
        )
        self._servers.append(srv)
        for sock in srv.sockets:
            host, port = sock.getsockname()[:2]
            self.bound.append(Bound(name, protocol, host, port, listener.tls))

    async def _admit_direct_tls(
        self, name: str, transport: StreamTransport, connection: Callable[[], Connection[Any]]
    ) -> None:
        """A direct-TLS client: admitted before its handshake, which runs here
        (not in the listener) so it is counted and timed like the rest; a
        refused one is closed at once, no handshake spent on it."""
        try:
            pending = self.defences.admit(name, transport.address)
        except AdmissionRefused:
            transport.abort()
            return
        assert self._tls_context is not None
        try:
            timeout = self.config.limits.tls_handshake_timeout
            if await tls.handshake(transport, self._tls_context, timeout, self.metrics):
                await self.serve(connection(), pending)
        finally:
            pending.release()

    async def serve(self, connection: Connection[Any], pending: Pending | None = None) -> None:
        """Run ``connection`` to its end among the others (the sweeper,
        shutdown). One not admitted yet (``pending`` None: plaintext, STARTTLS,
        WebSocket, BOSH) is admitted here, or refused in its own protocol."""
        if pending is None:
            try:
                pending = self.defences.admit(connection.protocol, connection.ip)
            except AdmissionRefused as refusal:
                connection.refuse(refusal)
                return
        connection.pending = pending
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            pending.release()

    async def _listen_http(self) -> None:
        listeners = configured_listeners(self.config)
        wanted = [name for name in HTTP_LISTENERS if listeners[name].enabled]
        if not wanted:
            return
        self._http = HttpFrontEnd(
            HttpSide(
                config=self.config,
                plain=self.connection_context(tls=False),
                secure=self.connection_context(tls=True),
                serve=self.serve,
                peers=self.peers,
            )
        )
        await self._http.start()
        for name in wanted:
            listener = listeners[name]
            if listener.tls == "starttls":
                raise ValueError(f'listeners.{name}.tls: HTTP has no STARTTLS; use "none" or "direct"')
            context = self._tls_context if listener.tls == "direct" else None
            for host, port in await self._http.listen(listener.address, listener.port, context):
                self.bound.append(Bound(name, "http", host, port, listener.tls))

    def port_of(self, name: str) -> int:
        return next(b.port for b in self.bound if b.name == name)

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
        if self._http is not None:
            await self._http.close_listeners()
        if self._admin is not None:
            await self._admin.stop()
        for task in list(self._tasks):
            task.cancel()
        # What is being handled finishes first: an accepted message gets its ack
        # before the stream closes, so no client sends it again (a duplicate).
        await asyncio.gather(*(c.quiesce(grace / 2) for c in list(self.connections)))
        for connection in list(self.connections):
            connection.close(StreamError(StreamCondition.SYSTEM_SHUTDOWN, "server shutting down"))
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 1)
        if self._http is not None:
            await self._http.stop()
        await self.metrics.stop()
        if self.cluster is not None:
            with contextlib.suppress(Exception):  # the others forget this node by its silence
                await asyncio.wait_for(self.cluster.leave(), grace)
        try:
            await self.hub.stop()
        finally:
            await self.storage.close()
        if self._data_lock is not None:
            self._data_lock.release()
        log.info("stopped")
