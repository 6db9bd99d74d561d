"""Serialisation for XMPP streams: headers, features, errors, stanzas. Sans-IO.

Everything here returns ``bytes`` ready to write to a stream whose header came
from :func:`stream_header` (default namespace ``jabber:client``, the stream
namespace bound to the ``stream`` prefix), or builds an element for
:func:`serialize`. Elements are always written with ``with_tail=False``: a tail
belongs to the tree an element was cut from, never to the wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from lxml import etree

from xmlchat.errors import StanzaError, StreamError

NS_STREAMS: Final = "http://etherx.jabber.org/streams"
NS_CLIENT: Final = "jabber:client"
NS_XML: Final = "http://www.w3.org/XML/1998/namespace"
NS_STREAM_ERRORS: Final = "urn:ietf:params:xml:ns:xmpp-streams"  # RFC 6120 §4.9.2
NS_STANZA_ERRORS: Final = "urn:ietf:params:xml:ns:xmpp-stanzas"  # RFC 6120 §8.3.2
NS_TLS: Final = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5
NS_SASL: Final = "urn:ietf:params:xml:ns:xmpp-sasl"  # RFC 6120 §6
NS_BIND: Final = "urn:ietf:params:xml:ns:xmpp-bind"  # RFC 6120 §7
NS_SESSION: Final = "urn:ietf:params:xml:ns:xmpp-session"  # RFC 3921 §3, draft-cridland-xmpp-session
NS_XMPP_ERRORS: Final = "urn:xmpp:errors"  # application conditions, e.g. stanza-too-big
NS_SASL_CB: Final = "urn:xmpp:sasl-cb:0"  # XEP-0440 channel-binding types

XML_LANG: Final = f"{{{NS_XML}}}lang"

STREAM_FOOTER: Final = b"</stream:stream>"

_CLIENT_DECL: Final = b' xmlns="jabber:client"'


def _attr(value: str) -> str:
    """Escape ``value`` for an attribute written between single quotes."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )


def stream_header(*, from_: str, stream_id: str, lang: str, version: str = "1.0") -> bytes:
    """Our response stream header (RFC 6120 §4.7), byte for byte as Prosody writes it.

    The XML declaration is repeated on every header, also after a restart: a
    restart begins a new XML document (§4.3.3), and aioxmpp does the same.
    """
    return (
        "<?xml version='1.0'?>"
        f"<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}'"
        f" from='{_attr(from_)}' version='{_attr(version)}' xml:lang='{_attr(lang)}'"
        f" id='{_attr(stream_id)}'>"
    ).encode()


# The start tags of stream-level elements: inside a stream the header binds
# the prefix; standing alone (RFC 7395 §3.3.3: one element per WebSocket
# message) each element declares it.
_STREAM_DECL: Final = f" xmlns:stream='{NS_STREAMS}'".encode()


def stream_features(features: Iterable[etree._Element], standalone: bool = False) -> bytes:
    """``<stream:features>`` holding ``features`` (RFC 6120 §4.3.2); ``standalone``
    declares the stream prefix on the element itself."""
    body = b"".join(etree.tostring(f, encoding="utf-8", with_tail=False) for f in features)
    start = b"<stream:features" + (_STREAM_DECL if standalone else b"") + b">"
    return start + body + b"</stream:features>"


def stream_error(error: StreamError, lang: str = "en", standalone: bool = False) -> bytes:
    """``<stream:error>`` for ``error`` (RFC 6120 §4.9.2), without the closing stream tag;
    ``standalone`` declares the stream prefix on the element itself.

    ``error.app_condition`` is an element name in ``urn:xmpp:errors`` (as Prosody's
    ``stanza-too-big``) or a Clark name ``{ns}local`` for another namespace (§4.9.4).
    """
    streams = {None: NS_STREAM_ERRORS}
    parts = [etree.Element(f"{{{NS_STREAM_ERRORS}}}{error.condition.value}", nsmap=streams)]
    if error.text:
        text = etree.Element(f"{{{NS_STREAM_ERRORS}}}text", {XML_LANG: lang}, nsmap=streams)
        text.text = error.text
        parts.append(text)
    if error.app_condition:
        app = error.app_condition
        qname = etree.QName(app if app.startswith("{") else f"{{{NS_XMPP_ERRORS}}}{app}")
        nsmap = {None: qname.namespace or NS_XMPP_ERRORS}
        parts.append(etree.Element(qname.text, error.app_attributes, nsmap=nsmap))
    body = b"".join(etree.tostring(p, encoding="utf-8") for p in parts)
    start = b"<stream:error" + (_STREAM_DECL if standalone else b"") + b">"
    return start + body + b"</stream:error>"


def stanza_error_element(error: StanzaError, lang: str = "en") -> etree._Element:
    """The ``<error/>`` child of an error stanza (RFC 6120 §8.3.2)."""
    el = etree.Element(f"{{{NS_CLIENT}}}error", {"type": error.type.value}, nsmap={None: NS_CLIENT})
    etree.SubElement(el, f"{{{NS_STANZA_ERRORS}}}{error.condition.value}", nsmap={None: NS_STANZA_ERRORS})
    if error.text:
        text = etree.SubElement(
            el, f"{{{NS_STANZA_ERRORS}}}text", {XML_LANG: lang}, nsmap={None: NS_STANZA_ERRORS}
        )
        text.text = error.text
    if error.application is not None:
        namespace, name = error.application
        etree.SubElement(el, f"{{{namespace}}}{name}", nsmap={None: namespace})
    return el


def error_reply(stanza: etree._Element, error: StanzaError, lang: str = "en") -> etree._Element:
    """An error stanza answering ``stanza`` (RFC 6120 §8.3.1).

    Same kind and id, ``type='error'``, 'from' and 'to' swapped; the original
    payload is not echoed (§8.3.1 makes that optional, and it could leak it).
    The caller must never answer a stanza of type 'error' (§8.3.1 rule 4).
    """
    local = etree.QName(stanza).localname
    reply = etree.Element(f"{{{NS_CLIENT}}}{local}", nsmap={None: NS_CLIENT})
    for name, swapped in (("from", "to"), ("to", "from")):
        value = stanza.get(name)
        if value is not None:
            reply.set(swapped, value)
    stanza_id = stanza.get("id")
    if stanza_id is not None:
        reply.set("id", stanza_id)
    reply.set("type", "error")
    reply.append(stanza_error_element(error, lang))
    return reply


class _Known:
    """One element whose ``etree.tostring`` output its caller already has."""

    __slots__ = ("data", "element")

    def __init__(self) -> None:
        self.element: etree._Element | None = None
        self.data = b""


_KNOWN: Final = _Known()


def known(element: etree._Element | None, data: bytes = b"") -> None:
    """Until the next call (``known(None)`` to end it), :func:`serialize` takes
    ``data`` for ``etree.tostring(element, encoding="utf-8", with_tail=False)``.

    A durable message is serialised for the store before it is delivered
    (docs/delivery.md); its delivery then writes the same element, unchanged,
    so serialising it again would only repeat the work (about 1 µs a message,
    3 % of the event loop's time in the message benchmark). The caller
    promises the element does not change meanwhile and ends it after."""
    _KNOWN.element, _KNOWN.data = element, data


def serialize(stanza: etree._Element, standalone: bool = False) -> bytes:
    """A top-level element for a stream whose default namespace is ``jabber:client``.

    A stanza in ``jabber:client`` is written without the redundant default
    namespace declaration (``<message to=…>``, as servers do); its descendants
    in that namespace then inherit the stream's default. Elements in any other
    namespace (SASL, TLS, stream management…) keep their own declaration.
    ``standalone`` keeps the declaration (``<message xmlns='jabber:client'>``):
    for an element that is a whole WebSocket message (RFC 7395 §3.3.3).
    """
    tag = etree.QName(stanza)
    if tag.namespace == NS_CLIENT and (stanza.prefix is not None or stanza.nsmap.get(None) != NS_CLIENT):
        stanza = _rebuild_default_client(stanza)
    if stanza is _KNOWN.element:
        data = _KNOWN.data
    else:
        # UTF-8, not lxml's default ASCII with character references (&#20320; is 8 bytes for 3).
        data = etree.tostring(stanza, encoding="utf-8", with_tail=False)
    if tag.namespace == NS_CLIENT and not standalone:
        head = b"<" + tag.localname.encode()
        if data.startswith(head + _CLIENT_DECL):
            data = head + data[len(head) + len(_CLIENT_DECL) :]
    return data


def _rebuild_default_client(stanza: etree._Element) -> etree._Element:
    """Copy ``stanza`` into a tree whose root declares ``jabber:client`` as the default."""
    root = etree.Element(stanza.tag, dict(stanza.attrib), nsmap={None: NS_CLIENT})
    _copy_children(stanza, root)
    return root


def _copy_children(source: etree._Element, target: etree._Element) -> None:
    # SubElement reuses the declarations in scope, so jabber:client children
    # stay unprefixed; comments and PIs (never on the wire) are dropped.
    target.text = source.text
    for child in source:
        if isinstance(child.tag, str):
            copy = etree.SubElement(target, child.tag, dict(child.attrib))
            _copy_children(child, copy)
            copy.tail = child.tail
