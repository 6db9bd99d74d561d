"""Parsers go back to a spare list when a stream rests or ends, and keep nothing of it.

lxml's pull parser keeps, in its context, the start of every element whose end
it has not seen, across documents: a parser closed on an unfinished stream (a
rest between stanzas, an XMPP restart, a connection gone) kept that stream's
root and so its whole libxml2 document, once per reuse. After 5,000 XMPP
logins that came and went the server held 7,557 such documents, and 16,345
after 5,000 more.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from lxml import etree
from xml_stream_helpers import CLOSE, HEADER

from xmlchat.errors import StreamError
from xmlchat.xml.stream import StanzaStream

STANZA = b"<message to='a@example.com'><body>hi</body></message>"


def _rested(stream: StanzaStream) -> None:
    stream.feed(HEADER + STANZA)
    assert stream.rest()
    stream.feed(STANZA)  # woken again: the header re-parsed into a spare parser
    assert stream.rest()


def _restarted(stream: StanzaStream) -> None:
    stream.feed(HEADER + STANZA)  # an XMPP stream replaced after SASL: never closed
    stream.rest(final=True)


def _cut_mid_stanza(stream: StanzaStream) -> None:
    stream.feed(HEADER + b"<message><body>half")
    stream.rest(final=True)


def _closed(stream: StanzaStream) -> None:
    stream.feed(HEADER + STANZA + CLOSE)
    stream.rest(final=True)


def _failed(stream: StanzaStream) -> None:
    with pytest.raises(StreamError):
        stream.feed(HEADER + b"<message><a></b></message>")
    stream.rest(final=True)


def _live_elements() -> int:
    gc.collect()
    return sum(isinstance(o, etree._Element) for o in gc.get_objects())


@pytest.mark.parametrize("end", [_rested, _restarted, _cut_mid_stanza, _closed, _failed])
def test_a_spare_parser_keeps_nothing_of_the_streams_it_parsed(
    end: Callable[[StanzaStream], None],
) -> None:
    def streams(n: int) -> None:
        for _ in range(n):
            stream = StanzaStream()
            end(stream)
            stream.rest(final=True)  # what the connection does when it goes

    streams(200)  # fills the spare list
    before = _live_elements()
    streams(500)
    assert _live_elements() - before < 10
