"""Prometheus metrics: one :class:`Metrics` object per :class:`~xmlchat.server.app.Server`.

Off by default (``[metrics] enabled = false``): the server then holds the
no-op base class, whose methods do nothing, so the calls below cost one method
call in the hot path. When enabled (needs the ``metrics`` extra,
``pip install 'xmlchat[metrics]'``), :class:`PrometheusMetrics` keeps its own
``CollectorRegistry`` (never the global default one: tests run many servers in
one process) and serves it over HTTP at ``http://ADDRESS:PORT/metrics`` on the
server's event loop, next to the chat listeners.

The API, called by the server, the modules and each protocol's connection
class (``self.metrics.<method>(...)``); ``protocol`` is ``Connection.protocol``,
``"native"`` or ``"xmpp"``:

``connection_opened(protocol)``
    A client connected (``Connection.__init__`` calls it for every protocol).
``login(protocol, ok)``
    A login attempt finished: native ``<login>``, XMPP SASL success or failure.
``stanza_in(protocol, kind)``
    The client sent one stanza. ``kind`` is the top-level element's local name
    (XMPP: ``"message"``, ``"presence"``, ``"iq"``; native: ``"message"``,
    ``"login"``, ``"ping"``, … see :func:`native_kind`); ``None`` is ignored.
``stanza_out(protocol, kind)``
    One routed stanza was handed to this client session (``Session.deliver``):
    ``"message"``, ``"presence"`` or ``"iq"``, whatever the wire form.
``routed(outcome)``
    ``Messages.route`` decided: ``"delivered"``, ``"stored"`` (offline) or ``"dropped"``.
``error(protocol, error)``
    The server sent the client a :class:`StreamError` (fatal) or a :class:`StanzaError`.
``limit_hit(limit)``
    A limit fired: ``"send_buffer"`` (a slow reader was cut), ``"stanza_rate"``
    (a flooding client was slowed; ``"byte_rate"``, ``"ip_stanza_rate"``,
    ``"ip_byte_rate"`` likewise), ``"login_attempts"``, ``"offline_queue"``
    (a message refused: the recipient's queue was full), ``"pending_per_ip"``,
    ``"pending_total"``, ``"ip_locked_out"`` (a connection refused at once),
    ``"tls_handshake_timeout"``, ``"login_backoff"`` (a login refused
    unchecked), ``"lockout_account"``, ``"lockout_ip"``. Each shows in
    ``xmlchat stats`` too, so the tally is kept even with Prometheus off.
``parsing(protocol)``
    A context manager timing one read's worth of parsing in the protocol core
    (``with self.server.metrics.parsing(self.protocol): events = core.receive_data(data)``).

Gauges computed when scraped, so nothing in the hot path keeps them: open
connections by protocol and state (``unauthenticated``, ``authenticated``,
``closing``, from ``Server.connections``), bound sessions by protocol (the
router), registered accounts (``storage.count_users()``) and the offline
queue depth (``storage.count_offline()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final, Protocol

from xmlchat import __version__
from xmlchat.config import Metrics as MetricsConfig
from xmlchat.errors import StanzaError, StreamError
from xmlchat.protocol import native

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

PROTOCOLS: Final = ("native", "xmpp")
STATES: Final = ("unauthenticated", "authenticated", "closing")
OUTCOMES: Final = ("delivered", "stored", "dropped")
# The limits counted from the start (others appear when they first fire);
# docs/security.md says what each means.
LIMITS: Final = (
    "send_buffer", "stanza_rate", "login_attempts", "offline_queue",
    "byte_rate", "ip_stanza_rate", "ip_byte_rate", "pending_per_ip", "pending_total",
    "ip_locked_out", "tls_handshake_timeout", "login_backoff", "lockout_account", "lockout_ip",
)  # fmt: skip
# Seconds to parse one read: a small read takes tens of microseconds.
PARSE_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
# The scrape request: a request line and a few headers; nothing else is read.
MAX_REQUEST_BYTES: Final = 8192
REQUEST_TIMEOUT: Final = 10.0

_NULL: Final = contextlib.nullcontext()

_NATIVE_KINDS: Final[dict[type, str]] = {
    native.MessageReceived: "message",
    native.ReceiptReceived: "received",
    native.LoginRequested: "login",
    native.PingReceived: "ping",
    native.PongReceived: "pong",
    native.ContactsRequested: "contacts-get",
    native.ContactAddRequested: "contact-add",
    native.ContactRemoveRequested: "contact-remove",
    native.BlocklistRequested: "blocklist-get",
    native.BlockRequested: "block",
    native.UnblockRequested: "unblock",
    native.HistoryRequested: "history",
    native.JoinRequested: "join",
    native.LeaveRequested: "leave",
    native.RoomMessageReceived: "room-message",
    native.WhoRequested: "who",
}


class ConnectionState(Protocol):
    @property
    def protocol(self) -> str: ...
    @property
    def closing(self) -> bool: ...
    @property
    def authenticated(self) -> bool: ...


class Observed(Protocol):
    """What the scrape-time gauges read: the server, seen from here."""

    @property
    def connections(self) -> Iterable[ConnectionState]: ...

    def sessions_by_protocol(self) -> Mapping[str, int]: ...

    async def count_offline(self) -> int: ...

    async def count_users(self) -> int: ...


def native_kind(event: native.Event) -> str | None:
    """The native stanza an event came from; None for the session's open, close or failure."""
    return _NATIVE_KINDS.get(type(event))


class Metrics:
    """The disabled metrics: every method does nothing. Subclassed when enabled."""

    enabled: bool = False

    def __init__(self) -> None:
        self.limits_hit: Tally[str] = Tally()

    @staticmethod
    def create(config: MetricsConfig) -> Metrics:
        return PrometheusMetrics(config) if config.enabled else Metrics()

    async def start(self, observed: Observed) -> list[tuple[str, int]]:
        """Start serving; return the listening addresses (none when disabled)."""
        return []

    async def stop(self) -> None:
        pass

    def connection_opened(self, protocol: str) -> None:
        pass

    def login(self, protocol: str, ok: bool) -> None:
        pass

    def stanza_in(self, protocol: str, kind: str | None) -> None:
        pass

    def stanza_out(self, protocol: str, kind: str) -> None:
        pass

    def routed(self, outcome: str) -> None:
        pass

    def error(self, protocol: str, error: StreamError | StanzaError) -> None:
        pass

    def limit_hit(self, limit: str) -> None:
        self.limits_hit[limit] += 1

    def parsing(self, protocol: str) -> AbstractContextManager[object]:
        return _NULL


class PrometheusMetrics(Metrics):
    enabled = True

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__()
        try:
            import prometheus_client as prom
        except ImportError:
            raise ValueError(
                "metrics.enabled = true needs prometheus-client: pip install 'xmlchat[metrics]'"
            ) from None
        self.config = config
        self.registry: CollectorRegistry = prom.CollectorRegistry(auto_describe=True)
        reg = self.registry
        prom.ProcessCollector(registry=reg)
        info = prom.Gauge("xmlchat_build_info", "xmlchat version", ["version"], registry=reg)
        info.labels(__version__).set(1)
        self._connections = prom.Gauge(
            "xmlchat_connections", "Open client connections", ["protocol", "state"], registry=reg
        )
        self._opened = prom.Counter(
            "xmlchat_connections_opened", "Client connections accepted", ["protocol"], registry=reg
        )
        self._logins = prom.Counter(
            "xmlchat_logins", "Login attempts by result (ok, failed)", ["protocol", "result"], registry=reg
        )
        self._stanzas_in = prom.Counter(
            "xmlchat_stanzas_received", "Stanzas received from clients", ["protocol", "kind"], registry=reg
        )
        self._stanzas_out = prom.Counter(
            "xmlchat_stanzas_sent",
            "Routed stanzas handed to client sessions",
            ["protocol", "kind"],
            registry=reg,
        )
        self._routed = prom.Counter(
            "xmlchat_messages_routed", "Messages routed, by outcome", ["outcome"], registry=reg
        )
        self._offline = prom.Gauge(
            "xmlchat_offline_messages", "Messages waiting in offline queues", registry=reg
        )
        self._errors = prom.Counter(
            "xmlchat_errors",
            "Errors sent to clients: type is stream (fatal) or stanza",
            ["protocol", "type", "condition"],
            registry=reg,
        )
        self._sessions = prom.Gauge(
            "xmlchat_sessions", "Logged-in sessions (bound resources)", ["protocol"], registry=reg
        )
        self._users = prom.Gauge("xmlchat_registered_users", "Accounts on every host", registry=reg)
        self._limits = prom.Counter(
            "xmlchat_limits_hit", "Limits that fired, by limit", ["limit"], registry=reg
        )
        self._parse = prom.Histogram(
            "xmlchat_parse_seconds",
            "Time to parse one read",
            ["protocol"],
            buckets=PARSE_BUCKETS,
            registry=reg,
        )
        # Series that exist from the start, so rates and alerts see zeros, not gaps.
        for protocol in PROTOCOLS:
            self._opened.labels(protocol)
            self._parse.labels(protocol)
            for result in ("ok", "failed"):
                self._logins.labels(protocol, result)
            for state in STATES:
                self._connections.labels(protocol, state)
            self._sessions.labels(protocol)
        for outcome in OUTCOMES:
            self._routed.labels(outcome)
        for limit in LIMITS:
            self._limits.labels(limit)
        self._observed: Observed | None = None
        self._http: asyncio.base_events.Server | None = None

    # ---- the API

    def connection_opened(self, protocol: str) -> None:
        self._opened.labels(protocol).inc()

    def login(self, protocol: str, ok: bool) -> None:
        self._logins.labels(protocol, "ok" if ok else "failed").inc()

    def stanza_in(self, protocol: str, kind: str | None) -> None:
        if kind is not None:
            self._stanzas_in.labels(protocol, kind).inc()

    def stanza_out(self, protocol: str, kind: str) -> None:
        self._stanzas_out.labels(protocol, kind).inc()

    def routed(self, outcome: str) -> None:
        self._routed.labels(outcome).inc()

    def error(self, protocol: str, error: StreamError | StanzaError) -> None:
        family = "stream" if isinstance(error, StreamError) else "stanza"
        self._errors.labels(protocol, family, str(error.condition)).inc()

    def limit_hit(self, limit: str) -> None:
        super().limit_hit(limit)
        self._limits.labels(limit).inc()

    def parsing(self, protocol: str) -> AbstractContextManager[object]:
        timer: AbstractContextManager[object] = self._parse.labels(protocol).time()
        return timer

    # ---- exposition

    async def render(self) -> bytes:
        """Refresh the scrape-time gauges; return the text exposition format."""
        from prometheus_client import generate_latest

        if self._observed is not None:
            connections = self._observed.connections
            tally = Tally((c.protocol, _state(c.closing, c.authenticated)) for c in connections)
            for protocol in {*PROTOCOLS, *(p for p, _ in tally)}:
                for state in STATES:
                    self._connections.labels(protocol, state).set(tally[(protocol, state)])
            sessions = self._observed.sessions_by_protocol()
            for protocol in {*PROTOCOLS, *sessions}:
                self._sessions.labels(protocol).set(sessions.get(protocol, 0))
            try:
                self._offline.set(await self._observed.count_offline())
                self._users.set(await self._observed.count_users())
            except Exception:  # storage closing: keep the last value
                log.debug("metrics: storage counts unavailable", exc_info=True)
        data: bytes = generate_latest(self.registry)
        return data

    async def start(self, observed: Observed) -> list[tuple[str, int]]:
        self._observed = observed
        self._http = await asyncio.start_server(
            self._serve, self.config.address, self.config.port, limit=MAX_REQUEST_BYTES
        )
        bound = []
        for sock in self._http.sockets:
            host, port = sock.getsockname()[:2]
            bound.append((host, port))
        return bound

    async def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http.wait_closed(), 1)
            self._http = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One HTTP/1.1 request (RFC 9112), then close: all a scraper needs."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            method, target, *_ = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
            if method not in ("GET", "HEAD"):
                status, body, ctype = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
            elif target.split("?", 1)[0] != "/metrics":
                status, body, ctype = "404 Not Found", b"see /metrics\n", "text/plain"
            else:
                from prometheus_client import CONTENT_TYPE_LATEST

                status, body, ctype = "200 OK", await self.render(), CONTENT_TYPE_LATEST
            header = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(header if method == "HEAD" else header + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def _state(closing: bool, authenticated: bool) -> str:
    return "closing" if closing else "authenticated" if authenticated else "unauthenticated"
