"""wrk (C, from Debian; scripts/apt.sh installs it) as an HTTP load generator over a list of paths.

Why wrk: the tile floor is measured with pgbench, a C client, and a Python client of our own cost
~0.25 ms of the 2 shared cores per tile, which the servers then lacked (bench/RESULTS.md). Each
wrk thread walks the path list from its own offset."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

WRK_SCRIPT = """
local paths, i = {}, 0
local threads = 0
setup = function(thread) thread:set("tid", threads); threads = threads + 1 end
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = (tid or 0) * math.floor(#paths / tonumber(args[2]))
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip"})
end
done = function(summary, latency, requests)
  io.write(string.format('WRK {"requests": %d, "us": %d, "bytes": %d, "errors": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(base_url: str, paths: list[str], concurrency: int, seconds: float) -> dict[str, int]:
    """wrk's summary: requests, us (duration), bytes (with headers), errors, p50 and p99 (us)."""
    threads = min(concurrency, 2)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        (Path(tmp) / "paths.lua").write_text(WRK_SCRIPT)
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s",
             "-s", str(Path(tmp) / "paths.lua"), base_url, "--", str(Path(tmp) / "paths.txt"), str(threads)],
            capture_output=True, text=True, check=True).stdout
    result: dict[str, int] = json.loads(out.split("WRK ", 1)[1].splitlines()[0])
    return result
