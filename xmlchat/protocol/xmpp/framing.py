"""How the c2s stream is cut up on the wire: one byte stream, or one element per message.

* :data:`TCP` — RFC 6120 §4: a stream header, top-level elements back to
  back, ``</stream:stream>``; the transport concatenates what the core queues.
* :data:`MESSAGES` — RFC 7395 §3.3 (XMPP over WebSocket): every unit is a
  whole element that stands alone, so it declares its namespaces
  (``<message xmlns='jabber:client'>``, ``<stream:features
  xmlns:stream=…>``); the stream header is ``<open/>`` and the closing tag
  ``<close/>``, both in ``urn:ietf:params:xml:ns:xmpp-framing``. The transport
  sends each unit the core queues as one message. BOSH (XEP-0206) carries the
  same units in ``<body>`` wrappers and turns ``<open/>``/``<close/>`` into
  session creation, restarts and ``type='terminate'``.

Input is parsed the same way for both: the message framing primes each new
parser with a stream header of its own, so the client's messages arrive as
top-level elements of one ordinary stream; :meth:`Framing.unwrap` then turns a
client's ``<open/>`` into the stream header event and ``<close/>`` into the
stream's end. Everything else — limits, restricted XML, restarts — is the TCP
stream's code, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.xml.stream import (
    StanzaReceived,
    StanzaStream,
    StreamClosed,
    StreamEvent,
    StreamLimits,
    StreamOpened,
)
from xmlchat.xml.writer import (
    NS_CLIENT,
    NS_STREAMS,
    STREAM_FOOTER,
    XML_LANG,
    serialize,
    stream_error,
    stream_features,
    stream_header,
)

NS_FRAMING: Final = "urn:ietf:params:xml:ns:xmpp-framing"  # RFC 7395 §3.3.1

OPEN: Final = f"{{{NS_FRAMING}}}open"
CLOSE: Final = f"{{{NS_FRAMING}}}close"
CLOSE_ELEMENT: Final = f"<close xmlns='{NS_FRAMING}'/>".encode()

# What a message framing parser is primed with: the stream the client's
# messages are the top-level elements of.
_PRIMING: Final = f"<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}'>".encode()


class Framing:
    """RFC 6120's byte stream (the TCP framing); :class:`MessageFraming` overrides it."""

    standalone = False

    def header(self, *, from_: str, stream_id: str, lang: str) -> bytes:
        return stream_header(from_=from_, stream_id=stream_id, lang=lang)

    @property
    def footer(self) -> bytes:
        return STREAM_FOOTER

    def stanza(self, element: etree._Element) -> bytes:
        return serialize(element, self.standalone)

    def features(self, features: Iterable[etree._Element]) -> bytes:
        return stream_features(features, self.standalone)

    def error(self, error: StreamError, lang: str) -> bytes:
        return stream_error(error, lang, self.standalone)

    def new_parser(self, limits: StreamLimits) -> StanzaStream:
        return StanzaStream(limits)

    def unwrap(self, item: StreamEvent) -> StreamEvent:
        """What a parsed item means for the stream (here: itself)."""
        return item


class MessageFraming(Framing):
    """RFC 7395: one whole element per message, ``<open/>`` and ``<close/>``."""

    standalone = True

    def header(self, *, from_: str, stream_id: str, lang: str) -> bytes:
        # §3.3.2: the server's <open/> carries what its stream header would.
        element = etree.Element(OPEN, nsmap={None: NS_FRAMING})
        element.set("from", from_)
        element.set("id", stream_id)
        element.set("version", "1.0")
        element.set(XML_LANG, lang)
        return etree.tostring(element, encoding="utf-8")

    @property
    def footer(self) -> bytes:
        return CLOSE_ELEMENT  # §3.6

    def new_parser(self, limits: StreamLimits) -> StanzaStream:
        parser = StanzaStream(limits)
        parser.feed(_PRIMING)  # its StreamOpened is ours, not the client's
        return parser

    def unwrap(self, item: StreamEvent) -> StreamEvent:
        if isinstance(item, StanzaReceived):  # an XMPP stream reads no stanza flat (StanzaRead)
            element = item.element
            if element.tag == OPEN:
                # The client's <open/> is its stream header (§3.3.1); it
                # declares no content namespace: the messages declare their own.
                attrib = {str(k): str(v) for k, v in element.attrib.items()}
                return StreamOpened(f"{{{NS_STREAMS}}}stream", attrib, {"stream": NS_STREAMS})
            if element.tag == CLOSE:
                return StreamClosed()
        return item


TCP: Final = Framing()
MESSAGES: Final = MessageFraming()


def out_of_order(item: StreamEvent, *, header_due: bool) -> StreamError | None:
    """The error for a header where none is due, or anything else where one is.

    Only the message framing can bring either: TCP starts a parser per header.
    """
    if isinstance(item, StreamOpened) != header_due and not isinstance(item, StreamClosed):
        why = "open the stream first" if header_due else "the stream is already open"
        return StreamError(StreamCondition.BAD_FORMAT, why)
    return None
