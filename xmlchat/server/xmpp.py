"""An XMPP client connection: the asyncio side of :mod:`xmlchat.protocol.xmpp`.

Performs what the sans-IO core asks (STARTTLS, credential look-ups, binding)
and, once bound, is the transport of a :class:`~xmlchat.routing.session.Session`
whose stanzas go to the hub (:meth:`xmlchat.routing.hub.Hub.receive`). A
:class:`~xmlchat.errors.StanzaError` the hub raises becomes an error stanza here
(RFC 6120 §8.3), the one place XMPP maps stanza errors to the wire.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from copy import deepcopy
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

from lxml import etree

from xmlchat.errors import LoginRefused, StanzaCondition, StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import caps, xmpp
from xmlchat.protocol.sasl import SaslCondition
from xmlchat.protocol.xmpp.framing import MESSAGES, TCP
from xmlchat.protocol.xmpp.sm import MODULUS, Resumable, covers
from xmlchat.routing.session import XMPP_CLIENT, Session
from xmlchat.server.connection import Connection
from xmlchat.server.waiting import Signal
from xmlchat.stanza import DELAY_NS, kind, make, new_id

PING_NS = "urn:xmpp:ping"


class XmppConnection(Connection[xmpp.Event]):
    __slots__ = ("_acked", "_auth_failures", "_background", "_detached", "_ended_on_purpose", "_inbox",
                 "_resume_id", "_taken_over", "_unacked", "_unstored", "_worker")
    protocol = "xmpp"
    core: xmpp.C2SStream

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ctx = self.ctx
        registry = ctx.hub.registry
        self.core = xmpp.C2SStream.from_config(
            ctx.config,
            tls_available=ctx.tls_context is not None and self.transport.can_start_tls,
            tls_active=self.tls,
            channel_binding=ctx.channel_binding if self.tls else None,
            framing=MESSAGES if self.transport.messages else TCP,
            scram_secret=ctx.scram_secret,
            features=_stream_features(tuple(registry.stream_features), registry.server_caps()),
        )
        self.session: Session | None = None
        self._auth_failures = 0
        # XEP-0198: set whenever the client's acknowledged count moves.
        self._acked = Signal()
        # Once stream management is on, the hub gets the client's stanzas from
        # this queue, in order, so the read loop keeps reading: a replay
        # waiting in drained() for an <a/> must not stop the <a/> being read.
        self._inbox: asyncio.Queue[xmpp.Event | None] | None = None
        self._unstored = False  # a message could not be stored: h stops there
        self._worker: asyncio.Task[None] | None = None
        # XEP-0198 §5, with resumption: the stanzas the client has not
        # acknowledged, oldest first, to send again on a resumed stream.
        self._resume_id: str | None = None
        self._unacked: deque[etree._Element] | None = None
        self._detached = False  # lost, waiting to be resumed (the session lives on)
        self._taken_over = False  # resumed by another connection: not ours any more
        self._ended_on_purpose = False  # by the client (</stream>) or by the server
        self._background: set[asyncio.Task[None]] = set()

    @property
    def authenticated(self) -> bool:
        return self.core.user is not None

    @property
    def logged_in(self) -> bool:
        return self.session is not None

    @property
    def account(self) -> JID | None:
        user = self.core.user
        return user.bare if user is not None else None

    # ---- SessionTransport

    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        self.metrics.stanza_out(self.protocol, kind(stanza))
        self.log_stanza("out", stanza)
        if delayed and self.session is not None:
            # XEP-0203: say when the server first accepted it.
            stanza = deepcopy(stanza)
            etree.SubElement(
                stanza,
                f"{{{DELAY_NS}}}delay",
                nsmap={None: DELAY_NS},
                stamp=stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                attrib={"from": self.session.jid.domain},
            )
        self._send(stanza)

    def _send(self, stanza: etree._Element) -> None:
        if self._unacked is not None:
            self._unacked.append(stanza)
        if self._detached:
            return  # queued for the resumption
        self.core.send_stanza(stanza)
        self.flush()

    def close(self, error: StreamError) -> None:
        self._ended_on_purpose = True  # conflict, shutdown, a stuck client: no resumption
        if self._detached:
            self._resume_end()
            return
        super().close(error)

    def reply_error(self, stanza: etree._Element, error: StanzaError) -> None:
        self.metrics.error(self.protocol, error)
        self.core.stanza_error_reply(stanza, error)
        self.flush()

    def send_keepalive(self) -> None:
        if self.session is not None:
            # XEP-0199 §4.1: server-to-client ping; any answer (even an error) is life.
            jid = self.session.jid
            iq = make("iq", {"type": "get", "id": f"ping-{new_id()}", "to": str(jid)})
            iq.set("from", jid.domain)
            etree.SubElement(iq, f"{{{PING_NS}}}ping", nsmap={None: PING_NS})
            self.core.send_stanza(iq)
        else:
            self.transport.keepalive()
        self.flush()

    @property
    def acknowledges(self) -> bool:
        return self.core.sm is not None

    async def drained(self) -> bool:
        if self._detached:
            return False  # nothing is read now; a resumed stream sends it again
        return await self._drained()

    async def _drained(self) -> bool:
        """With XEP-0198, "taken" means acknowledged: ask with ``<r/>`` and wait
        until the client's h covers every stanza written so far (§4)."""
        sm = self.core.sm
        if sm is None:
            return await super().drained()
        target = sm.sent
        if covers(sm.acked, target):
            return True  # the client has them all, even if the connection is gone since
        sm.request()  # after the stanzas it must cover, so its <a/> does
        self.flush()
        self.flush_now()
        while not covers(sm.acked, target):
            if self.closing or self.transport.is_closing():
                return False
            self._acked.clear()
            await self._acked.wait()
        return True

    # ---- input

    async def handle(self, event: xmpp.Event) -> list[xmpp.Event]:
        match event:
            case xmpp.StreamManagementEnabled(resume_id):
                self.log.info("stream management enabled%s", " (resumable)" if resume_id else "")
                if resume_id is not None and self.ctx.resumptions is not None:
                    self._resume_id, self._unacked = resume_id, deque()
                    self.ctx.resumptions.register(resume_id, self)
                self._start_worker()
            case xmpp.Acknowledged(_):
                self._trim_unacked()
                self._acked.set()
            case xmpp.StanzaIn() | xmpp.ClientStateChanged() if self._inbox is not None:
                self._inbox.put_nowait(event)
            case _:
                return await self._perform(event)
        return []

    def _start_worker(self) -> None:
        self._inbox = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(self._inbox), name=f"{self.id}-inbox")

    async def _work(self, inbox: asyncio.Queue[xmpp.Event | None]) -> None:
        """The client's stanzas, in order, once stream management is on."""
        while (event := await inbox.get()) is not None:
            try:
                await self._perform(event)
            except (ConnectionError, ssl.SSLError, TimeoutError):
                return
            except Exception:
                self.log.exception("internal error")
                self.close(StreamError(StreamCondition.INTERNAL_SERVER_ERROR))
                return
            if isinstance(event, xmpp.StanzaIn) and self.core.sm is not None:
                # Handled (a message: stored, which may come later: routing.pipeline),
                # and so everything before it: h may count it then.
                self.pipeline.after(self._handled)

    def _handled(self) -> None:
        if self._unstored:
            return  # h never counts what was not stored, nor anything after it
        if (sm := self.core.sm) is not None:
            sm.stanza_handled()
            self.flush()

    def store_failed(self, error: Exception) -> None:
        self._unstored = True  # never counted in h, nor anything after it
        super().store_failed(error)

    async def _perform(self, event: xmpp.Event) -> list[xmpp.Event]:
        accounts = self.ctx.accounts
        match event:
            case xmpp.StanzaIn(element, to):
                self.metrics.stanza_in(self.protocol, kind(element))
                self.log_stanza("in", element)
                assert self.session is not None
                try:
                    await self.ctx.hub.receive(self.session, element, to)
                except StanzaError as e:  # answered after the messages before it
                    self.pipeline.answer(None, partial(self.reply_error, element), e)
                else:
                    self.pipeline.answer(None, partial(self.reply_error, element))
            case xmpp.ClientStateChanged(active):
                assert self.session is not None
                await self.ctx.hub.client_state(self.session, active)
            case xmpp.NeedCredentials(username, mechanism, host):
                if refused := self._guard_refuses(JID(username, host)):
                    return refused
                creds = await accounts.get_scram(JID(username, host), mechanism)
                return self.core.provide_credentials(creds)
            case xmpp.NeedPasswordCheck(username, password, host):
                if refused := self._guard_refuses(JID(username, host)):
                    return refused
                ok = await accounts.check_password(JID(username, host), password)
                return self.core.password_checked(ok)
            case xmpp.AuthFailed(jid, condition):
                self.log.info("authentication failed for %s: %s", jid or "?", condition)
                self.metrics.login(self.protocol, False)
                self._auth_failures += 1
                if condition != SaslCondition.TEMPORARY_AUTH_FAILURE:  # not refused unchecked
                    self.guard_failed(str(jid) if jid else "")
            case xmpp.Authenticated(jid):
                self.metrics.login(self.protocol, True)
                self.log.info("authenticated as %s", jid)
                if self.ctx.login_guard is not None:
                    self.ctx.login_guard.succeeded(self.ip, str(jid))
            case xmpp.BindRequest(_, resource):
                return await self._bind(resource)
            case xmpp.StartTls():
                return await self._start_tls()
            case xmpp.ResumeRequested(previd, h):
                return self._resume(previd, h)
            case xmpp.Closed(peer_error):
                self._ended_on_purpose = True
                self.log.info("stream closed by peer%s", f" ({peer_error})" if peer_error else "")
                self.flush()
                self.close_after_flush()
            case xmpp.StreamFailed(error):
                self._ended_on_purpose = True
                if error.condition is StreamCondition.POLICY_VIOLATION and self._auth_failures:
                    self.metrics.limit_hit("login_attempts")  # the core's limit on SASL failures
                self.metrics.error(self.protocol, error)
                self.log.info("stream error: %s", error)
                self.flush()
                self.close_after_flush()
        return []

    def _guard_refuses(self, account: JID) -> list[xmpp.Event] | None:
        """The SASL failure to answer unchecked while this account (from this IP)
        or this IP is in back-off or locked out; None to go on."""
        if self.ctx.login_guard is None:
            return None
        try:
            self.ctx.login_guard.check(self.ip, str(account))
        except LoginRefused as e:
            self.log.info("login for %s refused unchecked: %s", account, e.text)
            self.metrics.limit_hit("login_backoff")
            return self.core.auth_failed(SaslCondition.TEMPORARY_AUTH_FAILURE, e.text)
        return None

    # ---- XEP-0198 §5 resumption (see resumption.py)

    def _trim_unacked(self) -> None:
        """Forget what the client's h now covers: the queue keeps sent - acked."""
        sm, unacked = self.core.sm, self._unacked
        if sm is None or unacked is None:
            return
        keep = (sm.sent - sm.acked) % MODULUS
        while len(unacked) > keep:
            unacked.popleft()

    def _resume(self, previd: str, h: int) -> list[xmpp.Event]:
        """Take over the session ``previd`` names, if it is this user's."""
        registry = self.ctx.resumptions
        old = registry.find(previd) if registry is not None else None
        old_sm = old.core.sm if old is not None else None
        if old is None or old is self or old.session is None or old_sm is None or registry is None:
            self.log.info("resumption of an unknown session refused")
            return self.core.resumed(None, previd)
        if old.session.bare != self.core.user:
            self.log.warning("resumption of another user's session refused")
            return self.core.resumed(None, previd)
        registry.claim(previd)
        session = old.session
        events = self.core.resumed(Resumable(session.jid, old_sm.handled), previd)
        old.hand_over()
        # The session's messages come here from now on (a module holds the Session).
        self.session, session.transport, session.write = session, self, self.write
        self._resume_id, self._unacked = previd, deque()
        registry.register(previd, self)
        self._start_worker()
        # §5: what the client had not handled, then what waited while detached.
        pending = old._unacked or deque()
        for _ in range(min(len(pending), (h - old_sm.acked) % MODULUS)):
            pending.popleft()
        self.log.info("resumed %s; sending %d unacknowledged stanza(s) again", session.jid, len(pending))
        for stanza in pending:
            self._send(stanza)
        return events

    def hand_over(self) -> None:
        """Another connection resumed this one's session: stop, without ending it."""
        self._taken_over = True
        self._detached = False
        if not self.closing:  # not yet seen to be lost (a half-open TCP connection)
            self.closing = True
            self.transport.abort()

    async def _expire(self) -> None:
        """Not resumed in time: the session ends (its unacknowledged messages stay stored)."""
        if self._detached and self.session is not None:
            self._detached = False
            self.log.info("resumption of %s timed out; session ended", self.session.jid)
            await self.ctx.hub.close_session(self.session)
            self.session = None  # see Connection._release_session

    def _resume_end(self) -> None:
        """A detached session ended early (replaced, or the server stops)."""
        if self._resume_id is not None and self.ctx.resumptions is not None:
            self.ctx.resumptions.forget(self._resume_id)
        task = asyncio.ensure_future(self._expire())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_tls(self) -> list[xmpp.Event]:
        context = self.ctx.tls_context
        assert context is not None
        self.flush()
        self.flush_now()
        try:
            version = await self.transport.start_tls(context, self.config.limits.tls_handshake_timeout)
        except ConnectionAbortedError:  # what asyncio raises when the handshake times out
            self.metrics.limit_hit("tls_handshake_timeout")
            raise
        self.log.info("TLS established (%s)", version)
        return self.core.tls_started(self.ctx.channel_binding)

    async def _bind(self, resource: str | None) -> list[xmpp.Event]:
        user = self.core.user
        assert user is not None
        try:
            full = user.with_resource(resource or new_id())
        except InvalidJID:
            return self.core.bind_failed(StanzaError(StanzaCondition.BAD_REQUEST, "invalid resource"))
        events = self.core.bound(full)
        self.session = Session(full, XMPP_CLIENT, self)
        self.log.info("bound %s", full)
        self.login_done()
        await self.ctx.hub.open_session(self.session)
        return events

    async def finish(self) -> None:
        self._acked.set()  # a drained() waiting for an <a/> sees the end
        if self._inbox is not None and self._worker is not None:
            # What the client sent before it went still reaches the hub, as without SM.
            self._inbox.put_nowait(None)
            await self._worker
        if self.session is None or self._taken_over:
            return
        registry = self.ctx.resumptions
        if self._resume_id is not None and registry is not None and not self._ended_on_purpose:
            # XEP-0198 §5: lost, not ended: the session waits to be resumed.
            self._detached = True
            self.log.info("detached; resumable for %g s", registry.timeout)
            registry.detached(self._resume_id, self._expire)
            return
        await self.ctx.hub.close_session(self.session)


@lru_cache(maxsize=8)
def _stream_features(declared: tuple[tuple[str, str], ...], server: caps.Caps) -> tuple[etree._Element, ...]:
    """Post-authentication stream features beyond bind and session, and the server's
    XEP-0115 caps (§6.3). Made once, shared by every connection (which only
    serialise them): each is a libxml2 document, ~1 KiB per idle session."""
    declared_elements = (etree.Element(f"{{{ns}}}{name}", nsmap={None: ns}) for ns, name in declared)
    return (*declared_elements, caps.element(server))
