"""The report of ``make bench``: goal evaluation and the rendering of
docs/performance.md from a results file (``fixtures/bench-small.json``, a
hand-made run whose every figure is chosen to put a goal on one side of its
limit), and the XEP-0198 counting of the ``xmpp-sm`` driver. Milliseconds;
no server is started."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import goals, render, report
from benchmarks.drivers.xmpp_sm import XmppSmProtocol

FIXTURE = Path(__file__).with_name("fixtures") / "bench-small.json"


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(FIXTURE.read_text())
    return doc


def _status(doc: dict[str, Any]) -> dict[str, str]:
    return {f"{o.goal.issue} {o.goal.text}": o.status for o in goals.evaluate(doc)}


def _find(statuses: dict[str, str], *words: str) -> str:
    hits = [s for k, s in statuses.items() if all(w in k for w in words)]
    assert len(hits) == 1, (words, hits)
    return hits[0]


def test_goals_are_computed_from_the_run() -> None:
    s = _status(_doc())
    assert _find(s, "native / XMPP") == goals.NOT_MET  # 0.8×
    assert _find(s, "native / Prosody") == goals.MET  # 2.4×
    assert _find(s, "XMPP / Prosody", "pairs (50") == goals.MET  # 3.0×
    assert _find(s, "XMPP / Prosody", "idle") == goals.NOT_MET  # 2.0×
    assert _find(s, "XMPP / Prosody", "logins") == goals.MET  # 3.0×
    assert _find(s, "XMPP / Prosody", "fan-out") == goals.NOT_MET  # 2.0×
    assert _find(s, "relay / XMPP", "pairs (50") == goals.MET  # 2.67×
    assert _find(s, "relay / XMPP", "idle") == goals.NOT_MET  # 5.6×
    assert _find(s, "relay / XMPP", "fan-out") == goals.NOT_MEASURED  # no relay fan-out
    assert _find(s, "max one-way", "XMPP") == goals.MET  # 180 ms
    assert _find(s, "max one-way", "native") == goals.NOT_MET  # 300 ms
    assert _find(s, "ping-pong", "XMPP") == goals.MET  # 1.2 ms
    assert _find(s, "ping-pong", "native") == goals.NOT_MET  # 2.0 ms
    assert _find(s, "plaintext, XMPP") == goals.NOT_MET  # 25 KiB at 5,000 (30 at 1,000 ignored)
    assert _find(s, "plaintext, native") == goals.MET  # 19.5 KiB
    assert _find(s, "session, TLS") == goals.NOT_MET  # 45.5 KiB
    assert _find(s, "pending TLS") == goals.MET  # 8 KiB
    assert _find(s, "RSS growth", "XMPP") == goals.NOT_MET  # 40 MB
    assert _find(s, "RSS growth", "native") == goals.MET  # 10 MB
    assert _find(s, "durable acknowledgements on") == goals.MET  # the in-memory ones excepted
    assert _find(s, "durable / in-memory", "XMPP") == goals.MET  # 0.83×
    assert _find(s, "durable / in-memory", "native") == goals.NOT_MET  # 0.6×
    assert _find(s, "mod_smacks") == goals.MET  # 2×


def test_a_figure_missing_from_the_run_is_not_measured_never_met() -> None:
    doc = _doc()
    del doc["servers"]["relay"]
    doc["servers"]["xmlchat"]["durable"] = None
    del doc["session_memory"]
    s = _status(doc)
    assert _find(s, "relay / XMPP", "pairs (50") == goals.NOT_MEASURED
    assert _find(s, "durable acknowledgements on") == goals.NOT_MEASURED
    assert _find(s, "session, TLS") == goals.NOT_MEASURED


def test_durable_off_in_a_measured_xmlchat_target_fails_goal_5() -> None:
    doc = copy.deepcopy(_doc())
    doc["servers"]["xmlchat:native"]["durable"] = False
    outcome = next(o for o in goals.evaluate(doc) if o.goal.issue == "16 (5)")
    assert outcome.status == goals.NOT_MET
    assert outcome.measured is not None and "off in xmlchat:native" in outcome.measured.shown


def test_the_page_is_rendered_from_the_results_file(tmp_path: Path) -> None:
    results = tmp_path / "performance" / "bench-2026-12-01.json"
    results.parent.mkdir()
    results.write_text(FIXTURE.read_text())
    (tmp_path / "performance" / "profile-xmpp.svg").write_text("<svg/>")
    page = tmp_path / "performance.md"
    assert report.main(["--from", str(results), "--doc", str(page)]) == 0
    text = page.read_text()
    # the fixed head, with the run's command and a link to its JSON beside the page
    assert "python -m benchmarks.run --repeat 1 --doc docs/performance.md" in text
    assert render.REDUCED in text
    assert "](performance/bench-2026-12-01.json)" in text
    assert "](performance/analysis.md)" in text
    # the goals table: one row per goal with the computed verdict
    row = next(line for line in text.splitlines() if "native / XMPP" in line)
    assert "0.80× (24,000 / 30,000)" in row and row.endswith("| not met |")
    row = next(line for line in text.splitlines() if "| 11 (8) | xmlchat / Prosody" in line)
    assert "2.00× (18,000 / 9,000)" in row and row.endswith("| **met** |")
    # scenario tables: ratios to Prosody, to Prosody with smacks for the xmpp-sm targets
    assert "| xmlchat | 16,000 (2.00×) | 30,000 (3.00×) |" in text
    assert "| xmlchat:xmpp-sm | - | 18,000 (2.00×) |" in text
    # counts get no ratio; a skipped target and a failure's first line are noted
    assert "| 0 | 0.25 |" in text
    assert "`ejabberd`: skipped: ejabberd is not installed" in text
    assert "room_fanout run 1 failed: BenchError: boom" in text and "Traceback" not in text
    assert "[profile-xmpp.svg](performance/profile-xmpp.svg)" in text
    assert "| 18 | 45.5 | 8 |" in text  # session memory
    assert str(tmp_path) not in text  # no machine paths in a committed page


def test_sizes_other_than_the_goals_own_are_flagged() -> None:
    doc = _doc()
    doc["sizes"]["idle_attached"] = 100
    assert "not the goals' own** (`idle_attached` 100)" in render.goals_table(doc)
    assert "not the goals' own" not in render.goals_table(_doc())


class _Transport:
    def __init__(self) -> None:
        self.out = b""

    def write(self, data: bytes) -> None:
        self.out += data


@pytest.mark.asyncio
async def test_sm_driver_counts_stanzas_since_enabled_and_asks_per_message() -> None:
    proto = XmppSmProtocol()
    transport = _Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto._logged_in = True
    sm = "urn:xmpp:sm:3"
    proto.data_received(b"<stream:stream xmlns='jabber:client' "
                        b"xmlns:stream='http://etherx.jabber.org/streams'>"
                        b"<message from='a@x/r'><body>before enable</body></message>")
    enabling = asyncio.ensure_future(proto.enable(5))
    await asyncio.sleep(0)  # the <enable/> is written
    assert transport.out.endswith(b"<enable xmlns='urn:xmpp:sm:3'/>")
    proto.data_received(f"<enabled xmlns='{sm}'/>".encode())
    await enabling
    got: list[str] = []
    proto.on_message = lambda _f, body, _t: got.append(body)
    proto.data_received(b"<message from='a@x/r'><body>one</body></message><presence/>"
                        + f"<iq type='result' id='z'/><r xmlns='{sm}'/><a xmlns='{sm}' h='1'/>"
                          .encode())
    assert got == ["one"]
    assert transport.out.endswith(f"<a xmlns='{sm}' h='3'/>".encode())
    assert proto.acks == 1
    proto.send_message("b@x/r", "hi")
    assert transport.out.endswith(f"</message><r xmlns='{sm}'/>".encode())


def test_machine_paths_are_scrubbed() -> None:
    tmp = tempfile.gettempdir()
    text = f"failed: {render.CHECKOUT}/.venv/bin/python -m x --config {tmp}/xmlchat-mem-1/x.toml"
    assert render.scrub(text) == "failed: .venv/bin/python -m x --config $TMPDIR/xmlchat-mem-1/x.toml"
