"""CPU, memory and file-descriptor readings of a process tree, from /proc.

CPU is utime+stime of every process in the tree (a process's figures in
/proc/PID/stat already add up all of its threads) plus cutime+cstime of the root
(children it has waited for); RSS is VmRSS summed over the tree.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    cpu_s: float
    rss_kib: int
    processes: int
    threads: int
    fds: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces or parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all of its descendants."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of these processes (threads included); no tree walk."""
    ticks = 0
    for p in pids:
        f = _stat_fields(p)
        if f is not None:
            ticks += int(f[11]) + int(f[12])
    return ticks / CLK_TCK


def sample(pid: int) -> Sample:
    """CPU seconds, RSS, process/thread/fd counts of the tree rooted at ``pid``."""
    ticks = 0
    rss = threads = fds = 0
    pids = tree(pid)
    for i, p in enumerate(pids):
        f = _stat_fields(p)
        if f is None:
            continue
        # Fields (0-based after the name): 11 utime, 12 stime, 13 cutime, 14 cstime, 17 threads.
        ticks += int(f[11]) + int(f[12])
        if i == 0:
            ticks += int(f[13]) + int(f[14])
        threads += int(f[17])
        rss += _rss_kib(p)
        fds += _fd_count(p)
    return Sample(ticks / CLK_TCK, rss, len(pids), threads, fds)


def nofile_limit(pid: int) -> tuple[str, str]:
    """The soft and hard 'Max open files' of a running process, as /proc shows them."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                parts = line.split()
                return parts[3], parts[4]
    except OSError:
        pass
    return "?", "?"


def raise_nofile(want: int = 65536) -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE (soft to hard; hard to ``want`` when root).

    Children (the servers, the load-generator workers) inherit it. Returns the new limits.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want, want
        except (ValueError, OSError):
            pass
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs, /proc/stat), for telling how
    much of it went to processes other than the server and the load generator."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK
