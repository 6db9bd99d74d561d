"""The asyncio driver of one sans-IO protocol core over a :class:`Transport`.

One task per connection reads, feeds the core, performs what it asks, and
writes. Everything here is about I/O: buffers, timeouts, throttling, closing.
The transport (``transport.py``) is a TCP stream, a WebSocket or a BOSH
session: the connection, and the front ends built on it, are the same.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
import secrets
import ssl
from typing import Final, Generic

from lxml import etree

from xmlchat.config import Config
from xmlchat.errors import StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.log import CONNECTION, ConnectionLogger
from xmlchat.routing.pipeline import PIPELINE, Pipeline
from xmlchat.routing.session import Session
from xmlchat.server.admission import Pending
from xmlchat.server.connection_context import ConnectionContext, EventT, ProtocolCore
from xmlchat.server.throttle import Pause, Throttle
from xmlchat.server.transport import Transport
from xmlchat.server.waiting import Signal
from xmlchat.stanza import to_bytes

log = logging.getLogger("xmlchat.connection")


__all__ = ["Connection", "ConnectionContext", "ProtocolCore"]

# Seconds without input after which a logged-in connection's parser is freed
# (StanzaStream.rest: about 10 KiB per idle session); a new one costs ~20 µs.
REST_AFTER: Final = 1.0

# Seconds after login during which the parser is freed after every read: a
# client follows its login with a few stanzas (initial presence, roster,
# XEP-0198 <enable/>, ...) and is then usually idle, so its parser would
# otherwise stay held until the sweeper's next pass after REST_AFTER (up to
# ~5 s); a busy client pays a new parser (~20 µs) per read for this long only.
LOGIN_SETTLE: Final = 2.0

# A client's messages at most between their queued write and their ack
# (routing.pipeline): past it, its connection waits for the store to catch up.
IN_FLIGHT = 256


class Connection(abc.ABC, Generic[EventT]):
    """Base of the native and XMPP connections: the core's driver."""

    # Slots, not a __dict__: a connection lives as long as its session, and
    # with more than 30 attributes CPython gives each instance its own dict
    # (~1.5 KiB; a shared-key dict holds at most 30), a tenth of an idle session.
    __slots__ = (
        "__weakref__", "_flush_scheduled", "_guard_counted", "_idle", "_log_stanzas", "_pending",
        "_pending_size", "_quiescing", "_rest_until", "backlog", "closing", "core", "ctx", "id", "ip",
        "last_received", "log", "metrics", "observed", "opened_at", "peer", "pending", "pinged", "pipeline",
        "session", "throttle", "transport",
    )

    protocol: str = "?"
    core: ProtocolCore[EventT]
    # The logged-in session, once there is one (what kick and deluser close).
    session: Session | None

    def __init__(self, ctx: ConnectionContext, transport: Transport) -> None:
        self.ctx = ctx
        self.metrics = ctx.metrics
        self.transport = transport
        self.id = f"{self.protocol}#{secrets.token_hex(3)}"
        self.peer = transport.peer
        self.ip = transport.peer.rpartition(":")[0] or "?"  # the address without the port
        # This connection's place among those not logged in yet (server.admission).
        self.pending: Pending | None = None
        self._guard_counted: set[str] | None = None  # accounts whose failure the guard has
        self.log = ConnectionLogger(log, {"conn": self.id})
        ctx.metrics.connection_opened(self.protocol)
        loop = asyncio.get_running_loop()
        self.opened_at = self.last_received = loop.time()
        self.pinged = False
        self.closing = False
        # The client's messages between their queued write and their ack
        # (routing.pipeline): reading goes on meanwhile, up to IN_FLIGHT of them.
        self.pipeline = Pipeline(self.store_failed, self.flush)
        self._pending: list[bytes] = []
        # [log] stanzas: whole stanzas at debug level (never the SASL exchange,
        # never a native password: those never reach log_stanza).
        self._log_stanzas = ctx.config.log.stanzas and log.isEnabledFor(logging.DEBUG)
        # Whether a stanza is counted or logged at all: when neither, a front end
        # makes neither call (with the stanza's kind, ~1 % of an XMPP message).
        self.observed = ctx.metrics.enabled or self._log_stanzas
        self._pending_size = 0
        self._flush_scheduled = False
        # Bytes queued here and in the transport at the last write, not yet
        # taken by the kernel: read for every message delivered, so kept as an
        # attribute (it lags until the next write, which only errs on caution).
        self.backlog = 0
        # Set while no input is being handled; a shutdown waits for it (quiesce).
        self._idle = Signal(True)
        self._quiescing = False
        # Until then (loop time), the core's parser rests after each read:
        # set by login_done() (LOGIN_SETTLE).
        self._rest_until = -math.inf
        self.throttle = Throttle(ctx.config.limits, ctx.addresses, self.ip, loop.time())

    @property
    def config(self) -> Config:
        """The server's settings as of now (a reload replaces them)."""
        return self.ctx.config

    def limits_changed(self) -> None:
        """A reload changed the limits: this connection's rates follow at once."""
        self.throttle.limits_changed(self.config.limits)

    # ---- what a protocol implements

    @property
    @abc.abstractmethod
    def authenticated(self) -> bool: ...

    @property
    def account(self) -> JID | None:
        """The bare JID logged in, from authentication on (an XMPP client may
        not have bound a session yet): what deluser and passwd close."""
        return self.session.bare if self.session is not None else None

    @property
    def logged_in(self) -> bool:
        """Has the client a usable session (XMPP: authenticated and bound)?"""
        return self.authenticated

    def guard_failed(self, account: str) -> None:
        """Tell the login guard a login for ``account`` failed: once per
        connection and account, as a client trying each SASL mechanism in turn
        with one password makes one mistake, not three (a guesser still gets
        no more than limits.max_login_attempts tries per connection)."""
        guard = self.ctx.login_guard
        counted = self._guard_counted = self._guard_counted or set()
        if guard is not None and account not in counted:
            counted.add(account)
            guard.failed(self.ip, account)

    def login_done(self) -> None:
        """The session is usable: the connection leaves the pending ones."""
        if self.pending is not None:
            self.pending.release()
        self._rest_until = asyncio.get_running_loop().time() + LOGIN_SETTLE

    @abc.abstractmethod
    async def handle(self, event: EventT) -> list[EventT]:
        """Perform one event of the core; return the events its answer released
        (a core holds input while it waits for, e.g., a password check)."""

    @abc.abstractmethod
    def send_keepalive(self) -> None:
        """Ask the peer for a sign of life (native ``<ping/>``, XMPP XEP-0199)."""

    @abc.abstractmethod
    async def finish(self) -> None:
        """Called once after the connection ended, for any reason."""

    def log_stanza(self, direction: str, stanza: object) -> None:
        if self._log_stanzas:
            text = to_bytes(stanza).decode() if isinstance(stanza, etree._Element) else repr(stanza)
            self.log.debug("%s %s", direction, text)

    # ---- driving the core

    async def data_received(self, data: bytes) -> int:
        """Feed the core; perform its events in order; return how many there were."""
        self._idle.clear()
        try:
            with self.metrics.parsing(self.protocol):
                work = self.core.receive_data(data)
            handled = 0
            while work:
                event = work.pop(0)
                handled += 1
                work[:0] = await self.handle(event)
                self.flush()
            if self.pipeline.pending >= IN_FLIGHT or (self.core.closed and self.pipeline.busy):
                # The store is behind: read no more for now. Or the client closed
                # the stream: its stored messages get their acks first.
                await self.pipeline.drain()
            self.flush()  # replies the core made by itself (e.g. an error), with no event
            if self.core.closed:
                self.close_after_flush()
            return handled
        finally:
            self._idle.set()

    async def quiesce(self, timeout: float) -> None:
        """Before a shutdown closes the stream: read nothing more, and let what
        is being handled finish, so every message accepted gets its ack (a
        message read but not handled gets none: the client sends it again)."""
        self._quiescing = True

        async def handled() -> None:
            await self._idle.wait()
            await self.pipeline.drain()  # stored messages get their acks

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handled(), timeout)

    @property
    def tls(self) -> bool:
        """The transport is confidential (TLS, or a proxy's TLS the operator vouches for)."""
        return self.transport.encrypted

    def flush(self) -> None:
        frames = self.core.frames_to_send()
        if frames:
            self.send(*frames)

    def store_failed(self, error: Exception) -> None:
        """A message could not be stored: no ack for it, the stream ends (the client sends it again)."""
        self.log.error("storing a message failed: %r", error)
        self.close(StreamError(StreamCondition.INTERNAL_SERVER_ERROR, "storage failed"))

    def close(self, error: StreamError) -> None:
        """End the stream with the protocol's fatal error, then the connection."""
        self.metrics.error(self.protocol, error)
        self.log.info("closing: %s", error)
        self.core.send_stream_error(error)
        self.flush()
        self.close_after_flush()

    # ---- the loop

    async def run(self) -> None:
        CONNECTION.set(self.id)  # this task's lines carry the id, whatever logs them
        PIPELINE.set(self.pipeline)
        kind = "" if self.transport.kind == "tcp" else f" over {self.transport.kind}"
        self.log.info("connected from %s%s%s", self.peer, kind, " (TLS)" if self.tls else "")
        loop = asyncio.get_running_loop()
        reason = "closed by peer"
        try:
            while not self.closing:
                data = await self.transport.read()
                if not data or self._quiescing:
                    break
                self.last_received = loop.time()
                self.pinged = False
                # Bytes are paid for before they are handled, stanzas after
                # (they are counted by handling them).
                pause = self.throttle.charge(0, len(data), loop.time())
                if pause.seconds > 0:
                    await self._pause(pause)
                handled = await self.data_received(data)
                if self.last_received <= self._rest_until:
                    self.core.rest()  # a session that just logged in is usually idle next
                if self.transport.buffered() > 0:
                    await self.transport.drain()
                pause = self.throttle.charge(handled, 0, loop.time())
                if pause.seconds > 0:
                    await self._pause(pause)
        except (ConnectionError, ssl.SSLError, TimeoutError) as e:
            reason = f"{type(e).__name__}: {e}"
            # The stream reader keeps the exception, whose traceback holds
            # this frame and so this connection: a cycle left to the collector.
            e.__traceback__ = None
        except Exception:
            self.log.exception("internal error")
            self.close(StreamError(StreamCondition.INTERNAL_SERVER_ERROR))
            reason = "internal error"
        finally:
            self.closing = True
            try:
                await self.finish()
            finally:
                self._release_session()
                self.pipeline.detach()
                self.login_done()
                self.throttle.close()
                self._close_transport()
                self.core.rest(final=True)  # its parser goes to the next connection
                self.log.info("disconnected: %s", reason)

    def _release_session(self) -> None:
        """The session ended: it and this connection refer to each other (its
        transport, its write), so both wait for the garbage collector, which
        the server runs rarely ([runtime] gc_threshold); dropped, they are
        freed at once. A session still routable (XEP-0198: waiting to be
        resumed) is kept."""
        session = self.session
        if session is not None and self.ctx.hub.router.get(session.jid) is not session:
            self.session = None

    async def _pause(self, pause: Pause) -> None:
        """Over a rate: read later, and TCP makes the sender wait (mod_limits)."""
        self.metrics.limit_hit(pause.limit)
        await asyncio.sleep(pause.seconds)

    def refuse(self, error: StreamError) -> None:
        """Turn the client away before the loop runs (server.admission said no)."""
        CONNECTION.set(self.id)
        self.close(error)
        self.throttle.close()

    # ---- output

    def send(self, *units: bytes) -> None:
        """Queue units (a header, an element…); a peer that stops reading is cut
        off, not buffered forever.

        Writes made during one turn of the event loop leave in one system call
        (a fan-out or a burst of acks is one packet, not one per stanza).
        """
        transport = self.transport
        if transport.is_closing():
            return
        size = sum(map(len, units))
        queued = transport.buffered() + self._pending_size + size
        if queued > self.config.limits.max_send_buffer_bytes:
            self.log.warning("disconnecting a slow reader: send buffer over limit")
            self.metrics.limit_hit("send_buffer")
            self.closing = True
            self._pending.clear()
            transport.abort()
            return
        self._pending += units
        self._pending_size += size
        self.backlog = queued
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_now)

    def flush_now(self) -> None:
        """Hand everything queued to the transport (before TLS starts, before closing)."""
        self._flush_scheduled = False
        if self._pending and not self.transport.is_closing():
            self.transport.write(self._pending)
        self._pending = []
        self._pending_size = 0

    @property
    def acknowledges(self) -> bool:
        """Whether the client acknowledges what it receives (a front end that
        can, with native receipts or XEP-0198, says so)."""
        return False

    async def drained(self) -> bool:
        """Hand everything queued to the transport and wait until its buffer is
        below the low-water mark; False when the connection is gone."""
        self.flush_now()
        if self.closing or self.transport.is_closing():
            return False
        try:
            await self.transport.drain()
        except (ConnectionError, ssl.SSLError):
            return False
        self.backlog = self.transport.buffered()
        return not self.closing

    def close_after_flush(self) -> None:
        self.closing = True
        self._close_transport()

    def _close_transport(self) -> None:
        self.flush_now()
        self.transport.close()

    # ---- timers, driven by the server's sweeper

    def check_idle(self, now: float) -> None:
        limits = self.config.limits
        if not self.logged_in and now - self.opened_at > limits.login_timeout:
            self.close(StreamError(StreamCondition.CONNECTION_TIMEOUT, "login took too long"))
        elif now - self.last_received > limits.idle_timeout:
            self.close(StreamError(StreamCondition.CONNECTION_TIMEOUT, "no response to ping"))
        elif not self.pinged and now - self.last_received > limits.idle_timeout / 2:
            self.pinged = True
            self.send_keepalive()
        if self.logged_in and now - self.last_received > REST_AFTER:
            self.core.rest()  # idle since the last sweep, or nearly: its parser is freed
