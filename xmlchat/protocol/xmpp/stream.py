"""The c2s stream core: :class:`C2SStream` (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from lxml import etree

from xmlchat.errors import (
    StanzaCondition,
    StanzaError,
    StanzaTooBig,
    StreamCondition,
    StreamError,
)
from xmlchat.jid import JID, InvalidJID
from xmlchat.protocol import sasl
from xmlchat.protocol.sasl import SaslCondition, SaslFailure, ScramCredentialsLike
from xmlchat.protocol.xmpp.events import (
    Authenticated,
    AuthFailed,
    BindRequest,
    Closed,
    Event,
    LocalProtocolError,
    NeedCredentials,
    NeedPasswordCheck,
    NonzaIn,
    StanzaIn,
    StartTls,
    StreamFailed,
)
from xmlchat.protocol.xmpp.state import _STEPWISE, TRANSITIONS, State, _Await, _Input
from xmlchat.xml.stream import (
    StanzaReceived,
    StanzaStream,
    StreamClosed,
    StreamEvent,
    StreamLimits,
    StreamOpened,
)
from xmlchat.xml.writer import (
    NS_BIND,
    NS_CLIENT,
    NS_SASL,
    NS_SASL_CB,
    NS_SESSION,
    NS_STREAM_ERRORS,
    NS_STREAMS,
    NS_TLS,
    STREAM_FOOTER,
    XML_LANG,
    error_reply,
    serialize,
    stream_error,
    stream_features,
    stream_header,
)

if TYPE_CHECKING:
    from xmlchat.config import Config


log = logging.getLogger(__name__)

_STANZA_KINDS: Final = frozenset({"message", "presence", "iq"})
_IQ_TYPES: Final = frozenset({"get", "set", "result", "error"})
# RFC 6121 §4.7.1; no type means available. Messages accept any type (RFC 6121
# §5.2.2: an unknown type is treated as 'normal').
_PRESENCE_TYPES: Final = frozenset(
    {"error", "probe", "subscribe", "subscribed", "unavailable", "unsubscribe", "unsubscribed"}
)
_XML_SPACE: Final = b" \t\r\n"


# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class C2SLimits:
    """Per-connection limits; defaults are Prosody's mod_c2s values."""

    # c2s_unauthed_stanza_size_limit: 10 000 bytes until SASL succeeds.
    max_unauthenticated_stanza_bytes: int = 10_000
    # c2s_stanza_size_limit: 256 KiB afterwards.
    max_stanza_bytes: int = 256 * 1024
    # Element nesting, the stream root counting as 1.
    max_depth: int = 32


def _new_stream_id() -> str:
    return str(uuid.uuid4())


class C2SStream:
    """One client-to-server XMPP connection, sans-IO (RFC 6120).

    **Driving it.** Feed every byte read from the socket to
    :meth:`receive_data`; it returns a list of events to handle in order.
    After handling them (and after every other method call), write
    :meth:`data_to_send` to the socket. A reference loop::

        core = C2SStream(hosts, tls_available=True)
        while data := await reader.read(65536):
            work = core.receive_data(data)
            while work:
                event = work.pop(0)
                match event:
                    case StartTls():
                        writer.write(core.data_to_send()); await writer.drain()
                        await writer.start_tls(ctx)
                        work[:0] = core.tls_started({"tls-server-end-point": cb_data})
                    case NeedCredentials(user, mech, host):
                        work[:0] = core.provide_credentials(await store.scram(user, mech))
                    case NeedPasswordCheck(user, password, host):
                        work[:0] = core.password_checked(await store.check(user, password))
                    case BindRequest(_, resource):
                        work[:0] = core.bound(session_manager.bind(core.user, resource))
                    case StanzaIn(element, to):
                        router.route(core.jid, element)
                    case Closed() | StreamFailed():
                        ...  # unregister the session
            writer.write(core.data_to_send()); await writer.drain()
            if core.state is State.CLOSED:
                break
        writer.close()

    **Requests and answers.** :class:`NeedCredentials`, :class:`NeedPasswordCheck`
    and :class:`BindRequest` are requests: the core waits, holding any further
    input unparsed, until you answer with exactly one of the matching methods
    (``provide_credentials``/``auth_failed``, ``password_checked``/``auth_failed``,
    ``bound``/``bind_failed``). :class:`StartTls` is answered by
    :meth:`tls_started`. Each answering method returns the events that the held
    input then produces — handle them exactly like those of ``receive_data``.
    Answering when no such request is outstanding raises
    :class:`LocalProtocolError`; answering after :meth:`close`,
    :meth:`send_stream_error` or the end of the stream is a no-op returning
    ``[]`` (the request died with the stream). :class:`Authenticated`,
    :class:`StanzaIn`, :class:`NonzaIn` and the two final events need no answer.

    **TLS.** Pass ``tls_available`` when a certificate is configured;
    ``tls_active`` for a direct-TLS port (XEP-0368), with its
    ``channel_binding``. After :class:`StartTls`: write the queued
    ``<proceed/>``, do not feed any more bytes to the core, run the handshake
    on the same connection, then call ``tls_started(channel_binding)``, where
    ``channel_binding`` maps RFC 5929/9266 type names
    (``"tls-server-end-point"``, ``"tls-unique"``, ``"tls-exporter"``) to their
    data for this connection, or None. If the handshake fails, just close.

    **Receiving stanzas.** A :class:`StanzaIn` element is complete, detached and
    already checked (see the class); compare its names in Clark notation, never
    by prefix — the parser may hand out ``ns0:``-prefixed copies.

    **Sending.** :meth:`send_stanza` queues a stanza for the bound client (an
    element in ``jabber:client`` or in no namespace; its tail is ignored, it
    is not modified);
    :meth:`stanza_error_reply` answers a stanza with an error; :meth:`close`
    ends the stream politely (state CLOSING: keep reading until :class:`Closed`,
    or close the connection after a grace period of a few seconds);
    :meth:`send_stream_error` ends it with an error (state CLOSED).
    ``send_stanza`` and ``stanza_error_reply`` after the stream ended silently
    drop the stanza, so a router racing a disconnect needs no special case.

    **Ending.** After :class:`Closed` or :class:`StreamFailed`, or when
    :attr:`state` is CLOSED, write what is queued and close the connection.
    ``receive_data`` then ignores input. EOF without ``</stream:stream>`` is the
    transport's business: just drop the core.

    **Properties.** :attr:`state`; :attr:`host` (the virtual host, once the
    header named one); :attr:`user` (bare JID after SASL); :attr:`jid` (full
    JID once bound); :attr:`encrypted`; :attr:`stream_id`.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        *,
        tls_available: bool = False,
        tls_active: bool = False,
        channel_binding: Mapping[str, bytes] | None = None,
        require_encryption: bool = True,
        allow_unencrypted_plain_auth: bool = False,
        limits: C2SLimits = C2SLimits(),
        max_auth_failures: int = 3,
        mechanisms: Sequence[str] = sasl.ALL_MECHANISMS,
        lang: str = "en",
        id_factory: Callable[[], str] = _new_stream_id,
        scram_nonce_factory: Callable[[], str] | None = None,
        scram_secret: bytes | None = None,
        scram_fake_iterations: int = sasl.DEFAULT_FAKE_ITERATIONS,
        features: Sequence[etree._Element] = (),
        nonza_namespaces: Collection[str] = (),
    ) -> None:
        """
        ``hosts``: the virtual hosts served; the first answers headers with a bad 'to'.
        ``require_encryption``: no SASL before TLS, ``<required/>`` in ``<starttls/>``.
        ``allow_unencrypted_plain_auth``: offer PLAIN without TLS (never by default).
        ``max_auth_failures``: SASL failures before the stream is closed.
        ``mechanisms``: enabled SASL mechanisms, in order of preference.
        ``id_factory``: stream ids (one per header, RFC 6120 §4.7.3).
        ``scram_nonce_factory``: server nonces (tests); default scramp's random ones.
        ``scram_secret``: a server-wide secret so fake salts for unknown users stay
        stable across connections; default a random one per connection.
        ``scram_fake_iterations``: iteration count shown for unknown users —
        set it to the one real accounts use.
        ``features``: extra post-authentication stream features (e.g. roster
        versioning, RFC 6121 §2.6), after bind and session.
        ``nonza_namespaces``: top-level element namespaces delivered as
        :class:`NonzaIn` once bound (for features like XEP-0352 CSI).
        """
        if not hosts:
            raise ValueError("at least one host is needed")
        if require_encryption and not (tls_available or tls_active):
            raise ValueError("require_encryption needs TLS: pass tls_available or tls_active")
        if max_auth_failures < 1:
            raise ValueError("max_auth_failures must be at least 1")
        for name in mechanisms:
            if name not in sasl.ALL_MECHANISMS:
                raise ValueError(f"unknown SASL mechanism {name!r}")
        self._hosts = tuple(JID.parse(h).domain for h in hosts)
        self._tls_available = tls_available
        self._encrypted = tls_active
        self._channel_binding: dict[str, bytes] = dict(channel_binding or {})
        self._require_encryption = require_encryption
        self._allow_plain = allow_unencrypted_plain_auth
        self._limits = limits
        self._max_auth_failures = max_auth_failures
        self._mechanisms = tuple(mechanisms)
        self._lang = lang
        self._id_factory = id_factory
        self._nonce_factory = scram_nonce_factory
        self._scram_secret = scram_secret or secrets.token_bytes(32)
        self._fake_iterations = scram_fake_iterations
        self._extra_features = tuple(features)
        self._nonza_namespaces = frozenset(nonza_namespaces)

        self._state = State.CONNECTED
        self._header_sent = False
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._host: str | None = None
        self._stream_id: str | None = None
        self._client_lang: str | None = None
        self._mechanism: sasl.ServerMechanism | None = None
        self._awaiting: _Await | None = None
        self._auth_failures = 0
        self._candidate: JID | None = None  # the account a SASL exchange is about
        self._user: JID | None = None
        self._jid: JID | None = None
        self._bind_iq: etree._Element | None = None
        self._stream = self._new_parser()

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        tls_available: bool,
        tls_active: bool = False,
        channel_binding: Mapping[str, bytes] | None = None,
        scram_secret: bytes | None = None,
        features: Sequence[etree._Element] = (),
        nonza_namespaces: Collection[str] = (),
    ) -> C2SStream:
        """A core configured from ``[xmpp]``, ``[limits]`` and ``[storage]`` of ``config``."""
        return cls(
            config.hosts,
            tls_available=tls_available,
            tls_active=tls_active,
            channel_binding=channel_binding,
            require_encryption=config.xmpp.require_encryption,
            allow_unencrypted_plain_auth=config.xmpp.allow_unencrypted_plain_auth,
            limits=C2SLimits(
                max_unauthenticated_stanza_bytes=config.limits.max_unauthenticated_stanza_bytes,
                max_stanza_bytes=config.limits.max_stanza_bytes,
                max_depth=config.limits.max_depth,
            ),
            max_auth_failures=config.limits.max_login_attempts,
            scram_secret=scram_secret,
            scram_fake_iterations=config.storage.scram_iterations,
            features=features,
            nonza_namespaces=nonza_namespaces,
        )

    # -- properties -----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        """The stream is over: write what is queued and close the connection."""
        return self._state is State.CLOSED

    @property
    def host(self) -> str | None:
        """The virtual host the client addressed (RFC 6120 §4.7.2 'to')."""
        return self._host

    @property
    def user(self) -> JID | None:
        """The authenticated account (bare JID), after SASL success."""
        return self._user

    @property
    def jid(self) -> JID | None:
        """The full JID, once a resource is bound."""
        return self._jid

    @property
    def encrypted(self) -> bool:
        return self._encrypted

    @property
    def stream_id(self) -> str | None:
        return self._stream_id

    # -- input ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Bytes read from the peer; returns the events they complete."""
        if self._state is State.CLOSED:
            return []
        if self._state is State.TLS_PENDING:
            # RFC 6120 §5.4.3.3: nothing may come between <starttls/> and the handshake.
            if data.strip(_XML_SPACE):
                return self._fail(_data_before_restart("<starttls/>"))
            return []
        self._inbox += data
        if self._paused:
            if len(self._inbox) > self._stream.limits.max_stanza_bytes:
                return self._fail(StanzaTooBig("too much data while waiting for the server"))
            return []
        return self._run()

    def tls_started(self, channel_binding: Mapping[str, bytes] | None = None) -> list[Event]:
        """The TLS handshake after :class:`StartTls` succeeded; a new stream begins."""
        if self._state is State.CLOSED:
            return []
        if self._state is not State.TLS_PENDING:
            raise LocalProtocolError(f"tls_started() in state {self._state.name}")
        self._encrypted = True
        self._channel_binding = dict(channel_binding or {})
        self._restart()
        self._transition(_Input.TLS_STARTED)
        return self._run()

    def provide_credentials(self, credentials: ScramCredentialsLike | None) -> list[Event]:
        """Answer :class:`NeedCredentials`: the stored SCRAM keys, or None for no such user.

        Keys of another mechanism than the one asked for count as None. Unknown
        users still get a challenge and fail after the proof (RFC 5802 §5.1).
        """
        mechanism = self._answering(_Await.CREDENTIALS)
        if mechanism is None:
            return []
        return self._sasl_step(lambda: mechanism.provide_credentials(credentials)) + self._run()

    def password_checked(self, ok: bool) -> list[Event]:
        """Answer :class:`NeedPasswordCheck`."""
        mechanism = self._answering(_Await.PASSWORD)
        if mechanism is None:
            return []
        return self._sasl_step(lambda: mechanism.password_checked(ok)) + self._run()

    def auth_failed(self, condition: SaslCondition, text: str = "") -> list[Event]:
        """Answer either SASL request with a failure of your choosing.

        For example ``account-disabled``, or ``temporary-auth-failure`` when the
        store is unavailable (RFC 6120 §6.5).
        """
        if self._state in (State.CLOSING, State.CLOSED):
            return []
        if self._awaiting is None:
            raise LocalProtocolError("auth_failed() with no SASL request outstanding")
        self._awaiting = None
        return self._sasl_failed(condition, text) + self._run()

    def bound(self, full_jid: JID) -> list[Event]:
        """Answer :class:`BindRequest`: ``full_jid`` is the user's bare JID plus the resource."""
        if self._state in (State.CLOSING, State.CLOSED):
            return []
        if self._state is not State.BINDING or self._bind_iq is None:
            raise LocalProtocolError(f"bound() in state {self._state.name}")
        if full_jid.resource is None or full_jid.bare != self._user:
            raise LocalProtocolError(f"bound() with {full_jid}, not a full JID of {self._user}")
        iq = etree.Element(f"{{{NS_CLIENT}}}iq", nsmap={None: NS_CLIENT}, type="result")
        iq_id = self._bind_iq.get("id")
        if iq_id is not None:
            iq.set("id", iq_id)
        bind = etree.SubElement(iq, f"{{{NS_BIND}}}bind", nsmap={None: NS_BIND})
        etree.SubElement(bind, f"{{{NS_BIND}}}jid").text = str(full_jid)
        self._outbox += serialize(iq)
        self._jid = full_jid
        self._bind_iq = None
        self._transition(_Input.BIND_SUCCEEDED)
        return self._run()

    def bind_failed(self, error: StanzaError) -> list[Event]:
        """Answer :class:`BindRequest` with an error (e.g. ``conflict``, ``not-allowed``)."""
        if self._state in (State.CLOSING, State.CLOSED):
            return []
        if self._state is not State.BINDING or self._bind_iq is None:
            raise LocalProtocolError(f"bind_failed() in state {self._state.name}")
        self._outbox += serialize(error_reply(self._bind_iq, error, self._lang))
        self._bind_iq = None
        self._transition(_Input.BIND_FAILED)
        return self._run()

    # -- output -----------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def send_stanza(self, element: etree._Element) -> None:
        """Queue a stanza (in ``jabber:client``, or no namespace) for the bound client."""
        if self._state in (State.CLOSING, State.CLOSED):
            return
        if self._state is not State.BOUND:
            raise LocalProtocolError(f"send_stanza() in state {self._state.name}")
        self._outbox += serialize(element)

    def stanza_error_reply(self, element: etree._Element, error: StanzaError) -> None:
        """Queue an error reply to ``element`` (RFC 6120 §8.3.1); never to an error."""
        if self._state in (State.CLOSING, State.CLOSED) or element.get("type") == "error":
            return
        if self._state not in (State.UNBOUND, State.BINDING, State.BOUND):
            raise LocalProtocolError(f"stanza_error_reply() in state {self._state.name}")
        self._outbox += serialize(error_reply(element, error, self._lang))

    def send_stream_error(self, error: StreamError) -> None:
        """End the stream with ``error`` (e.g. ``conflict`` when a newer session
        takes the resource, ``system-shutdown``); state becomes CLOSED."""
        if self._state is State.CLOSED:
            return
        self._queue_stream_error(error)
        self._transition(_Input.FINISHED)

    def close(self) -> None:
        """Close our half of the stream (RFC 6120 §4.4); wait for the peer's."""
        if self._state in (State.CLOSING, State.CLOSED):
            return
        if self._state is State.TLS_PENDING:
            self._transition(_Input.FINISHED)  # mid-handshake: nothing sensible to send
            return
        if not self._header_sent:
            self._send_header()
        self._outbox += STREAM_FOOTER
        self._transition(_Input.CLOSE_SENT)

    # -- the state machine --------------------------------------------------------

    def _transition(self, event: _Input) -> None:
        try:
            new = TRANSITIONS[(self._state, event)]
        except KeyError:
            raise LocalProtocolError(f"no transition from {self._state.name} on {event.name}") from None
        log.debug("c2s %s: %s -> %s", event.name, self._state.name, new.name)
        self._state = new
        if new in (State.CLOSING, State.CLOSED):
            # Outstanding requests die with the stream: their answers become no-ops.
            self._awaiting = None
            self._mechanism = None
            self._bind_iq = None

    def _ended(self) -> bool:
        # A method, not an inline comparison: handlers change the state under
        # mypy's narrowing.
        return self._state is State.CLOSED

    @property
    def _paused(self) -> bool:
        return self._awaiting is not None or self._state is State.BINDING

    def _answering(self, awaiting: _Await) -> sasl.ServerMechanism | None:
        if self._state in (State.CLOSING, State.CLOSED):
            return None
        if self._awaiting is not awaiting or self._mechanism is None:
            raise LocalProtocolError(f"no {awaiting.name.lower()} request outstanding")
        self._awaiting = None
        return self._mechanism

    def _run(self) -> list[Event]:
        """Parse held input until it runs out, the core pauses, or the stream ends."""
        events: list[Event] = []
        while self._inbox and not self._paused and self._state not in (State.TLS_PENDING, State.CLOSED):
            if self._state in _STEPWISE:
                # One '>' at a time: every element and header ends at a '>', so
                # after each piece the core knows exactly what follows it.
                end = self._inbox.find(b">")
                size = len(self._inbox) if end < 0 else end + 1
            else:
                size = len(self._inbox)
            chunk = bytes(self._inbox[:size])
            del self._inbox[:size]
            stream = self._stream
            error: StreamError | None = None
            try:
                parsed = stream.feed(chunk)
            except StreamError as e:
                # The stream parser hands over what it completed before the error.
                parsed = list(e.events)
                error = e
            for item in parsed:
                if self._stream is not stream or self._ended():
                    break
                events += self._dispatch(item)
            if error is not None and self._stream is stream:
                events += self._fail(error)
        return events

    def _dispatch(self, item: StreamEvent) -> list[Event]:
        if isinstance(item, StreamOpened):
            return self._on_header(item)
        if isinstance(item, StreamClosed):
            return self._on_peer_close(None)
        assert isinstance(item, StanzaReceived)
        element = item.element
        if element.tag == f"{{{NS_STREAMS}}}error":
            return self._on_peer_close(_stream_error_condition(element))
        handler = _ELEMENT_HANDLERS.get(self._state)
        if handler is None:  # unreachable: only a header can start a new parser
            raise LocalProtocolError(f"element in state {self._state.name}")
        return handler(self, element)

    # -- stream headers (RFC 6120 §4.7) ---------------------------------------------

    def _on_header(self, opened: StreamOpened) -> list[Event]:
        error = self._check_header(opened)
        self._send_header()  # §4.9.1.2: our header first, even before an error
        if error is not None:
            return self._fail(error)
        self._transition(_Input.STREAM_OPENED)
        self._outbox += stream_features(self._features())
        return []

    def _check_header(self, opened: StreamOpened) -> StreamError | None:
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
        to = opened.attrib.get("to")
        host: str | None = None
        try:
            addressed = JID.parse(to) if to else None
        except InvalidJID:
            addressed = None
        if addressed is not None and addressed.local is None and addressed.resource is None:
            host = addressed.domain
        if host is None:
            # Prosody's answer to a missing or unparseable 'to' (§4.7.2 requires one).
            return StreamError(StreamCondition.IMPROPER_ADDRESSING, "a valid 'to' attribute is required")
        if host not in self._hosts or (self._host is not None and host != self._host):
            return StreamError(StreamCondition.HOST_UNKNOWN, f"this server does not serve {host}")
        self._host = host
        if not _version_supported(opened.attrib.get("version")):
            # §4.7.5: no version means 0.9; a different major version is unsupported.
            return StreamError(StreamCondition.UNSUPPORTED_VERSION, "version 1.0 is required")
        self._client_lang = opened.attrib.get(XML_LANG)
        return None

    def _send_header(self) -> None:
        self._stream_id = self._id_factory()
        self._outbox += stream_header(
            from_=self._host or self._hosts[0], stream_id=self._stream_id, lang=self._lang
        )
        self._header_sent = True

    def _features(self) -> list[etree._Element]:
        if self._state is State.UNBOUND:
            bind = etree.Element(f"{{{NS_BIND}}}bind", nsmap={None: NS_BIND})
            session = etree.Element(f"{{{NS_SESSION}}}session", nsmap={None: NS_SESSION})
            # draft-cridland-xmpp-session: advertised as optional; xmpppy still sends it.
            etree.SubElement(session, f"{{{NS_SESSION}}}optional")
            return [bind, session, *self._extra_features]
        features = []
        if self._tls_available and not self._encrypted:
            starttls = etree.Element(f"{{{NS_TLS}}}starttls", nsmap={None: NS_TLS})
            if self._require_encryption:
                etree.SubElement(starttls, f"{{{NS_TLS}}}required")  # §5.3.1
            features.append(starttls)
        offered = self._offered_mechanisms()
        if offered:
            mechanisms = etree.Element(f"{{{NS_SASL}}}mechanisms", nsmap={None: NS_SASL})
            for name in offered:
                etree.SubElement(mechanisms, f"{{{NS_SASL}}}mechanism").text = name
            features.append(mechanisms)
        if any(name in sasl.PLUS_MECHANISMS for name in offered):
            # XEP-0440: which channel-binding types we can verify.
            cb = etree.Element(f"{{{NS_SASL_CB}}}sasl-channel-binding", nsmap={None: NS_SASL_CB})
            for kind in sasl.channel_binding_types(self._channel_binding):
                etree.SubElement(cb, f"{{{NS_SASL_CB}}}channel-binding", type=kind)
            features.append(cb)
        return features

    def _offered_mechanisms(self) -> list[str]:
        if self._require_encryption and not self._encrypted:
            return []  # §5.3.1: TLS first when it is mandatory-to-negotiate
        return sasl.offered_mechanisms(
            self._mechanisms,
            encrypted=self._encrypted,
            allow_unencrypted_plain=self._allow_plain,
            channel_binding=self._channel_binding if self._encrypted else None,
        )

    def _restart(self) -> None:
        """A fresh parser for the next stream (§4.3.3); bytes already read are not carried over."""
        self._stream = self._new_parser()
        self._header_sent = False
        self._client_lang = None

    def _new_parser(self) -> StanzaStream:
        limits = self._limits
        size = limits.max_stanza_bytes if self._user is not None else limits.max_unauthenticated_stanza_bytes
        return StanzaStream(StreamLimits(max_stanza_bytes=size, max_depth=limits.max_depth))

    # -- top-level elements, by state ------------------------------------------------

    def _on_negotiating(self, element: etree._Element) -> list[Event]:
        qname = etree.QName(element)
        if qname.namespace == NS_TLS and qname.localname == "starttls":
            return self._on_starttls()
        if qname.namespace == NS_SASL:
            if qname.localname == "auth":
                return self._on_auth(element)
            if qname.localname == "abort":
                return self._sasl_failed(SaslCondition.ABORTED)
            if qname.localname == "response":
                return self._sasl_failed(SaslCondition.MALFORMED_REQUEST, "no exchange in progress")
        return self._unexpected(element, "authenticate first")

    def _on_authenticating(self, element: etree._Element) -> list[Event]:
        qname = etree.QName(element)
        if qname.namespace == NS_SASL:
            if qname.localname == "response":
                return self._on_response(element)
            if qname.localname == "abort":
                return self._sasl_failed(SaslCondition.ABORTED)  # §6.4.4
            if qname.localname == "auth":
                return self._sasl_failed(SaslCondition.MALFORMED_REQUEST, "an exchange is in progress")
        return self._unexpected(element, "authenticate first")

    def _on_unbound(self, element: etree._Element) -> list[Event]:
        qname = etree.QName(element)
        if qname.namespace == NS_CLIENT and qname.localname == "iq" and self._for_server(element):
            payload = element[0] if len(element) == 1 else None
            if payload is not None and payload.tag == f"{{{NS_BIND}}}bind":
                return self._on_bind(element, payload)
            if payload is not None and payload.tag == f"{{{NS_SESSION}}}session":
                return self._on_session(element)
        # RFC 6120 §7.1: no stanzas before a resource is bound.
        return self._unexpected(element, "bind a resource first")

    def _on_bound(self, element: etree._Element) -> list[Event]:
        qname = etree.QName(element)
        if qname.namespace == NS_CLIENT and qname.localname in _STANZA_KINDS:
            return self._on_stanza(element, qname.localname)
        if qname.namespace in self._nonza_namespaces:
            return [NonzaIn(element)]
        return self._unexpected(element, "")

    def _on_closing(self, element: etree._Element) -> list[Event]:
        return []  # our side is closed: nothing could be answered (§4.4)

    def _unexpected(self, element: etree._Element, stanza_text: str) -> list[Event]:
        qname = etree.QName(element)
        if qname.localname in _STANZA_KINDS:
            if qname.namespace != NS_CLIENT:
                return self._fail(
                    StreamError(StreamCondition.INVALID_NAMESPACE, f"stanzas must be in {NS_CLIENT}")
                )
            if stanza_text:
                return self._fail(StreamError(StreamCondition.NOT_AUTHORIZED, stanza_text))
        return self._fail(
            StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, f"unexpected <{qname.localname}/>")
        )

    # -- TLS (RFC 6120 §5) ---------------------------------------------------------------

    def _on_starttls(self) -> list[Event]:
        if not self._tls_available or self._encrypted:
            # §5.4.2.2 failure case: <failure/>, then close the stream.
            self._outbox += f"<failure xmlns='{NS_TLS}'/>".encode() + STREAM_FOOTER
            self._transition(_Input.FINISHED)
            return [StreamFailed(StreamError(StreamCondition.UNSUPPORTED_FEATURE, "STARTTLS not offered"))]
        if self._inbox.strip(_XML_SPACE):
            return self._fail(_data_before_restart("<starttls/>"))
        self._inbox.clear()
        self._outbox += f"<proceed xmlns='{NS_TLS}'/>".encode()
        self._transition(_Input.STARTTLS)
        return [StartTls()]

    # -- SASL (RFC 6120 §6) --------------------------------------------------------------

    def _on_auth(self, element: etree._Element) -> list[Event]:
        name = element.get("mechanism", "")
        if self._require_encryption and not self._encrypted:
            return self._sasl_failed(SaslCondition.ENCRYPTION_REQUIRED)
        if name not in self._offered_mechanisms():
            if name == "PLAIN" and name in self._mechanisms and not self._encrypted:
                return self._sasl_failed(SaslCondition.ENCRYPTION_REQUIRED)  # §6.5.4
            return self._sasl_failed(SaslCondition.INVALID_MECHANISM)
        try:
            initial = _sasl_decode(element.text, initial=True)
        except ValueError:
            return self._sasl_failed(SaslCondition.INCORRECT_ENCODING)
        offered = self._offered_mechanisms()
        mechanism = sasl.make_mechanism(
            name,
            channel_binding=self._channel_binding,
            plus_offered=any(n in sasl.PLUS_MECHANISMS for n in offered),
            nonce_factory=self._nonce_factory,
            fake_secret=self._scram_secret,
            fake_iterations=self._fake_iterations,
        )
        self._mechanism = mechanism
        self._transition(_Input.SASL_STARTED)
        return self._sasl_step(lambda: mechanism.start(initial))

    def _on_response(self, element: etree._Element) -> list[Event]:
        mechanism = self._mechanism
        assert mechanism is not None
        try:
            data = _sasl_decode(element.text, initial=False)
        except ValueError:
            return self._sasl_failed(SaslCondition.INCORRECT_ENCODING)
        assert data is not None
        return self._sasl_step(lambda: mechanism.respond(data))

    def _sasl_step(self, step_fn: Callable[[], sasl.Step]) -> list[Event]:
        host = self._host
        assert host is not None
        try:
            step = step_fn()
            if isinstance(step, sasl.Challenge):
                self._outbox += _sasl_element("challenge", step.data)
                return []
            if isinstance(step, sasl.Success):
                return self._sasl_succeeded(step.data)
            account = self._account(step.authcid, step.authzid)
        except SaslFailure as failure:
            return self._sasl_failed(failure.condition, failure.text)
        self._candidate = account
        assert account.local is not None
        if isinstance(step, sasl.CredentialsNeeded):
            self._awaiting = _Await.CREDENTIALS
            return [NeedCredentials(account.local, step.mechanism, host)]
        self._awaiting = _Await.PASSWORD
        return [NeedPasswordCheck(account.local, step.password, host)]

    def _account(self, authcid: str, authzid: str | None) -> JID:
        """The bare JID the SASL user name stands for on this host (RFC 6120 §6.3.7–8)."""
        host = self._host
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

    def _sasl_failed(self, condition: SaslCondition, text: str = "") -> list[Event]:
        log.debug("c2s SASL failure: %s", condition)
        failure = etree.Element(f"{{{NS_SASL}}}failure", nsmap={None: NS_SASL})
        etree.SubElement(failure, f"{{{NS_SASL}}}{condition.value}")
        if text:
            etree.SubElement(failure, f"{{{NS_SASL}}}text", {XML_LANG: self._lang}).text = text
        self._outbox += serialize(failure)
        candidate = self._candidate
        self._mechanism = None
        self._awaiting = None
        self._candidate = None
        self._transition(_Input.SASL_FAILED)
        self._auth_failures += 1
        events: list[Event] = [AuthFailed(candidate, condition.value)]
        if self._auth_failures >= self._max_auth_failures:
            return events + self._fail(
                StreamError(StreamCondition.POLICY_VIOLATION, "too many failed authentication attempts")
            )
        return events

    def _sasl_succeeded(self, data: bytes | None) -> list[Event]:
        self._outbox += _sasl_element("success", data)
        user = self._candidate
        assert user is not None
        self._user = user
        self._mechanism = None
        self._candidate = None
        self._transition(_Input.SASL_SUCCEEDED)
        self._restart()  # §6.4.6: the client restarts the stream, we discard the parser
        events: list[Event] = [Authenticated(user)]
        if self._inbox.strip(_XML_SPACE):
            events += self._fail(_data_before_restart("<success/>"))
        self._inbox.clear()
        return events

    # -- resource binding (RFC 6120 §7) and the legacy session ----------------------------

    def _for_server(self, iq: etree._Element) -> bool:
        to = iq.get("to")
        if to is None:
            return True
        try:
            return JID.parse(to) == JID(None, self._host or "")
        except InvalidJID:
            return False

    def _on_bind(self, iq: etree._Element, bind: etree._Element) -> list[Event]:
        if iq.get("type") != "set" or iq.get("id") is None:
            return self._reply(
                iq, StanzaError(StanzaCondition.BAD_REQUEST, "bind needs an iq set with an id")
            )
        if self._state is State.BOUND:
            # RFC 6120 §7.1: one resource per stream.
            return self._reply(iq, StanzaError(StanzaCondition.NOT_ALLOWED, "a resource is already bound"))
        user = self._user
        assert user is not None
        resource: str | None = None
        for child in bind:
            if child.tag == f"{{{NS_BIND}}}resource" and child.text:
                try:
                    resource = user.with_resource(child.text).resource
                except InvalidJID:
                    # §7.7.2.1: a resourcepart that cannot be processed.
                    return self._reply(iq, StanzaError(StanzaCondition.BAD_REQUEST, "invalid resource"))
        self._bind_iq = iq
        self._transition(_Input.BIND_REQUESTED)
        return [BindRequest(iq.get("id", ""), resource)]

    def _on_session(self, iq: etree._Element) -> list[Event]:
        # RFC 3921 §3 session establishment is a no-op today (draft-cridland-xmpp-session).
        if iq.get("type") != "set" or iq.get("id") is None:
            return self._reply(iq, StanzaError(StanzaCondition.BAD_REQUEST))
        result = etree.Element(f"{{{NS_CLIENT}}}iq", nsmap={None: NS_CLIENT}, type="result")
        if self._jid is not None:
            result.set("to", str(self._jid))
        result.set("id", iq.get("id", ""))
        self._outbox += serialize(result)
        return []

    # -- stanzas from a bound client (RFC 6120 §8) ----------------------------------------

    def _on_stanza(self, element: etree._Element, kind: str) -> list[Event]:
        kind_type = element.get("type")
        if kind == "iq":
            # §8.2.3: id and a known type are REQUIRED; get/set carry exactly one
            # payload, a result at most one.
            if kind_type not in _IQ_TYPES or element.get("id") is None:
                return self._reply(
                    element, StanzaError(StanzaCondition.BAD_REQUEST, "iq needs an id and a type")
                )
            if (kind_type in ("get", "set") and len(element) != 1) or (
                kind_type == "result" and len(element) > 1
            ):
                return self._reply(
                    element, StanzaError(StanzaCondition.BAD_REQUEST, "wrong number of payloads")
                )
        elif kind == "presence" and kind_type is not None and kind_type not in _PRESENCE_TYPES:
            return self._reply(element, StanzaError(StanzaCondition.BAD_REQUEST, "unknown presence type"))
        to_text = element.get("to")
        to: JID | None = None
        if to_text is not None:
            try:
                to = JID.parse(to_text)
            except InvalidJID:
                # §8.3.3.8; the reply comes from the server, not from the malformed address.
                del element.attrib["to"]
                return self._reply(element, StanzaError(StanzaCondition.JID_MALFORMED))
            element.set("to", str(to))
        if kind == "iq" and kind_type in ("get", "set") and (to is None or to == JID(None, self._host or "")):
            payload = element[0]
            if payload.tag == f"{{{NS_BIND}}}bind":
                return self._on_bind(element, payload)
            if payload.tag == f"{{{NS_SESSION}}}session":
                return self._on_session(element)
        # §8.1.2.1: the server stamps the full JID, whatever the client wrote.
        element.set("from", str(self._jid))
        if element.get(XML_LANG) is None:
            element.set(XML_LANG, self._client_lang or self._lang)  # §4.7.4
        return [StanzaIn(element, to)]

    def _reply(self, element: etree._Element, error: StanzaError) -> list[Event]:
        if element.get("type") != "error":  # §8.3.1: never answer an error
            # The reply travels on this stream, to this client, whatever 'from' it wrote.
            if self._jid is not None:
                element.set("from", str(self._jid))
            elif "from" in element.attrib:
                del element.attrib["from"]
            self._outbox += serialize(error_reply(element, error, self._lang))
        return []

    # -- ending ------------------------------------------------------------------------------

    def _on_peer_close(self, peer_error: str | None) -> list[Event]:
        if self._state is not State.CLOSING:
            self._outbox += STREAM_FOOTER  # §4.4: answer with our closing tag
        self._transition(_Input.FINISHED)
        return [Closed(peer_error)]

    def _fail(self, error: StreamError) -> list[Event]:
        if self._state is State.CLOSED:
            return []
        log.debug("c2s stream error: %s", error)
        self._queue_stream_error(error)
        self._transition(_Input.FINISHED)
        return [StreamFailed(error)]

    def _queue_stream_error(self, error: StreamError) -> None:
        if self._state is State.CLOSING:
            return  # our closing tag is out: nothing may follow it
        if not self._header_sent:
            self._send_header()  # §4.9.1.2
        self._outbox += stream_error(error, self._lang) + STREAM_FOOTER


_ELEMENT_HANDLERS: Final[Mapping[State, Callable[[C2SStream, etree._Element], list[Event]]]] = {
    State.NEGOTIATING: C2SStream._on_negotiating,
    State.AUTHENTICATING: C2SStream._on_authenticating,
    State.UNBOUND: C2SStream._on_unbound,
    State.BOUND: C2SStream._on_bound,
    State.CLOSING: C2SStream._on_closing,
}


def _version_supported(version: str | None) -> bool:
    if version is None:
        return False
    major, dot, minor = version.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit() and int(major) == 1


def _data_before_restart(trigger: str) -> StreamError:
    return StreamError(StreamCondition.POLICY_VIOLATION, f"data after {trigger} before the stream restart")


def _stream_error_condition(element: etree._Element) -> str:
    for child in element:
        qname = etree.QName(child)
        if qname.namespace == NS_STREAM_ERRORS and qname.localname != "text":
            return qname.localname
    return StreamCondition.UNDEFINED_CONDITION.value


def _sasl_decode(text: str | None, *, initial: bool) -> bytes | None:
    """Base64 SASL data (RFC 6120 §6.4.2): '=' is empty; no text is "none" for <auth/>."""
    data = (text or "").strip()
    if not data:
        return None if initial else b""
    if data == "=":
        return b""
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("invalid base64") from None


def _sasl_element(name: str, data: bytes | None) -> bytes:
    element = etree.Element(f"{{{NS_SASL}}}{name}", nsmap={None: NS_SASL})
    if data is not None:
        # §6.4.2/§6.4.6: zero-length data is sent as '='.
        element.text = base64.b64encode(data).decode("ascii") if data else "="
    return serialize(element)
