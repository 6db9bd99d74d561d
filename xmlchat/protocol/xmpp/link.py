"""The stream plumbing every part of the c2s core shares: :class:`Link`.

One :class:`Link` per connection holds the state, the byte queues, the parser
and what the stream headers established; it is the only place that moves the
state (through :data:`~xmlchat.protocol.xmpp.state.TRANSITIONS`), writes
stream headers and ends the stream. Negotiation (:mod:`.negotiation`,
:mod:`.auth`, :mod:`.binding`) and the established session
(:mod:`.established`) work on it; :class:`~.stream.C2SStream` drives them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lxml import etree

from xmlchat.errors import StanzaError, StreamCondition, StreamError
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import sasl
from xmlchat.protocol.xmpp.events import Closed, Event, LocalProtocolError, StreamFailed
from xmlchat.protocol.xmpp.framing import Framing
from xmlchat.protocol.xmpp.state import _STEPWISE, TRANSITIONS, State, _Await, _Input
from xmlchat.protocol.xmpp.wire import STANZA_KINDS, version_supported
from xmlchat.xml.stream import StanzaStream, StreamEvent, StreamLimits, StreamOpened
from xmlchat.xml.writer import NS_CLIENT, NS_STREAMS, XML_LANG, error_reply

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class C2SLimits:
    """Per-connection limits; defaults are Prosody's mod_c2s values."""

    # c2s_unauthed_stanza_size_limit: 10 000 bytes until SASL succeeds.
    max_unauthenticated_stanza_bytes: int = 10_000
    # c2s_stanza_size_limit: 256 KiB afterwards.
    max_stanza_bytes: int = 256 * 1024
    # Element nesting, the stream root counting as 1.
    max_depth: int = 32


@dataclass(frozen=True, slots=True)
class Settings:
    """The options :class:`~.stream.C2SStream` was made with, checked (see its ``__init__``)."""

    hosts: tuple[str, ...]
    tls_available: bool
    require_encryption: bool
    allow_plain: bool
    limits: C2SLimits
    max_auth_failures: int
    mechanisms: tuple[str, ...]
    lang: str
    id_factory: Callable[[], str]
    nonce_factory: Callable[[], str] | None
    scram_secret: bytes
    fake_iterations: int
    extra_features: tuple[etree._Element, ...]
    nonza_namespaces: frozenset[str]
    framing: Framing


# Settings already in use, so that connections made with the same options share
# one object (with its tuples and sets), instead of ~0.7 KiB each.
_SHARED: dict[Settings, Settings] = {}
_SHARED_MAX = 64


def shared(settings: Settings) -> Settings:
    """The Settings in use equal to ``settings`` (it is immutable), or ``settings``."""
    if len(_SHARED) >= _SHARED_MAX:  # options that change (tests, reloads): start again
        _SHARED.clear()
    return _SHARED.setdefault(settings, settings)


@dataclass(slots=True)
class Outstanding:
    """What the core is in the middle of with the server; it dies with the stream."""

    awaiting: _Await | None = None  # the SASL request the server has to answer
    mechanism: sasl.ServerMechanism | None = None  # the running SASL exchange
    bind_iq: etree._Element | None = None  # the bind request the server has to answer

    def clear(self) -> None:
        self.awaiting = None
        self.mechanism = None
        self.bind_iq = None


class Link:
    """One connection's shared state, and the plumbing every stage uses."""

    def __init__(
        self, settings: Settings, *, encrypted: bool, channel_binding: Mapping[str, bytes] | None
    ) -> None:
        self.settings = settings
        self._state = State.CONNECTED
        self.inbox = bytearray()  # input held until the core may parse it
        # What data_to_send() hands out: one entry per top-level unit (a header,
        # an element, a closing tag), so a message transport can frame each.
        self.outbox: list[bytes] = []
        self.header_sent = False
        self.host: str | None = None
        self.stream_id: str | None = None
        self.client_lang: str | None = None
        self.encrypted = encrypted
        self.channel_binding: dict[str, bytes] = dict(channel_binding or {})
        self.user: JID | None = None
        self.jid: JID | None = None
        self.outstanding = Outstanding()
        self.parser = self._new_parser()
        # XEP-0198 §4 counts, mod 2^32: stanzas the core handled from the
        # client, and stanzas queued for it (reset when management is enabled).
        self.stanzas_in = 0
        self.stanzas_out = 0

    # -- the state machine ----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def transition(self, event: _Input) -> None:
        """Move the state as :data:`TRANSITIONS` says; nothing else assigns it."""
        try:
            new = TRANSITIONS[(self._state, event)]
        except KeyError:
            raise LocalProtocolError(f"no transition from {self._state.name} on {event.name}") from None
        log.debug("c2s %s: %s -> %s", event.name, self._state.name, new.name)
        self._state = new
        if new in (State.CLOSING, State.CLOSED):
            # Outstanding requests die with the stream: their answers become no-ops.
            self.outstanding.clear()

    def ended(self) -> bool:
        # A method, not an inline comparison: handlers change the state under
        # mypy's narrowing.
        return self._state is State.CLOSED

    def ending(self) -> bool:
        """Our closing tag is out, or the stream is over: requests are moot."""
        return self._state in (State.CLOSING, State.CLOSED)

    @property
    def paused(self) -> bool:
        """Waiting for the server's answer: input is held, unparsed."""
        return self.outstanding.awaiting is not None or self._state is State.BINDING

    # -- parsing held input ---------------------------------------------------------------

    def run(self, dispatch: Callable[[StreamEvent], list[Event]]) -> list[Event]:
        """Parse held input until it runs out, the core pauses, or the stream ends.

        ``dispatch`` turns what the parser found into events (see ``C2SStream``).
        """
        events: list[Event] = []
        while self.inbox and not self.paused and self.state not in (State.TLS_PENDING, State.CLOSED):
            if self.state in _STEPWISE:
                # One '>' at a time: every element and header ends at a '>', so
                # after each piece the core knows exactly what follows it.
                end = self.inbox.find(b">")
                size = len(self.inbox) if end < 0 else end + 1
            else:
                size = len(self.inbox)
            chunk = bytes(self.inbox[:size])
            del self.inbox[:size]
            parser = self.parser
            error: StreamError | None = None
            try:
                parsed = parser.feed(chunk)
            except StreamError as e:
                # The stream parser hands over what it completed before the error.
                parsed = list(e.events)
                error = e
            for item in parsed:
                # A restart replaced the parser: what it parsed belongs to the old stream.
                if self.parser is not parser or self.ended():
                    break
                events += dispatch(item)
            if error is not None and self.parser is parser:
                events += self.fail(error)
        return events

    # -- stream headers (RFC 6120 §4.7) and restarts ------------------------------------

    def check_header(self, opened: StreamOpened) -> StreamError | None:
        """The error the client's header deserves, or None; records host and xml:lang."""
        qname = etree.QName(opened.tag)
        if qname.namespace != NS_STREAMS:
            # §4.8.1: SHOULD be invalid-namespace (some servers send bad-format).
            return StreamError(StreamCondition.INVALID_NAMESPACE, "the root must be in the streams namespace")
        if qname.localname != "stream":
            return StreamError(StreamCondition.BAD_FORMAT, "the root element must be <stream:stream>")
        content = opened.nsmap.get(None)
        if content is not None and content != NS_CLIENT:
            # §4.8.2, §4.9.3.10: this is a client-to-server port.
            return StreamError(StreamCondition.INVALID_NAMESPACE, f"content namespace must be {NS_CLIENT}")
        host = _addressed_host(opened.attrib.get("to"))
        if host is None:
            # Prosody's answer to a missing or unparseable 'to' (§4.7.2 requires one).
            return StreamError(StreamCondition.IMPROPER_ADDRESSING, "a valid 'to' attribute is required")
        if host not in self.settings.hosts or (self.host is not None and host != self.host):
            return StreamError(StreamCondition.HOST_UNKNOWN, f"this server does not serve {host}")
        self.host = host
        if not version_supported(opened.attrib.get("version")):
            # §4.7.5: no version means 0.9; a different major version is unsupported.
            return StreamError(StreamCondition.UNSUPPORTED_VERSION, "version 1.0 is required")
        self.client_lang = opened.attrib.get(XML_LANG)
        return None

    def send_header(self) -> None:
        """Our stream header, with a fresh id (§4.7.3)."""
        self.stream_id = self.settings.id_factory()
        self.outbox.append(
            self.settings.framing.header(
                from_=self.host or self.settings.hosts[0], stream_id=self.stream_id, lang=self.settings.lang
            )
        )
        self.header_sent = True

    def restart(self) -> None:
        """A fresh parser for the next stream (§4.3.3); bytes already read are not carried over."""
        self.parser.rest(final=True)
        self.parser = self._new_parser()
        self.header_sent = False
        self.client_lang = None

    def _new_parser(self) -> StanzaStream:
        limits = self.settings.limits
        size = limits.max_stanza_bytes if self.user is not None else limits.max_unauthenticated_stanza_bytes
        stream_limits = StreamLimits(max_stanza_bytes=size, max_depth=limits.max_depth)
        return self.settings.framing.new_parser(stream_limits)

    # -- stanzas ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue one top-level unit that is not a stanza (SASL, features, acks…)."""
        self.outbox.append(data)

    def write_footer(self) -> None:
        """Our closing tag (``</stream:stream>``, or RFC 7395's ``<close/>``)."""
        self.outbox.append(self.settings.framing.footer)

    def queue_stanza(self, stanza: etree._Element) -> None:
        """Queue one stanza for the client: the one way stanzas leave, so each counts."""
        self.outbox.append(self.settings.framing.stanza(stanza))
        self.stanzas_out = (self.stanzas_out + 1) % 2**32

    def stanza_handled(self) -> None:
        """One stanza from the client was handled (passed on or answered)."""
        self.stanzas_in = (self.stanzas_in + 1) % 2**32

    def reply(self, element: etree._Element, error: StanzaError) -> list[Event]:
        """Answer a client's stanza with ``error`` (RFC 6120 §8.3)."""
        if element.get("type") != "error":  # §8.3.1: never answer an error
            # The reply travels on this stream, to this client, whatever 'from' it wrote.
            if self.jid is not None:
                element.set("from", str(self.jid))
            elif "from" in element.attrib:
                del element.attrib["from"]
            self.queue_stanza(error_reply(element, error, self.settings.lang))
        return []

    def unexpected(self, element: etree._Element, stanza_text: str) -> list[Event]:
        """End the stream over a top-level element the current state does not take.

        ``stanza_text``: the not-authorized text for a stanza sent too early, or
        "" when stanzas are not the problem.
        """
        qname = etree.QName(element)
        if qname.localname in STANZA_KINDS:
            if qname.namespace != NS_CLIENT:
                return self.fail(
                    StreamError(StreamCondition.INVALID_NAMESPACE, f"stanzas must be in {NS_CLIENT}")
                )
            if stanza_text:
                return self.fail(StreamError(StreamCondition.NOT_AUTHORIZED, stanza_text))
        return self.fail(
            StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, f"unexpected <{qname.localname}/>")
        )

    # -- ending ----------------------------------------------------------------------

    def peer_closed(self, peer_error: str | None) -> list[Event]:
        if self._state is not State.CLOSING:
            self.write_footer()  # §4.4: answer with our closing tag
        self.transition(_Input.FINISHED)
        return [Closed(peer_error)]

    def fail(self, error: StreamError) -> list[Event]:
        """End the stream with ``error``: the peer misbehaved."""
        if self._state is State.CLOSED:
            return []
        log.debug("c2s stream error: %s", error)
        self.queue_stream_error(error)
        self.transition(_Input.FINISHED)
        return [StreamFailed(error)]

    def queue_stream_error(self, error: StreamError) -> None:
        if self._state is State.CLOSING:
            return  # our closing tag is out: nothing may follow it
        if not self.header_sent:
            self.send_header()  # §4.9.1.2
        self.outbox.append(self.settings.framing.error(error, self.settings.lang))
        self.write_footer()

    def close(self) -> None:
        """Send our closing tag (§4.4), after a header if none went out yet."""
        if not self.header_sent:
            self.send_header()
        self.write_footer()
        self.transition(_Input.CLOSE_SENT)


def _addressed_host(to: str | None) -> str | None:
    """The domain a header's 'to' names, or None if it names no bare domain."""
    try:
        addressed = JID.parse(to) if to else None
    except InvalidJID:
        return None
    if addressed is not None and addressed.local is None and addressed.resource is None:
        return addressed.domain
    return None
