"""An in-memory store with the SQLite store's semantics, for unit tests of modules.

Rows are keyed by the same strings the SQLite tables use (``str(jid.bare)``) and
JIDs come back parsed from them, so both backends treat every JID alike. No
method awaits between reading and writing its state, so each call is atomic on
the event loop, as a transaction is in SQLite. SCRAM keys are derived inline
(no thread): a test's few accounts cost milliseconds at the minimum iteration
count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from xmlchat.jid import JID
from xmlchat.storage import scram
from xmlchat.storage._memory_archive import MemoryArchive
from xmlchat.storage._memory_personal import MemoryPersonal
from xmlchat.storage.base import (
    BLOCKLIST_LIMIT,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    BlocklistFull,
    DeleteRosterItem,
    DuplicateMessage,
    MessageOrigin,
    NoSuchUser,
    OfflineMessage,
    OfflineQueueFull,
    PageRequest,
    PutRosterItem,
    RosterChange,
    RosterItem,
    ScramCredentials,
    StoredRoom,
    UserExists,
    bare_key,
    blocking_items,
    check_archive_prefs,
    check_room,
    check_roster_item,
    checked_roster_changes,
    user_key,
)
from xmlchat.storage.personal import PepItem, PepNode, check_pep_node

__all__ = ["MemoryStorage"]


@dataclass
class _Tables:
    """One dict per SQLite table, keyed by the owner's bare JID string."""

    scram: dict[str, dict[str, ScramCredentials]] = field(default_factory=dict)
    offline: dict[str, list[OfflineMessage]] = field(default_factory=dict)
    last_offline_id: int = 0
    # (sender, message id) -> when first stored (time.time()), for re-sends.
    recent_ids: dict[tuple[str, str], float] = field(default_factory=dict)
    roster: dict[str, dict[str, RosterItem]] = field(default_factory=dict)
    roster_version: dict[str, int] = field(default_factory=dict)
    # dicts keep insertion order, and a repeated request keeps its place (as rowid does).
    subscription_requests: dict[str, dict[str, bytes]] = field(default_factory=dict)
    blocklist: dict[str, set[str]] = field(default_factory=dict)
    archive: MemoryArchive = field(default_factory=MemoryArchive)
    rooms: dict[str, StoredRoom] = field(default_factory=dict)
    personal: MemoryPersonal = field(default_factory=MemoryPersonal)

    def delete_user_rows(self, jid: str) -> None:
        for table in (
            self.scram,
            self.offline,
            self.roster,
            self.roster_version,
            self.subscription_requests,
            self.blocklist,
        ):
            table.pop(jid, None)
        self.archive.forget(jid)
        self.personal.forget(jid)


class MemoryStorage:
    """``MemoryStorage()`` is ready to use; implements :class:`~xmlchat.storage.Storage`,
    whose Protocols document each method's contract."""

    def __init__(self, scram_iterations: int = scram.MIN_SCRAM_ITERATIONS) -> None:
        scram.require_iterations(scram_iterations)
        self._iterations = scram_iterations
        self._decoy = scram.make_decoy(scram_iterations)
        self._tables: _Tables | None = _Tables()

    @property
    def _db(self) -> _Tables:
        if self._tables is None:
            raise RuntimeError("storage is closed")
        return self._tables

    async def close(self) -> None:
        self._tables = None

    # -- accounts -------------------------------------------------------------

    async def create_user(self, jid: JID, password: str) -> None:
        key = user_key(jid)
        keys = scram.derive_all(password, self._iterations)
        if key in self._db.scram:
            raise UserExists(key)
        self._db.scram[key] = {k.mechanism: k for k in keys}

    async def set_password(self, jid: JID, password: str) -> None:
        key = user_key(jid)
        keys = scram.derive_all(password, self._iterations)
        if key not in self._db.scram:
            raise NoSuchUser(key)
        self._db.scram[key].update((k.mechanism, k) for k in keys)

    async def delete_user(self, jid: JID) -> bool:
        key = bare_key(jid)
        existed = key in self._db.scram
        self._db.delete_user_rows(key)
        return existed

    async def user_exists(self, jid: JID) -> bool:
        return bare_key(jid) in self._db.scram

    async def list_users(self, host: str | None = None) -> list[JID]:
        users = [JID.parse(key) for key in sorted(self._db.scram)]
        if host is None:
            return users
        domain = JID.parse(host).domain
        return [jid for jid in users if jid.domain == domain]

    async def count_users(self) -> int:
        return len(self._db.scram)

    async def get_scram(self, jid: JID, mechanism: str) -> ScramCredentials | None:
        return self._db.scram.get(bare_key(jid), {}).get(mechanism)

    async def check_password(self, jid: JID, password: str) -> bool:
        stored = await self.get_scram(jid, scram.CHECK_MECHANISM)
        return scram.password_matches(password, stored, self._decoy)

    # -- offline messages (XEP-0160) -----------------------------------------

    async def store_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None = None,
    ) -> int:
        return self._store_offline(to, stanza, received, limit, origin)

    def queue_offline(
        self,
        to: JID,
        stanza: bytes,
        received: datetime,
        limit: int,
        origin: MessageOrigin | None,
        done: Callable[[int, BaseException | None], None],
    ) -> None:
        """:meth:`store_offline` without waiting: stored at once here, ``done``
        told at the next turn (as a store with a commit would, never before
        this returns)."""
        loop = asyncio.get_running_loop()
        try:
            loop.call_soon(done, self._store_offline(to, stanza, received, limit, origin), None)
        except (OfflineQueueFull, DuplicateMessage) as e:
            loop.call_soon(done, 0, e)

    def _store_offline(
        self, to: JID, stanza: bytes, received: datetime, limit: int, origin: MessageOrigin | None
    ) -> int:
        if received.tzinfo is None:
            raise ValueError("received must be timezone-aware")
        key = bare_key(to)
        queue = self._db.offline.setdefault(key, [])
        now = time.time()
        if origin is not None:
            first = self._db.recent_ids.get((origin.sender, origin.id))
            if first is not None and first >= now - origin.window:
                raise DuplicateMessage(origin)
        if len(queue) >= limit:
            raise OfflineQueueFull(key)
        if origin is not None:
            self._db.recent_ids[(origin.sender, origin.id)] = now
        self._db.last_offline_id += 1
        message_id = self._db.last_offline_id
        queue.append(OfflineMessage(message_id, stanza, received.astimezone(UTC)))
        return message_id

    async def fetch_offline(
        self, to: JID, after_id: int = 0, limit: int | None = None
    ) -> list[OfflineMessage]:
        newer = [m for m in self._db.offline.get(bare_key(to), []) if m.id > after_id]
        return newer if limit is None else newer[:limit]

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        queue = self._db.offline.get(bare_key(to), [])
        queue[:] = [m for m in queue if m.id > up_to_id]

    async def delete_offline_ids(self, to: JID, ids: Sequence[int]) -> None:
        gone = set(ids)
        queue = self._db.offline.get(bare_key(to), [])
        queue[:] = [m for m in queue if m.id not in gone]

    async def count_offline(self, to: JID | None = None) -> int:
        if to is None:
            return sum(len(queue) for queue in self._db.offline.values())
        return len(self._db.offline.get(bare_key(to), []))

    # -- roster (RFC 6121 §2), versioned (§2.6) --------------------------------

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]:
        key = bare_key(user)
        items = self._db.roster.get(key, {})
        return [items[c] for c in sorted(items)], self._db.roster_version.get(key, 0)

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None:
        return self._db.roster.get(bare_key(user), {}).get(bare_key(contact))

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        self._put_item(bare_key(user), check_roster_item(item))
        return self._bump_roster_version(bare_key(user))

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        key = bare_key(user)
        if not self._delete_item(key, contact):
            return self._db.roster_version.get(key, 0)
        return self._bump_roster_version(key)

    async def apply_roster_changes(self, changes: Sequence[RosterChange]) -> dict[JID, int]:
        # All or nothing without a rollback: every change is checked before any is made.
        checked = list(checked_roster_changes(changes))
        changed: dict[str, bool] = {}
        for change in checked:
            key = bare_key(change.user)
            if isinstance(change, PutRosterItem):
                self._put_item(key, change.item)
                changed[key] = True
            elif isinstance(change, DeleteRosterItem):
                changed[key] = self._delete_item(key, change.contact)
            else:
                self._db.subscription_requests.get(key, {}).pop(bare_key(change.contact), None)
        return {
            JID.parse(key): self._bump_roster_version(key) if bump else self._db.roster_version.get(key, 0)
            for key, bump in changed.items()
        }

    def _put_item(self, key: str, item: RosterItem) -> None:
        contact = bare_key(item.jid)
        stored = replace(item, jid=JID.parse(contact), groups=tuple(item.groups))
        self._db.roster.setdefault(key, {})[contact] = stored

    def _delete_item(self, key: str, contact: JID) -> bool:
        return self._db.roster.get(key, {}).pop(bare_key(contact), None) is not None

    def _bump_roster_version(self, key: str) -> int:
        version = self._db.roster_version.get(key, 0) + 1
        self._db.roster_version[key] = version
        return version

    # -- pending inbound subscription requests (RFC 6121 §3.1.3) ---------------

    async def add_subscription_request(self, user: JID, contact: JID, stanza: bytes) -> None:
        self._db.subscription_requests.setdefault(bare_key(user), {})[bare_key(contact)] = stanza

    async def get_subscription_requests(self, user: JID) -> list[tuple[JID, bytes]]:
        requests = self._db.subscription_requests.get(bare_key(user), {})
        return [(JID.parse(contact), stanza) for contact, stanza in requests.items()]

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        self._db.subscription_requests.get(bare_key(user), {}).pop(bare_key(contact), None)

    # -- blocklist (XEP-0191) ----------------------------------------------------

    async def get_blocklist(self, user: JID) -> list[JID]:
        return [JID.parse(item) for item in sorted(self._db.blocklist.get(bare_key(user), ()))]

    async def block(
        self, user: JID, jids: Sequence[JID], *, limit: int = BLOCKLIST_LIMIT
    ) -> list[JID]:
        key = bare_key(user)
        items = self._db.blocklist.get(key, set())
        new = [item for item in dict.fromkeys(map(str, jids)) if item not in items]
        if len(items) + len(new) > limit:
            raise BlocklistFull(key)
        self._db.blocklist[key] = items | set(new)
        return [JID.parse(item) for item in new]

    async def unblock(self, user: JID, jids: Sequence[JID]) -> list[JID]:
        items = self._db.blocklist.get(bare_key(user), set())
        removed = [item for item in dict.fromkeys(map(str, jids)) if item in items]
        items.difference_update(removed)
        return [JID.parse(item) for item in removed]

    async def unblock_all(self, user: JID) -> list[JID]:
        items = self._db.blocklist.pop(bare_key(user), set())
        return [JID.parse(item) for item in sorted(items)]

    async def is_blocked(self, user: JID, contact: JID) -> bool:
        items = self._db.blocklist.get(bare_key(user), set())
        return any(str(candidate) in items for candidate in blocking_items(contact))

    # -- message archive (XEP-0313) ----------------------------------------------

    async def archive_message(
        self, user: JID, with_: JID, stanza: bytes, stamp: datetime, *, outgoing: bool
    ) -> str:
        return self._db.archive.add(bare_key(user), with_, stanza, stamp, outgoing)

    async def query_archive(self, user: JID, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
        return self._db.archive.query(bare_key(user), query, page)

    async def count_archive(self, user: JID, query: ArchiveQuery | None = None) -> int:
        return len(self._db.archive.matching(bare_key(user), query or ArchiveQuery()))

    async def expire_archive(self, older_than: datetime) -> int:
        return self._db.archive.expire(older_than)

    async def get_archive_prefs(self, user: JID) -> ArchivePrefs:
        return self._db.archive.prefs.get(bare_key(user), ArchivePrefs())

    async def set_archive_prefs(self, user: JID, prefs: ArchivePrefs) -> ArchivePrefs:
        stored = check_archive_prefs(prefs)
        self._db.archive.prefs[bare_key(user)] = stored
        return stored

    async def save_room(self, room: StoredRoom) -> None:
        stored = check_room(room)
        self._db.rooms[str(stored.jid)] = stored

    async def delete_room(self, room: JID) -> bool:
        return self._db.rooms.pop(bare_key(room), None) is not None

    async def load_rooms(self, service: str | None = None) -> list[StoredRoom]:
        rooms = self._db.rooms
        return [rooms[k] for k in sorted(rooms) if service is None or rooms[k].jid.domain == service]

    # -- documents (XEP-0049, XEP-0054) and PEP (XEP-0163) -------------------------

    async def get_document(self, user: JID, key: str) -> bytes | None:
        return self._db.personal.documents.get(bare_key(user), {}).get(key)

    async def put_document(self, user: JID, key: str, data: bytes | None) -> None:
        self._db.personal.put_document(bare_key(user), key, data)

    async def get_pep_node(self, user: JID, node: str) -> PepNode | None:
        return self._db.personal.nodes.get(bare_key(user), {}).get(node)

    async def list_pep_nodes(self, user: JID) -> list[PepNode]:
        nodes = self._db.personal.nodes.get(bare_key(user), {})
        return [nodes[name] for name in sorted(nodes)]

    async def put_pep_node(self, user: JID, node: PepNode) -> None:
        self._db.personal.put_node(bare_key(user), check_pep_node(node))

    async def delete_pep_node(self, user: JID, node: str) -> bool:
        return self._db.personal.delete_node(bare_key(user), node)

    async def publish_pep_item(self, user: JID, node: str, item: PepItem) -> None:
        self._db.personal.publish(bare_key(user), node, item)

    async def get_pep_items(
        self, user: JID, node: str, *, ids: Sequence[str] = (), limit: int | None = None
    ) -> list[PepItem]:
        return self._db.personal.get_items(bare_key(user), node, list(ids), limit)

    async def retract_pep_item(self, user: JID, node: str, item_id: str) -> bool:
        return self._db.personal.retract(bare_key(user), node, item_id)

