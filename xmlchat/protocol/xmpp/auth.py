"""SASL on the c2s stream (RFC 6120 §6): :class:`SaslExchange`.

The mechanisms themselves are in :mod:`xmlchat.protocol.sasl`; here is the
stream's side: which mechanisms to offer, the XML framing, asking the server
for credentials, and what success and failure do to the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import sasl
from xmlchat.protocol.sasl import SaslCondition, SaslFailure, ScramCredentialsLike
from xmlchat.protocol.xmpp.events import (
    Authenticated,
    AuthFailed,
    Event,
    LocalProtocolError,
    NeedCredentials,
    NeedPasswordCheck,
)
from xmlchat.protocol.xmpp.link import Link
from xmlchat.protocol.xmpp.state import _Await, _Input
from xmlchat.protocol.xmpp.wire import (
    XML_SPACE,
    data_before_restart,
    sasl_decode,
    sasl_element,
    sasl_failure,
)

log = logging.getLogger(__name__)


class SaslExchange:
    """The SASL side of one connection: the current exchange and the failure count."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._failures = 0
        self._candidate: JID | None = None  # the account the exchange is about

    def offered(self) -> list[str]:
        """The mechanisms to advertise now."""
        link, settings = self._link, self._link.settings
        if settings.require_encryption and not link.encrypted:
            return []  # §5.3.1: TLS first when it is mandatory-to-negotiate
        return sasl.offered_mechanisms(
            settings.mechanisms,
            encrypted=link.encrypted,
            allow_unencrypted_plain=settings.allow_plain,
            channel_binding=link.channel_binding if link.encrypted else None,
        )

    # -- the client's elements ------------------------------------------------------------

    def on_auth(self, element: etree._Element) -> list[Event]:
        """``<auth/>`` (§6.4.2): start an exchange, or refuse it."""
        link, settings = self._link, self._link.settings
        name = element.get("mechanism", "")
        if settings.require_encryption and not link.encrypted:
            return self.failed(SaslCondition.ENCRYPTION_REQUIRED)
        offered = self.offered()
        if name not in offered:
            if name == "PLAIN" and name in settings.mechanisms and not link.encrypted:
                return self.failed(SaslCondition.ENCRYPTION_REQUIRED)  # §6.5.4
            return self.failed(SaslCondition.INVALID_MECHANISM)
        try:
            initial = sasl_decode(element.text, initial=True)
        except ValueError:
            return self.failed(SaslCondition.INCORRECT_ENCODING)
        mechanism = sasl.make_mechanism(
            name,
            channel_binding=link.channel_binding,
            plus_offered=any(n in sasl.PLUS_MECHANISMS for n in offered),
            nonce_factory=settings.nonce_factory,
            fake_secret=settings.scram_secret,
            fake_iterations=settings.fake_iterations,
        )
        link.outstanding.mechanism = mechanism
        link.transition(_Input.SASL_STARTED)
        return self._step(lambda: mechanism.start(initial))

    def on_response(self, element: etree._Element) -> list[Event]:
        """``<response/>`` to our challenge (§6.4.3)."""
        mechanism = self._link.outstanding.mechanism
        assert mechanism is not None
        try:
            data = sasl_decode(element.text, initial=False)
        except ValueError:
            return self.failed(SaslCondition.INCORRECT_ENCODING)
        assert data is not None
        return self._step(lambda: mechanism.respond(data))

    # -- the server's answers -----------------------------------------------------------------

    def provide_credentials(self, credentials: ScramCredentialsLike | None) -> list[Event]:
        mechanism = self._answering(_Await.CREDENTIALS)
        return self._step(lambda: mechanism.provide_credentials(credentials))

    def password_checked(self, ok: bool) -> list[Event]:
        mechanism = self._answering(_Await.PASSWORD)
        return self._step(lambda: mechanism.password_checked(ok))

    def auth_failed(self, condition: SaslCondition, text: str) -> list[Event]:
        if self._link.outstanding.awaiting is None:
            raise LocalProtocolError("auth_failed() with no SASL request outstanding")
        self._link.outstanding.awaiting = None
        return self.failed(condition, text)

    def _answering(self, awaiting: _Await) -> sasl.ServerMechanism:
        outstanding = self._link.outstanding
        if outstanding.awaiting is not awaiting or outstanding.mechanism is None:
            raise LocalProtocolError(f"no {awaiting.name.lower()} request outstanding")
        outstanding.awaiting = None
        return outstanding.mechanism

    # -- one step of the mechanism, and how the exchange ends ----------------------------------

    def _step(self, step_fn: Callable[[], sasl.Step]) -> list[Event]:
        link = self._link
        host = link.host
        assert host is not None
        try:
            step = step_fn()
            if isinstance(step, sasl.Challenge):
                link.write(sasl_element("challenge", step.data))
                return []
            if isinstance(step, sasl.Success):
                return self._succeeded(step.data)
            account = self._account(step.authcid, step.authzid)
        except SaslFailure as failure:
            return self.failed(failure.condition, failure.text)
        self._candidate = account
        assert account.local is not None
        if isinstance(step, sasl.CredentialsNeeded):
            link.outstanding.awaiting = _Await.CREDENTIALS
            return [NeedCredentials(account.local, step.mechanism, host)]
        link.outstanding.awaiting = _Await.PASSWORD
        return [NeedPasswordCheck(account.local, step.password, host)]

    def _account(self, authcid: str, authzid: str | None) -> JID:
        """The bare JID the SASL user name stands for on this host (RFC 6120 §6.3.7–8)."""
        host = self._link.host
        assert host is not None
        try:
            account = JID.parse(authcid if "@" in authcid else f"{authcid}@{host}")
        except InvalidJID:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "invalid user name") from None
        if account.local is None or account.resource is not None or account.domain != host:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "invalid user name")
        if authzid:
            # §6.3.8: we only let an account act as itself.
            try:
                authorized = JID.parse(authzid)
            except InvalidJID:
                raise SaslFailure(SaslCondition.INVALID_AUTHZID) from None
            if authorized != account:
                raise SaslFailure(SaslCondition.INVALID_AUTHZID)
        return account

    def failed(self, condition: SaslCondition, text: str = "") -> list[Event]:
        """``<failure/>`` (§6.4.5); the client may retry, up to ``max_auth_failures``."""
        link = self._link
        log.debug("c2s SASL failure: %s", condition)
        link.write(sasl_failure(condition, text, link.settings.lang))
        candidate = self._candidate
        link.outstanding.mechanism = None
        link.outstanding.awaiting = None
        self._candidate = None
        link.transition(_Input.SASL_FAILED)
        self._failures += 1
        events: list[Event] = [AuthFailed(candidate, condition.value)]
        if self._failures >= link.settings.max_auth_failures:
            return events + link.fail(
                StreamError(StreamCondition.POLICY_VIOLATION, "too many failed authentication attempts")
            )
        return events

    def _succeeded(self, data: bytes | None) -> list[Event]:
        link = self._link
        link.write(sasl_element("success", data))
        user = self._candidate
        assert user is not None
        link.user = user
        link.outstanding.mechanism = None
        self._candidate = None
        link.transition(_Input.SASL_SUCCEEDED)
        link.restart()  # §6.4.6: the client restarts the stream, we discard the parser
        events: list[Event] = [Authenticated(user)]
        if link.inbox.strip(XML_SPACE):
            events += link.fail(data_before_restart("<success/>"))
        link.inbox.clear()
        return events
