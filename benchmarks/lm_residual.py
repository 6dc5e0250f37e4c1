"""What the LM's residual head adds: the same generated base codes decoded through the base layer
alone and through every layer, on the i.i.d. test split and on unseen compositions.

Usage: python benchmarks/lm_residual.py [--runs runs/lm_quality/demo_tiny_rvq_seed0 …]
       [--data runs/lm_quality/data] [--evaluator runs/lm_quality/evaluator] [--repeats 3] [--out lm_residual]
Writes benchmarks/results/OUT.json and .md and prints a table.

Each run is a demo trained on the residual tokenizer (`lm_quality.py --tokenizer-preset tiny_rvq`):
its T5 writes the base layer's codes, and its residual head the other layers of each code
(`MotionT5.residual_head`). Sampling draws only the base codes (the head is an argmax over its
decoder state afterwards), so with the same seeds both decodings share their base codes and the
difference is the head's alone. Both are scored like `lm_quality.py` (`eval_t2m` with the matching
evaluator and the attribute judge, the copy baselines and the tokenizer's round trip beside them).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from results_io import machine, write_results

SPLITS = ("test", "test_compositional")
METRICS = ("top1", "FID", "Attributes", "CopyRate")
WAYS = {"base layer alone": False, "all layers (residual head)": True}


def _score_run(run: Path, data: Path, evaluator: Path, repeats: int, judge: Path | None) -> dict[str, Any]:
    from remogpt.eval.results import ProtocolResult
    from remogpt.eval.runners import eval_t2m
    from remogpt.lm import ReMoGPT

    model = ReMoGPT.from_pretrained(run, data_root=data)
    if getattr(model.model, "residual_head", None) is None:
        raise SystemExit(f"{run}: its LM has no residual head (train it on a residual tokenizer: tiny_rvq)")
    out: dict[str, Any] = {}
    for split in SPLITS:
        out[split] = {}
        for way, on in WAYS.items():
            model.write_residual_layers = on
            result = eval_t2m(run, data, evaluator, repeats=repeats, mmodality=False, judge_dir=judge, split=split,
                              model=model, label="ReMoGPT")  # fmt: skip
            view = ProtocolResult.from_dict(result)
            rows = {name: {k: (result["rows"][name][k]["mean"] if result["rows"][name].get(k) else None)
                           for k in METRICS} for name in view.rows}  # fmt: skip
            out[split][way] = rows.pop("ReMoGPT")
            out[split].setdefault("baselines", rows)
    model.write_residual_layers = True
    return out


def _cell(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "–"
    if len(got) == 1:
        return f"{got[0]:.3f}"
    return f"{statistics.median(got):.3f} ({min(got):.3f}–{max(got):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+",
                        default=[Path(f"runs/lm_quality/demo_tiny_rvq_seed{s}") for s in (0, 1, 2)])  # fmt: skip
    parser.add_argument("--data", type=Path, default=Path("runs/lm_quality/data"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/lm_quality/evaluator"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="lm_residual", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()
    from remogpt.demo import judge_folder

    judge = judge_folder(args.data) if (judge_folder(args.data) / "manifest.json").is_file() else None
    started = time.perf_counter()
    runs = {}
    for run in args.runs:
        print(f"scoring {run} both ways …", flush=True)
        runs[str(run)] = _score_run(run, args.data, args.evaluator, args.repeats, judge)
    result = {"benchmark": "lm_residual", "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "repeats": args.repeats, "judge": str(judge) if judge else None, "runs": runs,
              "seconds": time.perf_counter() - started}  # fmt: skip
    lines = [f"# What the residual head adds ({len(runs)} demo runs, median (min–max) over runs)", ""]
    for split in SPLITS:
        lines += [f"## {split}", "", "| decoded | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        for way in WAYS:
            cells = [_cell([r[split][way][m] for r in runs.values()]) for m in METRICS]
            lines.append(f"| ReMoGPT, {way} | " + " | ".join(cells) + " |")
        for name in next(iter(runs.values()))[split]["baselines"]:
            cells = [_cell([r[split]["baselines"][name][m] for r in runs.values()]) for m in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    write_results(args.out, result, "\n".join(lines))


if __name__ == "__main__":
    main()
