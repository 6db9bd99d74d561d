"""What the SQLite and PostgreSQL stores share: :class:`SqlStore`, every method
that only checks its arguments, makes the row keys and hands one query function
to the backend's runner; and the rows both schemas keep alike.

A backend (:mod:`~xmlchat.storage.sqlite`, :mod:`~xmlchat.storage.postgres`)
names its query modules (the ``*Queries`` Protocols below say what each must
hold) and gives ``_run`` and ``_read``: SQLite's writer thread and the reader
beside it, PostgreSQL's pool for both. It keeps what differs: opening and
closing, and the offline queue with its group commit.

The query functions of the two dialects differ in kind (SQLite's run on a
thread and return, PostgreSQL's are coroutines on a pooled connection), which
one Python type cannot say; so the Protocols check each function's arguments
but not what it returns, and the store suite (tests/storage) checks the
results on every backend.
"""

# The runners return Any (see above): a method's declared type is its contract.
# mypy: disable-error-code="no-any-return"

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Concatenate, Final, ParamSpec, Protocol

from xmlchat.jid import JID
from xmlchat.storage import scram
from xmlchat.storage._archive_sql import micros
from xmlchat.storage.base import (
    BLOCKLIST_LIMIT,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    PageRequest,
    RosterChange,
    RosterItem,
    ScramCredentials,
    StoredRoom,
    bare_key,
    blocking_items,
    check_archive_prefs,
    check_room,
    check_roster_item,
    user_key,
)
from xmlchat.storage.personal import PepItem, PepNode, check_pep_node

P = ParamSpec("P")


# -- what each dialect's query modules hold (connection first; see the module doc) --


class AccountQueries(Protocol):
    def create_user(self, conn: Any, jid: str, host: str, keys: list[ScramCredentials], /) -> Any: ...
    def set_scram(self, conn: Any, jid: str, keys: list[ScramCredentials], /) -> Any: ...
    def delete_user(self, conn: Any, jid: str, /) -> Any: ...
    def user_exists(self, conn: Any, jid: str, /) -> Any: ...
    def list_users(self, conn: Any, host: str | None, /) -> Any: ...
    def count_users(self, conn: Any, /) -> Any: ...
    def get_scram(self, conn: Any, jid: str, mechanism: str, /) -> Any: ...


class RosterQueries(Protocol):
    def get_roster(self, conn: Any, jid: str, /) -> Any: ...
    def get_roster_item(self, conn: Any, jid: str, contact: str, /) -> Any: ...
    def put_roster_item(self, conn: Any, jid: str, item: RosterItem, /) -> Any: ...
    def delete_roster_item(self, conn: Any, jid: str, contact: str, /) -> Any: ...
    def apply_roster_changes(self, conn: Any, changes: Sequence[RosterChange], /) -> Any: ...
    def add_subscription_request(self, conn: Any, jid: str, contact: str, stanza: bytes, /) -> Any: ...
    def get_subscription_requests(self, conn: Any, jid: str, /) -> Any: ...
    def delete_subscription_request(self, conn: Any, jid: str, contact: str, /) -> Any: ...


class BlocklistQueries(Protocol):
    def get_blocklist(self, conn: Any, jid: str, /) -> Any: ...
    def block(self, conn: Any, jid: str, items: list[str], limit: int, /) -> Any: ...
    def unblock(self, conn: Any, jid: str, items: list[str], /) -> Any: ...
    def unblock_all(self, conn: Any, jid: str, /) -> Any: ...
    def is_blocked(self, conn: Any, jid: str, candidates: list[str], /) -> Any: ...


class ArchiveQueries(Protocol):
    def archive_message(
        self, conn: Any, jid: str, with_jid: str, stanza: bytes, stamp: int, outgoing: bool, /
    ) -> Any: ...
    def query_archive(self, conn: Any, jid: str, query: ArchiveQuery, page: PageRequest, /) -> Any: ...
    def count_archive(self, conn: Any, jid: str, query: ArchiveQuery, /) -> Any: ...
    def expire_archive(self, conn: Any, older_than: int, /) -> Any: ...
    def get_prefs(self, conn: Any, jid: str, /) -> Any: ...
    def set_prefs(self, conn: Any, jid: str, prefs: ArchivePrefs, /) -> Any: ...


class RoomQueries(Protocol):
    def save_room(self, conn: Any, room: StoredRoom, /) -> Any: ...
    def delete_room(self, conn: Any, jid: str, /) -> Any: ...
    def load_rooms(self, conn: Any, service: str | None, /) -> Any: ...


class PersonalQueries(Protocol):
    def get_document(self, conn: Any, jid: str, key: str, /) -> Any: ...
    def put_document(self, conn: Any, jid: str, key: str, data: bytes | None, /) -> Any: ...
    def get_pep_node(self, conn: Any, jid: str, node: str, /) -> Any: ...
    def list_pep_nodes(self, conn: Any, jid: str, /) -> Any: ...
    def put_pep_node(self, conn: Any, jid: str, node: PepNode, /) -> Any: ...
    def delete_pep_node(self, conn: Any, jid: str, node: str, /) -> Any: ...
    def publish_pep_item(self, conn: Any, jid: str, node: str, item: PepItem, /) -> Any: ...
    def get_pep_items(self, conn: Any, jid: str, node: str, ids: list[str], limit: int | None, /) -> Any: ...
    def retract_pep_item(self, conn: Any, jid: str, node: str, item_id: str, /) -> Any: ...


# -- the store ---------------------------------------------------------------------


class SqlStore:
    """The methods of :class:`~xmlchat.storage.interfaces.Storage` that are the
    same on both SQL backends; the contracts are documented there."""

    accounts: AccountQueries
    rosters: RosterQueries
    blocklists: BlocklistQueries
    archives: ArchiveQueries
    rooms: RoomQueries
    personal: PersonalQueries

    def __init__(self, scram_iterations: int) -> None:
        self._iterations = scram_iterations
        self._decoy = scram.make_decoy(scram_iterations)
        self._closed = False

    async def _run(self, fn: Callable[Concatenate[Any, P], Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        """``fn`` in one transaction, among the writes; RuntimeError once closed."""
        raise NotImplementedError

    async def _read(self, fn: Callable[Concatenate[Any, P], Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        """A read: it sees every write submitted before it."""
        raise NotImplementedError

    # -- accounts -------------------------------------------------------------

    async def create_user(self, jid: JID, password: str) -> None:
        key = user_key(jid)
        keys = await asyncio.to_thread(scram.derive_all, password, self._iterations)
        await self._run(self.accounts.create_user, key, jid.domain, keys)

    async def set_password(self, jid: JID, password: str) -> None:
        key = user_key(jid)
        keys = await asyncio.to_thread(scram.derive_all, password, self._iterations)
        await self._run(self.accounts.set_scram, key, keys)

    async def delete_user(self, jid: JID) -> bool:
        return await self._run(self.accounts.delete_user, bare_key(jid))

    async def user_exists(self, jid: JID) -> bool:
        return await self._read(self.accounts.user_exists, bare_key(jid))

    async def list_users(self, host: str | None = None) -> list[JID]:
        return await self._read(self.accounts.list_users, host)

    async def count_users(self) -> int:
        return await self._read(self.accounts.count_users)

    async def get_scram(self, jid: JID, mechanism: str) -> ScramCredentials | None:
        return await self._read(self.accounts.get_scram, bare_key(jid), mechanism)

    async def check_password(self, jid: JID, password: str) -> bool:
        stored = await self.get_scram(jid, scram.CHECK_MECHANISM)
        return await asyncio.to_thread(scram.password_matches, password, stored, self._decoy)

    # -- roster (RFC 6121 §2), versioned (§2.6) --------------------------------

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]:
        return await self._read(self.rosters.get_roster, bare_key(user))

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None:
        return await self._read(self.rosters.get_roster_item, bare_key(user), bare_key(contact))

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        return await self._run(self.rosters.put_roster_item, bare_key(user), check_roster_item(item))

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        return await self._run(self.rosters.delete_roster_item, bare_key(user), bare_key(contact))

    async def apply_roster_changes(self, changes: Sequence[RosterChange]) -> dict[JID, int]:
        return await self._run(self.rosters.apply_roster_changes, list(changes))

    # -- pending inbound subscription requests (RFC 6121 §3.1.3) ---------------

    async def add_subscription_request(self, user: JID, contact: JID, stanza: bytes) -> None:
        await self._run(self.rosters.add_subscription_request, bare_key(user), bare_key(contact), stanza)

    async def get_subscription_requests(self, user: JID) -> list[tuple[JID, bytes]]:
        return await self._read(self.rosters.get_subscription_requests, bare_key(user))

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        await self._run(self.rosters.delete_subscription_request, bare_key(user), bare_key(contact))

    # -- blocklist (XEP-0191) ----------------------------------------------------

    async def get_blocklist(self, user: JID) -> list[JID]:
        return await self._read(self.blocklists.get_blocklist, bare_key(user))

    async def block(self, user: JID, jids: Sequence[JID], *, limit: int = BLOCKLIST_LIMIT) -> list[JID]:
        added = await self._run(self.blocklists.block, bare_key(user), [str(j) for j in jids], limit)
        return [JID.parse(item) for item in added]

    async def unblock(self, user: JID, jids: Sequence[JID]) -> list[JID]:
        removed = await self._run(self.blocklists.unblock, bare_key(user), [str(j) for j in jids])
        return [JID.parse(item) for item in removed]

    async def unblock_all(self, user: JID) -> list[JID]:
        return await self._run(self.blocklists.unblock_all, bare_key(user))

    async def is_blocked(self, user: JID, contact: JID) -> bool:
        candidates = [str(item) for item in blocking_items(contact)]
        return await self._read(self.blocklists.is_blocked, bare_key(user), candidates)

    # -- message archive (XEP-0313) ----------------------------------------------

    async def archive_message(
        self, user: JID, with_: JID, stanza: bytes, stamp: datetime, *, outgoing: bool
    ) -> str:
        when = micros(stamp)
        archive = self.archives.archive_message
        return await self._run(archive, bare_key(user), bare_key(with_), stanza, when, outgoing)

    async def query_archive(self, user: JID, query: ArchiveQuery, page: PageRequest) -> ArchivePage:
        if page.max < 0:
            raise ValueError("max must not be negative")
        return await self._read(self.archives.query_archive, bare_key(user), query, page)

    async def count_archive(self, user: JID, query: ArchiveQuery | None = None) -> int:
        return await self._read(self.archives.count_archive, bare_key(user), query or ArchiveQuery())

    async def expire_archive(self, older_than: datetime) -> int:
        return await self._run(self.archives.expire_archive, micros(older_than))

    async def get_archive_prefs(self, user: JID) -> ArchivePrefs:
        return await self._read(self.archives.get_prefs, bare_key(user))

    async def set_archive_prefs(self, user: JID, prefs: ArchivePrefs) -> ArchivePrefs:
        stored = check_archive_prefs(prefs)
        await self._run(self.archives.set_prefs, bare_key(user), stored)
        return stored

    # -- persistent rooms (XEP-0045) -----------------------------------------------

    async def save_room(self, room: StoredRoom) -> None:
        await self._run(self.rooms.save_room, check_room(room))

    async def delete_room(self, room: JID) -> bool:
        return await self._run(self.rooms.delete_room, bare_key(room))

    async def load_rooms(self, service: str | None = None) -> list[StoredRoom]:
        return await self._read(self.rooms.load_rooms, service)

    # -- documents (XEP-0049, XEP-0054) and PEP (XEP-0163) -------------------------

    async def get_document(self, user: JID, key: str) -> bytes | None:
        return await self._read(self.personal.get_document, bare_key(user), key)

    async def put_document(self, user: JID, key: str, data: bytes | None) -> None:
        await self._run(self.personal.put_document, bare_key(user), key, data)

    async def get_pep_node(self, user: JID, node: str) -> PepNode | None:
        return await self._read(self.personal.get_pep_node, bare_key(user), node)

    async def list_pep_nodes(self, user: JID) -> list[PepNode]:
        return await self._read(self.personal.list_pep_nodes, bare_key(user))

    async def put_pep_node(self, user: JID, node: PepNode) -> None:
        await self._run(self.personal.put_pep_node, bare_key(user), check_pep_node(node))

    async def delete_pep_node(self, user: JID, node: str) -> bool:
        return await self._run(self.personal.delete_pep_node, bare_key(user), node)

    async def publish_pep_item(self, user: JID, node: str, item: PepItem) -> None:
        await self._run(self.personal.publish_pep_item, bare_key(user), node, item)

    async def get_pep_items(
        self, user: JID, node: str, *, ids: Sequence[str] = (), limit: int | None = None
    ) -> list[PepItem]:
        return await self._read(self.personal.get_pep_items, bare_key(user), node, list(ids), limit)

    async def retract_pep_item(self, user: JID, node: str, item_id: str) -> bool:
        return await self._run(self.personal.retract_pep_item, bare_key(user), node, item_id)


# -- tables both schemas keep alike -----------------------------------------------

# Every table with rows of one user's, keyed by their bare JID in column ``jid``.
USER_TABLES: Final = (
    "scram", "roster", "roster_version", "offline", "subscription_requests", "blocklist",
    "archive", "archive_prefs", "archive_rules", "documents", "pep_nodes", "pep_items",
)

# A persistent room's columns (XEP-0045): the same table in both schemas.
ROOM_COLUMNS: Final = "jid, config, affiliations, subject, subject_by"
RoomRow = tuple[str, str, str, str, str]


def room_values(room: StoredRoom) -> tuple[str, str, str, str, str, str]:
    """The values of an insert into ``rooms (jid, service, config, affiliations,
    subject, subject_by)``: configuration and affiliations as JSON objects."""
    affiliations = {str(jid): affiliation for jid, affiliation in room.affiliations.items()}
    return (
        str(room.jid),
        room.jid.domain,
        json.dumps(dict(room.config), sort_keys=True),
        json.dumps(affiliations, sort_keys=True),
        room.subject,
        room.subject_by,
    )


def stored_room(row: RoomRow) -> StoredRoom:
    """A row of :data:`ROOM_COLUMNS` as the room it keeps."""
    jid, config, affiliations, subject, subject_by = row
    return StoredRoom(
        JID.parse(jid),
        json.loads(config),
        {JID.parse(k): v for k, v in json.loads(affiliations).items()},
        subject,
        subject_by,
    )
