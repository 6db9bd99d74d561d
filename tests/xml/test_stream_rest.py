"""StanzaStream.rest(): the parser freed between stanzas, the stream unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_stream import SAMPLE, streams
from xml_stream_helpers import CLIENT_NS, CLOSE, FAST, HEADER, XML_NS, canon, events_of, splits

from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamEvent


def fed_resting(chunks: list[bytes]) -> tuple[list[StreamEvent], int]:
    """Events of ``chunks``, resting the parser after each; how many rests took."""
    stream, events, rested = StanzaStream(), [], 0
    for chunk in chunks:
        events += stream.feed(chunk)
        rested += stream.rest()
    return events, rested


@FAST
@given(st.data())
def test_resting_after_any_chunk_gives_the_events_of_the_whole(data: st.DataObject) -> None:
    generated = data.draw(streams())
    chunks = data.draw(splits(generated.data))
    events, _ = fed_resting(chunks)
    assert [canon(e) for e in events] == [canon(e) for e in events_of(generated.data)]


def test_rest_only_between_stanzas() -> None:
    stream = StanzaStream()
    assert not stream.rest()  # no stream yet
    stream.feed(HEADER)
    assert stream.rest()
    stream.feed(b"<message><body>half")
    assert not stream.rest()  # a stanza is half-received
    stream.feed(b"</body></message>\n ")
    assert stream.rest()  # whitespace after it is no stanza
    stream.feed(b"\xe4\xbd")  # half of a UTF-8 character
    assert not stream.rest()
    stream.feed(b"\xa0")
    assert not stream.rest()  # character data at depth 1 is not whitespace
    closed = StanzaStream()
    closed.feed(HEADER + CLOSE)
    assert not closed.rest()


def test_after_a_rest_stanzas_keep_the_header_namespaces_and_language() -> None:
    events, rested = fed_resting(
        [HEADER, b"<message to='a@example.com'><body>1</body></message>", b"<stream:features/>", CLOSE]
    )
    assert rested == 3  # after the header and after each stanza; not after the close
    message, features = (e.element for e in events if isinstance(e, StanzaReceived))
    assert message.tag == f"{{{CLIENT_NS}}}message" and message.nsmap == {None: CLIENT_NS}
    assert message.get(f"{{{XML_NS}}}lang") is None  # the core stamps it, as without a rest
    assert features.tag == "{http://etherx.jabber.org/streams}features"
    assert [canon(e)[0] for e in events] == ["open", "stanza", "stanza", "close"]


def test_the_sample_rested_at_every_byte() -> None:
    chunks = [SAMPLE[i : i + 1] for i in range(len(SAMPLE))]
    events, rested = fed_resting(chunks)
    assert [canon(e) for e in events] == [canon(e) for e in events_of(SAMPLE)]
    assert rested > 0
