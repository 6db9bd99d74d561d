"""xmlchat.xml.stream: chunking independence, detached stanzas, closing, encodings.

Most properties are checked for *any* split of the input into chunks, because
the network decides the chunking: libxml2's push parser holds bytes back in
places (before a ';' after '&', a '>' after '<', a character split in two) and
each of those is a chance for the stream to behave differently. Limits and
restricted XML are in test_stream_limits.py, memory in test_stream_memory.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from xml_stream_helpers import (
    CLIENT_NS,
    CLOSE,
    FAST,
    HEADER,
    STREAM_NS,
    XML_NS,
    canon,
    chunked,
    events_of,
    feed_all,
    feed_until_error,
    splits,
    stanzas,
    tree,
)

from xmlchat.errors import UnsupportedEncoding
from xmlchat.xml.stream import FEED_SLICE, StanzaStream

# ---- a generator of valid streams ------------------------------------------------------

# An atom of character data: its source text and whether it is literal (subject
# to line-end and attribute-value normalisation) or a reference.
Atom = tuple[str, str, bool]  # (source, value, literal)

# Characters for literal text: a few of every kind (1- to 4-byte UTF-8, combining
# marks, whitespace including CR, brackets near "]]>"), sometimes any at all.
_CURATED = "az AZ09\t\n\r\r]]%;#=/?é߀ﬀ中文字😀🎉👍🏽\u0301\u00a0\u3000\U0010fffd"
_XML_CHARS = st.characters(
    codec="utf-8",
    categories=("L", "M", "N", "P", "S", "Zs"),
    exclude_characters="&<>\"'\ufffe\uffff",
)
_LITERAL = st.text(st.one_of(st.sampled_from(_CURATED), _XML_CHARS), min_size=1, max_size=8).map(
    lambda text: (text, text, True)
)
_PREDEFINED = st.sampled_from(["&amp;&", "&lt;<", "&gt;>", '&quot;"', "&apos;'"]).map(
    lambda p: (p[:-1], p[-1], False)
)


@st.composite
def _char_ref(draw: st.DrawFn) -> Atom:
    c = draw(st.one_of(st.sampled_from("\t\n\r &<>'\"中😀"), _XML_CHARS))
    zeros = "0" * draw(st.integers(0, 3))
    form = draw(st.sampled_from(["&#{z}{d};", "&#x{z}{x};", "&#x{z}{X};"]))
    return form.format(z=zeros, d=ord(c), x=f"{ord(c):x}", X=f"{ord(c):X}"), c, False


_CDATA = st.text(st.sampled_from("ab&<>]中 \n;#x!["), max_size=12).map(
    lambda body: (f"<![CDATA[{body.replace(']]>', ']] >')}]]>", body.replace("]]>", "]] >"), False)
)
_ATTR_ATOMS = st.lists(st.one_of(_LITERAL, _PREDEFINED, _char_ref()), max_size=5)
_TEXT_ATOMS = st.lists(
    st.one_of(_LITERAL, _PREDEFINED, _char_ref(), _CDATA, st.just(("'", "'", True))), max_size=6
)


def _value(atoms: Sequence[Atom], attribute: bool) -> str:
    """What a parser reports for these atoms (XML 1.0 §2.11 and §3.3.3)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        text = "".join(run).replace("\r\n", "\n").replace("\r", "\n")
        out.append(text.replace("\t", " ").replace("\n", " ") if attribute else text)
        run.clear()

    for source, value, literal in atoms:
        if literal:
            run.append(value)
        else:
            flush()
            if source.startswith("<![CDATA["):
                value = value.replace("\r\n", "\n").replace("\r", "\n")
            out.append(value)
    flush()
    return "".join(out)


_NAMES = st.sampled_from(["message", "body", "x", "query", "item", "中文", "é-name", "a.b_c", "thread"])
_ATTR_NAMES = st.sampled_from(["id", "to", "from", "type", "a-b", "名", "xml:lang", "p:attr"])
_NAMESPACES = st.sampled_from(["urn:xmpp:ping", "urn:example:中文", "jabber:x:data"])


@dataclass
class Generated:
    source: str
    model: tuple[Any, ...]  # tree() of the expected element


@st.composite
def element(
    draw: st.DrawFn, depth: int = 0, default_ns: str = CLIENT_NS, p_ns: str | None = None
) -> Generated:
    name = draw(_NAMES)
    decls: list[str] = []
    if draw(st.integers(0, 4)) == 0:
        default_ns = draw(_NAMESPACES)
        decls.append(f" xmlns='{default_ns}'")
    if draw(st.integers(0, 4)) == 0:
        p_ns = draw(_NAMESPACES)
        decls.append(f' xmlns:p="{p_ns}"')
    prefixed = p_ns is not None and draw(st.integers(0, 3)) == 0
    qname = f"p:{name}" if prefixed else name
    tag = f"{{{p_ns if prefixed else default_ns}}}{name}"

    attrs: list[str] = []
    attrib: dict[str, str] = {}
    for attr in draw(st.lists(_ATTR_NAMES, max_size=3, unique=True)):
        if attr == "p:attr" and p_ns is None:
            continue
        atoms = draw(_ATTR_ATOMS)
        quote = draw(st.sampled_from(["'", '"']))
        attrs.append(f" {attr}={quote}{''.join(a[0] for a in atoms)}{quote}")
        key = {"xml:lang": f"{{{XML_NS}}}lang", "p:attr": f"{{{p_ns}}}attr"}.get(attr, attr)
        attrib[key] = _value(atoms, attribute=True)

    start = f"<{qname}{''.join(decls)}{''.join(attrs)}"
    children: list[Generated] = []
    texts: list[list[Atom]] = []
    if depth < 2:
        children = draw(st.lists(element(depth + 1, default_ns, p_ns), max_size=3))
    texts = [draw(_TEXT_ATOMS) for _ in range(len(children) + 1)]
    if not children and not texts[0] and draw(st.booleans()):
        return Generated(f"{start}/>", (tag, attrib, "", (), ""))
    body = "".join(a[0] for a in texts[0])
    models = []
    for child, tail in zip(children, texts[1:], strict=True):
        body += child.source + "".join(a[0] for a in tail)
        models.append((*child.model[:4], _value(tail, attribute=False)))
    model = (tag, attrib, _value(texts[0], attribute=False), tuple(models), "")
    return Generated(f"{start}>{body}</{qname}>", model)


OPENED = (
    "open",
    f"{{{STREAM_NS}}}stream",
    sorted({"to": "example.com", "version": "1.0", f"{{{XML_NS}}}lang": "en"}.items()),
    [("", CLIENT_NS), ("stream", STREAM_NS)],
)
_KEEPALIVE = st.lists(st.sampled_from([b" ", b"\n", b"\t", b"\r\n"]), max_size=3).map(b"".join)


@dataclass
class GeneratedStream:
    data: bytes
    kinds: list[str]  # canon()[0] of every event, in order
    models: list[tuple[Any, ...]]  # tree() of every stanza
    ends: list[int]  # byte offset just after each event's last '>'


@st.composite
def streams(draw: st.DrawFn, max_stanzas: int = 6) -> GeneratedStream:
    data = draw(st.sampled_from([b"", b"<?xml version='1.0'?>", b'<?xml version="1.0" encoding="UTF-8"?>\n']))
    data += draw(_KEEPALIVE) if data else b""
    data += HEADER
    ends = [len(data)]
    kinds = ["open"]
    models = []
    for stanza in draw(st.lists(element(), max_size=max_stanzas)):
        data += draw(_KEEPALIVE) + stanza.source.encode()
        ends.append(len(data))
        models.append(stanza.model)
        kinds.append("stanza")
    if draw(st.booleans()):
        data += draw(_KEEPALIVE) + CLOSE
        ends.append(len(data))
        kinds.append("close")
        data += draw(_KEEPALIVE)
    return GeneratedStream(data, kinds, models, ends)


# ---- any chunking gives the same events, as soon as their last byte arrives -----------


@FAST
@given(st.data())
def test_any_chunking_gives_the_events_of_the_whole(data: st.DataObject) -> None:
    generated = data.draw(streams())
    whole = events_of(generated.data)
    assert [canon(e)[0] for e in whole] == generated.kinds
    assert canon(whole[0]) == OPENED
    assert [tree(el) for el in stanzas(whole)] == generated.models

    chunks = data.draw(splits(generated.data))
    pieces = feed_all(StanzaStream(), chunks)
    assert [canon(e) for _, e in pieces] == [canon(e) for e in whole]
    # Each event comes out of the feed() call that delivered its last '>'.
    totals = list(itertools.accumulate(map(len, chunks)))
    assert [fed for fed, _ in pieces] == [next(t for t in totals if t >= end) for end in generated.ends]


SAMPLE = (
    b"<?xml version='1.0'?>" + HEADER + b" <message to='\xe5\xbc\xa0@example.com' id='\xf0\x9f\x98\x80'>"
    b"<body>\xe4\xbd\xa0\xe5\xa5\xbd &amp; &#x1F600;&#20013; \xf0\x9f\x8e\x89 &lt;&gt;&quot;&apos;</body>"
    b"<x xmlns='urn:example'><y a='&#9;\r\n'>\r\n<![CDATA[a & <b> ]]]]></y></x></message>\n\t"
    b"<presence/>" + CLOSE
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, FEED_SLICE, FEED_SLICE + 1, len(SAMPLE)])
def test_fixed_chunk_sizes(size: int) -> None:
    assert [canon(e) for e in events_of(chunked(SAMPLE, size))] == [canon(e) for e in events_of(SAMPLE)]


def test_every_two_way_split_including_inside_utf8_characters() -> None:
    whole = [canon(e) for e in events_of(SAMPLE)]
    assert [c[0] for c in whole] == ["open", "stanza", "stanza", "close"]
    for i in range(1, len(SAMPLE)):
        assert [canon(e) for e in events_of([SAMPLE[:i], SAMPLE[i:]])] == whole, i


def test_sample_content_is_decoded() -> None:
    message = stanzas(events_of(SAMPLE))[0]
    assert message.get("to") == "张@example.com"
    assert message.get("id") == "😀"
    assert message.findtext(f"{{{CLIENT_NS}}}body") == "你好 & 😀中 🎉 <>\"'"
    y = message.find("{urn:example}x/{urn:example}y")
    assert y is not None
    assert y.get("a") == "\t "  # a char ref is kept; a literal CR LF becomes LF, then a space
    assert y.text == "\na & <b> ]]"


def test_stream_header_is_reported_as_soon_as_it_is_complete() -> None:
    stream = StanzaStream()
    out = [stream.feed(bytes([b])) for b in HEADER]
    assert all(not events for events in out[:-1])
    assert [canon(e) for e in out[-1]] == [canon(events_of(HEADER)[0])]


def test_feeding_nothing_is_harmless() -> None:
    stream = StanzaStream()
    assert stream.feed(b"") == []
    assert len(stream.feed(HEADER)) == 1
    assert stream.feed(b"") == []
    assert stanzas(stream.feed(b"<a/>")) and stream.stanzas_received == 1


# ---- returned elements are detached ---------------------------------------------------------


def test_stanzas_are_detached_and_stay_valid() -> None:
    stream = StanzaStream()
    stream.feed(HEADER)
    first = stanzas(stream.feed(b"<message to='a@b'><body>hi</body></message>  \n"))
    first += stanzas(stream.feed(b"<iq><q xmlns='urn:q' xmlns:xsd='urn:xsd' t='xsd:string'/></iq> "))
    first += stanzas(stream.feed(b"<stream:features><x/></stream:features>"))
    serialized = [etree.tostring(el, method="c14n") for el in first]
    for el in first:
        assert el.getparent() is None
        assert el.tail is None
    plain = [etree.tostring(el) for el in first]
    assert plain[0] == b'<message xmlns="jabber:client" to="a@b"><body>hi</body></message>'
    assert b"xmlns:stream" not in plain[0] and b"xmlns:stream" not in plain[1]
    assert b'xmlns:xsd="urn:xsd"' in plain[1]  # a declaration of the stanza's own is kept
    assert plain[2].startswith(b'<stream:features xmlns:stream="http://etherx.jabber.org/streams"')
    for i in range(3000):
        stream.feed(b"<message id='%d'><body>more</body></message> " % i)
    assert [etree.tostring(el, method="c14n") for el in first] == serialized
    assert all(el.getparent() is None for el in first)


def test_later_stanzas_in_the_same_read_keep_their_namespaces() -> None:
    # Found by the chunking property: freeing a stanza whose end event was not
    # drained yet let lxml rewrite its namespaces as it left the tree.
    b = b"<p:m xmlns:p='urn:x'><m xmlns='urn:x' xmlns:p='urn:ping'/></p:m>"
    expected = '<p:m xmlns:p="urn:x"><m xmlns="urn:x" xmlns:p="urn:ping"/></p:m>'
    for data in (HEADER + b"<a/>" + b + b"<c/>", HEADER + b + b + b):
        for el in stanzas(events_of(data))[-2:]:
            if el.tag == "{urn:x}m":
                assert etree.tostring(el, encoding="unicode") == expected


def test_each_stanza_is_its_own_tree() -> None:
    a, b = stanzas(events_of(HEADER + b"<a/><b/>"))
    assert a.getroottree().getroot() is a
    assert b.getroottree().getroot() is b
    a.append(etree.Element("x"))
    assert len(b) == 0


# ---- closing, and what happens after ----------------------------------------------------------


def test_stream_closed_after_the_root_end_tag() -> None:
    stream = StanzaStream()
    events = stream.feed(HEADER + b"<a/>" + CLOSE)
    assert [canon(e)[0] for e in events] == ["open", "stanza", "close"]
    assert stream.closed
    assert stream.feed(b"<more/>") == []


@FAST
@given(st.data())
def test_bytes_after_the_close_are_ignored_for_any_chunking(data: st.DataObject) -> None:
    trailers = [b"", b" ", b"<garbage", b"</x>", b"\xff\xfe", b"&", b"<!DOCTYPE x>"]
    trailer = data.draw(st.sampled_from(trailers))
    chunks = data.draw(splits(HEADER + b"<a/>" + CLOSE + trailer))
    outcome = feed_until_error(StanzaStream(), chunks)
    assert outcome.error is None
    assert [canon(e)[0] for e in outcome.events] == ["open", "stanza", "close"]


def test_close_without_stanzas() -> None:
    assert [canon(e)[0] for e in events_of(chunked(HEADER + CLOSE, 1))] == ["open", "close"]


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "utf-16", "ascii"])
def test_a_declared_encoding_other_than_utf8_is_refused(encoding: str) -> None:
    data = f"<?xml version='1.0' encoding='{encoding}'?><s xmlns='a'><m/>".encode()
    for size in (1, 3, len(data)):
        stream = StanzaStream()
        with pytest.raises(UnsupportedEncoding):
            for start in range(0, len(data), size):
                stream.feed(data[start : start + size])


@pytest.mark.parametrize("encoding", ["UTF-8", "utf-8", "utf8"])
def test_a_declared_utf8_is_fine(encoding: str) -> None:
    events = StanzaStream().feed(f'<?xml version="1.0" encoding="{encoding}"?><s xmlns="a"><m/>'.encode())
    assert len(events) == 2
