"""routing.pipeline: what a front end acknowledges once a queued write is
committed, in the client's order."""

from __future__ import annotations

import asyncio

import pytest

from xmlchat.errors import StanzaCondition, StanzaError
from xmlchat.routing.pipeline import PIPELINE, Pipeline, drain


async def test_continuations_then_completions_run_in_the_order_written_resolves() -> None:
    pipeline, events = Pipeline(), []
    writes = []
    for n in range(3):
        writes.append(pipeline.defer(lambda i, error, n=n: events.append(f"offer {n} as {i}")))
        deferred = pipeline.take()
        assert deferred is not None and pipeline.take() is None
        deferred.completion = lambda error, n=n: events.append(f"ack {n} {error}")
    assert pipeline.busy and pipeline.pending == 3
    for n, written in enumerate(writes):  # a store calls them in the order queued
        written(10 + n, None)
    await pipeline.drain()
    assert events == [
        "offer 0 as 10", "ack 0 None", "offer 1 as 11", "ack 1 None", "offer 2 as 12", "ack 2 None"
    ]
    assert not pipeline.busy


async def test_after_waits_for_what_was_deferred_before_it_and_no_longer() -> None:
    pipeline, events = Pipeline(), []
    pipeline.after(lambda: events.append("nothing pending: at once"))
    assert events == ["nothing pending: at once"]
    written = pipeline.defer(lambda i, error: events.append("stored"))
    deferred = pipeline.take()
    assert deferred is not None
    deferred.completion = lambda error: events.append("ack 1")
    pipeline.after(lambda: events.append("error for 2, after ack 1"))
    await asyncio.sleep(0)
    assert events == ["nothing pending: at once"]
    written(1, None)
    await pipeline.drain()
    assert events[1:] == ["stored", "ack 1", "error for 2, after ack 1"]
    pipeline.after(lambda: events.append("drained: at once"))
    assert events[-1] == "drained: at once"


async def test_a_failed_continuation_reaches_the_completion_instead_of_an_ack() -> None:
    pipeline, errors = Pipeline(), []

    def refuse(message_id: int, error: BaseException | None) -> None:
        if error is not None:
            raise error

    written = pipeline.defer(refuse)
    deferred = pipeline.take()
    assert deferred is not None
    deferred.completion = errors.append
    written(0, StanzaError(StanzaCondition.RESOURCE_CONSTRAINT))
    await pipeline.drain()
    assert len(errors) == 1 and isinstance(errors[0], StanzaError)


async def test_drain_waits_for_the_current_tasks_pipeline_only() -> None:
    await drain()  # no pipeline: nothing to wait for
    pipeline = Pipeline()
    written = pipeline.defer(lambda i, error: None)
    PIPELINE.set(pipeline)
    waiting = asyncio.ensure_future(drain())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    written(1, None)
    await asyncio.wait_for(waiting, 1)


@pytest.mark.parametrize("pending", [1, 5])
async def test_drain_returns_once_every_pending_one_ran(pending: int) -> None:
    pipeline, ran = Pipeline(), []
    writes = []
    for _ in range(pending):
        writes.append(pipeline.defer(lambda i, error: ran.append(i)))
        pipeline.take()
    waiting = asyncio.ensure_future(pipeline.drain())
    for written in writes[:-1]:
        written(0, None)
    await asyncio.sleep(0.01)
    assert not waiting.done()
    writes[-1](0, None)
    await asyncio.wait_for(waiting, 1)
    assert len(ran) == pending
