"""CPU per request, by process group, for the benchmarks (Linux /proc): how much of the shared
cores PostgreSQL, the server under test and the load generator each spent between two readings.

Why: on a machine where the client, the server and PostgreSQL share the cores, requests per
second compare servers only through the CPU each spends per request; this shows where it goes.

- PostgreSQL: the postmaster serving our database and its child processes. Backends that ended
  meanwhile (pgbench closes its connections at the end) count too: their time moved into the
  postmaster's children's time when it reaped them.
- the server: a process and its descendants (uvicorn's master and workers).
- the client: our own children reaped meanwhile (wrk, pgbench run with subprocess.run), plus this
  process itself (the in-process Python client)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    own: float  # utime + stime, seconds
    children: float  # cutime + cstime: reaped children, seconds


def proc_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        # After the command: state ppid ... utime(12th) stime cutime cstime (0-based 11..14 here).
        stats[int(entry.name)] = ProcStat(int(entry.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK,
                                          (int(fields[13]) + int(fields[14])) / CLK_TCK)
    return stats


def tree(root: int, stats: dict[int, ProcStat]) -> set[int]:
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for stat in stats.values():
            if stat.ppid == parent and stat.pid not in members:
                members.add(stat.pid)
                frontier.append(stat.pid)
    return members & set(stats)


class CpuMeter:
    """Seconds of CPU by PostgreSQL, the server and the client since the meter was made."""

    def __init__(self, postmaster: int | None, server: int | None) -> None:
        self.postmaster, self.server = postmaster, server
        self.start = self.reading()

    def group(self, root: int | None, stats: dict[int, ProcStat]) -> float:
        if root is None or root not in stats:
            return 0.0
        return sum(stats[pid].own for pid in tree(root, stats)) + stats[root].children

    def reading(self) -> dict[str, float]:
        stats = proc_stats()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        return {"db": self.group(self.postmaster, stats), "server": self.group(self.server, stats),
                "client": children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime}

    def spent(self) -> dict[str, float]:
        end = self.reading()
        return {name: end[name] - self.start[name] for name in end}


def postmaster_of(backend_pid: int) -> int | None:
    """The postmaster of a backend (our connection's pg_backend_pid()), if it runs on this machine."""
    try:
        return proc_stats()[backend_pid].ppid
    except KeyError:
        return None  # a database on another machine: its CPU is not ours to see
