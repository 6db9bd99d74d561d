"""The message archive (XEP-0313) of :class:`~xmlchat.storage.memory.MemoryStorage`:
the same semantics as :mod:`xmlchat.storage._archive`, on lists in archive order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from xmlchat.jid import JID
from xmlchat.storage.base import (
    ArchivedMessage,
    ArchiveIdNotFound,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    PageRequest,
    new_archive_id,
)

# (seq, message): seq is archive order across all users, as the table's AUTOINCREMENT.
Entry = tuple[int, ArchivedMessage]
Predicate = Callable[[Entry], bool]


@dataclass
class MemoryArchive:
    messages: dict[str, list[Entry]] = field(default_factory=dict)
    prefs: dict[str, ArchivePrefs] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    last_seq: int = 0

    def forget(self, user: str) -> None:
        for _, message in self.messages.pop(user, []):
            self.ids.discard(message.id)
        self.prefs.pop(user, None)

    def add(self, user: str, with_: JID, stanza: bytes, stamp: datetime, outgoing: bool) -> str:
        if stamp.tzinfo is None:
            raise ValueError("archive times must be timezone-aware")
        archive_id = new_archive_id()
        while archive_id in self.ids:
            archive_id = new_archive_id()
        self.ids.add(archive_id)
        self.last_seq += 1
        message = ArchivedMessage(archive_id, with_.bare, stanza, stamp.astimezone(UTC), outgoing)
        self.messages.setdefault(user, []).append((self.last_seq, message))
        return archive_id

    def query(self, user: str, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
        if page.max < 0:
            raise ValueError("max must not be negative")
        matching = self.matching(user, query)
        inside = _bounds(self._seq(user, page.after), self._seq(user, page.before))
        window = [e for e in matching if inside(e)]
        start = max(0, len(window) - page.max) if page.backwards else 0
        taken = window[start : start + page.max]
        complete = len(window) <= page.max
        first_index = None if not taken else sum(1 for seq, _ in matching if seq < taken[0][0])
        return ArchivePage([m for _, m in taken], len(matching), first_index, complete)

    def matching(self, user: str, query: ArchiveQuery) -> list[Entry]:
        tests = [
            _bounds(self._seq(user, query.after_id), self._seq(user, query.before_id)),
            *_conditions(query),
        ]
        return [e for e in self.messages.get(user, []) if all(test(e) for test in tests)]

    def expire(self, older_than: datetime) -> int:
        if older_than.tzinfo is None:
            raise ValueError("archive times must be timezone-aware")
        removed = 0
        for user, entries in self.messages.items():
            kept = [e for e in entries if e[1].stamp >= older_than]
            removed += len(entries) - len(kept)
            self.ids.difference_update(m.id for _, m in entries if m.stamp < older_than)
            self.messages[user] = kept
        return removed

    def _seq(self, user: str, archive_id: str | None) -> int | None:
        if archive_id is None:
            return None
        for seq, message in self.messages.get(user, []):
            if message.id == archive_id:
                return seq
        raise ArchiveIdNotFound(archive_id)


def _bounds(after: int | None, before: int | None) -> Predicate:
    return lambda e: (after is None or e[0] > after) and (before is None or e[0] < before)


def _conditions(query: ArchiveQuery) -> list[Predicate]:
    tests: list[Predicate] = []
    if query.with_ is not None:
        with_ = query.with_.bare
        tests.append(lambda e: e[1].with_ == with_)
    if query.start is not None or query.end is not None:
        start, end = query.start, query.end
        if (start and start.tzinfo is None) or (end and end.tzinfo is None):
            raise ValueError("archive times must be timezone-aware")
        tests.append(lambda e: (start is None or e[1].stamp >= start) and (end is None or e[1].stamp <= end))
    if query.ids is not None:
        ids = frozenset(query.ids)
        tests.append(lambda e: e[1].id in ids)
    return tests
