"""Persistent state: accounts and SCRAM keys, offline messages, rosters.

``Storage`` is the SQLite backend (:mod:`xmlchat.storage.sqlite`); the record
types and errors are backend-neutral (:mod:`xmlchat.storage.base`).
"""

from xmlchat.storage.base import (
    NoSuchUser,
    OfflineMessage,
    OfflineQueueFull,
    RosterItem,
    ScramCredentials,
    UserExists,
)
from xmlchat.storage.migrations import SchemaTooNew
from xmlchat.storage.sqlite import Storage

__all__ = [
    "NoSuchUser",
    "OfflineMessage",
    "OfflineQueueFull",
    "RosterItem",
    "SchemaTooNew",
    "ScramCredentials",
    "Storage",
    "UserExists",
]
