"""Continuation as an instruction task of its own (issue 49, item 1): does training it help, and
what does it cost text→motion and captioning?

Usage: python benchmarks/lm_continue.py [--base runs/demo] [--data data/embedded]
           [--evaluator runs/editing/evaluator] [--recipes rate0 rate0.3] [--seeds 0 1 2] [--steps 500]
           [--clips 100] [--timelines 32] [--work runs/lm_continue] [--no-score]
Writes benchmarks/results/lm_continue.json (and .md) and prints a table.

The base folder is a finished `remogpt demo`: its tokenizer, retriever and motion codes are reused,
so the runs differ in the language model only. For every `continue_rate` and LM seed the demo's LM
(tiny, stage 2 only, `--steps` steps) is trained anew (`lm_compose._train`) per recipe (RECIPES:
`continue_rate`, `transition_rate`); rate0 continues by handing the decoder the last codes. Each model then
continues the first half of `--clips` held-out test clips with their captions
(`editing.continuations`: ADE / FDE against the real rest, FID, seams; beside it the retrieved copy
and the held pose, which do not depend on the LM), makes `--timelines` timelines of 3 test captions
(`editing._timelines`: each segment's evaluator R-Top1 against the caption generated alone, seams;
a model trained on continuation makes them twice, its later segments by the continuation task and
by the decoder prefix),
and is scored as lm_quality.py scores a demo
(i.i.d. test split and the compositional one: evaluator, attribute judge, copy rate; captions),
so that what continuation costs the other tasks is measured on the same runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from editing import CONTEXT, _evaluator, _timelines, continuations
from lm_compose import _summary, _train
from lm_quality import _score
from results_io import cached_json, machine, write_results

CONTINUE_KEYS = ("ade_mm", "fde_mm", "fid")
#: name → LMConfig overrides on the demo's LM config (the folder names of runs made before are kept).
RECIPES: dict[str, dict[str, Any]] = {
    "rate0": {"continue_rate": 0.0},
    "rate0.3": {"continue_rate": 0.3},
    "rate0.3_tr0.3": {"continue_rate": 0.3, "transition_rate": 0.3},
}
TIMELINE_KEYS = ("segments_r_top1", "alone_r_top1", "seams_above_real_p95", "foot_skating")
SCORE_KEYS = ("test R-Top1", "test FID", "comp attributes", "comp copy rate", "m2t CIDEr")


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _cell(s: dict[str, float], digits: int) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=Path("runs/demo"))
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/editing/evaluator"))
    parser.add_argument("--recipes", nargs="+", default=["rate0", "rate0.3"], choices=list(RECIPES))
    parser.add_argument("--timelines", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--work", type=Path, default=Path("runs/lm_continue"))
    parser.add_argument("--no-score", action="store_true", help="continuation only, no text→motion/captions")
    args = parser.parse_args()

    import torch

    from remogpt.data import load_split
    from remogpt.demo import judge_folder
    from remogpt.eval.motion_quality import frame_statistics
    from remogpt.lm import ReMoGPT
    from remogpt.lm import editing as lm_editing
    from remogpt.motion import features_to_joints

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    judge = judge_folder(args.data)
    evaluator = _evaluator(args.evaluator, args.data)
    test = [c for c in load_split(args.data, "test") if "#" not in c.id and c.captions]
    long_enough = [c for c in test if len(c.features) >= 2 * CONTEXT + 8]
    clips = [long_enough[i] for i in np.random.default_rng(0).permutation(len(long_enough))[: args.clips]]
    real_emb = evaluator.embed_motions([c.features for c in clips])
    inside = np.concatenate([frame_statistics(features_to_joints(c.features), window=4)["velocity_jump"]
                             for c in clips])  # fmt: skip
    real_p95 = {"velocity_jump": float(np.percentile(inside, 95))}
    results: dict[str, Any] = {}
    for name in args.recipes:
        runs = []
        for seed in args.seeds:
            run = args.work / f"{name}_steps{args.steps}_seed{seed}"
            print(f"{name}, LM seed {seed}: training …", flush=True)
            record = _train(args.base, run, args.data, args.steps, seed, RECIPES[name])
            cont = cached_json(run / "continue.json", f"{name}, LM seed {seed}: continuing {len(clips)} clips …",
                               _timed_continuations, run, clips, evaluator, real_emb, real_p95)  # fmt: skip
            timeline: dict[str, Any] = {}
            model = ReMoGPT.from_pretrained(run)
            for how in (lm_editing.TASK, lm_editing.PREFIX) if model.continuation_trained else (lm_editing.PREFIX,):
                lines = cached_json(run / f"timelines_{args.timelines}_{how.replace(' ', '_')}.json",
                                    f"{name}, LM seed {seed}: {args.timelines} timelines by the {how} …",
                                    _timelines, model, test, args.timelines, 0, evaluator, real_p95,
                                    segments_by=how)  # fmt: skip
                timeline[how] = {"segments_r_top1": lines["timeline_segments"]["r_top1"],
                                 "alone_r_top1": lines["each_alone"]["r_top1"],
                                 "seams_above_real_p95": lines["seams"]["above_real_p95"],
                                 "foot_skating": lines["foot_skating"]}  # fmt: skip
            entry: dict[str, Any] = {"seed": seed, "run": str(run), **record, "continue": cont, "timeline": timeline}
            if not args.no_score:
                scores = cached_json(run / "scores_r1.json",
                                     f"{name}, LM seed {seed}: scoring text→motion and captions …",
                                     _score, run, args.data, args.evaluator, 1, judge)  # fmt: skip
                entry["scores"] = _summary(scores)
            runs.append(entry)
        summary: dict[str, Any] = {}
        for method in runs[0]["continue"]:
            if method == "seconds":
                continue
            summary[method] = {k: _spread([r["continue"][method][k] for r in runs]) for k in CONTINUE_KEYS}
            summary[method]["seams_above_real_p95"] = _spread(
                [r["continue"][method]["seams"]["above_real_p95"] for r in runs])  # fmt: skip
        summary["timeline"] = {how: {k: _spread([r["timeline"][how][k] for r in runs]) for k in TIMELINE_KEYS}
                               for how in runs[0]["timeline"]}  # fmt: skip
        if not args.no_score and all("scores" in r for r in runs):
            summary["scores"] = {k: _spread([r["scores"][k] for r in runs if r["scores"].get(k) is not None])
                                 for k in SCORE_KEYS}  # fmt: skip
        results[name] = {"overrides": RECIPES[name], "summary": summary, "runs": runs}
    out = {
        "benchmark": "lm_continue", "date": time.strftime("%Y-%m-%d"), "base": str(args.base),
        "data": str(args.data), "steps": args.steps, "seeds": args.seeds, "clips": len(clips),
        "machine": machine(),
        "real_velocity_jump_p95": real_p95["velocity_jump"], "results": results,
    }  # fmt: skip
    write_results("lm_continue", out, _markdown(out))


def _timed_continuations(run: Path, clips: list[Any], evaluator: Any, real_emb: Any,
                         real_p95: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    from remogpt.lm import ReMoGPT

    t0 = time.perf_counter()
    cont = continuations(ReMoGPT.from_pretrained(run), clips, 0, evaluator, real_emb, real_p95)
    return {**cont, "seconds": time.perf_counter() - t0}


def _markdown(out: dict[str, Any]) -> str:
    lines = [f"# Continuation as a trained task ({out['date']}; {out['clips']} test clips, first half kept; "
             f"LM seeds {', '.join(map(str, out['seeds']))}, {out['steps']} steps; median (min–max) over seeds)",
             "", "| LM recipe | method | ADE mm | FDE mm | FID | seams > Real p95 |", "|---|---|---|---|---|---|"]
    for name, res in out["results"].items():
        for method, row in res["summary"].items():
            if method in ("scores", "timeline"):
                continue
            lines.append(f"| {name} | {method} | {_cell(row['ade_mm'], 1)} | {_cell(row['fde_mm'], 1)} | "
                         f"{_cell(row['fid'], 3)} | {_cell(row['seams_above_real_p95'], 2)} |")  # fmt: skip
    lines += ["", "| LM recipe | later segments by | timeline segments R-Top1 | each caption alone | "
              "timeline seams > Real p95 | foot skating |", "|---|---|---|---|---|---|"]
    for name, res in out["results"].items():
        for how, t in res["summary"]["timeline"].items():
            lines.append(f"| {name} | {how} | {_cell(t['segments_r_top1'], 3)} | {_cell(t['alone_r_top1'], 3)} | "
                         f"{_cell(t['seams_above_real_p95'], 2)} | {_cell(t['foot_skating'], 3)} |")  # fmt: skip
    scored = [(n, r) for n, r in out["results"].items() if "scores" in r["summary"]]
    if scored:
        lines += ["", "| LM recipe | " + " | ".join(SCORE_KEYS) + " |", "|---|" + "---|" * len(SCORE_KEYS)]
        for name, res in scored:
            s = res["summary"]["scores"]
            lines.append(f"| {name} | " + " | ".join(_cell(s[k], 3 if k != "m2t CIDEr" else 1) if k in s else "–"
                                                    for k in SCORE_KEYS) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
