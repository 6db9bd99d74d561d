"""Byte screens: what libxml2 must not see, or would stall on, caught before it does.

:class:`~xmlchat.xml.stream.StanzaStream` passes every slice of input through
these screens before feeding it to lxml's pull parser. Each screen keeps the
few bytes of state a construct split across reads needs, so a fault is found
at the same byte however the input is chunked. Sans-IO, like the stream.
"""

from __future__ import annotations

import re
from typing import Final

from xmlchat.errors import NotWellFormed, RestrictedXml, StreamError, UnsupportedEncoding

# A byte screen returns the offset in the piece of the first offending byte and
# the error to raise, or None. The stream parses the bytes before that offset
# first, so the error's ``events`` do not depend on how the bytes were split.
Fault = tuple[int, StreamError]


class PrologScreen:
    """Refuse a DOCTYPE before libxml2 parses any of it, whatever the chunking.

    Before the root start tag an XMPP stream may hold only the XML declaration
    and whitespace (RFC 6120 §11.1: no DTD, comment or PI). The declaration
    contains no '<' or '>', so the first '<' may open "<?" and the next '<' must
    start the root: "<!" (DOCTYPE or comment), a second "<?" or a '<' inside the
    "<?...>" is refused. A PI in first place is refused by its parser event.
    After the root start tag libxml2 itself rejects a DOCTYPE as not well-formed.
    """

    def __init__(self) -> None:
        self.done = False  # the root start tag has begun
        self._in_decl = False
        self._seen_decl = False
        self._carry = b""  # a final '<' whose next byte has not arrived yet
        self._decl = b""  # the XML declaration so far, to read its encoding

    def screen(self, piece: bytes) -> Fault | None:
        data, shift = self._carry + piece, len(self._carry)
        self._carry = b""
        pos = 0
        while not self.done:
            if self._in_decl:
                end, lt = data.find(b">", pos), data.find(b"<", pos)
                if lt != -1 and (end == -1 or lt < end):
                    return max(0, lt - shift), RestrictedXml("processing instruction not allowed")
                self._decl += data[pos:] if end == -1 else data[pos:end]
                if end == -1:
                    return None
                if not _utf8_declared(self._decl):
                    # RFC 6120 §11.6: UTF-8 only, and a stream saying otherwise is refused.
                    return max(0, end - shift), UnsupportedEncoding("only UTF-8 is allowed")
                self._in_decl, pos = False, end + 1
                continue
            lt = data.find(b"<", pos)
            if lt == -1:
                return None
            if lt + 1 == len(data):
                self._carry = b"<"
                return None
            mark = data[lt + 1 : lt + 2]
            if mark == b"!":
                return max(0, lt - shift), RestrictedXml("DOCTYPE and comments not allowed")
            if mark != b"?":
                self.done = True
            elif self._seen_decl:
                return max(0, lt - shift), RestrictedXml("processing instruction not allowed")
            else:
                self._seen_decl = self._in_decl = True
                pos = lt + 2
        return None


_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")


def _utf8_declared(declaration: bytes) -> bool:
    """No encoding pseudo-attribute, or one naming UTF-8 (XML 1.0 §4.3.3)."""
    found = _ENCODING.search(declaration)
    return found is None or found.group(1).lower() in (b"utf-8", b"utf8")


_AMP_OR_CDATA: Final = re.compile(rb"&|<!\[CDATA\[")
_NAME: Final = rb"[A-Za-z_:\x80-\xff][A-Za-z0-9_:.\x80-\xff-]*"  # XML Name, loosely, in bytes
_REFERENCE: Final = re.compile(rb"&(?:#[0-9]+|#x[0-9A-Fa-f]+|" + _NAME + rb");")
_REFERENCE_START: Final = re.compile(rb"&(?:#[0-9]*|#x[0-9A-Fa-f]*|" + _NAME + rb")?")
_CDATA_OPEN: Final = b"<![CDATA["


class ReferenceScreen:
    """Refuse at once an '&' that does not start a reference.

    libxml2 2.14's push parser waits for a ';' after an '&' in content before
    going on, so one unescaped '&' ("AT&T") would stall the stream silently
    until some later ';' — or until the size limit. Outside CDATA sections (and
    comments and PIs, which are refused anyway) every '&', in text or in an
    attribute value, must start "&name;", "&#digits;" or "&#xhex;". libxml2
    then refuses names other than the five predefined entities (restricted-xml).
    """

    def __init__(self) -> None:
        self._in_cdata = False
        self._carry = b""  # an undecided tail: part of a reference, "<![CDATA[" or "]]>"

    def screen(self, piece: bytes) -> Fault | None:
        data, shift = self._carry + piece, len(self._carry)
        self._carry = b""
        pos = 0
        while True:
            if self._in_cdata:
                end = data.find(b"]]>", pos)
                if end == -1:
                    brackets = len(data) - len(data.rstrip(b"]"))
                    self._carry = b"]" * min(brackets, 2)
                    return None
                self._in_cdata, pos = False, end + 3
                continue
            found = _AMP_OR_CDATA.search(data, pos)
            if found is None:
                lt = data.rfind(b"<", max(pos, len(data) - len(_CDATA_OPEN)))
                if lt != -1 and _CDATA_OPEN.startswith(data[lt:]):
                    self._carry = data[lt:]
                return None
            if found.group() == _CDATA_OPEN:
                self._in_cdata, pos = True, found.end()
                continue
            reference = _REFERENCE.match(data, found.start())
            if reference is not None:
                pos = reference.end()
                continue
            rest = data[found.start() :]
            if _REFERENCE_START.fullmatch(rest):
                # Undecided: keep its state in a few bytes ("&#x0000..." is legal).
                self._carry = rest[: 4 if rest.startswith(b"&#x") else 3 if rest.startswith(b"&#") else 2]
                return None
            error = NotWellFormed("'&' must start an entity or character reference")
            return max(0, found.start() - shift), error
