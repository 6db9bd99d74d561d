"""The group commit's hand-back to the event loop (xmlchat/storage/_group_commit.py).

A durable message's ack waits for its commit and then for the loop to hear of
it, so the hand-back is on every message's round trip: the writer thread wakes
the loop once per batch, and the writes are told in that wake-up's callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storage.common import ALICE, T0

from xmlchat.storage import SqliteStorage


async def test_a_batch_is_told_in_the_one_callback_its_writer_thread_wakes_the_loop_with(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_in_executor's asyncio future took two steps: its wake-up copied the
    outcome across, and the batch's callbacks ran a turn later."""
    loop = asyncio.get_running_loop()
    st = await SqliteStorage.open(db_path)
    real = loop.call_soon_threadsafe
    woken: list[bool] = []  # one per wake-up from another thread: True while its callback runs

    def counting(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Handle:
        def marked(*args: Any) -> None:
            woken[index] = True
            try:
                callback(*args)
            finally:
                woken[index] = False

        index = len(woken)
        woken.append(False)
        return real(marked, *args, **kwargs)

    told: list[tuple[int, bool]] = []
    all_told = loop.create_future()

    def written(message_id: int, error: BaseException | None) -> None:
        told.append((message_id, any(woken)))
        if len(told) == 3:
            all_told.set_result(None)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    try:
        for _ in range(3):
            st.queue_offline(ALICE, b"<m/>", T0, 100, None, written)
        await asyncio.wait_for(all_told, 5)
        assert [inside for _, inside in told] == [True, True, True]
        assert len(woken) == 1  # one wake-up for the batch
    finally:
        monkeypatch.undo()
        await st.close()
    assert [i for i, _ in told] == sorted(i for i, _ in told)
