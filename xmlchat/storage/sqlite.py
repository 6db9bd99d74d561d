"""The SQLite store: accounts, offline messages (XEP-0160), rosters (RFC 6121), rooms (XEP-0045).

Database work runs on two dedicated threads, each owning its connection
(_threads.py): every write on the writer, in order, each call one
transaction; reads on a reader beside it, so commits never queue behind
them. The event loop never blocks on disk. PBKDF2 for new SCRAM keys is CPU
work, not database work: it runs in the loop's default executor so a burst
of logins does not queue reads.

A cancelled call still finishes on its thread (a started transaction
commits); only the awaiting coroutine stops waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from xmlchat.jid import JID
from xmlchat.storage import _archive as aq
from xmlchat.storage import _blocklist as bq
from xmlchat.storage import _offline as oq
from xmlchat.storage import _personal as pq
from xmlchat.storage import _queries as q
from xmlchat.storage import _rooms as rq
from xmlchat.storage import scram
from xmlchat.storage._group_commit import GroupCommit
from xmlchat.storage._threads import StoreThreads
from xmlchat.storage.base import (
    BLOCKLIST_LIMIT,
    SUBSCRIPTIONS,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    MessageOrigin,
    NoSuchUser,
    OfflineMessage,
    OfflineQueueFull,
    PageRequest,
    RosterChange,
    RosterItem,
    ScramCredentials,
    StoredRoom,
    UserExists,
    blocking_items,
    check_archive_prefs,
    check_room,
    require_user_address,
)
from xmlchat.storage.personal import PepItem, PepNode, check_pep_node

__all__ = [
    "NoSuchUser",
    "OfflineMessage",
    "OfflineQueueFull",
    "RosterItem",
    "ScramCredentials",
    "SqliteStorage",
    "UserExists",
]

P = ParamSpec("P")
T = TypeVar("T")


class SqliteStorage:
    """Open with ``await SqliteStorage.open(path)``; ``await close()`` when done.

    Implements :class:`xmlchat.storage.interfaces.Storage`; the contracts are
    documented there.
    """

    def __init__(self, threads: StoreThreads, scram_iterations: int) -> None:
        self._threads = threads
        self._iterations = scram_iterations
        self._closed = False
        # Offline writes and deletes queued in this turn of the event loop (group commit).
        self._offline = GroupCommit(threads.writer, threads.conn)
        self._decoy = scram.make_decoy(scram_iterations)

    @classmethod
    async def open(
        cls, path: Path, scram_iterations: int = 4096, synchronous: str = "normal"
    ) -> SqliteStorage:
        """Open (creating the file and its parent directory) and migrate the database.
        ``synchronous``: "normal" survives a killed process, "full" a power cut too."""
        scram.require_iterations(scram_iterations)
        return cls(await StoreThreads.open(Path(path), synchronous), scram_iterations)

    async def close(self) -> None:
        """Close the connections (checkpointing the WAL) and stop their threads."""
        if self._closed:
            return
        self._offline.flush()  # before the connection closes behind it
        try:
            await self._threads.close()
        finally:
            self._closed = True

    async def _run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A write (or a read that must keep its place among the writes), on the writer."""
        if self._closed:
            raise RuntimeError("storage is closed")
        return await self._threads.write(fn, *args, **kwargs)

    async def _read(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A read, on the reader: it sees every write submitted before it."""
        if self._closed:
            raise RuntimeError("storage is closed")
        return await self._threads.read(fn, *args, **kwargs)

    # -- accounts -------------------------------------------------------------

    async def create_user(self, jid: JID, password: str) -> None:
        """Raises :class:`UserExists`, or ValueError if SASLprep rejects the password."""
        key = _user_key(jid)
        keys = await _derive_all(password, self._iterations)
        await self._run(q.create_user, key, jid.domain, keys)

    async def set_password(self, jid: JID, password: str) -> None:
        """Replace every SCRAM key; raises :class:`NoSuchUser`."""
        key = _user_key(jid)
        keys = await _derive_all(password, self._iterations)
        await self._run(q.set_scram, key, keys)

    async def delete_user(self, jid: JID) -> bool:
        """Delete the account with everything of theirs, in one transaction."""
        return await self._run(q.delete_user, _key(jid))

    async def user_exists(self, jid: JID) -> bool:
        return await self._read(q.user_exists, _key(jid))

    async def list_users(self, host: str | None = None) -> list[JID]:
        """Bare JIDs, sorted by their string form; only ``host``'s when given."""
        return await self._read(q.list_users, host)

    async def count_users(self) -> int:
        return await self._read(q.count_users)

    async def get_scram(self, jid: JID, mechanism: str) -> ScramCredentials | None:
        return await self._read(q.get_scram, _key(jid), mechanism)

    async def check_password(self, jid: JID, password: str) -> bool:
        """For PLAIN: hash ``password`` with the stored salt and compare StoredKeys."""
        stored = await self.get_scram(jid, scram.CHECK_MECHANISM)
        return await asyncio.to_thread(scram.password_matches, password, stored, self._decoy)

    # -- offline messages (XEP-0160) -----------------------------------------

    async def store_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None = None,
    ) -> int:
        """Queue ``stanza``; returns its id. Raises :class:`OfflineQueueFull`, or
        :class:`DuplicateMessage` for a re-send of ``origin`` within its window."""
        return await self._offline.write(self._write(to, stanza, received, limit, origin))

    def queue_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None,
        done: Callable[[int, BaseException | None], None],
    ) -> None:
        """:meth:`store_offline` without waiting: the write joins this turn's
        commit at once; ``done`` gets its id once committed, or the exception
        (:class:`~.interfaces.QueuedOfflineStore`)."""
        self._offline.enqueue(self._write(to, stanza, received, limit, origin), done)

    def _write(
        self, to: JID, stanza: bytes, received: datetime, limit: int, origin: MessageOrigin | None
    ) -> oq.OfflineWrite:
        if received.tzinfo is None:
            raise ValueError("received must be timezone-aware")
        if self._closed:
            raise RuntimeError("storage is closed")
        if received.tzinfo is not UTC:
            received = received.astimezone(UTC)
        return oq.OfflineWrite(str(to.bare), stanza, received.isoformat(), limit, origin)

    async def delete_offline_ids(self, to: JID, ids: Sequence[int]) -> None:
        """Delete these of ``to``'s messages (the client acknowledged them); the
        delete shares the next commit of writes (see _group_commit.py)."""
        if self._closed:
            raise RuntimeError("storage is closed")
        if ids:
            await self._offline.delete((_key(to), list(ids)))

    async def fetch_offline(
        self, to: JID, after_id: int = 0, limit: int | None = None
    ) -> list[OfflineMessage]:
        """Oldest first, ids > ``after_id``, at most ``limit``; nothing is deleted.
        On the writer, not the reader: it must see the writes and deletes
        queued before it, and a batch that commits after it must settle after
        it (the inbox leaves a message stored while its session replays,
        trusting the replay's next read to find it)."""
        with self._offline.read_in_order():  # a delete queued before this read goes before it
            return await self._run(oq.fetch_offline, _key(to), after_id, -1 if limit is None else limit)

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        """Delete ``to``'s messages with ids <= ``up_to_id``, once they are delivered."""
        self._offline.flush()
        await self._run(oq.delete_offline, _key(to), up_to_id)

    async def count_offline(self, to: JID | None = None) -> int:
        """Messages waiting for ``to``, or for everyone when None."""
        self._offline.flush()
        return await self._run(oq.count_offline, None if to is None else _key(to))

    # -- roster (RFC 6121 §2), versioned (§2.6) --------------------------------

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]:
        """Items sorted by contact JID, and the roster version (0 if never changed)."""
        return await self._read(q.get_roster, _key(user))

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None:
        return await self._read(q.get_roster_item, _key(user), _key(contact))

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        """Insert or replace the item for ``item.jid``; returns the new version."""
        if item.subscription not in SUBSCRIPTIONS:
            raise ValueError(f"invalid subscription {item.subscription!r}")
        return await self._run(q.put_roster_item, _key(user), item)

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        """Returns the new version (unchanged if there was no such item)."""
        return await self._run(q.delete_roster_item, _key(user), _key(contact))

    async def apply_roster_changes(self, changes: Sequence[RosterChange]) -> dict[JID, int]:
        """All of ``changes`` in one transaction on the worker thread, or none."""
        return await self._run(q.apply_roster_changes, list(changes))

    # -- pending inbound subscription requests (RFC 6121 §3.1.3) ---------------

    async def add_subscription_request(self, user: JID, contact: JID, stanza: bytes) -> None:
        """Keep ``contact``'s request to ``user``; a repeat replaces the stanza."""
        await self._run(q.add_subscription_request, _key(user), _key(contact), stanza)

    async def get_subscription_requests(self, user: JID) -> list[tuple[JID, bytes]]:
        """Oldest first."""
        return await self._read(q.get_subscription_requests, _key(user))

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        await self._run(q.delete_subscription_request, _key(user), _key(contact))

    # -- blocklist (XEP-0191) ----------------------------------------------------

    async def get_blocklist(self, user: JID) -> list[JID]:
        return await self._read(bq.get_blocklist, _key(user))

    async def block(
        self, user: JID, jids: Sequence[JID], *, limit: int = BLOCKLIST_LIMIT
    ) -> list[JID]:
        """Raises :class:`BlocklistFull` (adding none) past ``limit`` items."""
        added = await self._run(bq.block, _key(user), [str(j) for j in jids], limit)
        return [JID.parse(item) for item in added]

    async def unblock(self, user: JID, jids: Sequence[JID]) -> list[JID]:
        removed = await self._run(bq.unblock, _key(user), [str(j) for j in jids])
        return [JID.parse(item) for item in removed]

    async def unblock_all(self, user: JID) -> list[JID]:
        return await self._run(bq.unblock_all, _key(user))

    async def is_blocked(self, user: JID, contact: JID) -> bool:
        candidates = [str(item) for item in blocking_items(contact)]
        return await self._read(bq.is_blocked, _key(user), candidates)

    # -- message archive (XEP-0313) ----------------------------------------------

    async def archive_message(
        self, user: JID, with_: JID, stanza: bytes, stamp: datetime, *, outgoing: bool
    ) -> str:
        when = aq.micros(stamp)
        return await self._run(aq.archive_message, _key(user), _key(with_), stanza, when, outgoing)

    async def query_archive(self, user: JID, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
        if page.max < 0:
            raise ValueError("max must not be negative")
        return await self._read(aq.query_archive, _key(user), query, page)

    async def count_archive(self, user: JID, query: ArchiveQuery | None = None) -> int:
        return await self._read(aq.count_archive, _key(user), query or ArchiveQuery())

    async def expire_archive(self, older_than: datetime) -> int:
        return await self._run(aq.expire_archive, aq.micros(older_than))

    async def get_archive_prefs(self, user: JID) -> ArchivePrefs:
        return await self._read(aq.get_prefs, _key(user))

    async def set_archive_prefs(self, user: JID, prefs: ArchivePrefs) -> ArchivePrefs:
        stored = check_archive_prefs(prefs)
        await self._run(aq.set_prefs, _key(user), stored)
        return stored

    # -- persistent rooms (XEP-0045) -----------------------------------------------

    async def save_room(self, room: StoredRoom) -> None:
        await self._run(rq.save_room, check_room(room))

    async def delete_room(self, room: JID) -> bool:
        return await self._run(rq.delete_room, _key(room))

    async def load_rooms(self, service: str | None = None) -> list[StoredRoom]:
        return await self._read(rq.load_rooms, service)

    # -- documents (XEP-0049, XEP-0054) and PEP (XEP-0163) -------------------------

    async def get_document(self, user: JID, key: str) -> bytes | None:
        return await self._read(pq.get_document, _key(user), key)

    async def put_document(self, user: JID, key: str, data: bytes | None) -> None:
        await self._run(pq.put_document, _key(user), key, data)

    async def get_pep_node(self, user: JID, node: str) -> PepNode | None:
        return await self._read(pq.get_pep_node, _key(user), node)

    async def list_pep_nodes(self, user: JID) -> list[PepNode]:
        return await self._read(pq.list_pep_nodes, _key(user))

    async def put_pep_node(self, user: JID, node: PepNode) -> None:
        await self._run(pq.put_pep_node, _key(user), check_pep_node(node))

    async def delete_pep_node(self, user: JID, node: str) -> bool:
        return await self._run(pq.delete_pep_node, _key(user), node)

    async def publish_pep_item(self, user: JID, node: str, item: PepItem) -> None:
        await self._run(pq.publish_pep_item, _key(user), node, item)

    async def get_pep_items(
        self, user: JID, node: str, *, ids: Sequence[str] = (), limit: int | None = None
    ) -> list[PepItem]:
        return await self._read(pq.get_pep_items, _key(user), node, list(ids), -1 if limit is None else limit)

    async def retract_pep_item(self, user: JID, node: str, item_id: str) -> bool:
        return await self._run(pq.retract_pep_item, _key(user), node, item_id)


# -- keys (any thread) -------------------------------------------------------------


def _key(jid: JID) -> str:
    return str(jid.bare)


def _user_key(jid: JID) -> str:
    return str(require_user_address(jid))


async def _derive_all(password: str, iterations: int) -> list[ScramCredentials]:
    return await asyncio.to_thread(scram.derive_all, password, iterations)
