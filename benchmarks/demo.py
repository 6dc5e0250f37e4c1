"""`remogpt demo` as a new user meets it: wall time and peak memory of a first run from nothing (no
data, no text-embedding cache) and of a second, cached run. Targets: ≤ 10 minutes, ≤ 4 GB.

Usage: python benchmarks/demo.py [--work /tmp/remogpt-demo-bench]
Writes benchmarks/results/demo.json and prints a table. Each run is a separate process (the
console script), measured from outside: wall clock, and the peak resident memory of the process
tree (getrusage of the children).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from results_io import machine

RESULTS = Path(__file__).resolve().parent / "results"


def _run(work: Path) -> dict:
    env = {**os.environ, "REMOGPT_CACHE_DIR": str(work / "cache")}
    command = [str(Path(sys.executable).with_name("remogpt")), "demo", "--out", str(work / "demo"),
               "--data", str(work / "data")]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"demo failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads((work / "demo" / "summary.json").read_text())
    return {
        "wall_s": seconds,
        # ru_maxrss of children is the largest of any child so far: valid for the first run; for the
        # second it is a lower bound only if that run used less (reported as measured).
        "peak_rss_gb": peak_kb / 1024**2,
        "peak_rss_gb_is_max_so_far": peak_kb == before,
        "stage_seconds": summary["seconds"],
        "reused_stages": summary["reused_stages"],
        "results": summary["results"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/remogpt-demo-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    first = _run(args.work)
    second = _run(args.work)
    result = {
        "benchmark": "demo",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "targets": {"wall_s": 600, "peak_rss_gb": 4.0},
        "first_run": first,
        "cached_run": second,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'run':<14}{'wall':>10}{'peak RSS':>12}  stages (s)")
    for name, r in (("first", first), ("cached", second)):
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stage_seconds"].items() if k != "total")
        print(f"{name:<14}{r['wall_s'] / 60:>8.1f} m{r['peak_rss_gb']:>10.2f} GB  {stages}")
    q = first["results"]
    print(f"quality (first run): generated R@1 {q['t2m_R1_generated']:.2f} among {q['prompts']} prompts "
          f"(real {q['t2m_R1_real']:.2f}), captions BLEU@4 {q['m2t_generated']['BLEU@4']:.1f}")  # fmt: skip
    print(f"wrote {RESULTS / 'demo.json'}")


if __name__ == "__main__":
    main()
