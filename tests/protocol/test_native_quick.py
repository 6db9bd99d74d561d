"""protocol/native/quick.py: the structural check says "valid" only where the XSD does,
on a tree and while the stream parses."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from xmlchat.protocol.native.events import MessageReceived
from xmlchat.protocol.native.quick import message_reader, plain_fields, plain_message
from xmlchat.protocol.native.wire import NS, child_texts, schema
from xmlchat.xml.stream import StanzaRead, StanzaReceived, StanzaStream, StreamEvent, StreamOpened

_NAMES = ["id", "from", "to", "body", "time", "seq", "other"]
# Characters around every boundary of the schema's types: XML's four spaces and
# Unicode's others, the five the address type refuses, ! and ~, non-ASCII.
_CHARS = st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u3000", "<", ">", "&", '"', "'", "!", "~",
                          "a", "Z", "0", "@", "/", ".", "é", "中", "🙂", "\u007f"])
_TEXT = st.one_of(
    st.lists(_CHARS, max_size=6).map("".join),
    st.sampled_from(["x" * 64, "x" * 65, "b" * 3071, "b" * 3072]),  # token64's and address's lengths
    st.sampled_from(["2026-12-01T10:00:00Z", "7", "bob", "bob@localhost/r", ""]),
)


@st.composite
def messages(draw: st.DrawFn) -> etree._Element:
    """A valid plain message, then a few changes, each of which may or may not
    keep it valid: the boundary of what the schema accepts, densely."""
    names = draw(st.permutations(["id", "from", "to", "body"]))
    keep = [n for n in names if n in ("to", "body") or draw(st.booleans())]
    el = etree.Element(f"{{{NS}}}message", nsmap={None: NS})
    for name in keep:
        etree.SubElement(el, f"{{{NS}}}{name}").text = {"id": "m1", "body": "hi"}.get(name, "bob")
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.integers(0, 8))
        target = el[draw(st.integers(0, len(el) - 1))] if len(el) else el
        if change <= 2:
            target.text = draw(_TEXT)
        elif change == 3:
            el.text = draw(st.sampled_from([" ", "\n\t", "\u00a0", "x"]))
        elif change == 4:
            attribute = draw(st.sampled_from(["a", "type", "{http://www.w3.org/XML/1998/namespace}lang"]))
            draw(st.sampled_from([el, target])).set(attribute, "1")
        elif change == 5:
            etree.SubElement(target, f"{{{NS}}}b")
        elif change == 6:
            target.tail = draw(st.sampled_from([" ", "x", "\u00a0", "\r\n"]))
        elif change == 7:
            name = draw(st.sampled_from(_NAMES))
            ns = draw(st.sampled_from([NS, NS, "urn:other"]))
            etree.SubElement(el, f"{{{ns}}}{name}").text = draw(_TEXT)
        elif len(el):
            el.remove(target)
    return el


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_what_the_check_accepts_the_schema_accepts(el: etree._Element) -> None:
    fields = plain_fields(el)
    assert plain_message(el) == (fields is not None)
    if fields is not None:
        assert schema().validate(el), etree.tostring(el)
        # What the core makes its event from: the texts the general path reads.
        assert fields == child_texts(el), etree.tostring(el)


def _message(**fields: str) -> etree._Element:
    el = etree.Element(f"{{{NS}}}message", nsmap={None: NS})
    for name, text in fields.items():
        etree.SubElement(el, f"{{{NS}}}{name.rstrip('_')}").text = text
    return el


@pytest.mark.parametrize(
    "fields",
    [
        {"to": "bob", "body": "hi"},
        {"id": "m1", "to": "bob@localhost", "body": ""},
        {"id": "!" * 64, "from_": "alice", "to": "b" * 3071, "body": "你好 & <tags>"},
    ],
)
def test_plain_messages_skip_the_schema(fields: dict[str, str]) -> None:
    el = _message(**fields)
    assert plain_message(el) and schema().validate(el)


@pytest.mark.parametrize(
    "fields",
    [
        {"body": "no recipient"},
        {"to": "bob"},
        {"id": "x" * 65, "to": "bob", "body": "id too long"},
        {"to": "b" * 3072, "body": "address too long"},
        {"to": "bob smith", "body": "space in the address"},
        {"to": "bob", "body": "x", "time": "2026-12-01T10:00:00Z"},  # the schema decides
    ],
)
def test_anything_else_goes_to_the_schema(fields: dict[str, str]) -> None:
    assert not plain_message(_message(**fields))


# ---- the same check while the stream parses (StanzaStream.read_flat) -------------------

_HEADER = f"<session xmlns='{NS}'>".encode()


def _read_flat(wire: bytes, cuts: list[int]) -> list[StreamEvent]:
    stream = StanzaStream()
    stream.read_flat(message_reader())
    bounds = [0, *sorted(set(cuts)), len(wire)]
    return [event for a, b in itertools.pairwise(bounds) for event in stream.feed(wire[a:b])]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_the_stream_reads_flat_what_the_check_accepts(el: etree._Element, data: st.DataObject) -> None:
    """The event plain_fields would give for a plain message, however the bytes
    are cut (libxml2 adds to a text node as bytes arrive); the tree for the rest.
    Twice in a row: what the first stanza left must not change the second's reading."""
    stanza = etree.tostring(el)
    wire = _HEADER + stanza + b"\n" + stanza
    events = _read_flat(wire, data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=8)))
    fields = plain_fields(el)
    assert len(events) == 3 and isinstance(events[0], StreamOpened)
    for event in events[1:]:
        if fields is None:
            assert isinstance(event, StanzaReceived), stanza
            assert etree.tostring(event.element) == etree.tostring(etree.fromstring(stanza))
        else:
            get = fields.get
            expected = MessageReceived(fields["to"], fields["body"], get("id"), get("from"))
            assert event == StanzaRead(expected), stanza


def test_flat_messages_are_freed_from_the_parsers_tree() -> None:
    stream = StanzaStream()
    stream.read_flat(message_reader())
    stream.feed(_HEADER)
    message = b"<message><id>m%d</id><to>bob</to><body>hi</body></message>\n"
    for start in range(0, 1000, 100):
        events = stream.feed(b"".join(message % i for i in range(start, start + 100)))
        assert [event.value.id for event in events if isinstance(event, StanzaRead)] == [  # type: ignore[attr-defined]
            f"m{i}" for i in range(start, start + 100)
        ]
        assert stream._root is not None and len(stream._root) <= 2
    assert stream.stanzas_received == 1000
