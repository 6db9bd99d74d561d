"""Every behavioural storage test runs against both backends through ``storage``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storage.common import OpenStorage

from xmlchat.storage import MemoryStorage, SqliteStorage, Storage

BACKENDS = ("sqlite", "memory")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "xmlchat.sqlite3"


@pytest.fixture(params=BACKENDS)
async def open_storage(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[OpenStorage]:
    opened: list[Storage] = []

    async def open_backend(scram_iterations: int = 4096) -> Storage:
        store: Storage
        if request.param == "sqlite":
            store = await SqliteStorage.open(db_path, scram_iterations)
        else:
            store = MemoryStorage(scram_iterations)
        opened.append(store)
        return store

    yield open_backend
    for store in opened:
        await store.close()


@pytest.fixture
async def storage(open_storage: OpenStorage) -> Storage:
    return await open_storage(4096)
