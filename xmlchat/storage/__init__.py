"""Persistent state: accounts and SCRAM keys, offline messages, rosters, blocklists, archives, rooms.

:class:`Storage` is the Protocol the server is given (:mod:`xmlchat.storage.interfaces`,
one Protocol per kind of state). Backends: :class:`SqliteStorage`, the server's
default (:mod:`xmlchat.storage.sqlite`); ``PostgresStorage``, shared by the
nodes of a cluster (:mod:`xmlchat.storage.postgres`, an optional extra, so not
imported here); and :class:`MemoryStorage`, for tests (:mod:`xmlchat.storage.memory`).
:func:`~xmlchat.storage.opening.open_storage` opens the configured one. The
record types and errors are backend-neutral (:mod:`xmlchat.storage.base`).
"""

from typing import TYPE_CHECKING

from xmlchat.storage.base import (
    ARCHIVE_DEFAULTS,
    BLOCKLIST_LIMIT,
    UNLIMITED,
    ArchiveDefault,
    ArchivedMessage,
    ArchiveIdNotFound,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    BlocklistFull,
    DeleteRosterItem,
    DeleteSubscriptionRequest,
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
)
from xmlchat.storage.interfaces import (
    AccountStore,
    ArchiveStore,
    BlocklistStore,
    DocumentStore,
    OfflineStore,
    PepStore,
    QueuedOfflineStore,
    RoomStore,
    RosterStore,
    Storage,
)
from xmlchat.storage.memory import MemoryStorage
from xmlchat.storage.migrations import SchemaTooNew
from xmlchat.storage.personal import ACCESS_MODELS, AccessModel, PepItem, PepNode
from xmlchat.storage.sqlite import SqliteStorage

__all__ = [
    "ACCESS_MODELS",
    "ARCHIVE_DEFAULTS",
    "BLOCKLIST_LIMIT",
    "UNLIMITED",
    "AccessModel",
    "AccountStore",
    "ArchiveDefault",
    "ArchiveIdNotFound",
    "ArchivePage",
    "ArchivePrefs",
    "ArchiveQuery",
    "ArchiveStore",
    "ArchivedMessage",
    "BlocklistFull",
    "BlocklistStore",
    "DeleteRosterItem",
    "DeleteSubscriptionRequest",
    "DocumentStore",
    "DuplicateMessage",
    "MemoryStorage",
    "MessageOrigin",
    "NoSuchUser",
    "OfflineMessage",
    "OfflineQueueFull",
    "OfflineStore",
    "PageRequest",
    "PepItem",
    "PepNode",
    "PepStore",
    "PutRosterItem",
    "QueuedOfflineStore",
    "RoomStore",
    "RosterChange",
    "RosterItem",
    "RosterStore",
    "SchemaTooNew",
    "ScramCredentials",
    "SqliteStorage",
    "Storage",
    "StoredRoom",
    "UserExists",
]

if TYPE_CHECKING:
    # mypy --strict proves here that both backends satisfy the Protocol (mypy is
    # run on the package only, so a check in tests/ would not be type-checked).
    from xmlchat.storage.postgres import PostgresStorage

    def _backends_are_storage(
        sqlite: SqliteStorage, memory: MemoryStorage, postgres: PostgresStorage
    ) -> list[Storage]:
        return [sqlite, memory, postgres]
