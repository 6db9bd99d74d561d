"""``migrate-storage``: move a data directory's SQLite store into PostgreSQL.

xmlchat migrate-storage --from DATA_DIR --to postgresql://HOST/DB
    copies every account (with its SCRAM keys), roster, pending subscription
    request, offline message, blocklist, archive, document and PEP node; the target must hold no
    xmlchat data yet. The server must be stopped: the data directory's lock is
    taken for the copy. Then set ``storage.url`` to the same URL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from xmlchat.cli.common import run_async
from xmlchat.config import Config
from xmlchat.server.datadir import DataDirInUse, DataDirLock
from xmlchat.storage.opening import is_postgres_url


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    migrate = sub.add_parser(
        "migrate-storage", parents=[common], help="copy a data directory's SQLite store into PostgreSQL"
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="DATA_DIR")
    migrate.add_argument("--to", dest="target", required=True, metavar="postgresql://…")
    migrate.set_defaults(run=_migrate_storage)


def _migrate_storage(args: argparse.Namespace, config: Config) -> int:
    if not is_postgres_url(args.target):
        print("xmlchat: --to must be a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        from xmlchat.storage.postgres.copy import TargetNotEmpty, copy_sqlite_to_postgres
    except ImportError:
        print("xmlchat: PostgreSQL support is not installed: pip install 'xmlchat[postgresql]'",
              file=sys.stderr)
        return 1
    data_dir = Path(args.source)
    source = data_dir / config.storage.path
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except (DataDirInUse, FileNotFoundError) as e:
        print(f"xmlchat: {e}", file=sys.stderr)
        return 1
    try:
        counts: dict[str, int] = {}

        async def copy() -> int:
            counts.update(await copy_sqlite_to_postgres(source, args.target))
            return 0

        run_async(copy())
    except (TargetNotEmpty, FileNotFoundError) as e:
        print(f"xmlchat: {e}; nothing was copied", file=sys.stderr)
        return 1
    finally:
        lock.release()
    for table, count in counts.items():
        print(f"{table}: {count} rows")
    print("copied; now set storage.url to the target and start the server")
    return 0
