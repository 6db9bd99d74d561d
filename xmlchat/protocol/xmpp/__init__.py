"""The XMPP client-to-server stream as a sans-IO state machine (RFC 6120, XEP-0368).

No sockets, no asyncio, no storage: bytes in, events and bytes out. The
contract for the code that drives it is the docstring of :class:`C2SStream`.

Negotiation, in the order a client walks it (RFC 6120 §4.3, §5, §6, §7)::

    CONNECTED --header--> NEGOTIATING --<starttls/>--> TLS_PENDING --tls_started()--> CONNECTED
    NEGOTIATING --<auth/>--> AUTHENTICATING --<success/>--> AUTHENTICATED --header--> UNBOUND
    AUTHENTICATING --<failure/>--> NEGOTIATING
    UNBOUND --bind iq--> BINDING --bound()--> BOUND        BINDING --bind_failed()--> UNBOUND
    any open state --close()--> CLOSING --</stream:stream>--> CLOSED
    any state --peer </stream:stream>, stream error--> CLOSED

Every transition is in :data:`TRANSITIONS`; nothing else assigns the state.

How the stream ends — one representation, two events:

* :class:`Closed` — an orderly end: the peer sent ``</stream:stream>`` (or its
  own ``<stream:error/>``); the core has queued our closing tag (§4.4).
* :class:`StreamFailed` — we end it because the peer misbehaved, whatever
  layer noticed (the parser's not-well-formed, restricted-xml, stanza-too-big;
  the header checks; negotiation errors; too many failed logins). The core has
  queued ``<stream:error>`` and ``</stream:stream>``, preceded by our stream
  header if none was sent yet (§4.9.1.2). ``error`` is the
  :class:`~xmlchat.errors.StreamError` that was sent. One exception: a
  ``<starttls/>`` we did not offer gets the TLS ``<failure/>`` and the closing
  tag of §5.4.2.2 instead of a stream error.

After either, :attr:`C2SStream.state` is ``CLOSED`` and the transport should
write :meth:`C2SStream.data_to_send` and close the connection.

Decisions worth knowing:

* Input that arrives while the core waits for the server (credentials, a
  password check, a bind result) is held, unparsed, and processed when the
  server answers — so an answer always belongs to the current request, and a
  client that pipelines stanzas after its bind request is served in order.
  At most the current stanza size limit is held; beyond it, policy-violation.
* Bytes after a stream-restart trigger and before the restart — after
  ``<starttls/>`` (§5.4.3.3), or after the SASL element answered by
  ``<success/>`` (§6.4.6) — are a protocol error (policy-violation), never
  fed to the next stream: that is the STARTTLS command-injection hole.
  Whitespace there is ignored.
* Failed logins: after ``max_auth_failures`` SASL ``<failure/>``\\ s on one
  connection (aborts included), the last failure is followed by a
  policy-violation stream error. Prosody closes in this case too.
* A header without a valid 'to' gets improper-addressing, as Prosody does; an
  unknown host gets host-unknown; after a restart 'to' must name the same host.
* A top-level ``message``/``presence``/``iq`` outside ``jabber:client`` is
  invalid-namespace; any other unknown top-level element is
  unsupported-stanza-type (§4.9.3.10, §4.9.3.24). Prefix-free canonicalization
  (no default namespace on the header, each stanza qualified, §4.8.2) is accepted.
"""

from xmlchat.protocol.xmpp.events import (
    Acknowledged,
    Authenticated,
    AuthFailed,
    BindRequest,
    ClientStateChanged,
    Closed,
    Event,
    LocalProtocolError,
    NeedCredentials,
    NeedPasswordCheck,
    NonzaIn,
    ResumeRequested,
    StanzaIn,
    StartTls,
    StreamFailed,
    StreamManagementEnabled,
)
from xmlchat.protocol.xmpp.state import TRANSITIONS, State
from xmlchat.protocol.xmpp.stream import C2SLimits, C2SStream

__all__ = [
    "TRANSITIONS",
    "Acknowledged",
    "AuthFailed",
    "Authenticated",
    "BindRequest",
    "C2SLimits",
    "C2SStream",
    "ClientStateChanged",
    "Closed",
    "Event",
    "LocalProtocolError",
    "NeedCredentials",
    "NeedPasswordCheck",
    "NonzaIn",
    "ResumeRequested",
    "StanzaIn",
    "StartTls",
    "State",
    "StreamFailed",
    "StreamManagementEnabled",
]
