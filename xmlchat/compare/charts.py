"""The results drawn: PNG plots of bytes per message and of latency (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path

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
    return written
