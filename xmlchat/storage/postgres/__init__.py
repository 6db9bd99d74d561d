"""The PostgreSQL backend (psycopg 3, async, pooled): the store a cluster of nodes shares."""

from xmlchat.storage.postgres.store import PostgresStorage

__all__ = ["PostgresStorage"]
