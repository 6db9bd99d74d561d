"""The XMPP writer: what goes on the wire (RFC 6120 §11.6: UTF-8)."""

from __future__ import annotations

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.xml.writer import known, serialize, stream_error

TEXT = "你好 🙂 café"


def test_stanzas_are_utf8_not_character_references() -> None:
    # Non-ASCII text travels as UTF-8 (3 bytes for 你), never as "&#20320;" (8 bytes).
    message = etree.Element("{jabber:client}message", nsmap={None: "jabber:client"}, to="bob@localhost")
    etree.SubElement(message, "{jabber:client}body").text = TEXT
    data = serialize(message)
    assert data == f"<message to='bob@localhost'><body>{TEXT}</body></message>".replace("'", '"').encode()
    assert b"&#" not in data


def test_stream_error_text_is_utf8() -> None:
    data = stream_error(StreamError(StreamCondition.POLICY_VIOLATION, TEXT))
    assert TEXT.encode() in data and b"&#" not in data


def test_known_bytes_are_written_for_that_element_only_while_known() -> None:
    # A stored message's bytes stand in for its serialisation at delivery
    # (serialised once); any other element, or after known(None), is serialised.
    message = etree.Element("{jabber:client}message", nsmap={None: "jabber:client"}, to="bob@localhost")
    other = etree.Element("{jabber:client}message", nsmap={None: "jabber:client"}, to="eve@localhost")
    stored = b'<message xmlns="jabber:client" to="stored@localhost"/>'
    known(message, stored)
    try:
        assert serialize(message) == b'<message to="stored@localhost"/>'  # the stream's default stripped
        assert serialize(message, standalone=True) == stored  # RFC 7395 keeps the declaration
        assert serialize(other) == b'<message to="eve@localhost"/>'
    finally:
        known(None)
    assert serialize(message) == b'<message to="bob@localhost"/>'


def test_known_bytes_are_not_used_for_an_element_that_must_be_rebuilt() -> None:
    # A prefixed jabber:client element is rebuilt with the default namespace first.
    message = etree.Element("{jabber:client}message", nsmap={"c": "jabber:client"}, to="bob@localhost")
    known(message, b"<c:message/>")
    try:
        assert serialize(message) == b'<message to="bob@localhost"/>'
    finally:
        known(None)
