"""xmlchat.xml.stream: limits and restricted XML, each a typed error for any chunking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xml_stream_helpers import (
    CLIENT_NS,
    FAST,
    HEADER,
    Outcome,
    canon,
    chunked,
    events_of,
    feed_until_error,
    splits,
    stanzas,
)

from xmlchat.errors import (
    NotWellFormed,
    RestrictedXml,
    StanzaTooBig,
    StreamError,
    TooDeep,
    UnsupportedEncoding,
)
from xmlchat.xml.stream import FEED_SLICE, StanzaStream, StreamClosed, StreamLimits

# ---- limits and restrictions: typed errors, for any chunking --------------------------

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
