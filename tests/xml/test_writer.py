"""The XMPP writer: what goes on the wire (RFC 6120 §11.6: UTF-8)."""

from __future__ import annotations

from lxml import etree

from xmlchat.errors import StreamCondition, StreamError
from xmlchat.xml.writer import serialize, stream_error

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
