"""Small helpers for XMPP stanzas as lxml elements (``jabber:client``)."""

from __future__ import annotations

import secrets
from typing import Final

from lxml import etree

CLIENT_NS: Final = "jabber:client"
DELAY_NS: Final = "urn:xmpp:delay"
SID_NS: Final = "urn:xmpp:sid:0"

BODY: Final = f"{{{CLIENT_NS}}}body"


def new_id() -> str:
    return secrets.token_hex(8)


def make(tag: str, attrib: dict[str, str] | None = None, text: str | None = None) -> etree._Element:
    """A jabber:client element: ``make("message", {"to": "bob@localhost"})``."""
    el = etree.Element(f"{{{CLIENT_NS}}}{tag}", attrib or {}, nsmap={None: CLIENT_NS})
    if text is not None:
        el.text = text
    return el


def kind(stanza: etree._Element) -> str:
    """``message``, ``presence`` or ``iq`` (the local name)."""
    tag = stanza.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def child(stanza: etree._Element, *tags: str) -> etree._Element | None:
    """The first child with one of ``tags`` (Clark notation), or None.

    Four times as fast as ``find()``, which compiles its path argument on
    every call, and twice as fast as ``iterchildren(*tags)``, which builds a
    tag matcher: this runs several times for every message routed. (A
    comment's or processing instruction's tag is a function: never in tags.)"""
    for el in stanza:
        if el.tag in tags:
            return el
    return None


def body_text(stanza: etree._Element) -> str | None:
    body = child(stanza, BODY)
    return None if body is None else (body.text or "")


def to_bytes(stanza: etree._Element) -> bytes:
    return etree.tostring(stanza, encoding="utf-8", with_tail=False)


# For stanzas the server itself stored: still no DTDs or entities.
_TRUSTED_PARSER: Final = etree.XMLParser(
    resolve_entities=False, load_dtd=False, no_network=True, collect_ids=False
)


def from_bytes(data: bytes) -> etree._Element:
    return etree.fromstring(data, _TRUSTED_PARSER)
