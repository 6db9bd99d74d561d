"""The results drawn: PNG plots of bytes per message and of latency (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xmlchat.compare import tradeoffs
from xmlchat.compare.run import Results


def plots(results: Results, out: Path) -> list[str]:
    """PNG files written into ``out``; none when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    if results.messages:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        variants = list(dict.fromkeys((m.variant, m.label) for m in results.messages))
        for index, (variant, label) in enumerate(variants):
            color = f"C{index}"
            for script, style in (("ascii", "-o"), ("chinese", "--s")):
                rows = sorted(
                    (m for m in results.messages if m.variant == variant and m.script == script),
                    key=lambda m: m.body_bytes,
                )
                xs = [m.body_bytes for m in rows]
                name = f"{label}, {'ASCII' if script == 'ascii' else 'Chinese'}"
                left.plot(xs, [m.wire_bytes for m in rows], style, color=color, label=name, markersize=3)
                envelope = [m.wire_bytes - 2 * m.body_bytes for m in rows]
                right.plot(xs, envelope, style, color=color, markersize=3)
        left.set(xscale="log", yscale="log", xlabel="body (UTF-8 bytes)", ylabel="bytes")
        left.set_title("wire bytes per message (sender ↑ + recipient ↓)")
        right.set(xscale="log", xlabel="body (UTF-8 bytes)", ylabel="bytes", ylim=(0, None))
        right.set_title("envelope: wire bytes − 2 × body")
        for ax in (left, right):
            ax.grid(True, which="both", alpha=0.3)
        left.legend(fontsize=7)
        fig.tight_layout()
        path = out / "bytes-per-message.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    if results.latency:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for r in results.latency:
            samples = sorted(r.samples_ms)
            ys = [(i + 1) / len(samples) for i in range(len(samples))]
            ax.plot(samples, ys, label=f"{r.label} (p50 {r.p50_ms:.2f} ms)")
        ax.set(xscale="log", xlabel="one-way delivery (ms)", ylabel="fraction of messages", ylim=(0, 1.01))
        ax.set_title("Latency CDF, two online users, one message at a time")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "latency-cdf.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    written += _http(results, out, plt)
    written += _datagrams(results, out, plt)
    return written


def _http(results: Results, out: Path, plt: Any) -> list[str]:
    """Four bars per transport: bytes per message, latency, CPU, idle bytes."""
    _, _, rows = tradeoffs.http_table(results)
    if not rows:
        return []
    labels = [r[0].replace(", ", "\n", 1).replace(" every", "\nevery") for r in rows]
    panels = [
        (1, 'bytes per "hello" (all links)', False),
        (3, "latency p50 (ms)", True),
        (4, "server CPU s per 1,000 msgs", False),
        (7, "bytes per idle minute", True),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2))
    for ax, (column, title, log) in zip(axes, panels, strict=True):
        values = [_number(r[column]) for r in rows]
        bars = ax.barh(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
        ax.bar_label(bars, labels=[r[column].split(" /")[0] for r in rows], fontsize=7, padding=2)
        ax.set_yticks(range(len(rows)), labels if ax is axes[0] else [""] * len(rows), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        ax.margins(x=0.25)
        if log:
            ax.set_xscale("log")
        ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.suptitle("One chat over native TCP, XMPP TCP, WebSocket, BOSH and short polling (all TLS)")
    fig.tight_layout()
    path = out / "http-transports.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def _datagrams(results: Results, out: Path, plt: Any) -> list[str]:
    experiment = results.datagrams
    if experiment is None or not experiment.rows:
        return []
    paths = list(dict.fromkeys(r.path for r in experiment.rows))
    raw = {r.path: r for r in experiment.rows if r.protocol == "raw UDP"}
    acked = {r.path: r for r in experiment.rows if r.protocol != "raw UDP"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    xs = range(len(paths))
    width = 0.25
    for offset, (name, pick) in enumerate(
        (("lost", "lost"), ("duplicated", "duplicates"), ("out of order", "reordered"))
    ):
        counts = [getattr(raw[p], pick) for p in paths]
        left.bar([x + (offset - 1) * width for x in xs], counts, width, label=name)
    names = [p.replace(", ", "\n") for p in paths]
    left.set_xticks(list(xs), names, fontsize=7)
    left.set_title(f"raw UDP: what happens to {experiment.rows[0].sent} chat messages", fontsize=9)
    left.legend(fontsize=8)
    left.grid(True, axis="y", alpha=0.3)
    for offset, (name, rows) in enumerate(
        (("raw UDP (whatever arrives)", raw), ("UDP + acks (all, in order)", acked))
    ):
        left_bars = [x + (offset - 0.5) * 0.35 for x in xs]
        right.bar(left_bars, [rows[p].p99_ms for p in paths], 0.35, label=f"{name}, p99")
        right.scatter(left_bars, [rows[p].p50_ms for p in paths], color="black", s=12, zorder=3)
    right.set_xticks(list(xs), names, fontsize=7)
    right.set(yscale="log", ylabel="ms")
    right.set_title("delivery latency: p99 bars, p50 dots", fontsize=9)
    right.legend(fontsize=8)
    right.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path = out / "udp-impaired.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def _number(cell: str) -> float:
    try:
        return float(cell.split("/")[0].replace(",", "").strip())
    except ValueError:
        return 0.0
