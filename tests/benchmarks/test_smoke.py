"""Smoke test of the benchmark harness (benchmarks/).

The Prosody part is skipped unless XMLCHAT_BENCH_SMOKE=1 and Prosody is installed;
it starts a private Prosody on loopback and runs every workload at toy sizes
(well under 20 s). The two parser/bookkeeping tests need nothing and take
milliseconds.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import scenarios
from benchmarks.accounts import AccountPool
from benchmarks.drivers.xmpp import XmppProtocol
from benchmarks.loadgen import LoadGen, OrderTracker

SMOKE = os.environ.get("XMLCHAT_BENCH_SMOKE") == "1"


class _Transport:
    def __init__(self) -> None:
        self.out = b""

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_stanzas_are_found_however_the_stream_is_cut() -> None:
    stream = (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' version='1.0'>"
        + "".join(
            f"<message from='a@localhost/r' type='chat'><body>run {i} 0 ü</body></message>"
            "<presence from='b@localhost/x'/>"
            for i in range(50)
        )
    ).encode()
    for cut in ("byte", "random", "whole"):
        proto = XmppProtocol()
        proto.connection_made(_Transport())  # type: ignore[arg-type]
        proto._logged_in = True
        got: list[str] = []
        proto.on_message = lambda _f, body, _t, sink=got.append: sink(body)
        rng = random.Random(7)
        i = 0
        while i < len(stream):
            n = {"byte": 1, "random": rng.randint(1, 40), "whole": len(stream)}[cut]
            proto.data_received(stream[i : i + n])
            i += n
        assert got == [f"run {i} 0 ü" for i in range(50)], cut
        assert len(proto._root) == 0  # completed stanzas are dropped


def test_order_tracker() -> None:
    t = OrderTracker()
    for seq in (0, 1, 3, 2, 4, 4, 6):
        t.see(seq)
    assert (t.unique, t.misordered, t.duplicates, t.missing) == (6, 1, 1, {5})


@pytest.fixture()
def prosody() -> Any:
    if not SMOKE:
        pytest.skip("set XMLCHAT_BENCH_SMOKE=1 to run the benchmark smoke test")
    if shutil.which("prosody") is None:
        pytest.skip("prosody is not installed")
    from benchmarks.servers.prosody import Prosody

    work = Path(tempfile.mkdtemp(prefix="bench-smoke-"))
    server = Prosody(work)
    yield server
    server.cleanup()
    shutil.rmtree(work, ignore_errors=True)


def test_workloads_against_prosody(prosody: Any) -> None:
    sizes = scenarios.Sizes(logins=30, login_concurrency=10, idle_small=10, idle_attached=20,
                            idle_large=40, open_concurrency=20, pairs=4, window=5,
                            duration=0.5, fanout_recipients=10, broadcasts=5,
                            pingpong_rounds=20, settle=0.1, room_occupants=8, room_broadcasts=5)
    pool: AccountPool = sizes.pool()
    prosody.prepare(pool.all())
    lg = LoadGen(2)
    try:
        prosody.start()
        lg.all({"op": "configure", "driver": "xmpp", "host": prosody.host,
                "port": prosody.ports["xmpp"], "domain": prosody.domain}, 30)
        ctx = scenarios.Context(prosody, lg, pool, sizes, timeout=60)
        results: dict[str, dict[str, float]] = {}
        for name in ("pingpong", "messages", "fanout", "room_fanout", "login_churn", "idle"):
            results.update(scenarios.SCENARIOS[name](ctx))
    finally:
        lg.close()
        prosody.stop()
    assert ctx.notes == []
    for group in ("messages", "messages_after_churn", "messages_idle"):
        m = results[group]
        assert m["msgs_per_s"] > 0 and m["received"] == m["sent"] > 0, (group, m)
        assert m["lost"] == m["misordered"] == m["duplicates"] == 0, (group, m)
    assert results["pingpong"]["rounds"] == 20
    assert results["pingpong"]["lost"] == 0
    assert results["fanout"]["broadcasts"] == 5 and results["fanout"]["lost"] == 0
    room = results["room_fanout"]
    assert (room["broadcasts"], room["occupants"], room["lost"], room["misordered"]) == (5, 8, 0, 0)
    assert results["login"]["errors"] == 0 and results["login"]["logins_per_s"] > 0
    assert results["idle_memory"]["open_sessions_40"] == 40
    assert results["messages_idle"]["idle_sessions"] == 20
