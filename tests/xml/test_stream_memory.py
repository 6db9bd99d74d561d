"""xmlchat.xml.stream: memory stays flat, and keepalives never count toward a stanza's size."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from xml_stream_helpers import FAST, HEADER, feed_until_error, splits, stanzas

from xmlchat.xml.stream import StanzaStream, StreamLimits

# ---- memory stays flat ----------------------------------------------------------------


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


# ---- whitespace keepalives never count toward the stanza size ---------------------------


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
