"""The native connection before its session: ``<login>`` (docs/native-protocol.md,
"A session"), with the login guard's back-off and the limit on failed attempts.

A native login is a bound session plus initial presence; what the session
then carries, both ways, is :mod:`xmlchat.server.native`'s.
"""

from __future__ import annotations

import abc
from datetime import datetime

from lxml import etree

from xmlchat.errors import LoginRefused, StanzaCondition, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import native
from xmlchat.routing.session import NATIVE_CLIENT, Session
from xmlchat.server.connection import Connection
from xmlchat.server.native_receipts import Receipts, resume_resource, resume_token
from xmlchat.stanza import make, new_id
from xmlchat.xml.stream import StreamLimits

_WRONG = "wrong user name or password"


class NativeLogin(Connection[native.Event]):
    """The core, and logging in."""

    __slots__ = ("_bare", "_failed_logins", "_full", "_jid", "_receipts")
    protocol = "native"
    core: native.NativeServerStream

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        limits = self.config.limits
        self.core = native.NativeServerStream(
            self.config.domain,
            StreamLimits(limits.max_stanza_bytes, limits.max_depth),
            limits.max_unauthenticated_stanza_bytes,
            standalone=self.transport.messages,
        )
        self.session: Session | None = None
        self._jid: JID | None = None
        self._bare = ""  # str(jid.bare), written on every message delivered
        self._full = ""  # str(jid), stamped on every message sent
        self._failed_logins = 0
        # Set at login when the client acknowledges messages (<receipts/>).
        self._receipts: Receipts | None = None

    @property
    def jid(self) -> JID:
        assert self._jid is not None
        return self._jid

    @property
    def authenticated(self) -> bool:
        return self._jid is not None

    @property
    def account(self) -> JID | None:
        return self._jid.bare if self._jid is not None else None

    @abc.abstractmethod
    def write(self, stanza: etree._Element, stamp: datetime, delayed: bool = False) -> None:
        """The session's way to the client (routing.session.SessionTransport)."""

    async def _login(self, event: native.LoginRequested) -> list[native.Event]:
        config = self.config
        if not self.tls and not config.native.allow_plaintext_login:
            return self.core.login_failed(StanzaCondition.NOT_ALLOWED, "log in over TLS")
        try:
            user = JID.user(event.user, config.domain)
        except InvalidJID:
            user = None
        account = str(user) if user is not None else event.user
        guard = self.ctx.login_guard
        try:
            if guard is not None:
                guard.check(self.ip, account)
        except LoginRefused as e:
            self.metrics.limit_hit("login_backoff")
            return self._login_failed(event.user, StanzaCondition.POLICY_VIOLATION, e.text)
        if (
            user is None
            or user.domain not in config.hosts
            or not await self.ctx.accounts.check_password(user, event.password)
        ):
            self.guard_failed(account)
            return self._login_failed(event.user)
        if guard is not None:
            guard.succeeded(self.ip, account)
        resumed = resume_resource(self.ctx.scram_secret, user, event.resume) if event.receipts else None
        resource = resumed or event.resource or f"native-{new_id()[:8]}"
        self._jid = user.with_resource(resource)
        self._bare = str(user)
        self._full = str(self._jid)
        token = resume_token(self.ctx.scram_secret, self._jid) if event.receipts else None
        released = self.core.logged_in(str(self._jid), token)
        if event.receipts:
            self._receipts = Receipts()
        self.flush()
        self.log.info("logged in as %s", self._jid)
        self.metrics.login(self.protocol, True)
        self.login_done()
        self.session = Session(self._jid, NATIVE_CLIENT, self)
        await self.ctx.hub.open_session(self.session)
        # A native login is initial presence (RFC 6121 §4.2) with no show or
        # status: stored messages and subscription requests follow it (the
        # replay runs beside this reading loop, which must read <received>).
        await self.ctx.hub.receive(self.session, make("presence", {"from": str(self._jid)}), None)
        return released

    def _login_failed(
        self, user: str, condition: StanzaCondition = StanzaCondition.NOT_AUTHORIZED, text: str = _WRONG
    ) -> list[native.Event]:
        self._failed_logins += 1
        self.log.info("login failed for %r (%d): %s", user, self._failed_logins, text)
        self.metrics.login(self.protocol, False)
        released = self.core.login_failed(condition, text)
        if self._failed_logins >= self.config.limits.max_login_attempts:
            self.metrics.limit_hit("login_attempts")
            self.close(StreamError(StreamCondition.POLICY_VIOLATION, "too many failed logins"))
            return []
        return released
