"""The SQLite store: accounts, offline messages (XEP-0160), rosters (RFC 6121).

All database work runs on one dedicated thread that owns the only connection,
so the event loop never blocks on disk and every call is one serialized
transaction. PBKDF2 for new SCRAM keys is CPU work, not database work: it runs
in the loop's default executor so a burst of logins does not queue reads.

A cancelled call still finishes on the worker thread (a started transaction
commits); only the awaiting coroutine stops waiting.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Concatenate, Final, ParamSpec, TypeVar

import scramp

from xmlchat.jid import JID
from xmlchat.storage import _queries as q
from xmlchat.storage.base import (
    SCRAM_MECHANISMS,
    SUBSCRIPTIONS,
    NoSuchUser,
    OfflineMessage,
    OfflineQueueFull,
    RosterItem,
    ScramCredentials,
    UserExists,
)

__all__ = [
    "NoSuchUser",
    "OfflineMessage",
    "OfflineQueueFull",
    "RosterItem",
    "ScramCredentials",
    "Storage",
    "UserExists",
]

P = ParamSpec("P")
T = TypeVar("T")

# scramp refuses fewer (RFC 7677 §4: "at least 4096").
MIN_SCRAM_ITERATIONS: Final = 4096
# check_password() hashes with this mechanism's row.
_CHECK_MECHANISM: Final = "SCRAM-SHA-256"


class Storage:
    """Open with ``await Storage.open(path)``; ``await close()`` when done."""

    def __init__(
        self, executor: ThreadPoolExecutor, conn: sqlite3.Connection, scram_iterations: int
    ) -> None:
        self._executor = executor
        self._conn = conn
        self._iterations = scram_iterations
        self._closed = False
        # Compared against for unknown users, so check_password() costs the same either way.
        self._decoy = ScramCredentials(
            _CHECK_MECHANISM, os.urandom(16), scram_iterations, os.urandom(32), os.urandom(32)
        )

    @classmethod
    async def open(cls, path: Path, scram_iterations: int = 4096) -> Storage:
        """Open (creating the file and its parent directory) and migrate the database."""
        if scram_iterations < MIN_SCRAM_ITERATIONS:
            raise ValueError(f"scram_iterations must be >= {MIN_SCRAM_ITERATIONS}")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xmlchat-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, q.connect, Path(path))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, conn, scram_iterations)

    async def close(self) -> None:
        """Close the connection (checkpointing the WAL) and stop the worker thread."""
        if self._closed:
            return
        try:
            await self._run(q.close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)

    async def _run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self._closed:
            raise RuntimeError("storage is closed")
        call = partial(fn, self._conn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

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
        """Delete the account with its roster, subscription requests and offline messages."""
        return await self._run(q.delete_user, _key(jid))

    async def user_exists(self, jid: JID) -> bool:
        return await self._run(q.user_exists, _key(jid))

    async def list_users(self, host: str | None = None) -> list[JID]:
        """Bare JIDs, sorted by their string form; only ``host``'s when given."""
        return await self._run(q.list_users, host)

    async def get_scram(self, jid: JID, mechanism: str) -> ScramCredentials | None:
        return await self._run(q.get_scram, _key(jid), mechanism)

    async def check_password(self, jid: JID, password: str) -> bool:
        """For PLAIN: hash ``password`` with the stored salt and compare StoredKeys."""
        stored = await self.get_scram(jid, _CHECK_MECHANISM)
        target = stored or self._decoy
        try:
            keys = await asyncio.to_thread(
                _make_keys, _CHECK_MECHANISM, password, target.iterations, target.salt
            )
        except ValueError:
            return False
        match = hmac.compare_digest(keys.stored_key, target.stored_key)
        return match and stored is not None

    # -- offline messages (XEP-0160) -----------------------------------------

    async def store_offline(self, to: JID, stanza: bytes, received: datetime, limit: int) -> int:
        """Queue ``stanza``; returns its id. Raises :class:`OfflineQueueFull`."""
        if received.tzinfo is None:
            raise ValueError("received must be timezone-aware")
        when = received.astimezone(UTC).isoformat()
        return await self._run(q.store_offline, _key(to), stanza, when, limit)

    async def fetch_offline(self, to: JID) -> list[OfflineMessage]:
        """Oldest first; nothing is deleted (see :meth:`delete_offline`)."""
        return await self._run(q.fetch_offline, _key(to))

    async def delete_offline(self, to: JID, up_to_id: int) -> None:
        """Delete ``to``'s messages with ids <= ``up_to_id``, once they are delivered."""
        await self._run(q.delete_offline, _key(to), up_to_id)

    async def count_offline(self, to: JID | None = None) -> int:
        """Messages waiting for ``to``, or for everyone when None."""
        return await self._run(q.count_offline, None if to is None else _key(to))

    # -- roster (RFC 6121 §2), versioned (§2.6) --------------------------------

    async def get_roster(self, user: JID) -> tuple[list[RosterItem], int]:
        """Items sorted by contact JID, and the roster version (0 if never changed)."""
        return await self._run(q.get_roster, _key(user))

    async def get_roster_item(self, user: JID, contact: JID) -> RosterItem | None:
        return await self._run(q.get_roster_item, _key(user), _key(contact))

    async def put_roster_item(self, user: JID, item: RosterItem) -> int:
        """Insert or replace the item for ``item.jid``; returns the new version."""
        if item.subscription not in SUBSCRIPTIONS:
            raise ValueError(f"invalid subscription {item.subscription!r}")
        return await self._run(q.put_roster_item, _key(user), item)

    async def delete_roster_item(self, user: JID, contact: JID) -> int:
        """Returns the new version (unchanged if there was no such item)."""
        return await self._run(q.delete_roster_item, _key(user), _key(contact))

    # -- pending inbound subscription requests (RFC 6121 §3.1.3) ---------------

    async def add_subscription_request(self, user: JID, contact: JID, stanza: bytes) -> None:
        """Keep ``contact``'s request to ``user``; a repeat replaces the stanza."""
        await self._run(q.add_subscription_request, _key(user), _key(contact), stanza)

    async def get_subscription_requests(self, user: JID) -> list[tuple[JID, bytes]]:
        """Oldest first."""
        return await self._run(q.get_subscription_requests, _key(user))

    async def delete_subscription_request(self, user: JID, contact: JID) -> None:
        await self._run(q.delete_subscription_request, _key(user), _key(contact))


# -- keys (any thread) -------------------------------------------------------------


def _key(jid: JID) -> str:
    return str(jid.bare)


def _user_key(jid: JID) -> str:
    """Accounts need a localpart; lookups of other JIDs simply find nothing."""
    if jid.local is None:
        raise ValueError(f"{jid} is not a user address")
    return _key(jid)


def _make_keys(
    mechanism: str, password: str, iterations: int, salt: bytes | None = None
) -> ScramCredentials:
    """PBKDF2 (RFC 5802 §3) via scramp, which also applies SASLprep (RFC 4013)."""
    try:
        salt, stored, server, i = scramp.ScramMechanism(mechanism).make_auth_info(
            password, iteration_count=iterations, salt=salt
        )
    except scramp.ScramException as e:
        raise ValueError(f"password rejected: {e}") from None
    return ScramCredentials(mechanism, salt, i, stored, server)


async def _derive_all(password: str, iterations: int) -> list[ScramCredentials]:
    return await asyncio.to_thread(_derive_sync, password, iterations)


def _derive_sync(password: str, iterations: int) -> list[ScramCredentials]:
    return [_make_keys(m, password, iterations) for m in SCRAM_MECHANISMS]
