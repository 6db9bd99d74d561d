"""Shared by the xmlchat.xml.stream tests: chunkings of the input, feeding a
stream while recording what came out, and comparable forms of its events."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from lxml import etree

from xmlchat.errors import StreamError
from xmlchat.xml.stream import StanzaReceived, StanzaStream, StreamEvent, StreamLimits, StreamOpened

STREAM_NS = "http://etherx.jabber.org/streams"
CLIENT_NS = "jabber:client"
XML_NS = "http://www.w3.org/XML/1998/namespace"
HEADER = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    b" to='example.com' version='1.0' xml:lang='en'>"
)
CLOSE = b"</stream:stream>"

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
