"""xmlchat.xml.stream: chunking independence, limits, restricted XML, memory, detachment.

Most properties are checked for *any* split of the input into chunks, because
the network decides the chunking: libxml2's push parser holds bytes back in
places (before a ';' after '&', a '>' after '<', a character split in two) and
each of those is a chance for the stream to behave differently.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from xmlchat.errors import (
    NotWellFormed,
    RestrictedXml,
    StanzaTooBig,
    StreamError,
    TooDeep,
    UnsupportedEncoding,
)
from xmlchat.xml.stream import (
    FEED_SLICE,
    StanzaReceived,
    StanzaStream,
    StreamClosed,
    StreamEvent,
    StreamLimits,
    StreamOpened,
)

STREAM_NS = "http://etherx.jabber.org/streams"
CLIENT_NS = "jabber:client"
XML_NS = "http://www.w3.org/XML/1998/namespace"
HEADER = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    b" to='example.com' version='1.0' xml:lang='en'>"
)
CLOSE = b"</stream:stream>"

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- helpers ---------------------------------------------------------------------


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """Any chunking of ``data``: random cuts, one byte at a time, or a few big pieces."""
    n = len(data)
    if n < 2:
        return [data]
    kind = draw(st.sampled_from(["random", "random", "bytes", "few"]))
    if kind == "bytes":
        return chunked(data, 1)
    most = 3 if kind == "few" else min(n - 1, 200)
    return split_at(data, draw(st.lists(st.integers(1, n - 1), max_size=most)))


def canon(event: StreamEvent) -> tuple[Any, ...]:
    """A comparable form of an event; stanzas as trees and serialised.

    (Not c14n: libxml2's C14N refuses namespace names it cannot parse as URIs,
    like "urn:example:中文".)
    """
    if isinstance(event, StreamOpened):
        ns = sorted((prefix or "", uri) for prefix, uri in event.nsmap.items())
        return ("open", event.tag, sorted(event.attrib.items()), ns)
    if isinstance(event, StanzaReceived):
        return ("stanza", tree(event.element), etree.tostring(event.element, encoding="unicode"))
    return ("close",)


def feed_all(stream: StanzaStream, chunks: Iterable[bytes]) -> list[tuple[int, StreamEvent]]:
    """Feed every chunk; each event with the number of bytes fed when it came out."""
    out: list[tuple[int, StreamEvent]] = []
    fed = 0
    for chunk in chunks:
        fed += len(chunk)
        out.extend((fed, event) for event in stream.feed(chunk))
    return out


def events_of(data: bytes | Sequence[bytes], limits: StreamLimits | None = None) -> list[StreamEvent]:
    chunks = [data] if isinstance(data, bytes) else data
    return [event for _, event in feed_all(StanzaStream(limits or StreamLimits()), chunks)]


@dataclass
class Outcome:
    events: list[StreamEvent]  # returned by feed(), then the failing call's error.events
    error: StreamError | None
    fed: int  # bytes handed to feed() up to and including the failing call


def feed_until_error(stream: StanzaStream, chunks: Iterable[bytes]) -> Outcome:
    events: list[StreamEvent] = []
    fed = 0
    for chunk in chunks:
        fed += len(chunk)
        try:
            events += stream.feed(chunk)
        except StreamError as e:
            events += e.events  # type: ignore[attr-defined]
            return Outcome(events, e, fed)
    return Outcome(events, None, fed)


def stanzas(events: Iterable[StreamEvent]) -> list[etree._Element]:
    return [e.element for e in events if isinstance(e, StanzaReceived)]


def tree(el: etree._Element) -> tuple[Any, ...]:
    """tag/attrib/text/children/tail, for comparing with the generator's model."""
    children = tuple(tree(child) for child in el)
    return (el.tag, dict(el.attrib), el.text or "", children, el.tail or "")


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


# ---- 1. any chunking gives the same events, as soon as their last byte arrives -----------


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


# ---- 2. limits and restrictions: typed errors, for any chunking --------------------------

SMALL = StreamLimits(max_stanza_bytes=1000, max_depth=5)
OK = b"<ok/>"  # one valid stanza before the fault: it must reach the caller


@dataclass
class Case:
    id: str
    data: bytes
    error: type[StreamError]
    stanzas_before: int = 1
    limits: StreamLimits = SMALL


def case(id: str, fault: bytes, error: type[StreamError], *, prolog: bytes | None = None) -> Case:
    """A stream: a valid stanza, then ``fault``, then more valid stanzas."""
    if prolog is not None:  # the fault is before the stream header
        return Case(id, prolog + HEADER + OK + OK, error, stanzas_before=0)
    return Case(id, HEADER + OK + fault + OK * 3, error)


BILLION_LAUGHS = (
    b"<!DOCTYPE lolz [<!ENTITY lol0 'lol'>"
    + b"".join(b"<!ENTITY lol%d '%s'>" % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    + b"]>"
)

CASES = [
    # size and depth
    case("stanza-too-big-text", b"<message><body>" + b"x" * 12000 + b"</body></message>", StanzaTooBig),
    case("stanza-too-big-attribute", b"<message a='" + b"y" * 12000 + b"'/>", StanzaTooBig),
    case("stanza-too-big-children", b"<iq>" + b"<x/>" * 3000 + b"</iq>", StanzaTooBig),
    case("stanza-too-big-unclosed-tag", b"<message a='" + b"y" * 12000, StanzaTooBig),
    Case("header-too-big", HEADER[:-1] + b" x='" + b"z" * 12000 + b"'>" + OK, StanzaTooBig, 0),
    case("too-deep", b"<a><b><c><d><e/></d></c></b></a>", TooDeep),  # root 1, a 2 ... e 6
    # DOCTYPE, with and without internal subset
    case("doctype", b"", RestrictedXml, prolog=b"<!DOCTYPE stream:stream>"),
    case("doctype-after-decl", b"", RestrictedXml, prolog=b"<?xml version='1.0'?>\n<!DOCTYPE s>"),
    case("doctype-system", b"", RestrictedXml, prolog=b"<!DOCTYPE s SYSTEM 'http://127.0.0.1:9/x.dtd'>"),
    case("doctype-entity", b"", RestrictedXml, prolog=b"<!DOCTYPE s [<!ENTITY e 'expanded'>]>"),
    case("billion-laughs", b"", RestrictedXml, prolog=BILLION_LAUGHS),
    Case("billion-laughs-used", BILLION_LAUGHS + HEADER + b"<a>&lol9;</a>", RestrictedXml, 0),
    case("doctype-in-stream", b"<!DOCTYPE s>", NotWellFormed),
    # entities: only the five predefined ones; '&' must start a reference
    case("undeclared-entity", b"<message><body>&foo;</body></message>", RestrictedXml),
    case("undeclared-entity-nbsp", b"<a>a&nbsp;b</a>", RestrictedXml),
    case("undeclared-entity-attribute", b"<a b='&copy;'/>", RestrictedXml),
    case("bare-ampersand", b"<message><body>AT&T</body></message>", NotWellFormed),
    case("ampersand-space", b"<a>fish & chips</a>", NotWellFormed),
    case("ampersand-no-semicolon", b"<a>&amp</a>", NotWellFormed),
    case("ampersand-in-attribute", b"<a b='x & y'/>", NotWellFormed),
    case("empty-char-ref", b"<a>&#;</a>", NotWellFormed),
    case("bad-hex-char-ref", b"<a>&#xZZ;</a>", NotWellFormed),
    case("char-ref-to-nul", b"<a>&#0;</a>", NotWellFormed),
    case("char-ref-to-surrogate", b"<a>&#xD800;</a>", NotWellFormed),
    # comments and processing instructions
    case("comment-prolog", b"", RestrictedXml, prolog=b"<!-- hello -->"),
    case("comment-between-stanzas", b"<!-- hello -->", RestrictedXml),
    case("comment-in-stanza", b"<a><!-- hello --></a>", RestrictedXml),
    case("pi-prolog", b"", RestrictedXml, prolog=b"<?foo bar?>"),
    case("pi-after-decl", b"", RestrictedXml, prolog=b"<?xml version='1.0'?><?foo bar?>"),
    case("pi-stylesheet", b"", RestrictedXml, prolog=b"<?xml-stylesheet href='a'?>"),
    case("pi-with-doctype-inside", b"", RestrictedXml, prolog=b"<?foo <x?><!DOCTYPE s>"),
    case("pi-between-stanzas", b"<?foo bar?>", RestrictedXml),
    case("pi-in-stanza", b"<a><?foo bar?></a>", RestrictedXml),
    case("xml-declaration-in-stream", b"<?xml version='1.0'?>", NotWellFormed),
    # invalid UTF-8
    case("utf8-bad-continuation", b"<a>\xc3\x28</a>", UnsupportedEncoding),
    case("utf8-lone-continuation", b"<a>\x80</a>", UnsupportedEncoding),
    case("utf8-overlong-2", b"<a>\xc0\xaf</a>", UnsupportedEncoding),
    case("utf8-overlong-3", b"<a>\xe0\x80\xaf</a>", UnsupportedEncoding),
    case("utf8-overlong-4", b"<a>\xf0\x80\x80\xaf</a>", UnsupportedEncoding),
    case("utf8-surrogate-high", b"<a>\xed\xa0\x80</a>", UnsupportedEncoding),
    case("utf8-surrogate-low", b"<a>\xed\xbf\xbf</a>", UnsupportedEncoding),
    case("utf8-above-max", b"<a>\xf4\x90\x80\x80</a>", UnsupportedEncoding),
    case("utf8-ff", b"<a b='\xff'/>", UnsupportedEncoding),
    case("utf8-truncated-then-markup", b"<a>\xe4\xb8</a>", UnsupportedEncoding),
    case("utf8-in-tag-name", b"<a\xfe/>", UnsupportedEncoding),
    Case("utf16-bom", b"\xff\xfe<\x00s\x00>\x00", UnsupportedEncoding, 0),
    Case("latin1-header", HEADER[:-1] + b" from='caf\xe9'>" + OK, UnsupportedEncoding, 0),
    # not well-formed
    case("mismatched-tags", b"<message><body></message></body>", NotWellFormed),
    case("stray-end-tag", b"</x>", NotWellFormed),
    case("garbage", b"<<>>", NotWellFormed),
    case("unquoted-attribute", b"<a b=1/>", NotWellFormed),
    case("duplicate-attribute", b"<a b='1' b='2'/>", NotWellFormed),
    case("cdata-end-in-text", b"<a>]]></a>", NotWellFormed),
    case("control-character", b"<a>\x01</a>", NotWellFormed),
    case("nul", b"<a>\x00</a>", NotWellFormed),
    case("noncharacter", b"<a>\xef\xbf\xbe</a>", NotWellFormed),
    case("undeclared-prefix", b"<foo:bar/>", NotWellFormed),
    case("undeclared-attribute-prefix", b"<a foo:b='1'/>", NotWellFormed),
    case("undeclared-prefix-nested", b"<a><b><p:c/></b></a>", NotWellFormed),
    Case("text-before-header", b"hello" + HEADER + OK, NotWellFormed, 0),
    Case("stream-prefix-undeclared", b"<stream:stream xmlns='jabber:client'>" + OK, NotWellFormed, 0),
]


def check_failure(c: Case, outcome: Outcome) -> None:
    assert outcome.error is not None, f"{c.id}: no error"
    assert type(outcome.error) is c.error, f"{c.id}: {outcome.error!r}"
    assert len(stanzas(outcome.events)) == c.stanzas_before, c.id
    assert not any(isinstance(e, StreamClosed) for e in outcome.events)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("size", [None, 1, 3, 64])
def test_violation_is_a_typed_error(c: Case, size: int | None) -> None:
    stream = StanzaStream(c.limits)
    outcome = feed_until_error(stream, [c.data] if size is None else chunked(c.data, size))
    check_failure(c, outcome)
    # The stream is dead: every later call raises the same error, with no events.
    for more in (b"", OK, b" "):
        with pytest.raises(c.error) as again:
            stream.feed(more)
        assert again.value is outcome.error
        assert again.value.events == []  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_violation_is_a_typed_error_for_any_chunking(data: st.DataObject) -> None:
    c = data.draw(st.sampled_from(CASES))
    check_failure(c, feed_until_error(StanzaStream(c.limits), data.draw(splits(c.data))))


def test_error_carries_the_events_completed_before_it() -> None:
    with pytest.raises(NotWellFormed) as caught:
        StanzaStream().feed(HEADER + b"<message id='1'/> <presence/><iq></message>")
    events = caught.value.events  # type: ignore[attr-defined]
    assert [canon(e)[0] for e in events] == ["open", "stanza", "stanza"]
    assert [el.tag for el in stanzas(events)] == [f"{{{CLIENT_NS}}}message", f"{{{CLIENT_NS}}}presence"]


def test_undeclared_entity_raises_instead_of_stalling() -> None:
    # With resolve_entities=False, libxml2 2.14 silently stops parsing at an
    # undeclared entity: no error, no more events. "internal" reports it.
    stream = StanzaStream()
    stream.feed(HEADER)
    with pytest.raises(RestrictedXml, match="foo"):
        for _ in range(3):
            stream.feed(b"<message><body>&foo;</body></message><presence/>")


def test_lone_ampersand_raises_at_once_instead_of_waiting_for_a_semicolon() -> None:
    # libxml2 2.14 waits for a ';' after '&' in content: without the check,
    # the stanzas after "AT&T" would silently never arrive.
    stream = StanzaStream()
    stream.feed(HEADER + OK)
    with pytest.raises(NotWellFormed):
        stream.feed(b"<message><body>AT&T</body></message>")


def test_undecided_references_and_cdata_across_chunks() -> None:
    body = b"<a x='&#x0000000041;'>&#0000000066;&quot;<![CDATA[ & ]] ]]]>&apos;</a>"
    for size in (1, 2, 3):
        (a,) = stanzas(events_of(chunked(HEADER + body, size)))
        assert a.get("x") == "A"
        assert a.text == "B\" & ]] ]'"


def test_truncated_utf8_is_not_an_error_until_more_data_arrives() -> None:
    stream = StanzaStream()
    stream.feed(HEADER + b"<message><body>\xe4\xb8")
    assert stream.feed(b"") == []
    assert stanzas(stream.feed(b"\xad</body></message>"))[0][0].text == "中"
    stream.feed(b"<a>\xf0\x9f")
    with pytest.raises(UnsupportedEncoding):
        stream.feed(b"</a>")


def test_truncated_utf8_at_stream_end_is_not_an_error() -> None:
    stream = StanzaStream()
    assert stream.feed(HEADER + b"<a/>\xe4")  # nothing says the stream is over yet


def test_depth_limit_boundary() -> None:
    limits = StreamLimits(max_depth=4)  # stream 1, stanza 2, child 3, grandchild 4
    assert stanzas(events_of(HEADER + b"<a><b><c/></b></a>", limits))
    with pytest.raises(TooDeep):
        events_of(HEADER + b"<a><b><c><d/></c></b></a>", limits)


def test_ten_megabyte_stanza_fails_early_in_64k_reads() -> None:
    limits = StreamLimits()  # 256 KiB
    big = b"<message><body>" + b"x" * (10 * 1024 * 1024) + b"</body></message>"
    outcome = feed_until_error(StanzaStream(limits), [HEADER, *chunked(big, 64 * 1024)])
    assert isinstance(outcome.error, StanzaTooBig)
    assert outcome.error.app_condition == "stanza-too-big"
    assert outcome.fed <= len(HEADER) + limits.max_stanza_bytes + 64 * 1024
    assert outcome.fed < len(HEADER) + len(big)


class CountingParser:
    """Stands in for the lxml parser and counts the bytes it is given."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.fed = 0

    def feed(self, data: bytes) -> None:
        self.fed += len(data)
        self.parser.feed(data)

    def read_events(self) -> Any:
        return self.parser.read_events()


def test_ten_megabyte_stanza_in_one_read_is_not_parsed_whole() -> None:
    stream = StanzaStream()
    stream.feed(HEADER)
    counter = CountingParser(stream._parser)
    stream._parser = counter  # type: ignore[assignment]
    with pytest.raises(StanzaTooBig):
        stream.feed(b"<message><body>" + b"x" * (10 * 1024 * 1024))
    assert counter.fed <= stream.limits.max_stanza_bytes + FEED_SLICE


@FAST
@given(st.data())
def test_stanza_size_limit_for_any_chunking(data: st.DataObject) -> None:
    limit = 300
    size = data.draw(st.integers(20, limit))
    stanza = b"<a>" + b"z" * (size - 7) + b"</a>"
    assert len(stanza) == size
    fine = HEADER + b" " * data.draw(st.integers(0, 3 * limit)) + (stanza + b"\n") * 3
    outcome = feed_until_error(StanzaStream(StreamLimits(max_stanza_bytes=limit)), data.draw(splits(fine)))
    assert outcome.error is None
    assert len(stanzas(outcome.events)) == 3
    # Enforced to within two slices, whatever the chunking.
    too_big = b"<a>" + b"z" * (limit + 2 * FEED_SLICE) + b"</a>"
    outcome = feed_until_error(
        StanzaStream(StreamLimits(max_stanza_bytes=limit)), data.draw(splits(HEADER + OK + too_big))
    )
    assert isinstance(outcome.error, StanzaTooBig)


def test_limits_can_be_raised_mid_stream() -> None:
    stream = StanzaStream(StreamLimits(max_stanza_bytes=200))
    stream.feed(HEADER)
    stream.limits = StreamLimits(max_stanza_bytes=10_000)
    assert stanzas(stream.feed(b"<a>" + b"z" * 5000 + b"</a>"))


# ---- 3. memory stays flat ----------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_stays_flat_over_many_stanzas_and_keepalives() -> None:
    # Without cleanup the parser tree keeps every stanza: RSS grows by ~80 MB
    # here and the root gets 100,000 children. (100k, not more: ~2 s of CPU.)
    stream = StanzaStream()
    stream.feed(HEADER)
    stanza = b"<message id='%d'><body>hi \xe4\xbd\xa0\xe5\xa5\xbd</body></message>"

    def batch(start: int, n: int = 100) -> bytes:
        return b"".join(stanza % i + (b" " if i % 3 else b"\n\t") for i in range(start, start + n))

    root = stream._root
    assert root is not None
    for i in range(0, 10_000, 100):  # warm up the allocator
        stream.feed(batch(i))
    before = _rss()
    received = 0
    for i in range(0, 100_000, 100):
        received += len(stream.feed(batch(i)))
        stream.feed(b" ")  # and a keepalive on its own
        if i % 10_000 == 0:
            assert len(root) <= 2
            assert not root.text
            assert all(len(child.tail or "") < 10 for child in root)
    grown = _rss() - before
    assert received == 100_000
    assert stream.stanzas_received == 110_000
    assert len(root) <= 2 and not root.text and not root[-1].tail
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"


def test_idle_keepalives_before_the_first_stanza_do_not_pile_up() -> None:
    stream = StanzaStream()
    stream.feed(HEADER)
    for _ in range(5000):
        stream.feed(b" ")
    assert stream._root is not None and not stream._root.text


# ---- 4. whitespace keepalives never count toward the stanza size ---------------------------


def test_keepalives_do_not_count_toward_the_stanza_size() -> None:
    limits = StreamLimits(max_stanza_bytes=100)
    stream = StanzaStream(limits)
    for _ in range(300):  # before the header too
        stream.feed(b" ")
    stream.feed(HEADER + b"\n")
    for _ in range(300):  # before the first stanza
        stream.feed(b" ")
    assert stanzas(stream.feed(b"<a/> "))  # a keepalive right after a stanza, same read
    for ws in (b" ", b"\n", b"\t", b"\r\n"):
        for _ in range(300):
            stream.feed(ws)
    stream.feed(b" " * 20_000)  # several slices of it at once
    stream.feed(b" " * 5000 + b"<b")  # leading whitespace in the stanza's first read
    assert stanzas(stream.feed(b"/>" + b" " * 5000))
    assert stream.stanzas_received == 2


@FAST
@given(st.data())
def test_keepalives_never_count_for_any_chunking(data: st.DataObject) -> None:
    limit = 200  # the header is held to it too
    gaps = data.draw(st.lists(st.integers(0, 4 * limit), min_size=1, max_size=5))
    ws = data.draw(st.sampled_from([b" ", b"\n", b"\r\n", b" \t"]))
    body = b"".join(ws * n + b"<message to='a@b'><body>hi</body></message>" for n in gaps)
    outcome = feed_until_error(
        StanzaStream(StreamLimits(max_stanza_bytes=limit)), data.draw(splits(HEADER + body + ws * 300))
    )
    assert outcome.error is None
    assert len(stanzas(outcome.events)) == len(gaps)


# ---- 5. returned elements are detached ---------------------------------------------------------


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


# ---- 6. closing, and what happens after ----------------------------------------------------------


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
