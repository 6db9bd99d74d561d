"""The project's two clients behind one small interface for the scenarios.

* native: :class:`xmlchat.client.native.NativeClient`;
* XMPP: :class:`xmlchat.client.xmpp.XmppClient` (slixmpp), which on
  ``session_start`` sends initial presence and fetches the roster (RFC 6121
  §4.2, §2.2); on ``disconnected`` the driver logs in again, as an
  application would.

A driver is *ready* when its user can send a first message and be seen online:
native after ``<login-ok/>``; XMPP once initial presence is sent and the
roster result is in. :attr:`ChatDriver.ready_at` is that moment on the
:func:`time.perf_counter` clock, the proxy's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Literal

from xmlchat.client.native import IncomingMessage, NativeClient, State
from xmlchat.client.xmpp import TlsMode, XmppClient
from xmlchat.server.tls import client_context

XmppMode = Literal["starttls", "direct", "plain"]
BodyHandler = Callable[[str, float], None]  # (body, perf_counter at receipt)

RESOURCE = "compare"


class DriverFailed(RuntimeError):
    pass


class ChatDriver(ABC):
    """One user, logged in over one protocol."""

    def __init__(self, user: str, password: str, domain: str, host: str, port: int) -> None:
        self.user, self.password, self.domain = user, password, domain
        self.host, self.port = host, port
        self.ready_at = 0.0
        self.logins = 0
        self.failed_sends = 0
        self.on_body: BodyHandler | None = None
        self._ready = asyncio.Event()
        self._error: BaseException | None = None

    @abstractmethod
    async def start(self, timeout: float) -> None:
        """Connect and wait until ready."""

    @abstractmethod
    def send(self, to_user: str, body: str) -> None:
        """Queue one chat message to ``to_user`` (a bare name on the same host)."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def detail(self) -> str:
        """What was negotiated, for the report (e.g. the SASL mechanism)."""
        return ""

    async def wait_ready(self, timeout: float, after: float = 0.0) -> float:
        """Wait for a login completed after ``after``; return its time."""

        async def wait() -> None:
            while self.ready_at <= after:
                if self._error is not None:
                    raise DriverFailed(f"{self.user}: {self._error}")
                self._ready.clear()
                await self._ready.wait()

        await asyncio.wait_for(wait(), timeout)
        return self.ready_at

    def _mark_ready(self) -> None:
        self.ready_at = time.perf_counter()
        self.logins += 1
        self._ready.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._ready.set()

    def _deliver(self, body: str) -> None:
        now = time.perf_counter()
        if self.on_body is not None:
            self.on_body(body, now)


class NativeDriver(ChatDriver):
    def __init__(
        self, user: str, password: str, domain: str, host: str, port: int, cafile: str | None
    ) -> None:
        super().__init__(user, password, domain, host, port)
        self._client = NativeClient(
            user,
            password,
            host=host,
            port=port,
            ssl=_context(cafile) if cafile else None,
            resource=RESOURCE,
            min_backoff=0.0,  # reconnect at once: measure the protocol, not the backoff
            on_message=self._message,
            on_state=self._state,
        )
        self._sends: set[asyncio.Task[None]] = set()

    def _message(self, message: IncomingMessage) -> None:
        self._deliver(message.body)

    def _state(self, state: State, why: str) -> None:
        if state == "online":
            self._mark_ready()

    async def start(self, timeout: float) -> None:
        self._client.timeout = timeout
        await self._client.start()
        await self.wait_ready(timeout)

    def send(self, to_user: str, body: str) -> None:
        task = asyncio.create_task(self._send(to_user, body))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, to_user: str, body: str) -> None:
        try:
            await self._client.send(to_user, body)
        except Exception:
            self.failed_sends += 1

    async def close(self) -> None:
        for task in list(self._sends):
            task.cancel()
        await self._client.close()


class XmppDriver(ChatDriver):
    """:class:`xmlchat.client.xmpp.XmppClient`: bind, initial presence, roster."""

    def __init__(
        self,
        user: str,
        password: str,
        domain: str,
        host: str,
        port: int,
        cafile: str | None,
        mode: XmppMode,
        sasl_mechanism: str | None = None,
    ) -> None:
        super().__init__(user, password, domain, host, port)
        # Always pass a context: slixmpp's default one loads the system CA store,
        # a quarter of a second per client.
        self._client = XmppClient(
            f"{user}@{domain}/{RESOURCE}",
            password,
            ssl_context=_context(cafile),
            sasl_mech=sasl_mechanism,
            on_message=lambda message: self._deliver(message.body),
        )
        self._client.add_event_handler("disconnected", self._disconnected)
        self._tls: TlsMode = "none" if mode == "plain" else mode
        self._closing = False
        self._timeout = 10.0
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self, timeout: float) -> None:
        self._timeout = timeout
        await self._login()

    async def _login(self) -> None:
        try:
            await self._client.start(self.host, self.port, tls=self._tls, timeout=self._timeout)
        except Exception as e:
            self._fail(e)
            raise DriverFailed(f"{self.user}: {e}") from e
        self._mark_ready()

    def _disconnected(self, _reason: Any) -> None:
        # An application's reconnect: at once here, to measure the protocol.
        if self.ready_at and not self._closing and self._reconnecting is None:
            self._reconnecting = asyncio.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        await asyncio.sleep(0)  # let slixmpp finish its own disconnect handling
        with contextlib.suppress(DriverFailed):
            await self._login()
        self._reconnecting = None

    @property
    def detail(self) -> str:
        with contextlib.suppress(Exception):
            mech = self._client["feature_mechanisms"].mech
            if mech is not None:
                return f"SASL {mech.name}"
        return ""

    def send(self, to_user: str, body: str) -> None:
        self._client.send_chat(f"{to_user}@{self.domain}", body)

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.stop(wait=1.0), 3)
        self._client.abort()
        # slixmpp leaves its send-filter task running after a disconnect.
        filters = getattr(self._client, "_run_out_filters", None)
        if isinstance(filters, asyncio.Future) and not filters.done():
            filters.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await filters


@functools.lru_cache(maxsize=8)
def _context(cafile: str | None) -> ssl.SSLContext:
    """One client context per trust anchor; never used when ``cafile`` is None."""
    if cafile is None:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return client_context(cafile)


def client_tls(cafile: str) -> ssl.SSLContext:
    """The shared client context that trusts ``cafile``."""
    return _context(cafile)


def quiet_slixmpp() -> None:
    """slixmpp logs a dropped connection at ERROR; a reconnect test drops them on purpose."""
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
