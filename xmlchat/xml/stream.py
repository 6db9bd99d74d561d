"""The stanza stream: bytes in, stream events out. Sans-IO: no sockets here.

One :class:`StanzaStream` per XML stream (a new one after each XMPP stream
restart, RFC 6120 §4.3.3). ``feed(bytes)`` accepts any chunking — one byte at a
time, a chunk ending inside a multi-byte UTF-8 character, many stanzas at once —
and returns the events those bytes completed:

* :class:`StreamOpened` — the root element's start tag (the stream header);
* :class:`StanzaReceived` — one complete depth-1 element, detached from the tree;
* :class:`StreamClosed` — the root element's end tag.

Every limit violation raises a :class:`~xmlchat.errors.StreamError` subclass;
after one, the stream is dead (libxml2 resumes after errors, so we must not).
"""

from __future__ import annotations

import codecs
import copy
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xmlchat.errors import (
    NotWellFormed,
    RestrictedXml,
    StanzaTooBig,
    StreamError,
    TooDeep,
    UnsupportedEncoding,
)

# Large reads are fed in slices this big, so the stanza size limit is enforced
# while bytes arrive (to within one slice), not after a huge stanza is built.
FEED_SLICE: Final = 4096


@dataclass(frozen=True, slots=True)
class StreamOpened:
    tag: str  # Clark notation: "{http://etherx.jabber.org/streams}stream"
    attrib: dict[str, str]  # Clark-notation keys, e.g. "{http://www.w3.org/XML/1998/namespace}lang"
    nsmap: dict[str | None, str]


@dataclass(frozen=True, slots=True)
class StanzaReceived:
    element: etree._Element


@dataclass(frozen=True, slots=True)
class StreamClosed:
    pass


StreamEvent = StreamOpened | StanzaReceived | StreamClosed


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_stanza_bytes: int = 256 * 1024
    max_depth: int = 32


@dataclass(slots=True)
class _Counters:
    depth: int = 0
    pending_bytes: int = 0  # bytes of the stanza being received so far
    stanzas: int = 0


def _new_parser() -> etree.XMLPullParser:
    # RFC 6120 §11.1: no DTDs, no entities but the predefined five. "internal"
    # makes libxml2 reject undeclared entity references (with False it silently
    # stops parsing); DOCTYPE itself is refused at the root start tag below.
    return etree.XMLPullParser(
        events=("start", "end", "comment", "pi"),
        resolve_entities="internal",  # type: ignore[arg-type]  # lxml >= 5 accepts "internal"
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        collect_ids=False,
        encoding="utf-8",  # RFC 6120 §11.6: UTF-8 only, whatever a declaration says
    )


class StanzaStream:
    """Incremental parser of one XML stream of stanzas."""

    def __init__(self, limits: StreamLimits = StreamLimits()) -> None:
        self.limits = limits
        self._parser = _new_parser()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._count = _Counters()
        self._root: etree._Element | None = None
        self._failed: StreamError | None = None
        self.closed = False

    @property
    def stanzas_received(self) -> int:
        return self._count.stanzas

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Parse ``data``; return the events it completed, in order.

        Raises a StreamError on the first violation, and again on any later call.
        """
        if self._failed is not None:
            raise self._failed
        events: list[StreamEvent] = []
        try:
            for start in range(0, len(data), FEED_SLICE):
                if self.closed:
                    break
                self._feed_slice(data[start : start + FEED_SLICE], events)
        except StreamError as e:
            self._failed = e
            raise
        return events

    def _feed_slice(self, piece: bytes, events: list[StreamEvent]) -> None:
        try:
            self._utf8.decode(piece)
        except UnicodeDecodeError as e:
            raise UnsupportedEncoding(f"invalid UTF-8: {e.reason}") from None
        try:
            self._parser.feed(piece)
        except etree.XMLSyntaxError as e:
            # Hand over what completed before the error, then fail.
            self._drain(events)
            raise _syntax_error(e) from None
        stanzas_before = self._count.stanzas
        self._drain(events)
        self._account(piece, self._count.stanzas != stanzas_before)

    def _account(self, piece: bytes, stanza_ended: bool) -> None:
        count = self._count
        if stanza_ended:
            # Bytes after the last '>' already belong to the next stanza.
            count.pending_bytes = len(piece) - (piece.rfind(b">") + 1)
        elif count.depth <= 1 and count.pending_bytes == 0 and not piece.strip():
            return  # whitespace keepalive between stanzas (RFC 6120 §4.6.1)
        else:
            count.pending_bytes += len(piece)
        if count.pending_bytes > self.limits.max_stanza_bytes:
            raise StanzaTooBig(f"stanza larger than {self.limits.max_stanza_bytes} bytes")

    def _drain(self, events: list[StreamEvent]) -> None:
        count = self._count
        for action, el in self._parser.read_events():
            if action == "start":
                count.depth += 1
                if count.depth == 1:
                    events.append(self._open(el))
                elif count.depth > self.limits.max_depth:
                    raise TooDeep(f"elements nested deeper than {self.limits.max_depth}")
            elif action == "end":
                count.depth -= 1
                if count.depth == 1:
                    events.append(StanzaReceived(self._detach(el)))
                elif count.depth == 0:
                    self.closed = True
                    events.append(StreamClosed())
                    return
            else:  # comment or processing instruction
                raise RestrictedXml(f"{action} not allowed")
        # Whitespace keepalives land in the last stanza's tail: drop them so an
        # idle stream does not grow (see docs on lxml cleanup in style notes).
        if self._root is not None and len(self._root):
            self._root[-1].tail = None

    def _open(self, root: etree._Element) -> StreamOpened:
        if root.getroottree().docinfo.doctype:
            raise RestrictedXml("DOCTYPE not allowed")
        self._root = root
        return StreamOpened(root.tag, dict(root.attrib), dict(root.nsmap))

    def _detach(self, el: etree._Element) -> etree._Element:
        """Copy the completed stanza out of the tree and free older siblings."""
        for _ in el.iter(etree.Entity, etree.Comment, etree.ProcessingInstruction):
            raise RestrictedXml("entity reference not allowed")
        stanza = copy.deepcopy(el)
        # Never unlink the element whose end event we are handling (libxml2 may
        # still point at it); remove everything before it instead.
        root = self._root
        if root is not None and len(root) > 1:
            del root[:-1]
        self._count.stanzas += 1
        return stanza


def _syntax_error(e: etree.XMLSyntaxError) -> StreamError:
    message = str(e.msg or e)
    if "Entity" in message or "DOCTYPE" in message:
        return RestrictedXml(message)
    if "encoding" in message.lower() or "UTF-8" in message:
        return UnsupportedEncoding(message)
    return NotWellFormed(message)
