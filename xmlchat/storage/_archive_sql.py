"""The archive's SQL, shared by the SQLite and PostgreSQL backends (XEP-0313, XEP-0059).

Pure text building, no I/O: a backend first resolves the archive ids a query
pages from (:func:`bound_ids`) to their ``seq`` (archive order), then asks for
the WHERE clauses with its own parameter mark (``?`` or ``%s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from xmlchat.jid import JID
from xmlchat.storage.base import ArchivedMessage, ArchiveQuery, PageRequest

COLUMNS: Final = "seq, id, with_jid, stanza, stamp, outgoing"
# A fresh id colliding with a stored one is a 2^-96 event; retry rather than fail.
ID_ATTEMPTS: Final = 5

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

Row = tuple[int, str, str, bytes, int, int | bool]
Clauses = tuple[list[str], list[object]]


def micros(when: datetime) -> int:
    """Stamps are kept as integer microseconds since the epoch, so time filters
    and expiry compare numbers, never strings of varying precision."""
    if when.tzinfo is None:
        raise ValueError("archive times must be timezone-aware")
    return (when - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def bound_ids(query: ArchiveQuery, page: PageRequest | None = None) -> list[str]:
    """The archive ids whose place in the order the clauses need."""
    bounds = [query.after_id, query.before_id]
    if page is not None:
        bounds += [page.after, page.before]
    return [bound for bound in bounds if bound is not None]


def query_filter(jid: str, query: ArchiveQuery, seqs: Mapping[str, int], mark: str) -> Clauses:
    """Which of ``jid``'s messages match ``query``; ``seqs`` maps each of
    :func:`bound_ids` to its seq."""
    where: list[str] = [f"jid = {mark}"]
    args: list[object] = [jid]
    if query.with_ is not None:
        where.append(f"with_jid = {mark}")
        args.append(str(query.with_.bare))
    if query.start is not None:
        where.append(f"stamp >= {mark}")
        args.append(micros(query.start))
    if query.end is not None:
        where.append(f"stamp <= {mark}")
        args.append(micros(query.end))
    if query.ids is not None:
        where.append(f"id IN ({', '.join([mark] * len(query.ids))})" if query.ids else "1 = 0")
        args.extend(query.ids)
    _bounds(where, args, query.after_id, query.before_id, seqs, mark)
    return where, args


def page_window(clauses: Clauses, page: PageRequest, seqs: Mapping[str, int], mark: str) -> Clauses:
    """The query's clauses narrowed to the page's after/before."""
    where, args = list(clauses[0]), list(clauses[1])
    _bounds(where, args, page.after, page.before, seqs, mark)
    return where, args


def page_select(clauses: Clauses, page: PageRequest, mark: str) -> tuple[str, list[object]]:
    """One row more than the page holds, so the caller knows if it is complete."""
    order = "DESC" if page.backwards else "ASC"
    where, args = clauses
    sql = f"SELECT {COLUMNS} FROM archive WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT {mark}"
    return sql, [*args, page.max + 1]


def count_select(clauses: Clauses) -> tuple[str, list[object]]:
    where, args = clauses
    return f"SELECT count(*) FROM archive WHERE {' AND '.join(where)}", args


def before_seq(clauses: Clauses, seq: int, mark: str) -> Clauses:
    """For a page's first_index: the matches before ``seq``."""
    return [*clauses[0], f"seq < {mark}"], [*clauses[1], seq]


def message(row: Row) -> ArchivedMessage:
    _, archive_id, with_jid, stanza, stamp, outgoing = row
    return ArchivedMessage(archive_id, JID.parse(with_jid), bytes(stanza), from_micros(stamp), bool(outgoing))


def _bounds(
    where: list[str],
    args: list[object],
    after: str | None,
    before: str | None,
    seqs: Mapping[str, int],
    mark: str,
) -> None:
    for bound, op in ((after, ">"), (before, "<")):
        if bound is not None:
            where.append(f"seq {op} {mark}")
            args.append(seqs[bound])
