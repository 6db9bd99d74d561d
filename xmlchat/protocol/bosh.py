"""BOSH wrappers (XEP-0124, XEP-0206), sans-IO: reading a request ``<body>``, writing a response.

The XMPP stream inside a BOSH session is the c2s core with the message
framing (:mod:`xmlchat.protocol.xmpp.framing`): each element of a request's
body is fed to it as one unit, and the units it queues become the children of
a response's body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xmlchat.errors import StreamError
from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamLimits, StreamOpened

NS_HTTPBIND: Final = "http://jabber.org/protocol/httpbind"
NS_XBOSH: Final = "urn:xmpp:xbosh"  # XEP-0206 §8
BODY: Final = f"{{{NS_HTTPBIND}}}body"
XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
RESTART: Final = f"{{{NS_XBOSH}}}restart"
VERSION: Final = f"{{{NS_XBOSH}}}version"


class BadRequest(ValueError):
    """The request is not a BOSH body we can use (XEP-0124 §17: bad-request)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request's ``<body>``: its attributes and its child elements, each serialised alone."""

    attrib: dict[str, str]
    payload: list[bytes] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrib.get(name, default)

    def number(self, name: str) -> int | None:
        """An unsigned integer attribute (rid, wait, hold…), None if absent."""
        value = self.attrib.get(name)
        if value is None:
            return None
        if not value.isdigit() or len(value) > 19:
            raise BadRequest(f"'{name}' must be an unsigned integer")
        return int(value)

    @property
    def restart(self) -> bool:
        return self.attrib.get(RESTART) in ("true", "1")  # XEP-0206 §5

    @property
    def terminate(self) -> bool:
        return self.attrib.get("type") == "terminate"


def parse_request(data: bytes, limits: StreamLimits) -> Request:
    """The request body, with the stream parser's checks (UTF-8 only, no DTD,
    entities, comments or PIs, bounded size and depth) applied to it."""
    parser = StanzaStream(limits)
    try:
        events = parser.feed(data)
    except StreamError as e:
        raise BadRequest(str(e)) from None
    if not parser.closed or not events or not isinstance(events[0], StreamOpened):
        raise BadRequest("expected one complete <body/>")
    opened = events[0]
    if opened.tag != BODY:
        raise BadRequest(f"expected <body xmlns='{NS_HTTPBIND}'/>")
    payload = [
        etree.tostring(item.element, encoding="utf-8") for item in events if isinstance(item, StanzaReceived)
    ]
    return Request(opened.attrib, payload)


def response(attrib: dict[str, str], units: list[bytes]) -> bytes:
    """A response ``<body>`` around ``units`` (whole elements, each declaring its namespaces)."""
    rendered = "".join(f" {_name(k)}='{_escape(v)}'" for k, v in attrib.items())
    start = f"<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}'{rendered}"
    if not units:
        return (start + "/>").encode()
    return start.encode() + b">" + b"".join(units) + b"</body>"


def _name(key: str) -> str:
    if key.startswith(f"{{{NS_XBOSH}}}"):
        return "xmpp:" + key.partition("}")[2]
    if key == XML_LANG:
        return "xml:lang"
    return key


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;").replace('"', "&quot;")
