"""Learning curves of the language model: does budget or recipe limit it?

Usage: python benchmarks/lm_learning.py --run runs/demo [--evaluator runs/evaluator] [--steps 3000]
       [--every 500] [--prompts 320] [--modalities none both] [--work runs/lm_learning]
Writes benchmarks/results/lm_learning.json and lm_learning.png and prints a table.

For each retrieval modality (none: no context; both: the paper's 1 + 1 retrieved pairs) one tiny LM
is trained on the run's tokenizer and retriever for `--steps` steps (one stage, the preset's
schedule over the whole budget), its weights saved every `--every` steps. Every snapshot is
scored with the matching evaluator on the same fixed test subset: text→motion R-Top1/Top3, FID,
MMDist and the share of malformed sequences (`eval_t2m`), captions BLEU@4 and CIDEr (`eval_m2t`).
Real and the copy baselines (top-1 retrieved motion / caption) are drawn as horizontal lines.
The curve is one run's snapshots: a shorter run with its own schedule ends lower-LR, so a point of
the curve is a lower bound of what that budget reaches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from results_io import machine

RESULTS = Path(__file__).resolve().parent / "results"
T2M_KEYS = ("top1", "top3", "FID", "MMDist", "Diversity")
M2T_KEYS = ("BLEU@4", "CIDEr", "ROUGE_L", "top1")


def _train(run: Path, source: Path, data: Path, modality: str, steps: int, every: int) -> float:
    from remogpt.lm import LMConfig, train_lm

    if (run / "lm" / "manifest.json").is_file():
        return json.loads((run / "lm" / "manifest.json").read_text())["extra"]["stage_seconds"]["stage2"]
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    for stage in ("tokenizer", "retriever", "codes"):
        (run / stage).symlink_to((source / stage).resolve())
    if (source / "lm" / "retrievals.json").is_file():  # the LM checks its key before reusing it
        (run / "lm").mkdir()
        shutil.copy2(source / "lm" / "retrievals.json", run / "lm" / "retrievals.json")
    cfg = LMConfig.preset("tiny", stage1_steps=0, stage2_steps=steps, retrieval={"modality": modality})
    cfg = cfg.replace(data={"root": str(data)}, trainer={"progress_bar": False, "checkpoint_every_n_steps": every,
                                                         "log_every_n_steps": 25})  # fmt: skip
    result = train_lm(cfg, run, log=print, snapshot_every=every)
    return result.stage_seconds["stage2"]


def score(run: Path, weights: Path | None, data: Path, evaluator: Path, prompts: int | None, baselines: bool,
          repeats: int = 1, rerank: int = 1, captions: bool = True, split: str = "test",
          rerank_score: str | None = None, guidance_scale: float | None = None) -> dict:  # fmt: skip
    """A run's LM (or a snapshot's `weights`) scored with the matching evaluator on `prompts` samples
    of `split` (None: the whole split): text→motion over `repeats` repeats (each motion the best of
    `rerank` samples by `rerank_score`, default the run's setting; sampled with classifier-free
    `guidance_scale`, default the run's), and unless `captions` is False greedy captions once."""
    from remogpt.eval.results import ProtocolResult
    from remogpt.eval.runners import eval_m2t, eval_t2m
    from remogpt.lm import ReMoGPT
    from remogpt.lm.model import load_t5

    model = ReMoGPT.from_pretrained(run, data_root=data)
    if weights is not None:
        model.model = load_t5(weights)
    t2m = eval_t2m(run, data, evaluator, repeats=repeats, num_prompts=prompts, mmodality=False, model=model,
                   copy_baselines=baselines, rerank=rerank, rerank_score=rerank_score, split=split,
                   guidance_scale=guidance_scale)  # fmt: skip
    t2m_view = ProtocolResult.from_dict(t2m)
    result = {
        "t2m": {row: {k: t2m_view.mean(row, k) for k in T2M_KEYS} for row in t2m_view.rows},
        "malformed_fraction": t2m_view.invalid[t2m_view.label].invalid_fraction,
        "t2m_samples_per_repeat": t2m["samples_per_repeat"],
        "rerank_candidates": rerank,
        "rerank_score": t2m.get("rerank_score"),
        "guidance_scale": t2m["guidance_scale"],
    }
    if captions:
        m2t = eval_m2t(run, data, evaluator, bertscore=False, repeats=1, num_prompts=prompts, model=model,
                       copy_baselines=baselines, split=split)  # fmt: skip
        m2t_view = ProtocolResult.from_dict(m2t)
        result["m2t"] = {row: {k: m2t_view.mean(row, k) for k in M2T_KEYS} for row in m2t_view.rows}
        result["m2t_samples"] = m2t["samples"]
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("t2m", "top1", "text→motion R-Top1 ↑"), ("t2m", "FID", "text→motion FID ↓"),
              ("t2m", "MMDist", "text→motion MMDist ↓"), ("malformed", None, "malformed sequences ↓"),
              ("m2t", "BLEU@4", "captions BLEU@4 ↑"), ("m2t", "CIDEr", "captions CIDEr ↑")]  # fmt: skip
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    base = result["baselines"]
    for ax, (task, key, title) in zip(axes.flat, panels, strict=True):
        for modality, curve in result["curves"].items():
            steps = [p["step"] for p in curve["points"]]
            if task == "malformed":
                values = [p["malformed_fraction"] for p in curve["points"]]
            else:
                values = [p[task]["ReMoGPT"][key] for p in curve["points"]]
            ax.plot(steps, values, marker="o", label=f"ReMoGPT, context: {modality}")
        if task != "malformed":
            for i, (row, values) in enumerate(base[task].items()):
                if values.get(key) is not None:
                    ax.axhline(values[key], linestyle="--", color=f"C{i + 3}", label=row)
        ax.set_title(title)
        ax.set_xlabel("training steps (batch 16)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.suptitle(f"Tiny ReMoGPT learning curves on the embedded data ({result['prompts']} test prompts, "
                 "matching evaluator)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a run with tokenizer/ and retriever/")
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/evaluator"))
    parser.add_argument("--work", type=Path, default=Path("runs/lm_learning"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--prompts", type=int, default=320)
    parser.add_argument("--modalities", nargs="+", default=["none", "both"])
    args = parser.parse_args()
    curves: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    for modality in args.modalities:
        run = args.work / modality
        seconds = _train(run, args.run, args.data, modality, args.steps, args.every)
        points = []
        for step in range(args.every, args.steps + 1, args.every):
            snapshot = run / "lm" / "stage2" / "snapshots" / f"step_{step}"
            weights = snapshot if step < args.steps else None  # the last one is the saved model itself
            scores = score(run, weights, args.data, args.evaluator, args.prompts, baselines=not baselines)
            if not baselines:
                baselines = {task: {row: v for row, v in scores[task].items() if row != "ReMoGPT"}
                             for task in ("t2m", "m2t")}  # fmt: skip
            points.append({"step": step, "minutes": seconds * step / args.steps / 60, **scores})
            m = scores["t2m"]["ReMoGPT"]
            c = scores["m2t"]["ReMoGPT"]
            print(f"{modality:>5} step {step:>5}: R-Top1 {m['top1']:.3f} FID {m['FID']:.2f} MMDist {m['MMDist']:.2f} "
                  f"malformed {scores['malformed_fraction']:.2f} | BLEU@4 {c['BLEU@4']:.1f} CIDEr {c['CIDEr']:.1f}",
                  flush=True)  # fmt: skip
        curves[modality] = {"train_seconds": seconds, "samples_per_second": args.steps * 16 / seconds,
                            "points": points}  # fmt: skip
    result = {
        "benchmark": "lm_learning",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "run": str(args.run),
        "steps": args.steps,
        "every": args.every,
        "prompts": args.prompts,
        "baselines": baselines,
        "curves": curves,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lm_learning.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot(result, RESULTS / "lm_learning.png")
    print("baselines:", json.dumps(baselines))
    print(f"wrote {RESULTS / 'lm_learning.json'} and lm_learning.png")


if __name__ == "__main__":
    main()
