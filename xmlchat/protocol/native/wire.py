"""The native protocol's wire form: names, the schema, writing stanzas.

Shared by the server core and the client library (spec: docs/native-protocol.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

NS: Final = "urn:xmlchat:native:1"
ROOT: Final = f"{{{NS}}}session"
VERSION: Final = "1"


@cache
def schema() -> etree.XMLSchema:
    """The protocol's XSD (schemas/native.xsd), parsed once."""
    source = resources.files("xmlchat").joinpath("schemas/native.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(source))


def schema_message() -> str:
    """Why the last :func:`schema` validation failed, for a ``bad-request`` text."""
    last = schema().error_log.last_error
    return f"schema: {last.message}" if last is not None else "schema-invalid stanza"


# A literal CR would be normalised to LF by the reader's parser (XML 1.0 §2.11).
_TEXT_ENTITIES: Final = {"\r": "&#13;"}


def element_xml(tag: str, fields: Iterable[tuple[str, str | None]] = ()) -> bytes:
    """``<tag><k>v</k>...</tag>`` with text escaped; None values are left out.

    Stanzas are written with string formatting rather than lxml trees: they are
    flat and this is the hot path for every message. A name may repeat
    (``<block><jid/><jid/></block>``).
    """
    inner = "".join(f"<{k}>{_escape(v)}</{k}>" for k, v in fields if v is not None)
    return (f"<{tag}>{inner}</{tag}>" if inner else f"<{tag}/>").encode()


def _escape(text: str) -> str:
    # Most text has nothing to escape; checking first is cheaper than escaping.
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        return escape(text, _TEXT_ENTITIES)
    return text


def timestamp(moment: datetime) -> str:
    """XSD dateTime in UTC with milliseconds: 2026-11-22T10:00:00.123Z."""
    # isoformat() is C code; strftime() showed up in profiles of the message path.
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def stream_header(attrs: dict[str, str]) -> bytes:
    rendered = "".join(f" {k}='{escape(v, {chr(39): '&apos;'})}'" for k, v in attrs.items())
    return f"<session xmlns='{NS}'{rendered}>".encode()


def child_texts(el: etree._Element) -> dict[str, str]:
    """Child elements by local name: ``{"to": "bob", "body": "hi"}`` (one pass)."""
    return {child.tag.rpartition("}")[2]: child.text or "" for child in el if isinstance(child.tag, str)}
