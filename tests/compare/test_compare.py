"""``xmlchat compare``: the proxy counts exactly, and a quick run fills every field."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xmlchat.compare.proxy import Chunk, CountingProxy, round_trips


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), 10)


async def test_proxy_counts_every_byte_each_way() -> None:
    server, port = await _echo_server()
    payloads = [b"x", "é".encode(), bytes(range(256)) * 4, os.urandom(1_000_000)]
    async with CountingProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        for payload in payloads:
            writer.write(payload)
            await writer.drain()
            assert await _read_exactly(reader, len(payload)) == payload
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        flow = await proxy.flow(0)
        await asyncio.wait_for(flow.closed.wait(), 5)
    server.close()
    total = sum(map(len, payloads))
    assert (flow.up, flow.down) == (total, total)
    assert sum(c.size for c in flow.chunks if c.direction == "up") == total
    assert flow.bytes_until(float("inf")) == (total, total)


async def test_proxy_counts_round_trips_only_when_the_client_waits() -> None:
    server, port = await _echo_server()
    async with CountingProxy("127.0.0.1", port, delay=0.03) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        # Two writes without waiting in between: one flight.
        writer.write(b"ab")
        await writer.drain()
        writer.write(b"cd")
        assert await _read_exactly(reader, 4) == b"abcd"
        # Then three exchanges that each wait for the answer.
        for data in (b"1", b"22", b"333"):
            writer.write(data)
            assert await _read_exactly(reader, len(data)) == data
        writer.close()
        flow = await proxy.flow(0)
    server.close()
    assert flow.round_trips_until(float("inf")) == 4
    assert (flow.up, flow.down) == (10, 10)


def test_round_trips_from_a_chunk_log() -> None:
    log = [
        Chunk(0.0, "up", 10),
        Chunk(0.1, "up", 5),
        Chunk(0.2, "down", 7),
        Chunk(0.3, "down", 1),
        Chunk(0.4, "up", 3),
        Chunk(0.5, "down", 3),
        Chunk(0.6, "up", 2),  # never answered
    ]
    assert round_trips(log) == 2
    assert round_trips(reversed(log)) == 2  # time order, not list order
    assert round_trips([Chunk(0.0, "down", 100)]) == 0  # a server greeting is not a round trip


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("compare")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMLCHAT_")}
    result = subprocess.run(
        [sys.executable, "-m", "xmlchat", "compare", "--quick", "--json", str(out / "r.json")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
        cwd=out,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "compare: [" in result.stderr  # progress
    assert "Connect to first message" in result.stdout  # the table
    data: dict[str, Any] = json.loads((out / "r.json").read_text())
    return data


def _by_variant(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["variant"]: row for row in rows}


MAIN = ("native-tls", "native-plain", "xmpp-starttls", "xmpp-plain")
WEB = ("xmpp-websocket", "xmpp-bosh", "xmpp-poll")
FULL = (*MAIN, *WEB)


def test_quick_run_connect(quick_run: dict[str, Any]) -> None:
    assert quick_run["errors"] == []
    connect = _by_variant(quick_run["connect"])
    assert set(connect) == {*FULL, "xmpp-directtls", "xmpp-directtls-plain"}
    for key, row in connect.items():
        assert row["bytes_up"] > 100 and row["bytes_down"] > 100, key
        assert row["bytes_total"] == row["bytes_up"] + row["bytes_down"]
        assert 0 < row["time_ms"] < 10_000
        assert row["time_at_rtt_ms"] >= row["round_trips"] * row["injected_rtt_ms"] * 0.9
        minimum = 2 if key.startswith("xmpp") else 1
        assert row["round_trips"] >= minimum, key
    # What the protocols promise: native logs in in one round trip (plus TLS's),
    # STARTTLS costs XMPP more than direct TLS, and TLS costs bytes.
    assert connect["native-plain"]["round_trips"] == 1
    assert connect["native-tls"]["round_trips"] == 2
    assert connect["xmpp-starttls"]["round_trips"] > connect["xmpp-directtls"]["round_trips"]
    assert connect["xmpp-starttls"]["round_trips"] > connect["native-tls"]["round_trips"]
    assert connect["native-tls"]["bytes_total"] > connect["native-plain"]["bytes_total"]
    # XMPP's login (stream restarts, SASL, bind, roster) costs more than the
    # native one over the same transport, in bytes and in round trips.
    for native, xmpp in (("native-tls", "xmpp-directtls"), ("native-plain", "xmpp-plain")):
        assert connect[xmpp]["bytes_total"] > connect[native]["bytes_total"], xmpp
        assert connect[xmpp]["round_trips"] > connect[native]["round_trips"], xmpp
    assert connect["xmpp-starttls"]["detail"].startswith("SASL ")
    # Over HTTP the same login costs more: every request carries HTTP headers,
    # and a polling client waits for its next poll to hear each answer.
    for key in WEB:
        assert connect[key]["bytes_total"] > connect["xmpp-directtls"]["bytes_total"], key
    assert connect["xmpp-poll"]["round_trips"] > connect["xmpp-bosh"]["round_trips"]


def test_quick_run_messages(quick_run: dict[str, Any]) -> None:
    rows = quick_run["messages"]
    assert {row["variant"] for row in rows} == set(FULL)
    assert {(row["script"], row["body_bytes"]) for row in rows} >= {("ascii", 5), ("chinese", 1023)}
    for row in rows:
        assert row["body_bytes"] == row["body_chars"] * (1 if row["script"] == "ascii" else 3)
        assert row["sender_up"] > row["body_bytes"]
        assert row["recipient_down"] > row["body_bytes"]
        assert row["wire_bytes"] == row["sender_up"] + row["recipient_down"]
        assert row["overhead_ratio"] > 1.0
        if row["variant"].startswith("native"):
            assert row["sender_down"] > 0  # the <ack>
            # The recipient's client confirms what it read (<received><seq/>),
            # so stored messages leave the store only once it has them.
            assert 0 < row["recipient_up"] <= 64
        elif row["variant"] in ("xmpp-bosh", "xmpp-poll"):
            # The request that brought the message down is followed by the next one.
            assert row["recipient_up"] > 0
        else:
            # XMPP here has neither XEP-0184 nor XEP-0198 on: nothing goes up.
            assert row["recipient_up"] == 0


def test_quick_run_latency_throughput_cpu(quick_run: dict[str, Any]) -> None:
    latency = _by_variant(quick_run["latency"])
    throughput = _by_variant(quick_run["throughput"])
    assert set(latency) == set(throughput) == set(FULL)
    options = quick_run["options"]
    for key in FULL:
        lat, tput = latency[key], throughput[key]
        count = options["poll_latency_messages" if key == "xmpp-poll" else "latency_messages"]
        assert lat["messages"] == count == len(lat["samples_ms"])
        assert 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert tput["delivered"] == options["pairs"] * options["messages"]
        assert tput["failed_sends"] == 0
        assert tput["messages_per_second"] > 0 and tput["seconds"] > 0
        assert 0 < tput["p50_ms"] <= tput["p99_ms"]
        # Server CPU comes from /proc in whole clock ticks, so a short quick run
        # may see none in one variant; but it is read (not None) and consistent.
        assert _whole_ticks(tput["server_cpu_seconds"]), tput["server_cpu_seconds"]
        per_1000 = tput["server_cpu_seconds"] / tput["delivered"] * 1000
        assert tput["cpu_seconds_per_1000"] == pytest.approx(per_1000, abs=1e-4)
        logins = 2 * options["pairs"]  # a sender and a recipient per pair
        assert _whole_ticks(tput["login_cpu_ms"] * logins / 1000), tput["login_cpu_ms"]
        assert tput["client_cpu_seconds_per_1000"] > 0
    # Over four variants' logins (TLS handshakes, SCRAM) and messages the server
    # does work enough to span clock ticks.
    assert sum(throughput[key]["server_cpu_seconds"] for key in MAIN) > 0
    assert sum(throughput[key]["login_cpu_ms"] for key in MAIN) > 0


def _whole_ticks(seconds: float | None) -> bool:
    """A CPU time read from /proc/PID/stat: a non-negative whole number of clock ticks."""
    if seconds is None:
        return False
    ticks = seconds * os.sysconf("SC_CLK_TCK")
    return ticks >= 0 and abs(ticks - round(ticks)) < 0.01


def test_quick_run_reconnect_and_description(quick_run: dict[str, Any]) -> None:
    reconnect = _by_variant(quick_run["reconnect"])
    connect = _by_variant(quick_run["connect"])
    assert set(reconnect) == set(connect) - set(WEB)
    for key, row in reconnect.items():
        assert row["time_ms"] > 0
        # A reconnect is a full login: within a few bytes of the first one.
        assert abs(row["bytes_total"] - connect[key]["bytes_total"]) < 200, key
    assert quick_run["machine"]["cores"] >= 1
    assert quick_run["command"].startswith("xmlchat compare --quick")
    assert {s["name"] for s in quick_run["servers"]} == {"secure", "plain"}
    assert all(s["pid"] for s in quick_run["servers"])


def test_the_document_shows_the_committed_run() -> None:
    """docs/protocols.md's numbers are the ones `make compare` wrote, not typed by hand."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    text = (docs / "protocols.md").read_text()
    begin, end = text.index("<!-- compare:results:begin"), text.index("<!-- compare:results:end -->")
    block = text[begin:end]
    run = json.loads((docs / "compare" / "results.json").read_text())
    assert run["errors"] == []
    for row in run["connect"]:
        cells = (row["label"], row["round_trips"], row["bytes_up"], row["bytes_down"], row["bytes_total"])
        assert "| " + " | ".join(map(str, cells)) + " |" in block, row["variant"]
    for row in run["reconnect"]:
        assert f"| {row['label']} |" in block
    assert {row["variant"] for row in run["idle"]} >= {"xmpp-websocket", "xmpp-bosh", "xmpp-poll"}
    assert run["datagrams"]["rows"]
    for name in (
        "bytes-per-message.png",
        "latency-cdf.png",
        "http-transports.png",
        "udp-impaired.png",
        "results.md",
    ):
        assert (docs / "compare" / name).exists()
        assert name.endswith(".md") or f"(compare/{name})" in block


def test_quick_run_idle_clients(quick_run: dict[str, Any]) -> None:
    idle = _by_variant(quick_run["idle"])
    assert set(idle) == {"native-tls", "xmpp-starttls", *WEB}
    seconds = quick_run["options"]["idle_seconds"]
    for key, row in idle.items():
        assert row["seconds"] == seconds
        if key in ("native-tls", "xmpp-starttls", "xmpp-websocket"):
            # A stream costs nothing while idle until a heartbeat is due (30 s and more).
            assert row["http_requests"] == 0 and row["bytes_up"] + row["bytes_down"] == 0, key
    # Short polling asks every 2 s whatever happens: a request, its answer, its bytes.
    poll = idle["xmpp-poll"]
    assert poll["http_requests"] >= int(seconds // 2) - 1 >= 0
    assert poll["requests_per_minute"] == pytest.approx(poll["http_requests"] * 60 / seconds)
    assert poll["bytes_up"] > 0 and poll["bytes_down"] > 0


def test_quick_run_datagrams(quick_run: dict[str, Any]) -> None:
    experiment = quick_run["datagrams"]
    assert experiment["netem"].startswith(("available", "unavailable"))
    rows = experiment["rows"]
    assert len(rows) == 8  # four paths, raw and acked
    for row in rows:
        assert row["sent"] == quick_run["options"]["datagrams"]
        assert row["delivered"] + row["lost"] == row["sent"]
        if row["protocol"] == "UDP + acks":
            # What a chat protocol over UDP has to rebuild gets every message through.
            assert row["lost"] == 0 and row["acks"] >= row["sent"]
            assert row["datagrams"] == row["sent"] + row["retransmissions"]
        else:
            assert row["retransmissions"] == row["acks"] == 0
    clean = [r for r in rows if r["path"].startswith("clean")]
    assert all(r["lost"] == r["duplicates"] == r["reordered"] == 0 for r in clean)
    worst = [r for r in rows if r["path"].startswith("20%")]
    raw = next(r for r in worst if r["protocol"] == "raw UDP")
    acked = next(r for r in worst if r["protocol"] == "UDP + acks")
    assert raw["lost"] > 0 and raw["reordered"] > 0  # seeded: the same every run
    assert acked["retransmissions"] > 0


async def test_impaired_path_duplicates_and_drops_as_told() -> None:
    from xmlchat.compare import datagrams

    both = datagrams.Impairment("all twice", 0.0, 1.0, 0.0, 1.0)
    doubled = await datagrams.raw_udp(both, 20, random.Random(1))
    assert (doubled.delivered, doubled.duplicates) == (20, 20)
    gone = datagrams.Impairment("all lost", 1.0, 1.0, 0.0, 0.0)
    dropped = await datagrams.raw_udp(gone, 20, random.Random(1))
    assert (dropped.delivered, dropped.lost) == (0, 20)
