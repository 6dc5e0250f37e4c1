"""Embedded data set generation: wall time, motions/s and peak memory, 1 vs 2 workers, in one run.

Usage: python benchmarks/synth.py [--clips 4000]
Writes benchmarks/results/synth.json and prints a table. The issue's target: the default size
(4000 clips + mirrors) in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import machine

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = """
import json, resource, sys, time
from remogpt.data.synth.generate import SynthConfig, synthesize
if __name__ == "__main__":
    out, clips, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t = time.perf_counter()
    r = synthesize(out, SynthConfig(clips=clips), workers=workers, force=True)
    wall = time.perf_counter() - t
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"wall_s": wall, "motions": r.clips_written, "hash": r.data_hash,
                      "peak_rss_main_mb": peak_self / 1024, "peak_rss_worker_mb": peak_children / 1024,
                      "learnability": r.stats["learnability"], "quality": r.stats["quality"]}))
"""


def run(clips: int, workers: int, tmp: Path) -> dict:
    script = tmp / "child.py"
    script.write_text(CHILD)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp / f"w{workers}"), str(clips), str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4000)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            rows[workers] = run(args.clips, workers, Path(tmp))
    same = rows[1]["hash"] == rows[2]["hash"]
    print(f"embedded data set, {args.clips} clips + mirrors, on {os.cpu_count()} CPUs")
    print(f"{'workers':>8} {'wall s':>8} {'motions/s':>10} {'peak RSS main MB':>17} {'peak RSS worker MB':>19}")
    for w, r in rows.items():
        print(
            f"{w:>8} {r['wall_s']:8.1f} {r['motions'] / r['wall_s']:10.1f} {r['peak_rss_main_mb']:17.0f} "
            f"{r['peak_rss_worker_mb']:19.0f}"
        )
    print(f"speed-up 2 vs 1 worker: {rows[1]['wall_s'] / rows[2]['wall_s']:.2f}x; identical output: {same}")
    result = {
        "benchmark": "synth",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "clips": args.clips,
        "runs": {str(w): {k: v for k, v in r.items() if k not in ("learnability", "quality")} for w, r in rows.items()},
        "speedup_2_vs_1": rows[1]["wall_s"] / rows[2]["wall_s"],
        "identical_output": same,
        "learnability": rows[2]["learnability"],
        "quality": rows[2]["quality"],
        "target": "default size under 120 s on 2 cores",
        "meets_target": rows[2]["wall_s"] < 120,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synth.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
