"""docs/performance.md from a results file: the fixed head
(``benchmarks/performance_head.md``), the goals table (:mod:`benchmarks.goals`),
one table per scenario with every target's medians and ratios, the xmlchat
session-memory figures, the notes, and links to the committed profiles and to
the hand-written analysis (``docs/performance/analysis.md``), which this
module never writes.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from string import Template
from typing import Any

from benchmarks import goals
from benchmarks.report import fmt, keys

HEAD = Path(__file__).with_name("performance_head.md")
CHECKOUT = Path(__file__).resolve().parents[1]
# The reduced run that regenerates docs/performance.md in 10-15 minutes: one
# repeat, every target, 5,000 idle sessions at most (issue 16's figure).
REDUCED = ("python -m benchmarks.run --repeat 1 --set idle_large=5000 "
           "--scenarios pingpong,messages,fanout,login_churn,idle --doc docs/performance.md")

# What each group measures, printed above its table.
ABOUT: dict[str, str] = {
    "pingpong": "Two clients; A sends, B echoes, A sends the next on arrival: one message "
                "in flight, the round trip through the server twice (`pingpong_rounds` rounds).",
    "messages": "`pairs` sender→receiver pairs, `window` messages in flight each, for "
                "`duration` seconds on a fresh server (closed loop).",
    "messages_idle": "The same pairs with `idle_attached` idle authenticated sessions connected.",
    "login": "`logins` logins (connect, stream, SASL PLAIN, bind, initial presence), "
             "`login_concurrency` in progress at once, each closed right after.",
    "messages_after_churn": "The pairs on the server those logins left behind; "
                            "`rss_growth_kib` is the RSS growth from before the logins "
                            "to after them (settled).",
    "idle_memory": "Idle authenticated sessions opened in steps; KiB of server RSS per "
                   "session over the RSS before the first (plaintext).",
    "fanout": "One sender, `fanout_recipients` recipients, each broadcast one message per "
              "recipient; the next when the last recipient has the previous one.",
    "room_fanout": "One XEP-0045 room of `room_occupants`; each groupchat message delivered "
                   "to every occupant.",
}

# The order of the tables: the message paths first, memory last.
ORDER = ["pingpong", "messages", "messages_idle", "login", "messages_after_churn", "fanout",
         "room_fanout", "idle_memory"]
# Counts and readings of the machine, where a ratio to Prosody means nothing.
NO_RATIO = ("lost", "misordered", "duplicates", "errors", "error_stanzas", "open_errors",
            "server_fds_", "open_sessions_", "idle_sessions", "occupants", "broadcasts",
            "server_cores", "loadgen_cores", "other_cores")

# The base of the ratio column: the driver's own Prosody where there is one.
BASE_FOR_DRIVER = {"xmpp-sm": goals.SM_PROSODY}


def scrub(text: str) -> str:
    """No machine's paths in a committed page or JSON: the checkout's own files
    relative to it, the temporary directory as $TMPDIR (as Server.describe())."""
    text = text.replace(f"{CHECKOUT}/", "").replace(str(CHECKOUT), ".")
    return text.replace(tempfile.gettempdir().rstrip("/") + "/", "$TMPDIR/")


def _base(label: str, entry: dict[str, Any], medians: dict[str, Any]) -> str | None:
    base = BASE_FOR_DRIVER.get(entry.get("driver", "xmpp"), goals.PROSODY)
    if base not in medians or base == label:
        return None
    return base


def _cell(v: float | None, base: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    text = fmt(v)
    if base and not math.isnan(base) and base != 0 and v != 0:
        text += f" ({v / base:.2f}×)"
    return text


def scenario_tables(doc: dict[str, Any]) -> str:
    servers = {k: v for k, v in doc.get("servers", {}).items() if v.get("median")}
    medians = {k: v["median"] for k, v in servers.items()}
    groups: list[str] = []
    for m in medians.values():
        groups += [g for g in m if g not in groups]
    order = [g for g in ORDER if g in groups] + [g for g in groups if g not in ORDER]
    out = []
    for g in order:
        labels = [s for s in medians if g in medians[s]]
        metrics = keys(g, sorted({k for s in labels for k in medians[s][g]}))
        out.append(f"### {g}\n")
        if g in ABOUT:
            out.append(ABOUT[g] + "\n")
        out.append("| target | " + " | ".join(f"`{k}`" for k in metrics) + " |")
        out.append("|---|" + "---:|" * len(metrics))
        for s in labels:
            base = _base(s, servers[s], medians)
            cells = []
            for k in metrics:
                b = (medians[base].get(g, {}).get(k)
                     if base and not k.startswith(NO_RATIO) else None)
                cells.append(_cell(medians[s][g].get(k), b))
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


# The sizes issue 16's goals are stated at (5,000 idle sessions, 5,000 logins).
GOAL_SIZES = {"idle_attached": 5000, "logins": 5000, "pairs": 50, "fanout_recipients": 500}


def goals_table(doc: dict[str, Any]) -> str:
    sizes = doc.get("sizes", {})
    off = {k: sizes.get(k) for k, v in GOAL_SIZES.items() if sizes.get(k) != v}
    warn = ("**This run's sizes are not the goals' own** ("
            + ", ".join(f"`{k}` {v}" for k, v in off.items())
            + "): the goals are read on them anyway.\n\n") if off else ""
    out = ["| issue | goal | target | measured | |", "|---|---|---|---|---|"]
    counts = {goals.MET: 0, goals.NOT_MET: 0, goals.NOT_MEASURED: 0}
    for o in goals.evaluate(doc):
        counts[o.status] += 1
        shown = o.measured.shown if o.measured else "—"
        mark = {"met": "**met**", "not met": "not met", "not measured": "not measured"}
        out.append(f"| {o.goal.issue} | {o.goal.text} | {o.goal.limit_shown} | {shown} | "
                   f"{mark[o.status]} |")
    summary = (f"{counts[goals.MET]} met, {counts[goals.NOT_MET]} not met, "
               f"{counts[goals.NOT_MEASURED]} not measured in this run.")
    return warn + summary + "\n\n" + "\n".join(out) + "\n"


def session_memory_table(doc: dict[str, Any]) -> str:
    sm = doc.get("session_memory")
    if not sm:
        return ("Not measured in this run (`--memory 0`, or no xmlchat target); "
                "`make bench-memory` measures it alone.\n")
    if "error" in sm:
        return f"The measurement failed: {sm['error']}\n"
    kib = sm.get("kib_per_session", {})
    names = {"plaintext": "plaintext, logged in", "tls": "TLS, logged in",
             "tls_handshake_pending": "TLS handshake pending"}
    out = [f"`benchmarks/session_memory.py` (`make bench-memory`), run after the scenarios: "
           f"xmlchat with a {sm.get('protocol', '?')} plaintext and a TLS listener on "
           f"{sm.get('loop', '?')} (a server with a direct-TLS listener runs asyncio), "
           f"{sm.get('sessions', 0):,} sessions of each kind, every one its own account; "
           "KiB of server RSS per session.\n",
           "| " + " | ".join(names.get(k, k) for k in kib) + " |",
           "|" + "---:|" * len(kib),
           "| " + " | ".join(fmt(v) for v in kib.values()) + " |", ""]
    return "\n".join(out)


def notes(doc: dict[str, Any]) -> str:
    out = []
    for label, entry in doc.get("servers", {}).items():
        if entry.get("skipped"):
            out.append(f"* `{label}`: skipped: {entry['skipped']}")
        for n in entry.get("notes") or []:
            # A failure's traceback stays in the JSON; its first line is enough here.
            out.append(f"* `{label}`: {n.strip().splitlines()[0] if n.strip() else n}")
    busy = [v for e in doc.get("servers", {}).values()
            for g in (e.get("runs") or {}).values() for v in g.get("other_cores", [])
            if v is not None]
    if busy:
        out.append(f"* the rest of the machine used {min(busy):.2f}–{max(busy):.2f} cores "
                   "during the measurements (`other_cores`)")
    return "\n".join(out) + "\n" if out else "None.\n"


def targets_table(doc: dict[str, Any]) -> str:
    out = ["| target | version | started as | accounts prepared in |", "|---|---|---|---:|"]
    for label, e in doc.get("servers", {}).items():
        if e.get("skipped"):
            continue
        out.append(f"| {label} | {e.get('version', '?')} | `{e.get('command', '?')}` | "
                   f"{e.get('prepare_s', '?')} s |")
    return "\n".join(out) + "\n"


def profiles(doc_dir: Path) -> str:
    found = sorted((doc_dir / "performance").glob("profile-*.svg"))
    if not found:
        return "None committed (`make bench-profile` writes them).\n"
    out = []
    for svg in found:
        txt = svg.with_suffix(".txt")
        line = f"* {svg.stem.removeprefix('profile-')}: [{svg.name}](performance/{svg.name})"
        if txt.exists():
            line += f" (call tree as text: [{txt.name}](performance/{txt.name}))"
        out.append(line)
    return ("Flame graphs of the `make bench-instructions` scenario (the real server in one "
            "process, message phase only; `make bench-profile`), not of this run; what "
            "they show is in [the analysis](performance/analysis.md):\n\n"
            + "\n".join(out) + "\n")


def _machine(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    return (f"{m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs, {m.get('mem_gib', '?')} GiB, "
            f"Linux {m.get('kernel', '?')}, Python {m.get('python', '?')}")


def render(doc: dict[str, Any], json_link: str, json_from_root: str, reduced: str,
           doc_dir: Path) -> str:
    lg = doc.get("loadgen", {})
    elapsed = doc.get("elapsed_s")
    head = Template(HEAD.read_text()).substitute(
        date=doc.get("date", "an unrecorded date"), json_link=json_link,
        json_link_from_root=json_from_root, reduced=reduced,
        command=doc.get("command", "(not recorded)"),
        elapsed=(f"{elapsed / 60:.0f} minutes, {doc.get('repeat', '?')} repeat(s)"
                 if elapsed else f"{doc.get('repeat', '?')} repeat(s)"),
        workers=lg.get("workers", "?"), loop=lg.get("loop", "?"), machine=_machine(doc))
    sizes = doc.get("sizes", {})
    parts = [
        head,
        "## Goals (issues 16 and 11)\n",
        "Computed from this run by `benchmarks/goals.py`; \"within 3× of the relay\" is "
        "read per scenario. Why a goal is not met: [performance/analysis.md]"
        "(performance/analysis.md).\n",
        goals_table(doc),
        "## The scenarios\n",
        "Medians; in brackets the ratio to Prosody's figure in the same run (for the "
        "`xmpp-sm` targets, to `prosody-smacks:xmpp-sm`). Sizes: "
        + ", ".join(f"`{k}` {v:g}" for k, v in sizes.items()) + ".\n",
        scenario_tables(doc),
        "## Memory per idle session, plaintext and TLS (xmlchat)\n",
        session_memory_table(doc),
        "## Where the time goes\n",
        profiles(doc_dir),
        "## The targets in this run\n",
        targets_table(doc),
        "## Notes from the run\n",
        notes(doc),
    ]
    return "\n".join(parts)


def write_doc(doc_path: Path, json_path: Path, reduced: str = REDUCED) -> None:
    import json

    doc = json.loads(json_path.read_text())
    link = os.path.relpath(json_path.resolve(), doc_path.resolve().parent)
    if json_path.resolve().is_relative_to(CHECKOUT):
        from_root = os.path.relpath(json_path.resolve(), CHECKOUT)
    else:  # a page written outside the checkout: name it as it would be in docs/
        from_root = f"{doc_path.resolve().parent.name}/{link}"
    text = scrub(render(doc, link, from_root, reduced, doc_path.parent))
    doc_path.write_text(text.rstrip("\n") + "\n")
