"""The c2s stream core: :class:`C2SStream`, its public face and input loop.

Its pieces share one :class:`~.link.Link` (state, queues, parser, headers, ending):
:mod:`.negotiation` with :mod:`.auth` (SASL), :mod:`.binding` (bind, session) and
:mod:`.sm`; :mod:`.established` (the bound stream's stanza checks). :mod:`.state`
holds every transition; :mod:`.wire`, small wire helpers.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from lxml import etree

from xmlchat.errors import StanzaError, StanzaTooBig, StreamError
from xmlchat.jid import JID
from xmlchat.protocol import sasl
from xmlchat.protocol.sasl import SaslCondition, ScramCredentialsLike
from xmlchat.protocol.xmpp.auth import SaslExchange
from xmlchat.protocol.xmpp.binding import Binding
from xmlchat.protocol.xmpp.established import Established
from xmlchat.protocol.xmpp.events import Event, LocalProtocolError
from xmlchat.protocol.xmpp.framing import TCP, Framing, out_of_order
from xmlchat.protocol.xmpp.link import C2SLimits, Link, Settings, shared
from xmlchat.protocol.xmpp.negotiation import Negotiation
from xmlchat.protocol.xmpp.sm import Resumable, StreamManagement
from xmlchat.protocol.xmpp.state import State, _Input
from xmlchat.protocol.xmpp.wire import XML_SPACE, data_before_restart, stream_error_condition
from xmlchat.xml.stream import StanzaReceived, StreamClosed, StreamEvent, StreamOpened
from xmlchat.xml.writer import NS_STREAMS, error_reply

if TYPE_CHECKING:
    from xmlchat.config import Config
__all__ = ["C2SLimits", "C2SStream"]

_DEFAULT_LIMITS: Final = C2SLimits()
_STREAM_ERROR: Final = f"{{{NS_STREAMS}}}error"


class C2SStream:
    """One client-to-server XMPP connection, sans-IO (RFC 6120).

    **Driving it.** Feed every byte read from the socket to
    :meth:`receive_data`; it returns a list of events to handle in order.
    After handling them (and after every other method call), write
    :meth:`data_to_send` to the socket (or :meth:`frames_to_send`). A reference loop::

        core = C2SStream(hosts, tls_available=True)
        while data := await reader.read(65536):
            work = core.receive_data(data)
            while work:
                event = work.pop(0)
                match event:
                    case NeedCredentials(user, mech, host):
                        work[:0] = core.provide_credentials(await store.scram(user, mech))
                    case BindRequest(_, resource):
                        work[:0] = core.bound(session_manager.bind(core.user, resource))
                    case StanzaIn(element, to): router.route(core.jid, element)
            writer.write(core.data_to_send()); await writer.drain()

    **Requests and answers.** :class:`NeedCredentials`, :class:`NeedPasswordCheck`,
    :class:`BindRequest` (and :class:`ResumeRequested`, answered by :meth:`resumed`) are
    requests: the core waits, holding further input unparsed, until you answer with one of
    the matching methods (``provide_credentials``/``auth_failed``, ``password_checked``/``auth_failed``,
    ``bound``/``bind_failed``). :class:`StartTls` is answered by
    :meth:`tls_started`. Each answering method returns the events that the held
    input then produces — handle them exactly like those of ``receive_data``.
    Answering when no such request is outstanding raises
    :class:`LocalProtocolError`; answering after :meth:`close`,
    :meth:`send_stream_error` or the end of the stream is a no-op returning
    ``[]`` (the request died with the stream). Other events need no answer.

    **TLS.** Pass ``tls_available`` when a certificate is configured; ``tls_active``
    for a direct-TLS port (XEP-0368), with its ``channel_binding``. After
    :class:`StartTls`: write the queued ``<proceed/>``, feed no more bytes, run the
    handshake, then call ``tls_started(channel_binding)`` (RFC 5929/9266 type names
    such as ``"tls-server-end-point"`` to their data, or None). If it fails, close.

    **Receiving stanzas.** A :class:`StanzaIn` element is complete, detached, checked.
    **Sending.** :meth:`send_stanza` queues a stanza for the bound client (in
    ``jabber:client`` or no namespace; not modified, its tail ignored);
    :meth:`stanza_error_reply` answers a stanza with an error; :meth:`close`
    ends the stream politely (state CLOSING: keep reading until :class:`Closed`,
    or close the connection after a grace period of a few seconds);
    :meth:`send_stream_error` ends it with an error (state CLOSED).
    After the stream ended they silently drop the stanza (no race with a disconnect).
    **Ending.** After :class:`Closed` or :class:`StreamFailed`, or in state CLOSED, write what
    is queued and close; input is then ignored. On EOF, just drop the core. Idle: :meth:`rest`.
    **Stream management** (XEP-0198, :mod:`.sm`): the core answers ``<r/>``; :class:`Acknowledged`
    says the client's count moved (:attr:`sm`); ``sm.request()`` asks for one (every 20 stanzas).
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
        limits: C2SLimits = _DEFAULT_LIMITS,
        max_auth_failures: int = 3,
        mechanisms: Sequence[str] = sasl.ALL_MECHANISMS,
        lang: str = "en",
        id_factory: Callable[[], str] = lambda: str(uuid.uuid4()),
        scram_nonce_factory: Callable[[], str] | None = None,
        scram_secret: bytes | None = None,
        scram_fake_iterations: int = sasl.DEFAULT_FAKE_ITERATIONS,
        features: Sequence[etree._Element] = (),
        nonza_namespaces: Collection[str] = (),
        stream_management: bool = True,
        resume_timeout: int = 0,
        framing: Framing = TCP,
    ) -> None:
        """
        ``hosts``: the virtual hosts served; the first answers headers with a bad 'to'.
        ``require_encryption``: no SASL before TLS, ``<required/>`` in ``<starttls/>``.
        ``allow_unencrypted_plain_auth``: offer PLAIN without TLS (never by default).
        ``max_auth_failures``: SASL failures before the stream is closed.
        ``mechanisms``: enabled SASL mechanisms, in order of preference.
        ``id_factory``: stream ids (one per header, RFC 6120 §4.7.3).
        ``scram_nonce_factory``: server nonces (tests); default scramp's random ones.
        ``scram_secret``: a server-wide secret so fake salts for unknown users stay stable
        across connections (default: random per connection); ``scram_fake_iterations``:
        the iteration count shown for them (the one real accounts use).
        ``features``: extra post-authentication stream features (e.g. roster
        versioning, RFC 6121 §2.6), after bind and session.
        ``nonza_namespaces``: top-level element namespaces delivered as
        :class:`NonzaIn` once bound (for features like XEP-0352 CSI).
        ``stream_management``: offer XEP-0198 (see :attr:`sm`); ``resume_timeout``: seconds a
        lost session is resumable (0: not offered). ``framing``: :data:`~.framing.TCP`, or
        :data:`~.framing.MESSAGES` for RFC 7395 WebSocket or BOSH (:meth:`frames_to_send`).
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
        settings = shared(Settings(
            hosts=tuple(JID.parse(h).domain for h in hosts),
            tls_available=tls_available,
            require_encryption=require_encryption,
            allow_plain=allow_unencrypted_plain_auth,
            limits=limits,
            max_auth_failures=max_auth_failures,
            mechanisms=tuple(mechanisms),
            lang=lang,
            id_factory=id_factory,
            nonce_factory=scram_nonce_factory,
            scram_secret=scram_secret or secrets.token_bytes(32),
            fake_iterations=scram_fake_iterations,
            extra_features=tuple(features),
            nonza_namespaces=frozenset(nonza_namespaces),
            framing=framing,
        ))
        self._link = link = Link(settings, encrypted=tls_active, channel_binding=channel_binding)
        self._auth = SaslExchange(link)
        self._binding = Binding(link)
        self._sm = StreamManagement(link, resume_timeout) if stream_management else None
        self._negotiation = Negotiation(link, self._auth, self._binding, self._sm)
        self._established = Established(link, self._binding, self._sm)

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
        framing: Framing = TCP,
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
            resume_timeout=round(config.delivery.resume_timeout),
            framing=framing,
        )

    # -- properties -----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._link.state

    @property
    def closed(self) -> bool:
        """The stream is over: write what is queued and close the connection."""
        return self._link.state is State.CLOSED

    @property
    def host(self) -> str | None:
        """The virtual host the client addressed (RFC 6120 §4.7.2 'to')."""
        return self._link.host

    @property
    def user(self) -> JID | None:
        """The authenticated account (bare JID), after SASL success."""
        return self._link.user

    @property
    def jid(self) -> JID | None:
        """The full JID, once a resource is bound."""
        return self._link.jid

    @property
    def encrypted(self) -> bool:
        return self._link.encrypted

    @property
    def stream_id(self) -> str | None:
        return self._link.stream_id

    @property
    def sm(self) -> StreamManagement | None:
        """XEP-0198 state once the client enabled it (``sent``, ``acked``), else None."""
        return self._sm if self._sm is not None and self._sm.enabled else None

    # -- input ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Bytes read from the peer; returns the events they complete."""
        link = self._link
        if link.state is State.CLOSED:
            return []
        if link.state is State.TLS_PENDING:
            # RFC 6120 §5.4.3.3: nothing may come between <starttls/> and the handshake.
            if data.strip(XML_SPACE):
                return link.fail(data_before_restart("<starttls/>"))
            return []
        link.inbox += data
        if link.paused:
            if len(link.inbox) > link.parser.limits.max_stanza_bytes:
                return link.fail(StanzaTooBig("too much data while waiting for the server"))
            return []
        return self._run()

    def tls_started(self, channel_binding: Mapping[str, bytes] | None = None) -> list[Event]:
        """The TLS handshake after :class:`StartTls` succeeded; a new stream begins."""
        if self._link.state is State.CLOSED:
            return []
        if self._link.state is not State.TLS_PENDING:
            raise LocalProtocolError(f"tls_started() in state {self._link.state.name}")
        self._negotiation.tls_started(channel_binding)
        return self._run()

    def provide_credentials(self, credentials: ScramCredentialsLike | None) -> list[Event]:
        """Answer :class:`NeedCredentials`: the stored SCRAM keys, or None for no such user
        (or keys of another mechanism): it still gets a challenge, then fails (RFC 5802 §5.1)."""
        if self._link.ending():
            return []
        return self._auth.provide_credentials(credentials) + self._run()

    def password_checked(self, ok: bool) -> list[Event]:
        """Answer :class:`NeedPasswordCheck`."""
        if self._link.ending():
            return []
        return self._auth.password_checked(ok) + self._run()

    def auth_failed(self, condition: SaslCondition, text: str = "") -> list[Event]:
        """Answer either SASL request with a failure of your choosing.

        For example ``account-disabled``, or ``temporary-auth-failure`` when the
        store is unavailable (RFC 6120 §6.5).
        """
        if self._link.ending():
            return []
        return self._auth.auth_failed(condition, text) + self._run()

    def bound(self, full_jid: JID) -> list[Event]:
        """Answer :class:`BindRequest`: ``full_jid`` is the user's bare JID plus the resource."""
        if self._link.ending():
            return []
        self._binding.bound(full_jid)
        return self._run()

    def resumed(self, session: Resumable | None, previd: str) -> list[Event]:
        """Answer :class:`ResumeRequested`: the detached session, or None."""
        if self._link.ending():
            return []
        assert self._sm is not None  # only it asks
        self._sm.resumed(session, previd)
        return self._run()

    def bind_failed(self, error: StanzaError) -> list[Event]:
        """Answer :class:`BindRequest` with an error (e.g. ``conflict``, ``not-allowed``)."""
        if self._link.ending():
            return []
        self._binding.bind_failed(error)
        return self._run()

    # -- output -----------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        return b"".join(self.frames_to_send())

    def frames_to_send(self) -> list[bytes]:
        """The same, one entry per top-level unit: with the message framing,
        each is one WebSocket message (RFC 7395 §3.3.3)."""
        out, self._link.outbox = self._link.outbox, []
        return out

    def rest(self, final: bool = False) -> bool:
        """Free the parser while nothing is half-received (:meth:`StanzaStream.rest`)."""
        return (final or not self._link.inbox) and self._link.parser.rest(final)

    def send_stanza(self, element: etree._Element) -> None:
        """Queue a stanza (in ``jabber:client``, or no namespace) for the bound client."""
        link = self._link
        if link.ending():
            return
        if link.state is not State.BOUND:
            raise LocalProtocolError(f"send_stanza() in state {link.state.name}")
        link.queue_stanza(element)
        if self._sm is not None:
            self._sm.stanza_sent()  # every REQUEST_EVERY stanzas, an <r/>

    def stanza_error_reply(self, element: etree._Element, error: StanzaError) -> None:
        """Queue an error reply to ``element`` (RFC 6120 §8.3.1); never to an error."""
        link = self._link
        if link.ending() or element.get("type") == "error":
            return
        if link.state not in (State.UNBOUND, State.BINDING, State.BOUND):
            raise LocalProtocolError(f"stanza_error_reply() in state {link.state.name}")
        link.queue_stanza(error_reply(element, error, link.settings.lang))

    def send_stream_error(self, error: StreamError) -> None:
        """End the stream with ``error`` (e.g. ``conflict`` when a newer session
        takes the resource, ``system-shutdown``); state becomes CLOSED."""
        if self._link.state is State.CLOSED:
            return
        self._link.queue_stream_error(error)
        self._link.transition(_Input.FINISHED)

    def close(self) -> None:
        """Close our half of the stream (RFC 6120 §4.4); wait for the peer's."""
        link = self._link
        if link.ending():
            return
        if link.state is State.TLS_PENDING:
            link.transition(_Input.FINISHED)  # mid-handshake: nothing sensible to send
            return
        link.close()

    # -- what the parser finds ----------------------------------------------------------

    def _run(self) -> list[Event]:
        return self._link.run(self._dispatch)

    def _dispatch(self, item: StreamEvent) -> list[Event]:
        link = self._link
        item = link.settings.framing.unwrap(item)
        misplaced = out_of_order(item, header_due=link.state in (State.CONNECTED, State.AUTHENTICATED))
        if misplaced is not None:
            return link.fail(misplaced)
        if isinstance(item, StreamOpened):
            return self._negotiation.on_header(item)
        if isinstance(item, StreamClosed):
            return link.peer_closed(None)
        assert isinstance(item, StanzaReceived)
        element = item.element
        if element.tag == _STREAM_ERROR:
            return link.peer_closed(stream_error_condition(element))
        # Which stage takes a top-level element, by state; CLOSING ignores them:
        # our side is closed, nothing could be answered (§4.4).
        state = link.state
        if state is State.BOUND:
            return self._established.on_element(element)
        if state in self._negotiation.states:
            return self._negotiation.on_element(element)
        if state is State.CLOSING:
            return []
        raise LocalProtocolError(f"element in state {state.name}")  # only a header starts a parser
