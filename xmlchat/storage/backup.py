"""Backup and restore of the SQLite database, with SQLite's online backup API.

A backup is a consistent snapshot even while the server writes (the API
copies pages under a read transaction; in WAL mode writers go on meanwhile),
never a torn file, and it includes what still sits in the ``-wal`` file. It is
written beside the target under a temporary name, checked, then renamed, so a
backup file either is whole or does not exist.

A restore replaces the whole database; it runs only while no server uses the
data directory (the caller holds its lock). The file is checked first
(``integrity_check``, an xmlchat schema no newer than this version's), the
current database is kept beside it as ``NAME.before-restore``, and the
server migrates the restored schema at its next start.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from xmlchat.storage.migrations import MIGRATIONS, schema_version


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


def backup_database(database: Path, target: Path) -> int:
    """Copy ``database`` to ``target`` (which must not exist); return its size."""
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new name")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory")
    partial = target.with_name(f".{target.name}.partial")
    try:
        _copy(database, partial)
        _check(partial)
        os.replace(partial, target)
    except sqlite3.Error as e:
        raise BackupError(f"backup failed: {e}") from e
    except OSError as e:
        raise BackupError(f"cannot write {target}: {e.strerror}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target.stat().st_size


def restore_database(source: Path, database: Path) -> Path | None:
    """Replace ``database`` with the backup ``source``; return where the
    database it replaced was kept (None if there was none)."""
    if not source.is_file():
        raise BackupError(f"{source}: no such file")
    try:
        _check(source)
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{source} is not an xmlchat backup: {e}") from e
    kept = None
    if database.exists():
        kept = database.with_name(f"{database.name}.before-restore")
        with contextlib.suppress(FileNotFoundError):
            kept.unlink()
        _copy(database, kept)
    try:
        _copy(source, database)
    except sqlite3.Error as e:
        raise BackupError(f"restore failed: {e}; the previous database is in {kept}") from e
    return kept


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            # One file, no -wal beside it: a backup is copied and moved as one.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _check(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {result}")
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "users" not in tables:
            raise sqlite3.DatabaseError("no users table")
        version = schema_version(conn)
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this xmlchat's ({len(MIGRATIONS)}); upgrade first"
            )
    finally:
        conn.close()
