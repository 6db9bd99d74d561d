"""Stream negotiation (RFC 6120 §4.3): headers, features, STARTTLS, and which element each state takes.

:class:`Negotiation` reads as a table: for each negotiating state, the
top-level elements it accepts and what handles them; anything else ends the
stream. The state moves only through
:data:`~xmlchat.protocol.xmpp.state.TRANSITIONS`, via :meth:`Link.transition`.
SASL is :class:`~.auth.SaslExchange`, bind and session :class:`~.binding.Binding`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.protocol import sasl
from xmlchat.protocol.sasl import SaslCondition
from xmlchat.protocol.xmpp.auth import SaslExchange
from xmlchat.protocol.xmpp.binding import BIND, SESSION, Binding
from xmlchat.protocol.xmpp.events import Event, StartTls, StreamFailed
from xmlchat.protocol.xmpp.link import Link
from xmlchat.protocol.xmpp.sm import ENABLE as SM_ENABLE
from xmlchat.protocol.xmpp.sm import RESUME as SM_RESUME
from xmlchat.protocol.xmpp.sm import StreamManagement
from xmlchat.protocol.xmpp.state import State, _Input
from xmlchat.protocol.xmpp.wire import TLS_FAILURE, TLS_PROCEED, XML_SPACE, data_before_restart
from xmlchat.xml.stream import StreamOpened
from xmlchat.xml.writer import NS_CLIENT, NS_SASL, NS_SASL_CB, NS_TLS

_STARTTLS: Final = f"{{{NS_TLS}}}starttls"
_AUTH: Final = f"{{{NS_SASL}}}auth"
_RESPONSE: Final = f"{{{NS_SASL}}}response"
_ABORT: Final = f"{{{NS_SASL}}}abort"
_IQ: Final = f"{{{NS_CLIENT}}}iq"

# What an element the state does not take is told (not-authorized, for a stanza).
_NOT_YET: Final[Mapping[State, str]] = {
    State.NEGOTIATING: "authenticate first",
    State.AUTHENTICATING: "authenticate first",
    State.UNBOUND: "bind a resource first",  # RFC 6120 §7.1: no stanzas before bind
}


class Negotiation:
    """Everything between the first stream header and a bound resource."""

    def __init__(self, link: Link, auth: SaslExchange, binding: Binding, sm: StreamManagement | None) -> None:
        self._link = link
        self._auth = auth
        self._binding = binding
        self._sm = sm

    @property
    def states(self) -> frozenset[State]:
        """The states whose elements :meth:`on_element` handles."""
        return _STATES

    def on_element(self, element: etree._Element) -> list[Event]:
        state = self._link.state
        handler = _TABLE[state].get(etree.QName(element).text)
        if handler is None:
            return self._link.unexpected(element, _NOT_YET[state])
        return handler(self, element)

    # -- SASL elements, as the table routes them (the exchange is SaslExchange) --------------

    def _on_auth(self, element: etree._Element) -> list[Event]:
        return self._auth.on_auth(element)

    def _on_response(self, element: etree._Element) -> list[Event]:
        return self._auth.on_response(element)

    def _on_abort(self, _: etree._Element) -> list[Event]:
        return self._auth.failed(SaslCondition.ABORTED)  # §6.4.4

    def _response_unasked(self, _: etree._Element) -> list[Event]:
        return self._auth.failed(SaslCondition.MALFORMED_REQUEST, "no exchange in progress")

    def _auth_again(self, _: etree._Element) -> list[Event]:
        return self._auth.failed(SaslCondition.MALFORMED_REQUEST, "an exchange is in progress")

    def _on_sm(self, element: etree._Element) -> list[Event]:
        """XEP-0198: <enable/> before bind fails (§3), <resume/> comes instead of bind (§5)."""
        if self._sm is None:
            return self._link.unexpected(element, _NOT_YET[State.UNBOUND])
        return self._sm.on_element(element)

    # -- stream headers and features (RFC 6120 §4.3.2, §4.7) --------------------------------

    def on_header(self, opened: StreamOpened) -> list[Event]:
        """A stream header (RFC 6120 §4.7): answer it, then offer the features (§4.3.2)."""
        link = self._link
        error = link.check_header(opened)
        link.send_header()  # §4.9.1.2: our header first, even before an error
        if error is not None:
            return link.fail(error)
        link.transition(_Input.STREAM_OPENED)
        link.write(link.settings.framing.features(self.features()))
        return []

    def features(self) -> list[etree._Element]:
        """What to offer after the header just answered."""
        link, settings = self._link, self._link.settings
        if link.state is State.UNBOUND:
            sm = [self._sm.feature()] if self._sm is not None else []
            return [*self._binding.features(), *sm, *settings.extra_features]
        features = []
        if settings.tls_available and not link.encrypted:
            starttls = etree.Element(_STARTTLS, nsmap={None: NS_TLS})
            if settings.require_encryption:
                etree.SubElement(starttls, f"{{{NS_TLS}}}required")  # §5.3.1
            features.append(starttls)
        offered = self._auth.offered()
        if offered:
            mechanisms = etree.Element(f"{{{NS_SASL}}}mechanisms", nsmap={None: NS_SASL})
            for name in offered:
                etree.SubElement(mechanisms, f"{{{NS_SASL}}}mechanism").text = name
            features.append(mechanisms)
        if any(name in sasl.PLUS_MECHANISMS for name in offered):
            # XEP-0440: which channel-binding types we can verify.
            cb = etree.Element(f"{{{NS_SASL_CB}}}sasl-channel-binding", nsmap={None: NS_SASL_CB})
            for kind in sasl.channel_binding_types(link.channel_binding):
                etree.SubElement(cb, f"{{{NS_SASL_CB}}}channel-binding", type=kind)
            features.append(cb)
        return features

    # -- STARTTLS (RFC 6120 §5) ---------------------------------------------------------------

    def _on_starttls(self, element: etree._Element) -> list[Event]:
        link = self._link
        if not link.settings.tls_available or link.encrypted:
            # §5.4.2.2 failure case: <failure/>, then close the stream.
            link.write(TLS_FAILURE)
            link.write_footer()
            link.transition(_Input.FINISHED)
            return [StreamFailed(StreamError(StreamCondition.UNSUPPORTED_FEATURE, "STARTTLS not offered"))]
        if link.inbox.strip(XML_SPACE):
            return link.fail(data_before_restart("<starttls/>"))
        link.inbox.clear()
        link.write(TLS_PROCEED)
        link.transition(_Input.STARTTLS)
        return [StartTls()]

    def tls_started(self, channel_binding: Mapping[str, bytes] | None) -> None:
        """The handshake is done: a new stream begins, encrypted (§5.4.3.3)."""
        link = self._link
        link.encrypted = True
        link.channel_binding = dict(channel_binding or {})
        link.restart()
        link.transition(_Input.TLS_STARTED)

    # -- bind and session, before a resource is bound ------------------------------------------

    def _on_unbound_iq(self, iq: etree._Element) -> list[Event]:
        if self._binding.addressed_to_server(iq):
            payload = iq[0] if len(iq) == 1 else None
            if payload is not None and payload.tag == BIND:
                return self._binding.on_bind(iq, payload)
            if payload is not None and payload.tag == SESSION:
                return self._binding.on_session(iq)
        return self._link.unexpected(iq, _NOT_YET[State.UNBOUND])


# For each negotiating state, the top-level elements it takes and what handles
# them; anything else ends the stream. One table for every connection (a table
# of bound methods and closures per connection was ~2 KiB of each idle session).
_TABLE: Final[Mapping[State, Mapping[str, Callable[[Negotiation, etree._Element], list[Event]]]]] = {
    State.NEGOTIATING: {
        _STARTTLS: Negotiation._on_starttls,
        _AUTH: Negotiation._on_auth,
        _ABORT: Negotiation._on_abort,
        _RESPONSE: Negotiation._response_unasked,
    },
    State.AUTHENTICATING: {
        _RESPONSE: Negotiation._on_response,
        _ABORT: Negotiation._on_abort,
        _AUTH: Negotiation._auth_again,
    },
    State.UNBOUND: {
        _IQ: Negotiation._on_unbound_iq,
        SM_ENABLE: Negotiation._on_sm,
        SM_RESUME: Negotiation._on_sm,
    },
}
_STATES: Final = frozenset(_TABLE)
