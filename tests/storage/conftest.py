"""Every behavioural storage test runs against each backend (SQLite, memory,
PostgreSQL) through ``storage``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from postgres import postgres_schema
from storage.common import OpenStorage

from xmlchat.storage import MemoryStorage, SqliteStorage, Storage

BACKENDS = ("sqlite", "memory", "postgresql")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "xmlchat.sqlite3"


@pytest.fixture(params=BACKENDS)
async def open_storage(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[OpenStorage]:
    opened: list[Storage] = []
    with ExitStack() as schema:
        # PostgreSQL: one fresh schema per test, dropped after the stores close.
        postgres_url = schema.enter_context(postgres_schema()) if request.param == "postgresql" else ""

        async def open_backend(scram_iterations: int = 4096) -> Storage:
            store: Storage
            if request.param == "sqlite":
                store = await SqliteStorage.open(db_path, scram_iterations)
            elif request.param == "postgresql":
                from xmlchat.storage.postgres import PostgresStorage

                store = await PostgresStorage.open(postgres_url, scram_iterations)
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
