"""Small helpers for XMPP stanzas as lxml elements (``jabber:client``)."""

from __future__ import annotations

import itertools
import secrets
from typing import Final

from lxml import etree

CLIENT_NS: Final = "jabber:client"
DELAY_NS: Final = "urn:xmpp:delay"
SID_NS: Final = "urn:xmpp:sid:0"

BODY: Final = f"{{{CLIENT_NS}}}body"


def new_id() -> str:
    return secrets.token_hex(8)


# Ids the server gives a client's message that came without one (the native
# protocol's ack and recipient carry one: docs/native-protocol.md): a random
# prefix per process, then a counter. Unique like new_id's, no system call per
# message (secrets costs a getrandom each), and recognisable: no client chose
# it, so it is no key for recognising a client's re-send (modules/messages.py).
_ASSIGNED_PREFIX: Final = f"{secrets.token_hex(8)}-"
_assigned = itertools.count(1)


def assigned_id() -> str:
    return f"{_ASSIGNED_PREFIX}{next(_assigned):x}"


def is_assigned_id(id_: str) -> bool:
    """Whether ``id_`` came from :func:`assigned_id` in this process (a client
    copying one from an ack only gives up the re-send check for itself)."""
    return id_.startswith(_ASSIGNED_PREFIX)


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
