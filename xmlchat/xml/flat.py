"""Flat stanzas read as fields while they are parsed, with no tree copied out.

A flat stanza is one element, without attributes, whose children are leaf
elements without attributes, each name at most once, with only whitespace
between them: the native protocol's ``<message>`` (``<message><to>bob</to>
<body>hi</body></message>``). :class:`~xmlchat.xml.stream.StanzaStream`
delivers every stanza as a detached copy of its tree; for a stanza it was
told to read flat (:meth:`~xmlchat.xml.stream.StanzaStream.read_flat`) it
hands the children's texts to a reader instead, while it parses: the
element proxies it makes for each parser event anyway give the names and
texts, so no copy is made and no child is visited twice. Profiled on the
native message path, the copy and the second visit were a third of the
Python work of a parse.

lxml stays the parser: what reaches this module passed libxml2 and every
check of the stream (limits, names, no DTD, no entities, no comments or
processing instructions). Whatever is not flat, or what the reader declines
(returns None for), is delivered as before, as a copied tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from lxml import etree

# XML 1.0 §2.3 production [3] S (XSD's \s is the same four characters).
_XML_SPACE: Final = " \t\r\n"


class FlatReader:
    """Reads one kind of flat stanza (``tag``), child by child, as the stream's
    parser events arrive; ``children``: the children allowed, by Clark name,
    and the key each text gets; ``read``: what the fields mean, or None for
    "deliver the tree instead"."""

    __slots__ = ("_children", "_fields", "_key", "_last", "_read", "_tag")

    def __init__(
        self, tag: str, children: Mapping[str, str], read: Callable[[dict[str, str]], object | None]
    ) -> None:
        self._tag = tag
        self._children = children
        self._read = read
        # The stanza being parsed: its fields so far, None if it is not flat;
        # the key of the child open; the last child ended (its tail is complete
        # once the next child starts or the stanza ends; libxml2 may still be
        # adding to it before).
        self._fields: dict[str, str] | None = None
        self._key = ""
        self._last: etree._Element | None = None

    def start(self, depth: int, tag: str, attributes: list[str]) -> None:
        """An element started at ``depth`` (the stanza is 2)."""
        if depth == 2:
            self._fields = {} if tag == self._tag and not attributes else None
            self._last = None
            return
        fields = self._fields
        if fields is None:
            return
        key = self._children.get(tag) if depth == 3 and not attributes else None
        if key is None or key in fields or not self._last_tail_blank():
            self._fields = None  # a grandchild, an attribute, a repeat, text between
            self._last = None
            return
        self._key = key

    def end(self, child: etree._Element) -> None:
        """A child of the stanza (depth 3) ended."""
        fields = self._fields
        if fields is not None:
            fields[self._key] = child.text or ""
            self._last = child

    def finish(self, stanza: etree._Element) -> object | None:
        """The stanza ended: what ``read`` makes of it, or None (deliver its tree)."""
        fields = self._fields
        blank = fields is not None and self._last_tail_blank()
        self._fields = self._last = None
        if fields is None or not blank:
            return None
        text = stanza.text
        if text and text.strip(_XML_SPACE):
            return None
        return self._read(fields)

    def _last_tail_blank(self) -> bool:
        last = self._last
        if last is None:
            return True
        tail = last.tail
        return not (tail and tail.strip(_XML_SPACE))
