"""The project's two clients behind one small interface for the scenarios.

* native: :class:`xmlchat.client.native.NativeClient`;
* XMPP: slixmpp's ``ClientXMPP``, used the way an application uses it: on
  ``session_start`` fetch the roster and send initial presence (RFC 6121 §2.2,
  §4.2), and on ``disconnected`` connect again.

A driver is *ready* when its user can send a first message and be seen online:
native after ``<login-ok/>``; XMPP once the roster result is in and initial
presence is written. :attr:`ChatDriver.ready_at` is that moment on the
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
        import slixmpp

        plugin_config: dict[str, Any] = {}
        if mode == "plain":
            # slixmpp refuses SCRAM without TLS unless told; the server allows it.
            plugin_config["feature_mechanisms"] = {"unencrypted_scram": True}
        # Always pass a context: slixmpp's default one loads the system CA store,
        # a quarter of a second per client.
        xmpp: Any = slixmpp.ClientXMPP(
            f"{user}@{domain}/{RESOURCE}",
            password,
            plugin_config=plugin_config,
            sasl_mech=sasl_mechanism,
            ssl_context=_context(cafile),
        )
        xmpp.enable_starttls = mode == "starttls"
        xmpp.enable_direct_tls = mode == "direct"
        xmpp.enable_plaintext = mode == "plain"
        xmpp.add_event_handler("session_start", self._session_start)
        xmpp.add_event_handler("message", self._message)
        xmpp.add_event_handler("disconnected", self._disconnected)
        xmpp.add_event_handler("failed_all_auth", self._auth_failed)
        self._xmpp = xmpp
        self._closing = False
        self.roster_error: str | None = None

    async def _session_start(self, _event: Any) -> None:
        from slixmpp.exceptions import IqError

        try:
            await self._xmpp.get_roster()
        except IqError as e:
            # Answered, if not served: the round trip happened all the same.
            self.roster_error = str(e.iq["error"]["condition"])
        except Exception as e:
            self._fail(e)
            return
        self._xmpp.send_presence()
        self._mark_ready()

    def _message(self, message: Any) -> None:
        if message["type"] in ("chat", "normal") and message["body"]:
            self._deliver(str(message["body"]))

    def _disconnected(self, _reason: Any) -> None:
        if not self._closing:
            self._xmpp.connect(self.host, self.port)

    def _auth_failed(self, _event: Any) -> None:
        self._fail(DriverFailed("SASL authentication failed"))

    @property
    def detail(self) -> str:
        with contextlib.suppress(Exception):
            mech = self._xmpp["feature_mechanisms"].mech
            if mech is not None:
                roster = f"; roster: {self.roster_error}" if self.roster_error else ""
                return f"SASL {mech.name}{roster}"
        return ""

    async def start(self, timeout: float) -> None:
        self._xmpp.connect(self.host, self.port)
        await self.wait_ready(timeout)

    def send(self, to_user: str, body: str) -> None:
        self._xmpp.send_message(mto=f"{to_user}@{self.domain}", mbody=body, mtype="chat")

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._xmpp.disconnect(wait=1.0), 3)
        self._xmpp.abort()
        # slixmpp leaves its send-filter task running after a disconnect.
        filters = getattr(self._xmpp, "_run_out_filters", None)
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


def quiet_slixmpp() -> None:
    """slixmpp logs a dropped connection at ERROR; a reconnect test drops them on purpose."""
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
