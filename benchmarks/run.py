"""``python -m benchmarks.run``: start each server, run every scenario ``--repeat``
times on a fresh server process, print medians and ratios to Prosody, write JSON.

Load goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import procstat, render, report, session_memory
from benchmarks.loadgen import LoadGen
from benchmarks.scenarios import FULL, NEEDS_ROOMS, QUICK, SCENARIOS, Context, Sizes
from benchmarks.servers import Server, server_class

# issue 16's four targets and the relay, then the durability comparison (issue 11):
# Prosody with mod_smacks and xmlchat with XEP-0198, both driven with an <r/> per
# message, and xmlchat with delivery.durable off over both protocols.
DEFAULT_TARGETS = ("prosody", "ejabberd", "xmlchat", "xmlchat:native", "relay",
                   "prosody-smacks:xmpp-sm", "xmlchat:xmpp-sm", "xmlchat-memory",
                   "xmlchat-memory:native")
MESSAGES_ONLY = DEFAULT_TARGETS[5:]
# The port a driver connects to, where it is not the driver's own name.
PORT_OF = {"xmpp-sm": "xmpp"}
# The drivers that can join a XEP-0045 room (the room fan-out).
ROOM_DRIVERS = frozenset({"xmpp", "xmpp-sm"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--servers", default=",".join(DEFAULT_TARGETS),
                   help="comma-separated NAME[:DRIVER]; drivers: xmpp (default), native "
                        "(e.g. xmlchat:native), xmpp-sm (XMPP with XEP-0198 and an <r/> "
                        "per message). Default: %(default)s")
    p.add_argument("--messages-only", default=",".join(MESSAGES_ONLY),
                   help="targets (as in --servers) that run only the messages scenario: "
                        "the durability comparison. Default: %(default)s")
    p.add_argument("--memory", type=int, default=None, metavar="N",
                   help="xmlchat's KiB per idle plaintext / TLS session and pending TLS "
                        "handshake (benchmarks/session_memory.py) with N sessions of each, "
                        "when an xmlchat target runs; 0: not measured (default 1000; quick 0)")
    p.add_argument("--doc", type=Path, default=None,
                   help="write the report (e.g. docs/performance.md) from this run; its JSON "
                        "goes beside it, into DOC's directory/performance/")
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
    target_specs = [t.split(":", 1) if ":" in t else [t, "xmpp"]
                    for t in args.servers.split(",") if t]
    messages_only = {t for t in args.messages_only.split(",") if t}
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
        "command": "python -m benchmarks.run" + "".join(
            f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv)),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "started_utc": time.strftime("%Y-%m-%d-%H%M", time.gmtime()),
    }
    out = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    targets: list[Target] = []
    try:
        for name, driver in target_specs:
            t = _prepare(name, driver, accounts, doc, args.keep_workdirs)
            if t is not None:
                targets.append(t)
        # Servers take turns scenario by scenario, so that whatever else the machine
        # is doing meanwhile falls on all of them alike.
        for rep in range(repeat):
            for sc in scenario_names:
                for t in targets:
                    if t.dead or (t.label in messages_only and sc != "messages"):
                        continue
                    if time.monotonic() - started > limit_s:
                        t.notes.append(f"time limit reached before {sc} run {rep + 1}")
                        t.dead = True
                        continue
                    _run_one(t, sc, rep, lg, pool, sizes)
                    _finish(doc, targets, started)
                    report.write_json(out, doc)
        n_memory = args.memory if args.memory is not None else (0 if args.quick else 1000)
        if n_memory and any(t.server.name == "xmlchat" for t in targets):
            _session_memory(doc, n_memory)
    finally:
        lg.close()
        for t in targets:
            t.server.cleanup()
            if not args.keep_workdirs:
                shutil.rmtree(t.workdir, ignore_errors=True)

    _finish(doc, targets, started)
    medians = {t.label: t.entry["median"] for t in targets}
    print(report.table(medians, doc["ratios_to_prosody"]))
    for t in targets:
        for note in t.notes:
            print(f"note: {t.label}: {note}")
    report.write_json(out, doc)
    print(f"\nwrote {out} ({doc['elapsed_s']:.0f} s)")
    if args.doc is not None:
        # Named by the minute it started: earlier runs' files (linked from the
        # hand-written analysis) stay as they are.
        kept = args.doc.parent / "performance" / f"bench-{doc['started_utc']}.json"
        kept.parent.mkdir(parents=True, exist_ok=True)
        report.write_json(kept, doc)
        kept.write_text(render.scrub(kept.read_text()))
        render.write_doc(args.doc, kept)
        print(f"wrote {args.doc} and {kept}")
    return 0


def _session_memory(doc: dict[str, Any], n: int) -> None:
    """xmlchat's KiB per idle session over plaintext and TLS and per pending TLS
    handshake (native sessions, asyncio: the loop a server with a TLS listener runs)."""
    began = time.monotonic()
    try:
        results = session_memory.run_one("asyncio", n, {})
    except Exception as e:
        doc["session_memory"] = {"sessions": n, "error": f"{type(e).__name__}: {e}"}
        print(f"session memory FAILED: {e}", flush=True)
        return
    doc["session_memory"] = {"sessions": n, "loop": "asyncio", "protocol": "native",
                             "kib_per_session": results}
    print(f"xmlchat session memory ({time.monotonic() - began:.0f} s): "
          + ", ".join(f"{k} {v:.1f} KiB" for k, v in results.items()), flush=True)


@dataclass
class Target:
    label: str
    driver: str
    server: Server
    workdir: Path
    entry: dict[str, Any]
    runs: report.Runs = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dead: bool = False


def _prepare(name: str, driver: str, accounts: list[Any], doc: dict[str, Any],
             keep: bool) -> Target | None:
    label = name if driver == "xmpp" else f"{name}:{driver}"
    entry: dict[str, Any] = {"driver": driver}
    doc["servers"][label] = entry
    try:
        cls = server_class(name)
    except ValueError as e:
        entry["skipped"] = str(e)
        print(f"{label}: skipped: {e}", flush=True)
        return None
    why = cls.unavailable()
    if why:
        entry["skipped"] = why
        print(f"{label}: skipped: {why}", flush=True)
        return None
    workdir = Path(tempfile.mkdtemp(prefix=f"xmlchat-bench-{cls.name}-"))
    server = cls(workdir)
    t0 = time.monotonic()
    try:
        server.prepare(accounts)
    except Exception as e:
        entry["skipped"] = f"prepare failed: {e}"
        print(f"{label}: prepare failed: {e}", flush=True)
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        return None
    entry.update(version=server.version(), command=server.describe(), durable=server.durable,
                 workdir=str(workdir) if keep else None,
                 prepare_s=round(time.monotonic() - t0, 1))
    print(f"{label} {entry['version']}: {len(accounts)} accounts in {entry['prepare_s']} s",
          flush=True)
    return Target(label, driver, server, workdir, entry)


def _run_one(t: Target, sc: str, rep: int, lg: LoadGen, pool: Any, sizes: Sizes) -> None:
    if sc in NEEDS_ROOMS and (t.server.rooms is None or t.driver not in ROOM_DRIVERS):
        skipped = (f"{sc} skipped: its benchmark configuration has no room service"
                   if t.server.rooms is None else f"{sc} skipped: the {t.driver} driver "
                   "joins no rooms")
        if skipped not in t.notes:
            t.notes.append(skipped)
        return
    began = time.monotonic()
    try:
        t.server.start()
    except Exception as e:
        t.notes.append(f"did not start; no further runs: {e}")
        print(f"{t.label}: did not start: {e}", flush=True)
        t.dead = True
        return
    try:
        ctx = Context(t.server, lg, pool, sizes)
        lg.all({"op": "configure", "driver": t.driver, "host": t.server.host,
                "port": t.server.ports[PORT_OF.get(t.driver, t.driver)],
                "domain": t.server.domain}, 30)
        if "nofile_limit" not in t.entry:
            t.entry["nofile_limit"] = list(procstat.nofile_limit(t.server.pid))
        groups = SCENARIOS[sc](ctx)
        t.notes += ctx.notes
    except Exception as e:
        t.notes.append(f"{sc} run {rep + 1} failed: {type(e).__name__}: {e}")
        print(f"{t.label}: {sc} run {rep + 1} FAILED: {e}", flush=True)
        traceback.print_exc()
        lg.all({"op": "close_all"}, 120)
        return
    finally:
        t.server.stop()
    for g, metrics in groups.items():
        for k, v in metrics.items():
            t.runs.setdefault(g, {}).setdefault(k, []).append(float(v))
    brief = "; ".join(
        f"{g}: " + ", ".join(f"{k}={report.fmt(v)}" for k, v in m.items() if k in _BRIEF)
        for g, m in groups.items())
    print(f"{t.label} run {rep + 1} {sc} ({time.monotonic() - began:.0f} s): {brief}",
          flush=True)


def _finish(doc: dict[str, Any], targets: list[Target], started: float) -> None:
    for t in targets:
        t.entry["runs"] = t.runs
        t.entry["notes"] = t.notes
        t.entry["median"] = report.medians(t.runs)
    doc["ratios_to_prosody"] = report.ratios({t.label: t.entry["median"] for t in targets})
    doc["elapsed_s"] = round(time.monotonic() - started, 1)


_BRIEF = {"logins_per_s", "msgs_per_s", "deliveries_per_s", "p99_ms", "rtt_p50_ms",
          "kib_per_session_1000", "kib_per_session_10000", "lost", "misordered",
          "server_cores", "loadgen_cores", "other_cores"}


if __name__ == "__main__":
    raise SystemExit(main())
