"""The XMPP connection before its session: what the sans-IO core asks while it
negotiates (RFC 6120 §5 STARTTLS, §6 SASL, §7 resource binding).

:class:`XmppLogin` performs those requests (credentials, a password check,
the TLS handshake, the bind) and ends once the session is bound; the bound
session's stanzas are :mod:`xmlchat.server.xmpp`'s.
"""

from __future__ import annotations

import abc
from datetime import datetime
from functools import lru_cache
from typing import Any

from lxml import etree

from xmlchat.errors import LoginRefused, StanzaCondition, StanzaError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import caps, xmpp
from xmlchat.protocol.sasl import SaslCondition
from xmlchat.protocol.xmpp.framing import MESSAGES, TCP
from xmlchat.routing.session import XMPP_CLIENT, Session
from xmlchat.server.connection import Connection
from xmlchat.stanza import new_id


class XmppLogin(Connection[xmpp.Event]):
    """Stream negotiation and login, up to the bound session."""

    __slots__ = ("_auth_failures",)
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

    @abc.abstractmethod
    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        """The bound session's way to the client (routing.session.SessionTransport)."""

    async def _negotiate(self, event: xmpp.Event) -> list[xmpp.Event]:
        """Perform one of the core's negotiation requests; return the events its answer released."""
        accounts = self.ctx.accounts
        match event:
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


@lru_cache(maxsize=8)
def _stream_features(declared: tuple[tuple[str, str], ...], server: caps.Caps) -> tuple[etree._Element, ...]:
    """Post-authentication stream features beyond bind and session, and the server's
    XEP-0115 caps (§6.3). Made once, shared by every connection (which only
    serialise them): each is a libxml2 document, ~1 KiB per idle session."""
    declared_elements = (etree.Element(f"{{{ns}}}{name}", nsmap={None: ns}) for ns, name in declared)
    return (*declared_elements, caps.element(server))
