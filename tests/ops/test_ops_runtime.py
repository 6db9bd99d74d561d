"""[runtime]: the event loop the server runs on, and the collector's tuning."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Iterator

import pytest
from conftest import ServerFactory

from xmlchat.config import Runtime
from xmlchat.server import runtime

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_chosen_runs_on_asyncio() -> None:
    assert runtime.loop_factory(Runtime(event_loop="asyncio")) is None
    assert runtime.run(_loop_module(), Runtime(event_loop="asyncio")).startswith("asyncio")


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
def test_auto_prefers_uvloop_when_installed() -> None:
    assert runtime.run(_loop_module(), Runtime()) == "uvloop"


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_tune_collector_sets_threshold_and_freezes() -> None:
    gc.unfreeze()
    runtime.tune_collector(Runtime(gc_threshold=12345, gc_freeze=True))
    assert gc.get_threshold()[0] == 12345
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("collector")
def test_tune_collector_without_freeze_freezes_nothing() -> None:
    gc.unfreeze()
    runtime.tune_collector(Runtime(gc_freeze=False))
    assert gc.get_freeze_count() == 0


NEEDS_UVLOOP = pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")


@pytest.mark.parametrize(
    "choice, expected",
    [("asyncio", "event loop: asyncio."), pytest.param("auto", "event loop: uvloop.", marks=NEEDS_UVLOOP)],
)
def test_server_reports_its_loop(server_factory: ServerFactory, choice: str, expected: str) -> None:
    server = server_factory(f'[runtime]\nevent_loop = "{choice}"\n')
    assert expected in server.log()
    assert "objects frozen" in server.log()
