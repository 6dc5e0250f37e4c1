"""Do the tokenizer's motion-level loss terms help the demo as the matching evaluator sees it?

Usage: python benchmarks/tokenizer_terms.py --data runs/lm_quality/data --evaluator runs/lm_quality/evaluator
           [--bandai data/bandai] [--seeds 0 1 2] [--settings off heading both ...]
           [--work runs/tokenizer_terms] [--steps 1000]
Writes benchmarks/results/tokenizer_terms.json (and .md; tokenizer_terms_steps<N> when --steps is not
1000) and prints a table.

`heading_weight` and `aligned_joint_weight` (TokenizerConfig) lower the root-aligned MPJPE, but the
matching evaluator, and so the demo's FID and R-Top1, read the 263 features, not the joints. For each
setting and seed this trains the demo's tokenizer recipe (tiny preset, the run's seed, lr step at 80 %,
as `remogpt demo` does; `--steps`, default 1,000: the demo's until 2026-12-04, now 2,000) on the
embedded train split and scores its reconstructions of the embedded test split: root-aligned MPJPE,
feature MAE, and with the evaluator the FID against the originals and the R-Top1 of the reconstructions
for their first captions (Guo et al.'s batches of 32), beside the originals' own R-Top1. Bandai test and
LAFAN1 MPJPE when those are on disk. A finished tokenizer in the work folder is reused.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remogpt.data import load_split
from remogpt.tokenizer import MotionTokenizer, TokenizerTrainConfig, train_tokenizer

_spec = importlib.util.spec_from_file_location("tokenizer_bench", Path(__file__).with_name("tokenizer.py"))
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # benchmarks/tokenizer.py: evaluate, fetch_mocap

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS: dict[str, dict[str, float]] = {
    "off": {"heading_weight": 0.0, "aligned_joint_weight": 0.0},  # T2M-GPT's loss, the demo's today
    "heading": {"heading_weight": 1.0, "aligned_joint_weight": 0.0},
    "joints": {"heading_weight": 0.0, "aligned_joint_weight": 1.0},
    "both": {"heading_weight": 1.0, "aligned_joint_weight": 1.0},
    "both_0.25": {"heading_weight": 0.25, "aligned_joint_weight": 0.25},
}


def demo_recipe(data: Path, seed: int, model: dict[str, float], steps: int = 1000) -> TokenizerTrainConfig:
    """remogpt.demo's tokenizer config (tiny, `steps`, lr step at 80 %) with `model` overrides."""
    return TokenizerTrainConfig.preset(
        "tiny", data={"root": str(data)}, model=model,
        trainer={"max_steps": steps, "progress_bar": False, "seed": seed, "val_every_n_steps": steps},
        lr_milestones=[s for s in (int(0.8 * steps),) if s > 0],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "embedded")
    parser.add_argument("--evaluator", type=Path, required=True, help="A matching evaluator trained on --data.")
    parser.add_argument("--bandai", type=Path, default=ROOT / "data" / "bandai")
    parser.add_argument("--mocap-cache", type=Path, default=ROOT / "runs" / "bench_cache" / "bvhtools")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "tokenizer_terms")
    parser.add_argument("--steps", type=int, default=1000, help="Training steps (the demo trains 2,000).")
    args = parser.parse_args()

    from remogpt.eval import frechet_distance
    from remogpt.eval.evaluator import Evaluator
    from remogpt.eval.metrics import r_precision

    samples = [s for s in load_split(args.data, "test") if s.captions]
    clips = [s.features[: len(s.features) - len(s.features) % 4] for s in samples]
    evaluator = Evaluator.from_pretrained(args.evaluator)
    text_emb = evaluator.embed_texts([list(s.captions[0].tokens) or s.captions[0].text for s in samples])
    real_emb = evaluator.embed_motions(clips)
    sets: dict[str, list[np.ndarray]] = {}
    if (args.bandai / "test.txt").is_file():
        sets["bandai_test"] = [c[: len(c) - len(c) % 4] for c in (s.features for s in load_split(args.bandai, "test"))]
    try:
        takes = bench.fetch_mocap(args.mocap_cache)[: len(bench.LAFAN_MEMBERS)]  # the LAFAN1 takes only
        from remogpt.motion.bvh import import_bvh

        sets["lafan1"] = [c.features[: len(c.features) - len(c.features) % 4]
                          for t in takes for c in import_bvh(t, rig="auto", segment_frames=196).clips]  # fmt: skip
    except Exception as exc:  # the LAFAN1 takes are fetched once into a cache; optional here
        print(f"LAFAN1 not scored: {exc}")
    real = {"top1": float(r_precision(text_emb, real_emb, top_k=1)[0]), "samples": len(samples)}
    report: dict[str, Any] = {
        "benchmark": "tokenizer_terms",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "data": str(args.data), "evaluator": str(args.evaluator), "seeds": args.seeds, "steps": args.steps,
        "held_out": {"embedded_test": len(clips), **{k: len(v) for k, v in sets.items()}},
        "real_top1": real, "settings": {},
    }  # fmt: skip
    for name in args.settings:
        runs = []
        for seed in args.seeds:
            out = args.work / (name if args.steps == 1000 else f"{name}_steps{args.steps}") / f"seed{seed}"
            if not (out / "tokenizer" / "manifest.json").is_file():
                started = time.perf_counter()
                resume = (out / "tokenizer" / "checkpoints" / "last.ckpt").is_file()
                train_tokenizer(demo_recipe(args.data, seed, SETTINGS[name], args.steps), out, resume=resume)
                print(f"{name} seed {seed}: trained in {time.perf_counter() - started:.0f} s", flush=True)
            tok = MotionTokenizer.from_pretrained(out)
            metrics, recon, _ = bench.evaluate(tok, clips)
            recon_emb = evaluator.embed_motions(recon)
            row = {"seed": seed, "fingerprint": tok.fingerprint,
                   "embedded_aligned_mm": metrics["mpjpe_aligned_mm"], "embedded_feature_mae": metrics["feature_mae"],
                   "fid": frechet_distance(recon_emb, real_emb),
                   "top1": float(r_precision(text_emb, recon_emb, top_k=1)[0])}  # fmt: skip
            for set_name, set_clips in sets.items():
                row[f"{set_name}_aligned_mm"] = bench.evaluate(tok, set_clips)[0]["mpjpe_aligned_mm"]
            print(json.dumps({"setting": name, **row}, default=float), flush=True)
            runs.append(row)
        keys = [k for k in runs[0] if k not in ("seed", "fingerprint")]
        summary = {k: {"min": min(r[k] for r in runs), "median": statistics.median(r[k] for r in runs),
                       "max": max(r[k] for r in runs)} for k in keys}  # fmt: skip
        report["settings"][name] = {"model": SETTINGS[name], "runs": runs, "summary": summary}
    RESULTS.mkdir(exist_ok=True)
    stem = "tokenizer_terms" if args.steps == 1000 else f"tokenizer_terms_steps{args.steps}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    text = markdown(report)
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


def markdown(report: dict[str, Any]) -> str:
    keys = [k for k in next(iter(report["settings"].values()))["summary"]]
    lines = [
        "# Tokenizer loss terms, as the matching evaluator sees the reconstructions",
        "",
        f"{report['steps']} training steps; embedded test split, median (min–max) over seeds {report['seeds']}; "
        f"the originals' R-Top1: "
        f"{report['real_top1']['top1']:.3f}.",
        "",
        "| setting | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for name, entry in report["settings"].items():
        cells = []
        for k in keys:
            s = entry["summary"][k]
            digits = 3 if ("top1" in k or "fid" in k or "mae" in k) else 1
            cells.append(f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
