"""The stream's lxml parsers: how one is made, and kept for the next stream when one ends.

Split from :mod:`xmlchat.xml.stream`, which uses them.
"""

from __future__ import annotations

import contextlib
from typing import Final

from lxml import etree

# Parsers whose stream rested or ended, closed, for the next stream to take:
# an lxml parser dropped is a reference cycle (with libxml2's context, ~10 KiB)
# that only the garbage collector frees, and the server runs it rarely.
SPARE: list[etree.XMLPullParser] = []
SPARE_MAX: Final = 64


def new_parser() -> etree.XMLPullParser:
    if SPARE:
        return SPARE.pop()
    # RFC 6120 §11.1: no DTDs, no entities but the predefined five. "internal"
    # makes libxml2 reject undeclared entity references (with False, libxml2
    # 2.14 silently stops parsing); a DOCTYPE never reaches it (see PrologScreen).
    return etree.XMLPullParser(
        events=("start", "end", "comment", "pi"),
        resolve_entities="internal",
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        collect_ids=False,
        encoding="utf-8",  # RFC 6120 §11.6: UTF-8 only, whatever a declaration says
    )


def recycle(parser: etree.XMLPullParser, open_root: etree._Element | None, clean: bool) -> None:
    """End ``parser``'s document and keep the parser for the next stream;
    close() frees the document and resets the parser.

    lxml keeps every element whose end it has not parsed on a stack of the
    parser's context, which close() does not empty: a root left open there
    keeps its whole document for as long as the parser lives. So the root
    of a stream between stanzas (``open_root``) is ended first, and a parser
    in any other unfinished state (``clean`` false: cut inside a stanza, or
    failed) is not kept: dropped, the collector frees it."""
    if open_root is not None:
        name = etree.QName(open_root).localname
        prefix = open_root.prefix
        try:
            parser.feed(f"</{prefix}:{name}>" if prefix else f"</{name}>")
        except etree.XMLSyntaxError:
            return  # not between stanzas after all: not kept
    elif not clean:
        return
    with contextlib.suppress(etree.XMLSyntaxError):
        parser.close()
    for _ in parser.read_events():
        pass
    if len(SPARE) < SPARE_MAX:
        SPARE.append(parser)
