"""The one place the configured backend is chosen: SQLite unless ``storage.url``
names a PostgreSQL database."""

from __future__ import annotations

from xmlchat.config import Config
from xmlchat.storage.interfaces import Storage
from xmlchat.storage.sqlite import SqliteStorage

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


async def open_storage(config: Config) -> Storage:
    """Open (and migrate) the configured store; the caller closes it."""
    settings = config.storage
    if not settings.url:
        return await SqliteStorage.open(config.database_path, settings.scram_iterations, settings.synchronous)
    if not is_postgres_url(settings.url):
        raise ValueError(f"storage.url: not a postgresql:// URL: {settings.url.split(':', 1)[0]}:…")
    # Imported here: psycopg is an optional extra, needed only by those who use it.
    from xmlchat.storage.postgres import PostgresStorage

    return await PostgresStorage.open(settings.url, settings.scram_iterations, settings.pool_size)
