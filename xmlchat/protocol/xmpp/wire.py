"""Small c2s wire helpers: what the core puts on the wire, and reads off it, piece by piece.

Pure functions and constants; no stream state.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.jid import JID
from xmlchat.protocol.sasl import SaslCondition
from xmlchat.xml.writer import (
    NS_BIND,
    NS_CLIENT,
    NS_SASL,
    NS_STREAM_ERRORS,
    NS_TLS,
    XML_LANG,
    serialize,
)

STANZA_KINDS: Final = frozenset({"message", "presence", "iq"})
IQ_TYPES: Final = frozenset({"get", "set", "result", "error"})
# RFC 6121 §4.7.1; no type means available. Messages accept any type (RFC 6121
# §5.2.2: an unknown type is treated as 'normal').
PRESENCE_TYPES: Final = frozenset(
    {"error", "probe", "subscribe", "subscribed", "unavailable", "unsubscribe", "unsubscribed"}
)
XML_SPACE: Final = b" \t\r\n"

# RFC 6120 §5.4.2.3 and §5.4.2.2.
TLS_PROCEED: Final = f"<proceed xmlns='{NS_TLS}'/>".encode()
TLS_FAILURE: Final = f"<failure xmlns='{NS_TLS}'/>".encode()


def version_supported(version: str | None) -> bool:
    """Whether a header's 'version' is 1.x (RFC 6120 §4.7.5)."""
    if version is None:
        return False
    major, dot, minor = version.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit() and int(major) == 1


def data_before_restart(trigger: str) -> StreamError:
    return StreamError(StreamCondition.POLICY_VIOLATION, f"data after {trigger} before the stream restart")


def stream_error_condition(element: etree._Element) -> str:
    """The condition of a peer's ``<stream:error/>`` (RFC 6120 §4.9.2)."""
    for child in element:
        qname = etree.QName(child)
        if qname.namespace == NS_STREAM_ERRORS and qname.localname != "text":
            return qname.localname
    return StreamCondition.UNDEFINED_CONDITION.value


def sasl_decode(text: str | None, *, initial: bool) -> bytes | None:
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


def sasl_element(name: str, data: bytes | None) -> bytes:
    """``<challenge/>`` or ``<success/>`` carrying ``data``."""
    element = etree.Element(f"{{{NS_SASL}}}{name}", nsmap={None: NS_SASL})
    if data is not None:
        # §6.4.2/§6.4.6: zero-length data is sent as '='.
        element.text = base64.b64encode(data).decode("ascii") if data else "="
    return serialize(element)


def sasl_failure(condition: SaslCondition, text: str, lang: str) -> bytes:
    """``<failure/>`` with ``condition`` and an optional text (RFC 6120 §6.4.5)."""
    failure = etree.Element(f"{{{NS_SASL}}}failure", nsmap={None: NS_SASL})
    etree.SubElement(failure, f"{{{NS_SASL}}}{condition.value}")
    if text:
        etree.SubElement(failure, f"{{{NS_SASL}}}text", {XML_LANG: lang}).text = text
    return serialize(failure)


def iq_result(iq_id: str | None, to: JID | None = None) -> etree._Element:
    """An empty ``<iq type='result'/>`` answering ``iq_id``."""
    result = etree.Element(f"{{{NS_CLIENT}}}iq", nsmap={None: NS_CLIENT}, type="result")
    if to is not None:
        result.set("to", str(to))
    if iq_id is not None:
        result.set("id", iq_id)
    return result


def bind_result(iq_id: str | None, full_jid: JID) -> etree._Element:
    """The answer to a bind request (RFC 6120 §7.6.1): the bound full JID."""
    iq = iq_result(iq_id)
    bind = etree.SubElement(iq, f"{{{NS_BIND}}}bind", nsmap={None: NS_BIND})
    etree.SubElement(bind, f"{{{NS_BIND}}}jid").text = str(full_jid)
    return iq
