"""The stanza stream: bytes in, stream events out. Sans-IO: no sockets here.

One :class:`StanzaStream` per XML stream (a new one after each XMPP stream
restart, RFC 6120 §4.3.3). ``feed(bytes)`` accepts any chunking — one byte at a
time, a chunk ending inside a multi-byte UTF-8 character, many stanzas at once —
and returns the events those bytes completed; the same bytes give the same
events however they are split, each returned by the call that fed its last '>':

* :class:`StreamOpened` — the root element's start tag (the stream header);
* :class:`StanzaReceived` — one complete depth-1 element, detached from the tree
  (no parent, no tail, only the namespace declarations its names use);
* :class:`StanzaRead` — in place of a :class:`StanzaReceived`, for a flat stanza
  a :class:`~xmlchat.xml.flat.FlatReader` read as fields (:meth:`StanzaStream.read_flat`);
* :class:`StreamClosed` — the root element's end tag. Bytes after it are ignored.

Every limit or restriction violation raises a :class:`~xmlchat.errors.StreamError`
subclass; after one, the stream is dead (libxml2 resumes after errors, so we must
not) and every later ``feed()`` raises it again. The error's ``events`` attribute
holds the events the failing call completed before the offending bytes (say, a
valid stanza followed by garbage in the same read), so the caller can handle them
as if they had come in an earlier read; on the later re-raises it is empty.

The byte-level checks that must run before libxml2 sees the bytes (a DOCTYPE,
a stray '&') live in :mod:`xmlchat.xml.screens`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
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
from xmlchat.xml.flat import FlatReader
from xmlchat.xml.parsers import new_parser, recycle
from xmlchat.xml.screens import Fault, PrologScreen, ReferenceScreen

# Large reads are fed in slices this big, so the stanza size limit is enforced
# while bytes arrive (to within two slices), not after a huge stanza is built.
FEED_SLICE: Final = 4096

_XML_SPACE: Final = b" \t\r\n"  # XML 1.0 §2.3 production [3] S


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


@dataclass(frozen=True, slots=True)
class StanzaRead:
    """A stanza read as fields while parsed (:meth:`StanzaStream.read_flat`):
    what the reader made of them, in place of the tree."""

    value: object


StreamEvent = StreamOpened | StanzaReceived | StanzaRead | StreamClosed


@dataclass(frozen=True, slots=True)
class StreamLimits:
    # Bytes from the end of one stanza (or of the stream header) to the end of
    # the next, enforced to within two FEED_SLICEs; a stanza of at most this
    # size is always accepted. Whitespace keepalives between stanzas do not
    # count. The stream header is held to the same limit.
    max_stanza_bytes: int = 256 * 1024
    # Element nesting, counting the stream root as 1 and a stanza as 2.
    max_depth: int = 32


@dataclass(slots=True)
class _Counters:
    depth: int = 0
    pending_bytes: int = 0  # bytes of the stanza being received so far
    stanzas: int = 0


class StanzaStream:
    """Incremental parser of one XML stream of stanzas."""

    def __init__(self, limits: StreamLimits = StreamLimits()) -> None:
        self.limits = limits
        self._parser: etree.XMLPullParser | None = new_parser()
        self._prolog = PrologScreen()
        self._references = ReferenceScreen()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._count = _Counters()
        self._root: etree._Element | None = None
        self._failed: StreamError | None = None
        self.closed = False
        # The stream header as a start tag, kept while the parser rests (rest()).
        self._header = b""
        self._flat: FlatReader | None = None

    def read_flat(self, reader: FlatReader) -> None:
        """From the next stanza parsed, deliver the stanzas ``reader`` reads as
        :class:`StanzaRead` (:mod:`xmlchat.xml.flat`); the rest as before."""
        self._flat = reader

    @property
    def stanzas_received(self) -> int:
        return self._count.stanzas

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Parse ``data``; return the events it completed, in order.

        Raises a StreamError on the first violation, with the events completed
        before it in ``error.events``; raises it again on any later call.
        """
        if self._failed is not None:
            _set_events(self._failed, [])
            raise self._failed.with_traceback(None)
        if self._parser is None and data:
            self._wake()
        events: list[StreamEvent] = []
        try:
            for start in range(0, len(data), FEED_SLICE):
                if self.closed:
                    break
                self._feed_slice(data[start : start + FEED_SLICE], events)
        except StreamError as e:
            self._failed = e
            _set_events(e, events)
            raise
        return events

    def rest(self, final: bool = False) -> bool:
        """Free the parser while nothing is half-received (between stanzas of
        an open stream): libxml2's context and buffers are about 10 KiB, most
        of an idle session. The next :meth:`feed` parses the stream header
        again into a new parser, without an event, and goes on. False when
        the stream is not between stanzas (or has ended, or failed).

        ``final``: the stream is over (the connection ended, or a restart
        replaced it): give the parser back whatever its state; nothing may be
        fed after."""
        root = self._root
        between = self._between_stanzas()
        if final:
            if self._parser is not None:
                self._root = None
                recycle(self._parser, root if between else None, clean=between or self._ended_clean())
                self._parser = None
            self.closed = True
            return True
        if not between:
            return False
        if self._parser is not None:
            assert root is not None  # _between_stanzas
            # The header as parsed: the same names, namespaces and xml:lang.
            header = etree.tostring(etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap))
            self._header = header[:-2] + b">"  # an empty element ends with "/>"
            self._root = None
            recycle(self._parser, root, clean=True)
            self._parser = None
        return True

    def _between_stanzas(self) -> bool:
        """The header parsed, and since then only whole stanzas and whitespace."""
        count = self._count
        return not (
            self._root is None
            or self.closed
            or self._failed is not None
            or count.depth != 1
            or count.pending_bytes
            or self._utf8.getstate()[0]
        )

    def _ended_clean(self) -> bool:
        """No element is open in the parser: its root ended, or none began."""
        return self._failed is None and self._count.depth == 0

    def _wake(self) -> None:
        parser = self._parser = new_parser()
        parser.feed(self._header)
        for _, root in parser.read_events():  # the root's start, and nothing else
            self._root = root

    def _feed_slice(self, piece: bytes, events: list[StreamEvent]) -> None:
        fault = self._screen(piece)
        if fault is None:
            self._parse(piece, events)
            return
        # Parse what precedes the offending byte first, as if it had come in an
        # earlier read: the events it completes are still delivered.
        offset, error = fault
        self._parse(piece[:offset], events)
        if not self.closed:  # bytes after the root end tag are ignored
            raise error

    def _screen(self, piece: bytes) -> Fault | None:
        """The first byte of ``piece`` that libxml2 must not see, or would stall on."""
        invalid: Fault | None = None
        buffered = len(self._utf8.getstate()[0])  # a character split by the last slice
        try:
            self._utf8.decode(piece)
        except UnicodeDecodeError as e:
            piece = piece[: max(0, e.start - buffered)]
            invalid = len(piece), UnsupportedEncoding(f"invalid UTF-8: {e.reason}")
        faults = [self._references.screen(piece)]
        if not self._prolog.done:
            faults.append(self._prolog.screen(piece))
        found = [fault for fault in faults if fault is not None]
        return min(found, key=lambda fault: fault[0]) if found else invalid

    def _parse(self, piece: bytes, events: list[StreamEvent]) -> None:
        depth_before = self._count.depth
        assert self._parser is not None  # feed() woke it
        try:
            self._parser.feed(piece)
        except etree.XMLSyntaxError as e:
            # Hand over what completed before the error, then fail — unless the
            # stream had closed: bytes after the root end tag are ignored.
            self._drain(events)
            if not self.closed:
                raise _syntax_error(e) from None
            return
        boundary = self._drain(events)
        if not self.closed:
            self._account(piece, boundary, depth_before)

    def _account(self, piece: bytes, boundary: bool, depth_before: int) -> None:
        """Count the bytes of the stanza being received; whitespace between stanzas is free.

        Keepalives (RFC 6120 §4.6.1) are the whitespace at depth 1. Pieces are
        counted whole, except where a stanza ends: there only what follows the
        last '>' counts. So the count never exceeds the stanza's size and falls
        short of it by less than two pieces (where it began, where it ended).
        """
        count = self._count
        if boundary:
            # The stream header or a stanza ended at some '>' of this piece;
            # only what follows the last '>' can belong to the next stanza.
            piece = piece[piece.rfind(b">") + 1 :]
            count.pending_bytes = 0
            between = count.depth <= 1
        else:
            between = count.pending_bytes == 0 and depth_before <= 1
        if between:
            piece = piece.lstrip(_XML_SPACE)
        count.pending_bytes += len(piece)
        if count.pending_bytes > self.limits.max_stanza_bytes:
            raise StanzaTooBig(f"stanza larger than {self.limits.max_stanza_bytes} bytes")

    def _drain(self, events: list[StreamEvent]) -> bool:
        """Turn parser events into stream events; True if a header or stanza ended."""
        count = self._count
        flat = self._flat
        boundary = False
        assert self._parser is not None
        for action, el in self._parser.read_events():
            if action == "start":
                depth = count.depth = count.depth + 1
                if depth > self.limits.max_depth:
                    raise TooDeep(f"elements nested deeper than {self.limits.max_depth}")
                # A start event's element is an element: its tag a str (a comment's is a function).
                tag: str = el.tag  # type: ignore[assignment]
                attributes = el.keys()
                _check_names(tag, attributes)
                if depth == 1:
                    events.append(self._open(el))
                    boundary = True
                elif flat is not None:
                    flat.start(depth, tag, attributes)
            elif action == "end":
                depth = count.depth = count.depth - 1
                if depth == 1:
                    read = flat.finish(el) if flat is not None else None
                    events.append(StanzaReceived(self._detach(el)) if read is None else StanzaRead(read))
                    self._free_previous(el)
                    boundary = True
                elif depth == 2 and flat is not None:
                    flat.end(el)
                elif depth == 0:
                    self.closed = True
                    events.append(StreamClosed())
                    return boundary
            else:  # comment or processing instruction
                raise RestrictedXml(f"{action} not allowed")
        # Whitespace keepalives land in root.text (before the first stanza) or in
        # the last stanza's tail: drop them so an idle stream does not grow.
        # Only ever set them to None: libxml2 may still append to its last text node.
        root = self._root
        if root is not None:
            root.text = None
            if len(root):
                root[-1].tail = None
        return boundary

    def _open(self, root: etree._Element) -> StreamOpened:
        self._root = root
        attrib = {str(k): str(v) for k, v in root.attrib.items()}
        return StreamOpened(str(root.tag), attrib, dict(root.nsmap))

    def _detach(self, el: etree._Element) -> etree._Element:
        """A copy of the completed stanza, out of the tree."""
        # The copy declares only the namespaces its names use: no xmlns:stream.
        # (lxml's copies are deep; calling __copy__ skips the copy module's dispatch.)
        stanza: etree._Element = el.__copy__()  # type: ignore[attr-defined]
        stanza.tail = None
        return stanza

    def _free_previous(self, el: etree._Element) -> None:
        """Free the stanza before ``el``, which just ended (the one before that went at its own end)."""
        # Never unlink the element just ended, which may be the last
        # child (libxml2 may still point at it or at its tail); nor any later
        # one, whose end is still to be drained: lxml rewrites the namespaces
        # of a subtree it moves out of a tree, wrongly when a prefix is
        # redeclared inside (<p:a xmlns:p='u'><b xmlns='u' xmlns:p='v'/></p:a>
        # then serialises <b> as <p:b xmlns:p='v'/>).
        previous = el.getprevious()
        if previous is not None and self._root is not None:
            self._root.remove(previous)
        self._count.stanzas += 1


def _check_names(tag: str, attributes: list[str]) -> None:
    """Refuse an undeclared prefix (XML-NAMES §5), which libxml2 lets through.

    Its name keeps the colon and gets no namespace: "foo:bar" instead of "{uri}bar".
    """
    for name in (tag, *attributes) if attributes else (tag,):
        if ":" in name and name[0] != "{":
            raise NotWellFormed(f"undeclared namespace prefix: {name}")


def _set_events(error: StreamError, events: list[StreamEvent]) -> None:
    error.events = events


def _syntax_error(e: etree.XMLSyntaxError) -> StreamError:
    message = str(e.msg or e)
    if "Entity" in message or "DOCTYPE" in message:
        return RestrictedXml(message)
    if "encoding" in message.lower() or "UTF-8" in message:
        return UnsupportedEncoding(message)
    return NotWellFormed(message)
