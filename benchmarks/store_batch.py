"""CPU per message on the SQLite store's thread, alone: the real group-commit
batch (``xmlchat.storage._offline.apply_batch``) in a loop, on a store that
grows as a server's does.

Each batch stores ``BATCH`` messages (a client id each, unless ``IDS=0``) and
deletes the ids stored two batches before, as the recipients' inboxes do once
their clients took them. The re-send records are never swept, so after
``MESSAGES`` they number that many: 200,000 is an hour's window at 55 messages
per second. Printed: the thread's CPU per message so far, at each quarter.

    python -m benchmarks.store_batch
    IDS=0 BATCH=200 python -m benchmarks.store_batch
    cd /tmp && PYTHONPATH=OTHER_CHECKOUT python CHECKOUT/benchmarks/store_batch.py   # another checkout
"""

from __future__ import annotations

import inspect
import os
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = int(os.environ.get("BATCH", "50"))
MESSAGES = int(os.environ.get("MESSAGES", "200000"))
IDS = os.environ.get("IDS", "1") == "1"
STANZA = (
    b"<message xmlns='jabber:client' type='chat' id='abcdef0123456789' from='u1@localhost/r'"
    b" to='u2@localhost'><body>" + b"x" * 100 + b"</body></message>"
)


def main() -> None:
    from xmlchat.storage import _offline as oq
    from xmlchat.storage.base import UNLIMITED, MessageOrigin
    from xmlchat.storage.migrations import migrate

    path = Path(tempfile.mkdtemp(prefix="xmlchat-batch-")) / "x.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    # Before schema 7 the batch took no in-memory index of re-send records.
    before: tuple[Any, ...] = (conn,)
    if "recent" in inspect.signature(oq.apply_batch).parameters:
        from xmlchat.storage._recent import RecentIds

        before = (conn, RecentIds())
    settled: list[list[tuple[str, list[int]]]] = []
    marks: list[str] = []
    start, done = time.thread_time(), 0
    while done < MESSAGES:
        writes = [
            oq.OfflineWrite(
                f"u{(done + k) % 100}@localhost", STANZA, "2026-12-01T10:00:00+00:00", UNLIMITED,
                MessageOrigin(f"s{k % 100}@localhost/r", secrets.token_hex(16), 3600.0) if IDS else None,
            )
            for k in range(BATCH)
        ]
        deletes = settled.pop(0) if len(settled) > 2 else []
        ids = oq.apply_batch(*before, writes, deletes, False)
        by_jid: dict[str, list[int]] = {}
        for write, message_id in zip(writes, ids, strict=True):
            by_jid.setdefault(write.jid, []).append(message_id)
        settled.append(list(by_jid.items()))
        done += BATCH
        if done % (MESSAGES // 4) < BATCH:
            marks.append(f"{done:,}: {1e6 * (time.thread_time() - start) / done:.2f}")
    print(f"batches of {BATCH}, ids {'on' if IDS else 'off'}; µs of CPU per message after", "; ".join(marks))


if __name__ == "__main__":
    main()
