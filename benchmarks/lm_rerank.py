"""Best of N and guidance: how many candidates per motion, which judge picks, and the classifier-free
guidance scale, chosen on the validation split.

Usage: python benchmarks/lm_rerank.py [--runs none=runs/lm_long60/none both=runs/lm_long60/both]
       [--data runs/lm_quality/data] [--evaluator runs/lm_quality/evaluator] [--candidates 1 2 4 8 16 32]
       [--rerank-by retriever both] [--guidance 1 1.5 2] [--prompts 640] [--split val] [--repeats 1]
       [--out lm_rerank]
Writes benchmarks/results/OUT.json and .md and prints a table.

`ReMoGPT.generate_motion(rerank=N, rerank_score=J)` samples N motions per text and keeps the one
judge J likes best: the run's own retriever (PL-TMR cosine), the model's own captioner (how likely
it finds the text as the candidate's caption), or both. The separately trained matching evaluator
then scores the chosen motions (Guo et al.'s protocol), beside Real and the two copy baselines on
the same prompts. `--guidance S` samples with classifier-free guidance (`generate_motion(guidance_scale=S)`:
each step's log-probabilities given the prompt, weighed S times against those of the same prompt
without its text). N, J and S are decoding settings, so they are chosen on the validation split, then
reported once on the test split (`--split test --prompts 0 --repeats 3`: the whole split, as
`lm_long.py` scores it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from lm_learning import score  # benchmarks/: the same scoring as the learning curves
from remogpt.lm import RERANK_SCORES
from results_io import machine, write_results


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
    parser.add_argument("--rerank-by", nargs="+", default=["retriever"], choices=RERANK_SCORES,
                        help="the judges to compare (each N > 1 is scored with every one)")  # fmt: skip
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0],
                        help="classifier-free guidance scales to compare (1: off)")  # fmt: skip
    parser.add_argument("--prompts", type=int, default=640, help="prompts of the split (0: all of them)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default="lm_rerank", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "benchmark": "lm_rerank",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "split": args.split, "prompts": args.prompts or "all", "repeats": args.repeats, "guidance": args.guidance,
        "baselines": {}, "runs": {},
    }  # fmt: skip
    for spec in args.runs:
        name, run = spec.split("=", 1)
        rows = []
        settings = [
            (g, n, j) for g in args.guidance for n in args.candidates for j in (args.rerank_by if n > 1 else [None])
        ]
        for guidance, n, judge in settings:
            t0 = time.perf_counter()
            scores = score(Path(run), None, args.data, args.evaluator, args.prompts or None,
                           baselines=not result["baselines"], repeats=args.repeats, rerank=n,
                           rerank_score=judge, captions=False, split=args.split,
                           guidance_scale=guidance)  # fmt: skip
            seconds = time.perf_counter() - t0
            if not result["baselines"]:
                result["baselines"] = {row: v for row, v in scores["t2m"].items() if row != "ReMoGPT"}
            row = {"guidance": guidance, "candidates": n, "judge": judge, **scores["t2m"]["ReMoGPT"],
                   "seconds": seconds}  # fmt: skip
            rows.append(row)
            setting = f"guidance {guidance:g}, best of {n}{f' by {judge}' if judge else ''}"
            print(f"{name} {setting}: R-Top1 {row['top1']:.3f} FID {row['FID']:.2f} MMDist {row['MMDist']:.2f} "
                  f"({seconds:.0f} s)", flush=True)  # fmt: skip
        result["runs"][name] = {"run": run, "rows": rows}

    lines = [f"# Best of N and guidance ({result['date']})", "",
             f"{args.split} split, {args.prompts or 'all'} prompts, {args.repeats} repeat(s) (means), matching "
             "evaluator. The seconds include loading the run and the evaluation (and, in the first row, the "
             "baselines).", "",
             "| row | guidance | N | judge | R-Top1 ↑ | R-Top3 ↑ | FID ↓ | MMDist ↓ | Diversity | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row, v in result["baselines"].items():
        lines.append(f"| {row} | | | | {v['top1']:.3f} | {v['top3']:.3f} | {v['FID']:.2f} | {v['MMDist']:.2f} | "
                     f"{v['Diversity']:.2f} | |")  # fmt: skip
    for name, r in result["runs"].items():
        for v in r["rows"]:
            lines.append(f"| ReMoGPT, {name} | {v.get('guidance', 1.0):g} | {v['candidates']} | "
                         f"{v.get('judge') or ''} | {v['top1']:.3f} | "
                         f"{v['top3']:.3f} | {v['FID']:.2f} | {v['MMDist']:.2f} | {v['Diversity']:.2f} | "
                         f"{v['seconds']:.0f} |")  # fmt: skip
    write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
