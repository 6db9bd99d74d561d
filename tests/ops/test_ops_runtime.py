"""[runtime]: the event loop the server runs on, and the collector's tuning."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Iterator

import pytest
from conftest import ServerFactory

from xmlchat.config import Config, Runtime, load
from xmlchat.server import runtime

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


# The default config's direct-TLS listeners: native, and the HTTP listener over TLS.
PLAIN_ONLY = {"listeners.native.enabled": False, "listeners.https.enabled": False}


def _config(event_loop: str, **overrides: object) -> Config:
    return load(env={}, overrides={"runtime.event_loop": event_loop, **overrides})


def test_asyncio_chosen_runs_on_asyncio() -> None:
    factory = runtime.loop_factory(_config("asyncio", **PLAIN_ONLY))
    assert factory is None
    assert runtime.run(_loop_module(), factory).startswith("asyncio")


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
def test_auto_prefers_uvloop_when_installed_and_no_direct_tls() -> None:
    assert runtime.run(_loop_module(), runtime.loop_factory(_config("auto", **PLAIN_ONLY))) == "uvloop"


def test_auto_keeps_asyncio_with_a_direct_tls_listener() -> None:
    # uvloop loses a ClientHello read before start_tls (MagicStack/uvloop#707).
    assert runtime.direct_tls_listeners(_config("auto")) == ["native", "https"]
    assert runtime.loop_factory(_config("auto")) is None


def test_uvloop_chosen_with_a_direct_tls_listener_is_refused() -> None:
    with pytest.raises(ValueError, match="direct-TLS listeners \\(native, xmpp_tls\\)"):
        overrides = {"listeners.xmpp_tls.enabled": True, "listeners.https.enabled": False}
        runtime.loop_factory(_config("uvloop", **overrides))


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


@pytest.mark.parametrize("choice", ["asyncio", "auto"])
def test_server_with_its_tls_listener_runs_on_asyncio(server_factory: ServerFactory, choice: str) -> None:
    # The test configuration serves native over direct TLS: auto keeps asyncio (uvloop#707).
    server = server_factory(f'[runtime]\nevent_loop = "{choice}"\n')
    assert "event loop: asyncio." in server.log()
    assert "objects frozen" in server.log()
