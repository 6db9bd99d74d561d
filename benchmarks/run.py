"""``python -m benchmarks.run``: start each server, run every scenario ``--repeat``
times on a fresh server process, print medians and ratios to Prosody, write JSON.

Load goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import procstat, report
from benchmarks.loadgen import LoadGen
from benchmarks.scenarios import FULL, QUICK, SCENARIOS, Context, Sizes
from benchmarks.servers import Server, server_class


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--servers", default="prosody,ejabberd,xmlchat",
                   help="comma-separated NAME[:DRIVER]; drivers: xmpp (default), native "
                        "(e.g. xmlchat:native). Default: %(default)s")
    p.add_argument("--quick", action="store_true",
                   help="small sizes, one repeat unless --repeat is given: a smoke run")
    p.add_argument("--repeat", type=int, default=None, help="runs per scenario (default 3)")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="directory for JSON")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated subset of: %(default)s")
    p.add_argument("--workers", type=int, default=None,
                   help="load-generator processes (default: number of CPUs)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop starting new runs after this long (default 120; quick 5)")
    p.add_argument("--set", action="append", default=[], metavar="SIZE=VALUE",
                   help=f"override a size, e.g. --set duration=5; sizes: "
                        f"{', '.join(f.name for f in dataclasses.fields(Sizes))}")
    p.add_argument("--keep-workdirs", action="store_true",
                   help="keep each server's temporary directory (logs, data)")
    return p.parse_args(argv)


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    types = {f.name: f.type for f in dataclasses.fields(Sizes)}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in types:
            sys.exit(f"unknown size {key!r}")
        changes[key] = float(value) if types[key] in ("float", float) else int(value)
    return dataclasses.replace(sizes, **changes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = _sizes(args)
    repeat = args.repeat or (1 if args.quick else 3)
    limit_s = 60 * (args.max_minutes or (5 if args.quick else 120))
    scenario_names = [s for s in args.scenarios.split(",") if s]
    for s in scenario_names:
        if s not in SCENARIOS:
            sys.exit(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    targets = [t.split(":", 1) if ":" in t else [t, "xmpp"]
               for t in args.servers.split(",") if t]
    started = time.monotonic()
    nofile = procstat.raise_nofile()
    pool = sizes.pool()
    accounts = pool.all()
    workers = args.workers or max(1, os.cpu_count() or 1)
    lg = LoadGen(workers)
    print(f"load generator: {workers} worker processes, {lg.loop_name}; "
          f"RLIMIT_NOFILE {nofile[0]}/{nofile[1]}; {len(accounts)} accounts per server; "
          f"{repeat} repeat(s)", flush=True)

    doc: dict[str, Any] = {
        "machine": report.machine(), "sizes": dataclasses.asdict(sizes), "repeat": repeat,
        "loadgen": {"workers": workers, "loop": lg.loop_name, "nofile": list(nofile)},
        "servers": {},
    }
    medians: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name, driver in targets:
            label = name if driver == "xmpp" else f"{name}:{driver}"
            entry = doc["servers"][label] = {"driver": driver}
            try:
                cls = server_class(name)
            except ValueError as e:
                entry["skipped"] = str(e)
                print(f"{label}: skipped: {e}", flush=True)
                continue
            why = cls.unavailable()
            if why:
                entry["skipped"] = why
                print(f"{label}: skipped: {why}", flush=True)
                continue
            runs, notes = _run_server(cls, label, driver, accounts, pool, sizes, repeat,
                                      scenario_names, lg, entry, started, limit_s,
                                      args.keep_workdirs)
            entry["runs"] = runs
            entry["notes"] = notes
            medians[label] = report.medians(runs)
            entry["median"] = medians[label]
    finally:
        lg.close()

    rat = report.ratios(medians)
    doc["ratios_to_prosody"] = rat
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    print(report.table(medians, rat))
    for label, entry in doc["servers"].items():
        for note in entry.get("notes", []):
            print(f"note: {label}: {note}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    report.write_json(out, doc)
    print(f"\nwrote {out} ({doc['elapsed_s']:.0f} s)")
    return 0


_BRIEF = {"logins_per_s", "msgs_per_s", "deliveries_per_s", "p99_ms", "rtt_p50_ms",
          "kib_per_session_1000", "kib_per_session_10000", "lost", "misordered",
          "server_cores", "loadgen_cores", "other_cores"}


def _run_server(cls: type[Server], label: str, driver: str, accounts: list[Any], pool: Any,
                sizes: Sizes, repeat: int, scenario_names: list[str], lg: LoadGen,
                entry: dict[str, Any], started: float, limit_s: float, keep: bool,
                ) -> tuple[report.Runs, list[str]]:
    runs: report.Runs = {}
    notes: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix=f"xmlchat-bench-{cls.name}-"))
    server = cls(workdir)
    t0 = time.monotonic()
    try:
        server.prepare(accounts)
    except Exception as e:
        entry["skipped"] = f"prepare failed: {e}"
        print(f"{label}: prepare failed: {e}", flush=True)
        server.cleanup()
        return runs, [entry["skipped"]]
    entry.update(version=server.version(), command=server.describe(),
                 workdir=str(workdir) if keep else None,
                 prepare_s=round(time.monotonic() - t0, 1))
    print(f"{label} {entry['version']}: {len(accounts)} accounts in {entry['prepare_s']} s",
          flush=True)
    try:
        for rep in range(repeat):
            for sc in scenario_names:
                if time.monotonic() - started > limit_s:
                    notes.append(f"time limit reached; skipped {sc} run {rep + 1} and later")
                    print(f"{label}: time limit reached", flush=True)
                    return runs, notes
                t = time.monotonic()
                try:
                    server.start()
                except Exception as e:
                    notes.append(f"{label} did not start; no further runs: {e}")
                    print(f"{label}: did not start: {e}", flush=True)
                    return runs, notes
                try:
                    ctx = Context(server, lg, pool, sizes)
                    lg.all({"op": "configure", "driver": driver, "host": server.host,
                            "port": server.ports[driver], "domain": server.domain}, 30)
                    if rep == 0 and sc == scenario_names[0]:
                        entry["nofile_limit"] = list(procstat.nofile_limit(server.pid))
                    groups = SCENARIOS[sc](ctx)
                    notes += ctx.notes
                except Exception as e:
                    notes.append(f"{sc} run {rep + 1} failed: {type(e).__name__}: {e}")
                    print(f"{label}: {sc} run {rep + 1} FAILED: {e}", flush=True)
                    traceback.print_exc()
                    lg.all({"op": "close_all"}, 60)
                    continue
                finally:
                    server.stop()
                for g, metrics in groups.items():
                    for k, v in metrics.items():
                        runs.setdefault(g, {}).setdefault(k, []).append(float(v))
                brief = "; ".join(
                    f"{g}: " + ", ".join(f"{k}={report.fmt(v)}" for k, v in m.items()
                                         if k in _BRIEF)
                    for g, m in groups.items())
                print(f"{label} run {rep + 1} {sc} ({time.monotonic() - t:.0f} s): {brief}",
                      flush=True)
    finally:
        server.cleanup()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs, notes


if __name__ == "__main__":
    raise SystemExit(main())
