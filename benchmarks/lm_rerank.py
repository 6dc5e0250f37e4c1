"""Best of N by the retriever: how many candidates per motion, chosen on the validation split.

Usage: python benchmarks/lm_rerank.py [--runs none=runs/lm_long60/none both=runs/lm_long60/both]
       [--data runs/lm_quality/data] [--evaluator runs/lm_quality/evaluator] [--candidates 1 2 4 8 16 32]
       [--prompts 640] [--split val] [--out lm_rerank]
Writes benchmarks/results/OUT.json and .md and prints a table.

`ReMoGPT.generate_motion(rerank=N)` samples N motions per text and keeps the one the run's own
retriever (PL-TMR) matches best with the text. The separately trained matching evaluator then
scores the chosen motions (Guo et al.'s protocol, one repeat), beside Real and the two copy
baselines on the same prompts. N is a decoding setting, so it is chosen here on the validation
split; `lm_long.py` reports the chosen N on the test split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from lm_learning import score  # benchmarks/: the same scoring as the learning curves

RESULTS = Path(__file__).resolve().parent / "results"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--runs NAME=RUN …, --data and --evaluator, as the benchmarks that score trained runs take them."""
    parser.add_argument("--runs", nargs="+", default=["none=runs/lm_long60/none", "both=runs/lm_long60/both"],
                        help="NAME=RUN_FOLDER")  # fmt: skip
    parser.add_argument("--data", type=Path, default=Path("runs/lm_quality/data"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/lm_quality/evaluator"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--prompts", type=int, default=640)
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", default="lm_rerank", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "benchmark": "lm_rerank",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "split": args.split, "prompts": args.prompts, "repeats": 1, "baselines": {}, "runs": {},
    }  # fmt: skip
    for spec in args.runs:
        name, run = spec.split("=", 1)
        rows = []
        for n in args.candidates:
            t0 = time.perf_counter()
            scores = score(Path(run), None, args.data, args.evaluator, args.prompts, baselines=not result["baselines"],
                           rerank=n, captions=False, split=args.split)  # fmt: skip
            seconds = time.perf_counter() - t0
            if not result["baselines"]:
                result["baselines"] = {row: v for row, v in scores["t2m"].items() if row != "ReMoGPT"}
            row = {"candidates": n, **scores["t2m"]["ReMoGPT"], "seconds": seconds}
            rows.append(row)
            print(f"{name} best of {n}: R-Top1 {row['top1']:.3f} FID {row['FID']:.2f} MMDist {row['MMDist']:.2f} "
                  f"({seconds:.0f} s)", flush=True)  # fmt: skip
        result["runs"][name] = {"run": run, "rows": rows}

    lines = [f"# Best of N by the retriever ({result['date']})", "",
             f"{args.split} split, {args.prompts} prompts, 1 repeat, matching evaluator. The seconds include loading "
             "the run and the evaluation (and, in the first row, the baselines).", "",
             "| row | N | R-Top1 ↑ | R-Top3 ↑ | FID ↓ | MMDist ↓ | Diversity | seconds |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row, v in result["baselines"].items():
        lines.append(f"| {row} | | {v['top1']:.3f} | {v['top3']:.3f} | {v['FID']:.2f} | {v['MMDist']:.2f} | "
                     f"{v['Diversity']:.2f} | |")  # fmt: skip
    for name, r in result["runs"].items():
        for v in r["rows"]:
            lines.append(f"| ReMoGPT, {name} | {v['candidates']} | {v['top1']:.3f} | {v['top3']:.3f} | {v['FID']:.2f} "
                         f"| {v['MMDist']:.2f} | {v['Diversity']:.2f} | {v['seconds']:.0f} |")  # fmt: skip
    markdown = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{args.out}.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
