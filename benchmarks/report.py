"""Medians over repeats, ratios to Prosody, the terminal table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from pathlib import Path
from typing import Any

# group -> metric -> list of values, one per repeat
Runs = dict[str, dict[str, list[float]]]

# Where a bigger number is better; ratios are printed for these and the latencies.
HEADLINE: dict[str, list[str]] = {
    "login": ["logins_per_s", "per_cpu_s", "p50_ms", "p99_ms", "errors", "server_cores",
              "loadgen_cores", "other_cores"],
    "idle_memory": ["kib_per_session_*", "rss_base_kib", "rss_kib_*", "server_fds_*",
                    "open_errors"],
    "messages": ["msgs_per_s", "per_cpu_s", "p50_ms", "p99_ms", "max_ms", "lost",
                 "misordered", "server_cores", "loadgen_cores", "other_cores"],
    "messages_idle": ["msgs_per_s", "per_cpu_s", "p50_ms", "p99_ms", "max_ms", "lost",
                      "misordered", "idle_sessions", "other_cores"],
    "messages_after_churn": ["msgs_per_s", "per_cpu_s", "p50_ms", "p99_ms", "max_ms", "lost",
                             "misordered", "rss_growth_kib", "other_cores"],
    "fanout": ["deliveries_per_s", "per_cpu_s", "broadcast_p50_ms", "broadcast_p99_ms",
               "delivery_p99_ms", "lost", "misordered", "server_cores", "loadgen_cores",
               "other_cores"],
    "room_fanout": ["deliveries_per_s", "per_cpu_s", "broadcast_p50_ms", "broadcast_p99_ms",
                    "delivery_p99_ms", "occupants", "lost", "misordered", "server_cores",
                    "loadgen_cores", "other_cores"],
    "pingpong": ["rtt_p50_ms", "rtt_p99_ms", "rtt_max_ms", "lost", "misordered"],
}


def median(values: list[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def medians(runs: Runs) -> dict[str, dict[str, float]]:
    return {g: {k: median(v) for k, v in metrics.items()} for g, metrics in runs.items()}


def ratios(results: dict[str, dict[str, dict[str, float]]], base: str = "prosody"
           ) -> dict[str, dict[str, dict[str, float]]]:
    """server -> group -> metric -> value / Prosody's value (same run)."""
    if base not in results:
        return {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for server, groups in results.items():
        if server == base:
            continue
        for group, metrics in groups.items():
            for k, v in metrics.items():
                b = results[base].get(group, {}).get(k, math.nan)
                if b and not math.isnan(b) and not math.isnan(v):
                    out.setdefault(server, {}).setdefault(group, {})[k] = v / b
    return out


def keys(group: str, available: list[str]) -> list[str]:
    wanted = HEADLINE.get(group)
    if wanted is None:
        return sorted(available)
    out = []
    for w in wanted:
        if w.endswith("*"):
            out += sorted((k for k in available if k.startswith(w[:-1])),
                          key=lambda k: (len(k), k))
        elif w in available:
            out.append(w)
    return out


def fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10 or v == int(v):
        return f"{v:.1f}" if v != int(v) else f"{int(v)}"
    return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3f}"


def table(results: dict[str, dict[str, dict[str, float]]],
          rat: dict[str, dict[str, dict[str, float]]]) -> str:
    servers = list(results)
    cols = []
    for s in servers:
        cols.append(s)
        if s in rat:
            cols.append(f"{s}/prosody")
    groups: list[str] = []
    for s in servers:
        groups += [g for g in results[s] if g not in groups]
    order = [g for g in HEADLINE if g in groups] + [g for g in groups if g not in HEADLINE]
    width = max([len(c) for c in cols] + [10]) + 2
    lines = []
    for g in order:
        available = sorted({k for s in servers for k in results[s].get(g, {})})
        metric_keys = keys(g, available)
        lines.append("")
        lines.append(f"{g:<28}" + "".join(f"{c:>{width}}" for c in cols))
        for k in metric_keys:
            row = f"  {k:<26}"
            for s in servers:
                row += f"{fmt(results[s].get(g, {}).get(k, math.nan)):>{width}}"
                if s in rat:
                    r = rat[s].get(g, {}).get(k)
                    row += f"{(f'{r:.2f}x' if r is not None else '-'):>{width}}"
            lines.append(row)
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "kernel": platform.release(),
                            "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def write_json(path: Path, doc: dict[str, Any]) -> None:
    def clean(o: Any) -> Any:
        if isinstance(o, float) and math.isnan(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return o

    path.write_text(json.dumps(clean(doc), indent=2) + "\n")


def markdown(doc: dict[str, Any]) -> str:
    """The medians and ratios of a results file as Markdown tables (for the README)."""
    servers = {k: v for k, v in doc["servers"].items() if "median" in v}
    results = {k: v["median"] for k, v in servers.items()}
    rat = doc.get("ratios_to_prosody", {})
    cols: list[str] = []
    for s in results:
        cols.append(s)
        if s in rat:
            cols.append(f"{s}/prosody")
    groups: list[str] = []
    for s in results:
        groups += [g for g in results[s] if g not in groups]
    order = [g for g in HEADLINE if g in groups] + [g for g in groups if g not in HEADLINE]
    out = []
    for g in order:
        available = sorted({k for s in results for k in results[s].get(g, {})})
        out.append(f"| {g} | " + " | ".join(cols) + " |")
        out.append("|---|" + "---:|" * len(cols))
        for k in keys(g, available):
            cells = []
            for s in results:
                v = results[s].get(g, {}).get(k)
                cells.append(fmt(math.nan if v is None else v))
                if s in rat:
                    r = rat[s].get(g, {}).get(k)
                    cells.append(f"{r:.2f}x" if r is not None else "-")
            out.append(f"| {k} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report --from RESULTS.json --doc docs/performance.md``
    re-renders the report from a results file without running anything; with
    only a results file, prints its tables as Markdown."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    p.add_argument("results", nargs="?", type=Path, help="a results file (tables to stdout)")
    p.add_argument("--from", dest="source", type=Path, help="the results file to render")
    p.add_argument("--doc", type=Path, help="the page to write, e.g. docs/performance.md")
    args = p.parse_args(argv)
    source = args.source or args.results
    if source is None:
        p.error("give a results file")
    if args.doc is None:
        print(markdown(json.loads(source.read_text())))
        return 0
    from benchmarks import render

    render.write_doc(args.doc, source)
    print(f"wrote {args.doc} from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
