"""Plot a benchmark JSON: work per server CPU-second and memory per session.

    python -m benchmarks.plot docs/performance/bench-2026-11-22.json docs/performance/summary.png

Left: work done per server CPU-second as a ratio to Prosody measured in the same
run (higher is better). Right: KiB of server RSS per idle authenticated session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (scenario, metric, label) of the per-CPU-second figures.
WORK = [
    ("login", "per_cpu_s", "logins"),
    ("messages", "per_cpu_s", "messages"),
    ("messages_idle", "per_cpu_s", "messages,\n5k idle attached"),
    ("messages_after_churn", "per_cpu_s", "messages,\nafter 5k logins"),
    ("fanout", "per_cpu_s", "fan-out\nto 500"),
]


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = results["servers"]
    others = [name for name in servers if name != "prosody"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.8 / len(others)
    for i, name in enumerate(others):
        ratios = [
            servers[name]["median"][scenario][metric] / servers["prosody"]["median"][scenario][metric]
            for scenario, metric, _ in WORK
        ]
        xs = [x + (i - (len(others) - 1) / 2) * width for x in range(len(WORK))]
        bars = left.bar(xs, ratios, width, label=name)
        left.bar_label(bars, fmt="%.1f×", fontsize=7)
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xticks(range(len(WORK)), [label for _, _, label in WORK], fontsize=8)
    left.set_ylabel("work per server CPU-second, ratio to Prosody")
    left.set_title("Per CPU-second (higher is better; Prosody = 1)")
    left.legend(fontsize=8)
    names = list(servers)
    kib = [servers[name]["median"]["idle_memory"]["kib_per_session_10000"] for name in names]
    bars = right.bar(names, kib, color=["grey", "C0", "C1", "C2"][: len(names)])
    right.bar_label(bars, fmt="%.0f", fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("KiB of RSS per idle session (10,000 sessions)")
    right.set_title("Memory per session (lower is better)")
    right.tick_params(axis="x", labelsize=8, rotation=15)
    machine = results["machine"]
    fig.suptitle(
        f"{machine['cpu']}, {machine['cpus']} cores; medians of {results['repeat']} runs", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    plot(json.loads(source.read_text()), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
