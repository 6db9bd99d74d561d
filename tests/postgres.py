"""A fresh PostgreSQL schema per test, for the store suite and the cluster tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# The loopback PostgreSQL every machine of this project runs (trust auth, database test).
POSTGRES_URL = os.environ.get("XMLCHAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL to a fresh, empty schema of the test database, dropped afterwards,
    so concurrent test runs on one database never see each other's rows.
    Skips the test, saying why, if PostgreSQL cannot be reached."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgresql]')")
    schema = f"xmlchat_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {e}")
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}".encode())
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE".encode())
