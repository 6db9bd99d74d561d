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
    parts = [f"<{tag}>"]
    for k, v in fields:
        if v is not None:
            parts.append(f"<{k}>{_escape(v)}</{k}>")
    if len(parts) == 1:
        return f"<{tag}/>".encode()
    parts.append(f"</{tag}>")
    return "".join(parts).encode()


def ack_xml(id_: str, time: str) -> bytes:
    """``<ack>``, written for every message accepted: the one stanza worth its own writer."""
    return f"<ack><id>{_escape(id_)}</id><time>{time}</time></ack>".encode()


def message_xml(id_: str, sender: str, to: str, time: str, body: str, seq: int | None) -> bytes:
    """A ``<message>`` to a client (:func:`element_xml`'s output, written for every delivery)."""
    tail = f"<seq>{seq}</seq></message>" if seq is not None else "</message>"
    return (
        f"<message><id>{_escape(id_)}</id><from>{_escape(sender)}</from><to>{_escape(to)}</to>"
        f"<time>{time}</time><body>{_escape(body)}</body>{tail}"
    ).encode()


def _escape(text: str) -> str:
    # Most text has nothing to escape; checking first is cheaper than escaping.
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        return escape(text, _TEXT_ENTITIES)
    return text


# A message's acceptance time is written twice or more, one right after the
# other, from the same datetime object: its delivery (or deliveries), then its
# <ack> (the pipeline runs them in that order, in memory or after the commit).
# So the last one is kept, checked by identity (an lru_cache must hash the
# datetime, which costs more than formatting it; the reference kept means the
# object, and so its identity, cannot be reused).
_last_stamp: tuple[datetime | None, str] = (None, "")


def timestamp(moment: datetime) -> str:
    """XSD dateTime in UTC with milliseconds: 2026-11-22T10:00:00.123Z."""
    global _last_stamp
    last, text = _last_stamp
    if moment is last:
        return text
    utc = moment if moment.tzinfo is UTC or not moment.utcoffset() else moment.astimezone(UTC)
    # isoformat() is C code; strftime() showed up in profiles of the message path.
    text = utc.isoformat(timespec="milliseconds")[:23] + "Z"
    _last_stamp = (moment, text)
    return text


def stream_header(attrs: dict[str, str]) -> bytes:
    rendered = "".join(f" {k}='{escape(v, {chr(39): '&apos;'})}'" for k, v in attrs.items())
    return f"<session xmlns='{NS}'{rendered}>".encode()


def child_texts(el: etree._Element) -> dict[str, str]:
    """Child elements by local name: ``{"to": "bob", "body": "hi"}`` (one pass)."""
    texts: dict[str, str] = {}
    for child in el:
        tag = child.tag
        name = _LOCAL_NAMES.get(tag)  # type: ignore[arg-type]
        if name is None:
            if not isinstance(tag, str):
                continue
            name = tag.rpartition("}")[2]
        texts[name] = child.text or ""
    return texts


# The children stanzas carry, by qualified name: a lookup instead of a split.
_LOCAL_NAMES: Final = {
    f"{{{NS}}}{name}": name
    for name in ("id", "to", "from", "body", "time", "seq", "user", "password", "resource", "receipts")
}
