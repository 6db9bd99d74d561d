"""Events the c2s stream core returns (outputs). Frozen; don't subclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from xmlchat.errors import StreamError
from xmlchat.jid import JID


class LocalProtocolError(RuntimeError):
    """The caller misused the API (h11's name): e.g. ``bound()`` with no bind pending."""


# ---------------------------------------------------------------------------
# Events (outputs). Frozen; don't subclass.


@dataclass(frozen=True, slots=True)
class StartTls:
    """``<proceed/>`` is queued: flush it, upgrade the socket, call ``tls_started()``."""


@dataclass(frozen=True, slots=True)
class NeedCredentials:
    """SCRAM: fetch the stored keys, then call ``provide_credentials(creds_or_None)``.

    ``username`` is the JID localpart (already normalised); ``mechanism`` is the
    credential type, ``"SCRAM-SHA-1"`` or ``"SCRAM-SHA-256"`` (also for -PLUS);
    ``host`` is the virtual host the client opened the stream to.
    """

    username: str
    mechanism: str
    host: str


@dataclass(frozen=True, slots=True)
class NeedPasswordCheck:
    """PLAIN: check ``password`` for ``username`` at ``host``, call ``password_checked(ok)``.

    The password is as the client sent it (not SASLprepped); it is kept out of repr().
    """

    username: str
    password: str = field(repr=False)
    host: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """SASL succeeded for bare ``jid``; ``<success/>`` is queued, the stream restarts."""

    jid: JID


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """``<failure/>`` is queued (RFC 6120 §6.4.5); the client may try again.

    Informational, for logs and metrics: ``jid`` is the account tried, when known.
    """

    jid: JID | None
    condition: str


@dataclass(frozen=True, slots=True)
class BindRequest:
    """The client asks for a resource (RFC 6120 §7); None means "you choose".

    Call ``bound(full_jid)`` or ``bind_failed(StanzaError)``. On a resource
    conflict the server replaces the older session (§7.7.2.2).
    """

    iq_id: str
    resource: str | None


@dataclass(frozen=True, slots=True)
class StanzaIn:
    """A stanza from the bound client, ready to route.

    ``element`` is detached and yours: ``from`` is stamped with the full JID
    (§8.1.2.1), ``to`` is normalised (``to`` holds it parsed, None when absent),
    ``xml:lang`` is set from the stream default when the stanza had none
    (§4.7.4). Malformed stanzas never get here: the core answers them.
    """

    element: etree._Element
    to: JID | None


@dataclass(frozen=True, slots=True)
class NonzaIn:
    """A top-level element in one of the ``nonza_namespaces`` (e.g. CSI, XEP-0352), once bound."""

    element: etree._Element


@dataclass(frozen=True, slots=True)
class ClientStateChanged:
    """XEP-0352 §3: the bound client sent ``<active/>`` (True) or ``<inactive/>``
    (False) in ``urn:xmpp:csi:0``. Nonzas, not stanzas: nothing is answered."""

    active: bool


@dataclass(frozen=True, slots=True)
class StreamManagementEnabled:
    """XEP-0198 §3: the bound client enabled stream management; ``<enabled/>`` is
    queued. From here on, the stanzas each side handled are counted (§4).
    ``resume_id``: the id a later stream may resume this session with (§5)."""

    resume_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    """XEP-0198 §5: instead of binding, the client asks to resume session
    ``previd``, having handled ``h`` of the stanzas sent to it. A request:
    answer with ``C2SStream.resumed`` (the session, or None for ``<failed/>``)."""

    previd: str
    h: int


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """XEP-0198 §4: the client's ``<a/>`` moved its count of the stanzas it
    handled to ``h`` (mod 2^32); see ``C2SStream.sm``."""

    h: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the stream; our ``</stream:stream>`` is queued (§4.4).

    ``peer_error`` is the condition when the peer closed with a stream error.
    """

    peer_error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """We closed the stream with ``error``; the error and closing tag are queued."""

    error: StreamError


Event = (
    StartTls
    | NeedCredentials
    | NeedPasswordCheck
    | Authenticated
    | AuthFailed
    | BindRequest
    | StanzaIn
    | NonzaIn
    | ClientStateChanged
    | StreamManagementEnabled
    | ResumeRequested
    | Acknowledged
    | Closed
    | StreamFailed
)
