"""The results summed up: headline sentences, tables, and tables as text or markdown."""

from __future__ import annotations

import re

from xmlchat.compare import tradeoffs
from xmlchat.compare.records import MessageResult
from xmlchat.compare.run import TABLE_SIZES, Results

Table = tuple[str, list[str], list[list[str]]]  # (title, headers, rows)


# ---- headlines: the comparisons the document talks about, computed


def headlines(results: Results) -> list[str]:
    out: list[str] = []
    connect = {r.variant: r for r in results.connect}
    n, x = connect.get("native-tls"), connect.get("xmpp-starttls")
    if n and x:
        out.append(
            f"Getting online over TLS: native {n.round_trips} round trips and {n.bytes_total:,} bytes, "
            f"XMPP with STARTTLS {x.round_trips} round trips and {x.bytes_total:,} bytes "
            f"({x.bytes_total / n.bytes_total:.1f}× the bytes); at {n.injected_rtt_ms:g} ms RTT "
            f"{n.time_at_rtt_ms:.0f} ms against {x.time_at_rtt_ms:.0f} ms."
        )
    d = connect.get("xmpp-directtls-plain")
    if n and d:
        out.append(
            f"Leanest XMPP here (direct TLS, SASL PLAIN, no extensions): {d.round_trips} round trips, "
            f"{d.bytes_total:,} bytes."
        )
    messages: dict[tuple[str, str, int], MessageResult] = {
        (m.variant, m.script, m.body_bytes): m for m in results.messages
    }
    for script, size, what in (("ascii", 5, '"hello"'), ("chinese", 1023, "1 KB of Chinese")):
        nm, xm = messages.get(("native-tls", script, size)), messages.get(("xmpp-starttls", script, size))
        if nm and xm:
            out.append(
                f"{what} over TLS: {nm.wire_bytes:,} bytes on the wire natively (with its ack: "
                f"{nm.wire_bytes + nm.sender_down:,}), {xm.wire_bytes:,} over XMPP "
                f"(overhead ratio {nm.overhead_ratio:.2f} against {xm.overhead_ratio:.2f})."
            )
    for variant in ("xmpp-starttls", "xmpp-plain"):
        ascii_m, chinese_m = messages.get((variant, "ascii", 1024)), messages.get((variant, "chinese", 1023))
        if ascii_m and chinese_m:
            grown = (chinese_m.recipient_down - chinese_m.sender_up) - (
                ascii_m.recipient_down - ascii_m.sender_up
            )
            if grown > chinese_m.body_bytes // 4:
                out.append(
                    f"{chinese_m.label}: the server forwards 1 KB of Chinese with {grown:,} more bytes than "
                    "it received, beyond what ASCII of the same size gains: it writes non-ASCII characters "
                    "as numeric character references (`&#20320;`, 8 bytes for a 3-byte character). "
                    "That is this server's serializer, not XMPP."
                )
                break
    cpu = {t.variant: t for t in results.throughput}
    nc, xc = cpu.get("native-tls"), cpu.get("xmpp-starttls")
    if nc and xc and nc.cpu_seconds_per_1000 is not None and xc.cpu_seconds_per_1000 is not None:
        out.append(
            f"Server CPU per 1,000 messages over TLS: native {nc.cpu_seconds_per_1000:.3f} s, "
            f"XMPP {xc.cpu_seconds_per_1000:.3f} s."
        )
    return out + tradeoffs.headlines(results)


# ---- tables


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def tables(results: Results) -> list[Table]:
    o = results.options
    out: list[Table] = []
    out.append(
        (
            "Connect to first message",
            [
                "variant",
                "round trips",
                "bytes ↑",
                "bytes ↓",
                "bytes total",
                "time, loopback (ms)",
                f"time at {o.rtt_ms:g} ms RTT (ms)",
                "negotiated",
            ],
            [
                [
                    r.label,
                    str(r.round_trips),
                    str(r.bytes_up),
                    str(r.bytes_down),
                    str(r.bytes_total),
                    _ms(r.time_ms),
                    _ms(r.time_at_rtt_ms),
                    r.detail or "-",
                ]
                for r in results.connect
            ],
        )
    )
    table_messages = [m for m in results.messages if _table_body(m)]
    out.append(
        (
            "Bytes per message",
            [
                "variant",
                "body",
                "body bytes",
                "sender ↑",
                "sender ↓ (ack)",
                "recipient ↓",
                "wire (sender ↑ + recipient ↓)",
                "overhead ratio",
            ],
            [
                [
                    m.label,
                    _body_name(m),
                    str(m.body_bytes),
                    str(m.sender_up),
                    str(m.sender_down),
                    str(m.recipient_down),
                    str(m.wire_bytes),
                    f"{m.overhead_ratio:.2f}",
                ]
                for m in table_messages
            ],
        )
    )
    latency = {r.variant: r for r in results.latency}
    out.append(
        (
            "Latency, throughput, server CPU",
            [
                "variant",
                "latency p50 (ms)",
                "latency p99 (ms)",
                f"msgs/s, {o.pairs} pairs",
                "p50 / p99 under load (ms)",
                "server CPU s per 1,000 msgs",
                "clients' CPU s per 1,000 msgs",
                "server CPU ms per login",
            ],
            [
                [
                    t.label,
                    _ms(latency[t.variant].p50_ms) if t.variant in latency else "n/a",
                    _ms(latency[t.variant].p99_ms) if t.variant in latency else "n/a",
                    f"{t.messages_per_second:.0f}",
                    f"{_ms(t.p50_ms)} / {_ms(t.p99_ms)}",
                    "n/a" if t.cpu_seconds_per_1000 is None else f"{t.cpu_seconds_per_1000:.3f}",
                    f"{t.client_cpu_seconds_per_1000:.3f}",
                    _ms(t.login_cpu_ms),
                ]
                for t in results.throughput
            ],
        )
    )
    out.append(
        (
            "Reconnect after a dropped connection",
            ["variant", "time to ready again (ms)", "bytes ↑", "bytes ↓", "bytes total"],
            [
                [r.label, _ms(r.time_ms), str(r.bytes_up), str(r.bytes_down), str(r.bytes_total)]
                for r in results.reconnect
            ],
        )
    )
    if results.idle or results.latency:
        out.append(tradeoffs.http_table(results))
    if results.datagrams is not None:
        out.append(tradeoffs.udp_table(results))
    return out


def _table_body(m: MessageResult) -> bool:
    return (m.script == "ascii" and m.body_bytes == TABLE_SIZES[0]) or (
        m.script == "chinese" and TABLE_SIZES[1] - 3 < m.body_bytes <= TABLE_SIZES[1]
    )


def _body_name(m: MessageResult) -> str:
    if m.script == "ascii" and m.body_bytes == 5:
        return '"hello"'
    return f"{m.body_chars} {'Chinese' if m.script == 'chinese' else 'ASCII'} chars"


def text_table(table: Table) -> str:
    title, headers, rows = table
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def markdown_table(table: Table) -> str:
    _, headers, rows = table
    numeric = [all(_numberish(r[i]) for r in rows) and i > 0 for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _numberish(cell: str) -> bool:
    return bool(re.fullmatch(r"[\d.,/ n/a]+", cell))
