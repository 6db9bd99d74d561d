"""A structural check of a client's plain ``<message>``, compiled by hand from
schemas/native.xsd, so the common stanza skips the XSD validator (9 µs of
libxml2's schema machinery per message, a tenth of the server's work on one).

It only ever says "valid": :func:`plain_message` is True for a subset of what
the schema accepts (``tests/protocol/test_native_quick.py`` checks that against
the schema itself), and anything else (``<time>``, ``<seq>``, an attribute, an
address it is unsure of) goes to the validator as before, which gives the same
documented ``bad-request`` error for what it refuses.
"""

from __future__ import annotations

import re
from typing import Final

from lxml import etree

from xmlchat.protocol.native.events import MessageReceived
from xmlchat.protocol.native.wire import NS
from xmlchat.xml.flat import FlatReader

MESSAGE: Final = f"{{{NS}}}message"
# The schema's element <message>: xs:all of id? from? to time? body seq?, no
# attributes; each child simple content without attributes.
_FIELDS: Final = {f"{{{NS}}}{name}": name for name in ("id", "from", "to", "body")}
# XSD's \s is exactly these four (XML Schema Part 2, appendix F.1.1).
_XML_SPACE: Final = " \t\r\n"
# type "address": 1 to 3071 characters, none of \s < > & " '.
_ADDRESS: Final = re.compile("[^ \t\r\n<>&\"']{1,3071}")
# type "token64": 1 to 64 characters from ! to ~.
_TOKEN64: Final = re.compile("[!-~]{1,64}")


def plain_message(el: etree._Element) -> bool:
    """True only if ``el``, a ``<message>`` in the native namespace, is valid
    against the schema; False means "ask the schema"."""
    return plain_fields(el) is not None


def plain_fields(el: etree._Element) -> dict[str, str] | None:
    """The children's texts by local name (``{"to": "bob", "body": "hi"}``) if
    ``el`` is valid as :func:`plain_message` says, else None: the check and
    the reading in one pass over the children (each child visited is a new
    lxml proxy object, the bulk of the cost)."""
    if el.keys() or (el.text and el.text.strip(_XML_SPACE)):
        return None
    texts: dict[str, str] = {}
    for child in el:
        name = _FIELDS.get(child.tag)  # type: ignore[arg-type]  # a comment's tag: a function
        if name is None or name in texts or child.keys() or len(child):
            return None
        tail = child.tail
        if tail and tail.strip(_XML_SPACE):
            return None
        texts[name] = child.text or ""
    return texts if _valid(texts) else None


def message_reader() -> FlatReader:
    """A stream's reader of plain messages while they are parsed
    (:meth:`~xmlchat.xml.stream.StanzaStream.read_flat`): the event for
    what :func:`plain_fields` accepts, the tree for the rest."""
    return FlatReader(MESSAGE, _FIELDS, _message_received)


def _message_received(texts: dict[str, str]) -> MessageReceived | None:
    # The FlatReader checked the structure: the children's names, attributes, text between.
    if not _valid(texts):
        return None
    get = texts.get
    return MessageReceived(texts["to"], texts["body"], get("id"), get("from"))


def _valid(texts: dict[str, str]) -> bool:
    """The children's texts of the schema's types, ``to`` and ``body`` there."""
    if "to" not in texts or "body" not in texts:
        return False
    id_ = texts.get("id")
    if id_ is not None and _TOKEN64.fullmatch(id_) is None:
        return False
    sender = texts.get("from")
    if sender is not None and _ADDRESS.fullmatch(sender) is None:
        return False
    return _ADDRESS.fullmatch(texts["to"]) is not None
