"""Shared helpers for the benchmarks: timing statistics, a printed table, and RESULTS.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores {platform.machine()} {cpu}, {mem:.0f} GiB, Python {platform.python_version()}"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p90": pick(0.90), "p99": pick(0.99), "min": ordered[0], "max": ordered[-1]}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def record(title: str, command: str, text: str, notes: str = "") -> None:
    """Append one run to bench/RESULTS.md: date, machine, command, figures."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach run appends a section: date, machine, command, figures.\n")
    with RESULTS.open("a") as f:
        f.write(f"\n## {title}\n\n- date: {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}\n- machine: {machine()}\n")
        f.write(f"- commit: {commit or 'uncommitted'}\n- command: `{command}`\n\n{text}\n")
        if notes:
            f.write(f"\n{notes}\n")


def command_line() -> str:
    return " ".join([".venv/bin/python", *sys.argv])
