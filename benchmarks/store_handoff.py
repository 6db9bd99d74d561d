"""The durable hand-off alone: one offline write queued on an idle SQLite
store (``queue_offline``, the pipelined path), timed until its callback runs
on the event loop (uvloop): the commit on the store's writer thread and the
hand-back to the loop, which every durable message's ack waits for.

Printed: the round trip's p50, p90 and p99 in µs, and the process's CPU
(both threads) per message. ``BURST`` writes are queued per round (one turn
of the loop), ``N`` rounds; what was stored is deleted every 50 rounds.

    python -m benchmarks.store_handoff
    BURST=10 N=1000 python -m benchmarks.store_handoff
    cd /tmp && PYTHONPATH=OTHER_CHECKOUT python CHECKOUT/benchmarks/store_handoff.py   # another checkout
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

N = int(os.environ.get("N", "3000"))
BURST = int(os.environ.get("BURST", "1"))
STANZA = b"<message xmlns='jabber:client' to='alice@example.com'><body>hi</body></message>"


async def measure() -> tuple[list[float], float]:
    from xmlchat.jid import JID
    from xmlchat.storage.sqlite import SqliteStorage

    alice = JID.parse("alice@example.com")
    received = datetime(2026, 1, 1, tzinfo=UTC)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as directory:
        store = await SqliteStorage.open(Path(directory) / "store.sqlite")
        round_trips: list[float] = []
        cpu = time.process_time()
        for round_ in range(N):
            told: asyncio.Future[float] = loop.create_future()
            left = [BURST]

            def written(message_id: int, error: BaseException | None, told: asyncio.Future[float] = told,
                        left: list[int] = left) -> None:
                left[0] -= 1
                if not left[0]:
                    told.set_result(time.perf_counter())

            start = time.perf_counter()
            for _ in range(BURST):
                store.queue_offline(alice, STANZA, received, 0, None, written)
            round_trips.append((await told - start) * 1e6)
            if round_ % 50 == 49:
                await store.delete_offline(alice, 2**62)
        cpu = time.process_time() - cpu
        await store.close()
    return sorted(round_trips), cpu


def main() -> None:
    import uvloop

    import xmlchat

    round_trips, cpu = uvloop.run(measure())

    def at(share: float) -> float:
        return round_trips[int(len(round_trips) * share)]

    print(
        f"{Path(xmlchat.__file__).parents[1]}: {N} rounds of {BURST}: round trip p50 {at(0.5):.0f} µs, "
        f"p90 {at(0.9):.0f}, p99 {at(0.99):.0f}; CPU per message {cpu / N / BURST * 1e6:.0f} µs"
    )


if __name__ == "__main__":
    main()
