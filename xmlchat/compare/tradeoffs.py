"""The two tradeoffs beside the protocols: long-lived connections against HTTP
requests, and TCP against UDP, as tables and headlines."""

from __future__ import annotations

from xmlchat.compare.records import MessageResult
from xmlchat.compare.run import Results

Table = tuple[str, list[str], list[list[str]]]

HTTP_TITLE = "The HTTP side: one chat over five transports"
UDP_TITLE = "Chat messages as datagrams: raw UDP and UDP with acks"

# The five rows of the HTTP table, in the order the document discusses them.
HTTP_ROWS = ("native-tls", "xmpp-starttls", "xmpp-websocket", "xmpp-bosh", "xmpp-poll")


def _message(results: Results, variant: str, script: str, size: int) -> MessageResult | None:
    for m in results.messages:
        if m.variant == variant and m.script == script and size - 3 < m.body_bytes <= size:
            return m
    return None


def _wire(m: MessageResult | None) -> str:
    """Every byte one message moved on both links, both ways (acks and polls included)."""
    if m is None:
        return "n/a"
    return f"{m.sender_up + m.sender_down + m.recipient_down + m.recipient_up:,}"


def _cpu(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.3f}"


def http_table(results: Results) -> Table:
    latency = {r.variant: r for r in results.latency}
    cpu = {t.variant: t for t in results.throughput}
    idle = {r.variant: r for r in results.idle}
    labels = {r.variant: r.label for r in results.latency} | {r.variant: r.label for r in results.idle}
    rows = []
    for key in HTTP_ROWS:
        if key not in labels:
            continue
        lat, tput, quiet = latency.get(key), cpu.get(key), idle.get(key)
        rows.append(
            [
                labels[key],
                _wire(_message(results, key, "ascii", 5)),
                _wire(_message(results, key, "chinese", 1024)),
                "n/a" if lat is None else f"{lat.p50_ms:.1f} / {lat.p99_ms:.1f}",
                _cpu(tput.cpu_seconds_per_1000 if tput else None),
                "n/a" if quiet is None else f"{quiet.requests_per_minute:.1f}",
                "n/a" if quiet is None else f"{quiet.per_minute(quiet.writes_up + quiet.writes_down):.1f}",
                "n/a" if quiet is None else f"{quiet.bytes_per_minute:,.0f}",
            ]
        )
    headers = [
        "variant",
        '"hello": bytes, all links both ways',
        "1 KB Chinese: bytes",
        "latency p50 / p99 (ms)",
        "server CPU s per 1,000 msgs",
        "HTTP requests per idle minute",
        "writes per idle minute (↑+↓)",
        "bytes per idle minute (↑+↓)",
    ]
    return (HTTP_TITLE, headers, rows)


def udp_table(results: Results) -> Table:
    experiment = results.datagrams
    rows = []
    for r in experiment.rows if experiment else []:
        rows.append(
            [
                r.path,
                r.protocol,
                f"{r.delivered}/{r.sent}",
                str(r.lost),
                str(r.duplicates),
                str(r.reordered),
                str(r.retransmissions),
                str(r.acks),
                f"{r.p50_ms:.1f} / {r.p99_ms:.1f}",
            ]
        )
    headers = [
        "path",
        "protocol",
        "delivered",
        "lost",
        "duplicates",
        "arrived out of order",
        "retransmitted",
        "acks",
        "latency p50 / p99 (ms)",
    ]
    return (UDP_TITLE, headers, rows)


def headlines(results: Results) -> list[str]:
    out = []
    idle = {r.variant: r for r in results.idle}
    ws, bosh, poll = idle.get("xmpp-websocket"), idle.get("xmpp-bosh"), idle.get("xmpp-poll")
    if ws and bosh and poll:
        out.append(
            f"An idle minute: a WebSocket client {ws.bytes_per_minute:,.0f} bytes and "
            f"{ws.requests_per_minute:.0f} requests, BOSH long polling {bosh.bytes_per_minute:,.0f} bytes "
            f"({bosh.requests_per_minute:.1f} requests), short polling {poll.bytes_per_minute:,.0f} bytes "
            f"({poll.requests_per_minute:.0f} requests)."
        )
    latency = {r.variant: r for r in results.latency}
    w, b, p = latency.get("xmpp-websocket"), latency.get("xmpp-bosh"), latency.get("xmpp-poll")
    if w and b and p:
        out.append(
            f"Delivery, median: WebSocket {w.p50_ms:.1f} ms, BOSH long polling {b.p50_ms:.1f} ms, "
            f"short polling {p.p50_ms:.0f} ms (about half the interval)."
        )
    experiment = results.datagrams
    if experiment:
        worst = [r for r in experiment.rows if r.path == experiment.rows[-1].path]
        raw = next((r for r in worst if r.protocol == "raw UDP"), None)
        acked = next((r for r in worst if r.protocol != "raw UDP"), None)
        if raw and acked:
            out.append(
                f"UDP over '{raw.path}': {raw.lost} of {raw.sent} chat messages lost, {raw.duplicates} "
                f"duplicated, {raw.reordered} out of order; with acks, retransmission and a reorder buffer "
                f"all arrive, in order, at {acked.retransmissions} retransmissions and a p99 of "
                f"{acked.p99_ms:.0f} ms (head-of-line waiting)."
            )
    return out
