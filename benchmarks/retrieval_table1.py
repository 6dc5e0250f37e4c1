"""Table 1 on the embedded data: PL-TMR vs the whole-body encoder vs text-to-text, over several seeds,
plus the per-part ablation (which body parts carry which captions).

Usage: python benchmarks/retrieval_table1.py [--data data/embedded] [--seeds 0 1 2] [--steps N]
           [--variants pl wb wb_matched] [--runs runs/table1] [--threads 1] [--train-only]

Every model is the `tiny` preset trained on the train split with the same data, steps, batch and
optimiser; only the motion encoder differs:
  pl          PL-TMR: six part transformers (width 64 each), concatenated (Eq. 2)
  wb          whole-body (TMR-style): one transformer over all 263 dims, width 6 × 64 = 384
              (the same total embedding width; ≈ 6× the parameters and compute)
  wb_matched  whole-body with width 144: about PL-TMR's parameter count
The text-to-text row uses the frozen sentence model alone (see `text_to_text_sim`).
Evaluation: the test split, sorted by sample id, first caption of each sample (TMR protocol), with
remogpt.eval's metrics (ties averaged), all samples and the "small batches" (32) variant.
Trained runs are reused when their config matches (so several processes can train in parallel,
then one evaluates). Writes benchmarks/results/retrieval_table1.json and .md, and files the run under its key in
benchmarks/results/retrieval.json (retrieval.md gathers both benchmarks' tables).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.eval.runners import text_to_text_sim  # shared with `remogpt eval retrieval`

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS: dict[str, dict[str, Any]] = {
    "pl": {"motion": {"part_level": True}},
    "wb": {"motion": {"part_level": False}},
    "wb_matched": {"motion": {"part_level": False, "whole_body_width": 144}},
}
LABELS = {
    "pl": "PL-TMR (6 parts × 64)",
    "wb": "whole-body, width 384",
    "wb_matched": "whole-body, width 144",
    "t2t": "text-to-text (frozen MiniLM)",
}
KEYS = [f"{d}/{m}" for d in ("t2m", "m2t") for m in ("R01", "R02", "R03", "R05", "R10", "MedR")]


def config_for(variant: str, seed: int, data: Path, steps: int | None) -> Any:
    from remogpt.retrieval import RetrieverConfig

    train: dict[str, Any] = {"seed": seed, "progress_bar": False, "accelerator": "cpu", "devices": "1"}
    if steps is not None:
        train["max_steps"] = steps
    return RetrieverConfig.preset("tiny", data={"root": str(data)}, trainer=train, **VARIANTS[variant])


def ensure_trained(run_dir: Path, cfg: Any, encoder: Any) -> dict[str, Any]:
    """Train unless `run_dir` already holds a run of exactly this config; returns its training summary."""
    from remogpt.artifacts import read_manifest
    from remogpt.retrieval import train_retriever

    manifest_path = run_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = read_manifest(run_dir, stage="retriever")
        if manifest.config == cfg.to_dict():
            return {**manifest.extra["train"], "reused": True}
    result = train_retriever(
        cfg,
        run_dir.parent,  # writes run_dir (…/retriever)
        text_encoder=encoder,
        progress=False,
        log=lambda m: print(f"  [{run_dir.parent.name}] {m}", flush=True),
    )
    return {"steps": result.steps, "seconds": round(result.seconds, 1), "final_loss": result.final_loss}


def test_samples(data: Path) -> list[Any]:
    from remogpt.data import load_split

    return sorted(load_split(data, "test"), key=lambda c: c.id)  # small batches need sorted ids


def protocol(sim: np.ndarray) -> dict[str, dict[str, float]]:
    from remogpt.eval import retrieval_metrics, retrieval_metrics_small_batches

    return {"all": retrieval_metrics(sim), "small_batches": retrieval_metrics_small_batches(sim)}


def sibling_confusion(sim: np.ndarray, clips: list[Any]) -> dict[str, float]:
    """How often the top-1 is the ground truth's mirror (or a timed part of the same clip) instead.

    Mirrors differ only in left/right (their captions too), so this measures side confusion;
    "R01 family" counts such a top-1 as a hit.
    """
    from remogpt.retrieval import family_of

    fam = np.array([family_of(c.id) for c in clips])
    out: dict[str, float] = {}
    for direction, matrix in (("t2m", sim), ("m2t", sim.T)):
        top = matrix.argmax(1)
        hit = top == np.arange(len(top))
        sibling = (fam[top] == fam) & ~hit
        out[f"{direction}/top1_sibling"] = 100.0 * float(sibling.mean())
        out[f"{direction}/R01_family"] = 100.0 * float((hit | sibling).mean())
    return out


def ranks(sim: np.ndarray) -> np.ndarray:
    """0-based rank of each row's diagonal, ties averaged (the protocol's definition)."""
    gt = np.diag(sim)[:, None]
    return (sim > gt).sum(1) + ((sim == gt).sum(1) - 1) / 2.0


def sample_groups(clips: list[Any], data: Path) -> dict[str, list[int]]:
    """Test rows grouped by what their caption describes, from labels.jsonl (mirrors swap sides)."""
    from remogpt.data.synth.primitives import PRIMITIVES

    labels = {}
    with (data / "labels.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            labels[row["id"]] = row
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        mirror = c.clip_id.startswith("M")
        row = labels.get(c.clip_id[1:] if mirror else c.clip_id)
        if row is None:
            continue
        phases = row["phases"]
        if "#" in c.id and row.get("timed") is not None:
            phases = [phases[row["timed"]["phase"]]]
        names: set[str] = set()
        for ph in phases:
            for act in ([ph["base"]] if ph["base"] else []) + ph["overlays"]:
                part = PRIMITIVES[act["name"]].part
                side = act.get("side")
                if mirror and side in ("left", "right"):
                    side = {"left": "right", "right": "left"}[side]
                if part == "arms":
                    names.add(f"arm action, {side} side" if side in ("left", "right") else "arm action, both/none")
                elif part == "legs":
                    names.add(f"leg action, {side} side" if side in ("left", "right") else "leg action, both/none")
                else:
                    names.add(part)
        for name in names:
            groups.setdefault(name, []).append(i)
    return dict(sorted(groups.items()))


def part_ablation(retriever: Any, clips: list[Any], groups: dict[str, list[int]], text_emb: np.ndarray) -> dict:
    """t2m R@10 with each part's vector replaced by its test-set mean (mean ablation) or by zeros."""
    from remogpt.motion import PART_NAMES

    parts = retriever.embed_motion_parts([c.features for c in clips], warn=False)
    out: dict[str, Any] = {}
    for mode in ("mean", "zero"):
        rows: dict[str, Any] = {}
        for drop in (None, *PART_NAMES):
            edited = dict(parts)
            if drop is not None:
                fill = parts[drop].mean(0, keepdims=True) if mode == "mean" else np.zeros_like(parts[drop][:1])
                edited[drop] = np.broadcast_to(fill, parts[drop].shape)
            r = ranks(text_emb @ retriever.project_motion_parts(edited).T)
            entry = {"all": 100.0 * float(np.mean(r < 10))}
            entry.update({g: 100.0 * float(np.mean(r[idx] < 10)) for g, idx in groups.items()})
            rows[drop or "none"] = entry
        out[mode] = rows
    return out


def summarize(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Retrieval, Table 1 on the embedded test split ({report['test_samples']} samples), "
        f"{report['steps']} training steps",
        "",
    ]
    lines.append(
        f"tiny preset{'' if report['steps'] == report.get('preset_steps') else ' with max_steps overridden'}, "
        f"{report['steps']} steps × batch {report['batch_size']}, seeds {report['seeds']}; "
        "mean ± std over seeds (text-to-text is deterministic)."
    )
    for proto in ("all", "small_batches"):
        title = "all test samples" if proto == "all" else "small batches of 32 (seeded shuffle, averaged)"
        for direction in ("t2m", "m2t"):
            lines += ["", f"## {'Text-to-motion' if direction == 't2m' else 'Motion-to-text'}, {title}", ""]
            lines.append("| method | motion params | R@1 | R@2 | R@3 | R@5 | R@10 | MedR |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for name, entry in report["methods"].items():
                cells = []
                for m in ("R01", "R02", "R03", "R05", "R10", "MedR"):
                    s = entry["metrics"][proto][f"{direction}/{m}"]
                    cells.append(f"{s['mean']:.2f} ± {s['std']:.2f}" if s["std"] else f"{s['mean']:.2f}")
                params = entry.get("motion_params")
                lines.append(f"| {LABELS[name]} | {params / 1e6:.2f}M |" if params else f"| {LABELS[name]} | – |")
                lines[-1] += " " + " | ".join(cells) + " |"
    lines += [
        "",
        "## Left/right: how often the top-1 is the ground truth's mirror (or its clip's timed part)",
        "",
        "| method | t2m R@1 | t2m top-1 = mirror | t2m R@1 counting the mirror | m2t R@1 | m2t top-1 = mirror |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in report["methods"].items():
        sides, m = entry["sides"], entry["metrics"]["all"]
        lines.append(
            f"| {LABELS[name]} | {m['t2m/R01']['mean']:.2f} | {sides['t2m/top1_sibling']['mean']:.2f} | "
            f"{sides['t2m/R01_family']['mean']:.2f} | {m['m2t/R01']['mean']:.2f} | "
            f"{sides['m2t/top1_sibling']['mean']:.2f} |"
        )
    if report.get("ablation"):
        ab = report["ablation"]["mean"]
        groups = [g for g in next(iter(ab.values())) if g != "all"]
        lines += [
            "",
            "## Per-part ablation (PL-TMR): t2m R@10 with one part replaced by its test-set mean",
            "",
            "| dropped part | all | " + " | ".join(groups) + " |",
            "|---" * (len(groups) + 2) + "|",
        ]
        for part, entry in ab.items():
            lines.append(
                f"| {part} | {entry['all']['mean']:.1f} | "
                + " | ".join(f"{entry[g]['mean']:.1f}" for g in groups)
                + " |"
            )
        sizes = report["ablation_group_sizes"]
        lines += ["", "Group sizes (test queries): " + ", ".join(f"{g} {n}" for g, n in sizes.items()) + "."]
    return "\n".join(lines) + "\n"


def merge_summary(section: str, data: dict[str, Any]) -> None:
    """Also file this run under `section` in benchmarks/results/retrieval.json, and rebuild retrieval.md
    from the per-benchmark markdown files (Table 1 and the index benchmark write separately)."""
    summary_path = RESULTS / "retrieval.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    summary[section] = data
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    parts = sorted(RESULTS.glob("retrieval_*.md"), key=lambda p: (p.stem != "retrieval_table1", p.stem))
    text = "\n".join(p.read_text(encoding="utf-8") for p in parts)
    (RESULTS / "retrieval.md").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="default: the tiny preset's")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--runs", type=Path, default=Path("runs/table1"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is faster on 2 busy cores)")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval_table1")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from remogpt.retrieval import Retriever, TextEncoder

    encoder = TextEncoder()
    trained: dict[str, dict[int, dict]] = {}
    for seed in args.seeds:
        for variant in args.variants:
            cfg = config_for(variant, seed, args.data, args.steps)
            run_dir = args.runs / f"{variant}-s{seed}" / "retriever"
            t = time.perf_counter()
            summary = ensure_trained(run_dir, cfg, encoder)
            print(f"{variant} seed {seed}: {summary} ({time.perf_counter() - t:.0f} s)", flush=True)
            trained.setdefault(variant, {})[seed] = {"run": str(run_dir), "train": summary, "cfg": cfg}
    if args.train_only:
        return

    clips = test_samples(args.data)
    groups = sample_groups(clips, args.data)
    texts = [c.captions[0].text for c in clips]
    report: dict[str, Any] = {"test_samples": len(clips), "seeds": args.seeds, "methods": {}, "per_seed": {}}
    for variant, seeds in trained.items():
        per_seed = []
        ablations = []
        for seed, info in seeds.items():
            r = Retriever.from_pretrained(info["run"], text_encoder=encoder, load_index=False)
            text_emb = r.embed_text(texts)
            sim = text_emb @ r.embed_motion([c.features for c in clips], warn=False).T
            metrics = protocol(sim)
            metrics["sides"] = sibling_confusion(sim, clips)
            per_seed.append(metrics)
            report["per_seed"][f"{variant}-s{seed}"] = {"metrics": metrics, "train": info["train"]}
            if r.model.part_level:
                ablations.append(part_ablation(r, clips, groups, text_emb))
            params = r.manifest.extra["parameters"]["motion_encoder"]
            report["steps"], report["batch_size"] = info["cfg"].trainer.max_steps, info["cfg"].trainer.batch_size
            report["preset_steps"] = config_for(variant, seed, args.data, None).trainer.max_steps
            print(
                f"{variant} seed {seed}: t2m R@10 {metrics['all']['t2m/R10']:.2f}, "
                f"m2t R@10 {metrics['all']['m2t/R10']:.2f}",
                flush=True,
            )
        report["methods"][variant] = {
            "motion_params": params,
            "train_seconds": summarize([seeds[s]["train"]["seconds"] for s in seeds]),
            "metrics": {p: {k: summarize([m[p][k] for m in per_seed]) for k in KEYS} for p in ("all", "small_batches")},
            "sides": {k: summarize([m["sides"][k] for m in per_seed]) for k in per_seed[0]["sides"]},
        }
        if ablations:
            report["ablation"] = {
                mode: {
                    part: {g: summarize([a[mode][part][g] for a in ablations]) for g in ablations[0][mode][part]}
                    for part in ablations[0][mode]
                }
                for mode in ("mean", "zero")
            }
            report["ablation_group_sizes"] = {g: len(idx) for g, idx in groups.items()}
    sim, notes = text_to_text_sim(encoder, clips)
    metrics = protocol(sim)
    sides = sibling_confusion(sim, clips)
    report["methods"]["t2t"] = {
        "sides": {k: summarize([v]) for k, v in sides.items()},
        "motion_params": None,
        "notes": notes,
        "metrics": {p: {k: summarize([metrics[p][k]]) for k in KEYS} for p in metrics},
    }
    report["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    report["chance"] = {"R10": 100.0 * 10 / len(clips), "MedR": (len(clips) + 1) / 2}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    if args.out.parent.resolve() == RESULTS.resolve():
        merge_summary(args.out.stem.removeprefix("retrieval_"), report)
    print(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
