"""A room's recent messages, sent to each new occupant (XEP-0045 §7.2.15).

The client limits what it gets with ``<history maxstanzas= maxchars= seconds=
since=/>`` in its join presence; each message goes out with a XEP-0203
``<delay>`` from the room saying when the room first sent it.
"""

from __future__ import annotations

from collections import deque
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree

from xmlchat.jid import JID
from xmlchat.modules.muc.names import MUC
from xmlchat.stanza import DELAY_NS, to_bytes


@dataclass(frozen=True, slots=True)
class Limits:
    """What a joining client asked for; None: no limit of that kind."""

    max_stanzas: int | None = None
    max_chars: int | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    stanza: etree._Element  # as broadcast, without 'to'
    stamp: datetime
    chars: int  # its size as XML, what maxchars counts (§7.2.15)


class History:
    def __init__(self, size: int) -> None:
        self._entries: deque[_Entry] = deque(maxlen=max(size, 0))

    def add(self, stanza: etree._Element, stamp: datetime) -> None:
        if self._entries.maxlen:
            kept = deepcopy(stanza)
            kept.attrib.pop("to", None)
            self._entries.append(_Entry(kept, stamp, len(to_bytes(kept))))

    def select(self, limits: Limits, room: JID) -> list[etree._Element]:
        """The newest messages within ``limits``, oldest first, each a fresh
        copy with its ``<delay>`` (the caller sets 'to')."""
        chosen: list[_Entry] = []
        chars = 0
        for entry in reversed(self._entries):
            if limits.max_stanzas is not None and len(chosen) >= limits.max_stanzas:
                break
            if limits.since is not None and entry.stamp < limits.since:
                break
            chars += entry.chars
            if limits.max_chars is not None and chars > limits.max_chars:
                break
            chosen.append(entry)
        return [_delayed(entry, room) for entry in reversed(chosen)]


def _delayed(entry: _Entry, room: JID) -> etree._Element:
    out = deepcopy(entry.stanza)
    stamp = entry.stamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    etree.SubElement(out, f"{{{DELAY_NS}}}delay", {"from": str(room), "stamp": stamp}, nsmap={None: DELAY_NS})
    return out


def limits_of(join: etree._Element | None, now: datetime) -> Limits:
    """The ``<history/>`` of a join's ``<x xmlns='…muc'>``; malformed values are ignored."""
    history = None if join is None else join.find(f"{{{MUC}}}history")
    if history is None:
        return Limits()
    since = _time(history.get("since"))
    seconds = _number(history.get("seconds"))
    if seconds is not None:
        cutoff = now - timedelta(seconds=seconds)
        since = cutoff if since is None else max(since, cutoff)
    return Limits(_number(history.get("maxstanzas")), _number(history.get("maxchars")), since)


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
