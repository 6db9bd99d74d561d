"""Both backends implement the Protocols of :mod:`xmlchat.storage.interfaces`.

mypy proves it in ``xmlchat/storage/__init__.py`` (mypy checks the package, not
tests/); the assignments below say the same to anyone running mypy on this file,
and the runtime checks compare every Protocol method's signature with each
backend's.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from storage.common import ALICE

from xmlchat.storage import (
    AccountStore,
    ArchiveStore,
    BlocklistStore,
    DocumentStore,
    MemoryStorage,
    OfflineStore,
    PepStore,
    RoomStore,
    RosterStore,
    SqliteStorage,
    Storage,
)

STORES = (
    AccountStore, RosterStore, OfflineStore, BlocklistStore, ArchiveStore, RoomStore, DocumentStore, PepStore
)
BACKENDS = (SqliteStorage, MemoryStorage)


def _members(protocol: type) -> set[str]:
    return {name for name in dir(protocol) if not name.startswith("_")}


def _signature(cls: type, name: str) -> inspect.Signature:
    # eval_str: compare the annotations' meaning, not their spelling.
    return inspect.signature(getattr(cls, name), eval_str=True)


async def test_backends_are_assignable_to_storage(db_path: Path) -> None:
    memory: Storage = MemoryStorage()
    sqlite: Storage = await SqliteStorage.open(db_path)
    try:
        for store in (memory, sqlite):
            assert not await store.user_exists(ALICE)
    finally:
        await sqlite.close()
        await memory.close()


def test_storage_is_every_store_and_close() -> None:
    expected = set.union(*(_members(store) for store in STORES)) | {"close"}
    assert _members(Storage) == expected
    assert {"create_user", "get_roster", "store_offline", "block", "is_blocked"} <= expected
    assert set(STORES) <= set(Storage.__mro__)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda cls: cls.__name__)
def test_backend_matches_every_protocol_method(backend: type) -> None:
    for name in sorted(_members(Storage)):
        method = getattr(backend, name, None)
        assert method is not None, f"{backend.__name__} lacks {name}"
        assert inspect.iscoroutinefunction(method), name
        assert _signature(backend, name) == _signature(Storage, name), name


async def test_close_is_idempotent_and_final(storage: Storage) -> None:
    await storage.block(ALICE, [])
    await storage.close()
    await storage.close()
    with pytest.raises(RuntimeError):
        await storage.user_exists(ALICE)
    with pytest.raises(RuntimeError):
        await storage.get_blocklist(ALICE)
