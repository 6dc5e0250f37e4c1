"""Which tokenizer keeps the detail the words name? Every variant scored with the same rows.

Usage: python benchmarks/tokenizer_variants.py [--data runs/lm_quality/data] [--bandai data/bandai]
           [--variants demo ends ...] [--seeds 0 1 2] [--steps 2000] [--work runs/tokenizer_variants]
           [--out NAME]
Writes benchmarks/results/NAME.json and .md (default tokenizer_variants) and prints the table.

Each variant is the demo's tokenizer recipe (tiny preset, `--steps` steps, lr step at 80 %, the seed;
remogpt.demo) with model overrides, trained on the embedded train split only, and scored on motion it
never saw:
- embedded test: root-aligned MPJPE (mm) of the round trip;
- fine detail: eval/rules.py on the test and test_compositional splits (segments included), the share
  of checks that read the original right and still read the reconstruction right, per rule
  (clap/hop/jump counts, waving side, sidestep direction, grounded walking; target ≥ 0.90 each);
- real motion from other studios: the Bandai-Namco test split (when imported), the two LAFAN1 takes of
  the bvhtools sdist, and HumanML3D clip 012314 from ../shared (root-aligned mm);
- codebook usage on the embedded test codes, batched encode/decode speed, and training time.
- the same round trips decoded two other ways: without the codebook (`unquantized`, the autoencoder's
  ceiling) and, for residual quantisation, through the first layer alone (`base`, what the LM writes).
A finished tokenizer in the work folder is reused; an interrupted one resumes from its checkpoint.
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

from remogpt.data.folder import load_split
from remogpt.eval.judge import LabelBook
from remogpt.eval.rules import RULES, rule_survival
from remogpt.motion.features import features_to_joints
from remogpt.tokenizer import MotionTokenizer, TokenizerTrainConfig, reconstruction_metrics, train_tokenizer

_spec = importlib.util.spec_from_file_location("tokenizer_bench", Path(__file__).with_name("tokenizer.py"))
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # benchmarks/tokenizer.py: evaluate, encode_decode_speed, fetch_mocap
_spec = importlib.util.spec_from_file_location("tokenizer_terms", Path(__file__).with_name("tokenizer_terms.py"))
assert _spec is not None and _spec.loader is not None
terms = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(terms)  # benchmarks/tokenizer_terms.py: demo_recipe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
_MOTION = {"heading_weight": 1.0, "aligned_joint_weight": 1.0}
_ENDS = {**_MOTION, "extremity_weight": 2.0, "extremity_velocity_weight": 0.2, "foot_height_weight": 4.0}
#: name → TokenizerConfig overrides of the tiny preset, and the folders mixed into training
#: ("coverage": `remogpt data coverage`, given by --coverage; "bandai": --bandai's train split; the
#: value is its repeat). Validation and every score stay on motion none of them trains on.
VARIANTS: dict[str, dict[str, Any]] = {
    "t2m_gpt": {"model": {}},  # T2M-GPT's loss (the tiny preset), the demo's tokenizer until 2026-12-06
    "motion": {"model": _MOTION},  # + integrated heading and root-aligned joints
    "ends": {"model": _ENDS},  # + wrists and feet: positions, velocities, foot heights (preset tiny_detail)
    "ends_velocity": {"model": {**_ENDS, "extremity_velocity_weight": 1.0}},
    "ends_strong": {"model": {**_ENDS, "extremity_weight": 8.0, "extremity_velocity_weight": 1.0}},
    "ends_wide": {"model": {**_ENDS, "code_dim": 128, "width": 192}},
    "ends_fine": {"model": {**_ENDS, "down_t": 1}},  # a code every 2 frames instead of 4 (twice the tokens)
    "ends_coverage": {"model": _ENDS, "mix": {"coverage": 1}},
    "contact": {"model": {**_ENDS, "contact_weight": 4.0}},  # + distances between wrists, toes and head
    "ends_bandai": {"model": _ENDS, "mix": {"bandai": 1}},  # Bandai's train split beside the embedded one
    "ends_bandai_coverage": {"model": _ENDS, "mix": {"bandai": 1, "coverage": 1}},
    # residual quantisation (MoMask): 4 layers, a random prefix of them for 20 % of the samples
    "ends_rvq": {"model": {**_ENDS, "num_quantizers": 4, "quantizer_dropout": 0.2}},
    "contact_light": {"model": {**_ENDS, "contact_weight": 1.0}},
}


def _mix(variant: dict[str, Any], folders: dict[str, Path]) -> list[dict[str, Any]]:
    return [{"root": str(folders[name]), "repeat": repeat} for name, repeat in variant.get("mix", {}).items()]


def recipe(data: Path, seed: int, model: dict[str, Any], steps: int, mix: list | None = None) -> TokenizerTrainConfig:
    """The demo's tokenizer recipe (benchmarks/tokenizer_terms.py) with `model` overrides and a data mix."""
    return terms.demo_recipe(data, seed, model, steps).replace(mix=mix or [])


def _crop(clip: np.ndarray, unit: int = 4) -> np.ndarray:
    return clip[: len(clip) - len(clip) % unit]


def labelled_split(data: Path, split: str) -> tuple[list[np.ndarray], list[list[dict]]]:
    """The split's clips (segments included) that have generator labels, with their phases."""
    book = LabelBook.of(data)
    clips, phases = [], []
    for sample in load_split(data, split):
        p = book.phases(sample.id)
        if p is not None and len(sample.features) >= 8:
            clips.append(_crop(sample.features))
            phases.append(p)
    return clips, phases


def held_out_sets(data: Path, bandai: Path, cache: Path) -> dict[str, list[np.ndarray]]:
    """Real motion none of the variants trains on: Bandai test, LAFAN1, clip 012314 (each when available)."""
    from remogpt.data.folder import load_features

    sets: dict[str, list[np.ndarray]] = {}
    if (bandai / "test.txt").is_file():
        sets["bandai_test"] = [_crop(s.features) for s in load_split(bandai, "test") if len(s.features) >= 8]
    try:
        from remogpt.motion.bvh import import_bvh

        takes = bench.fetch_mocap(cache)[: len(bench.LAFAN_MEMBERS)]
        sets["lafan1"] = [_crop(c.features) for t in takes for c in import_bvh(t, rig="auto", segment_frames=196).clips]
    except Exception as exc:  # fetched once from the package registry into a cache; optional here
        print(f"LAFAN1 not scored: {exc}")
    if bench.SHARED_CLIP.is_file():
        sets["clip_012314"] = [_crop(load_features(bench.SHARED_CLIP))]
    return sets


def decode_paths(tok: MotionTokenizer) -> dict[str, Any]:
    """The ways a motion can come back, besides the table's (every code layer): `base`, the first layer
    alone (what the language model makes, with residual layers), and `unquantized`, the encoder's output
    decoded without the codebook (the autoencoder's ceiling: what quantisation cannot be blamed for)."""
    paths: dict[str, Any] = {"unquantized": tok.reconstruct_unquantized}
    if tok.num_quantizers > 1:
        paths["base"] = lambda clip: tok.reconstruct(clip, layers=1)
    return paths


def score(tok: MotionTokenizer, splits: dict[str, tuple[list[np.ndarray], list[list[dict]]]],
          held_out: dict[str, list[np.ndarray]]) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {}
    layers = tok.num_quantizers
    for split, (clips, phases) in splits.items():
        metrics, recon, _ = bench.evaluate(tok, clips, layers=layers)
        if split == "test":
            row["embedded_test_mm"] = metrics["mpjpe_aligned_mm"]
            row["embedded_test_local_mm"] = metrics["mpjpe_local_mm"]
            row["feature_mae"] = metrics["feature_mae"]
            row["codebook"] = metrics["codebook"]
            row["speed"] = bench.encode_decode_speed(tok, clips, layers=layers)
        originals = [features_to_joints(c) for c in clips]
        rebuilt = [features_to_joints(r) for r in recon]
        row[f"survival_{split}"] = {k: list(v) for k, v in rule_survival(originals, rebuilt, phases).items()}
        for path, rebuild in decode_paths(tok).items():
            other = [rebuild(c).numpy() for c in clips]
            if split == "test":
                row[f"embedded_test_mm@{path}"] = reconstruction_metrics(clips, other, tok.normalizer)[
                    "mpjpe_aligned_mm"]  # fmt: skip
            survival = rule_survival(originals, [features_to_joints(r) for r in other], phases)
            row[f"survival_{split}@{path}"] = {k: list(v) for k, v in survival.items()}
    for name, clips in held_out.items():
        metrics, _, _ = bench.evaluate(tok, clips, layers=layers)
        row[f"{name}_mm"] = metrics["mpjpe_aligned_mm"]
        for path, rebuild in decode_paths(tok).items():
            other = [rebuild(c).numpy() for c in clips]
            row[f"{name}_mm@{path}"] = reconstruction_metrics(clips, other, tok.normalizer)["mpjpe_aligned_mm"]
    return row


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Min / median / max over seeds of every scalar row, and of each rule's survival share."""
    out: dict[str, Any] = {}
    scalars = {k for r in runs for k, v in r.items() if isinstance(v, float | int) and k != "seed"}
    for key in sorted(scalars):  # train_s is missing where a run was resumed or reused
        out[key] = _spread([float(r[key]) for r in runs if key in r])
    for key in [k for k in runs[0] if k.startswith("survival_")]:  # survival_<split>[@<path>]
        if all(key in r for r in runs):
            out[key] = {rule: _spread([r[key][rule][0] for r in runs if rule in r[key]])
                        for rule in RULES if all(rule in r[key] for r in runs)}  # fmt: skip
            if "@" not in key:
                out[f"checks_{key.removeprefix('survival_')}"] = {rule: runs[0][key][rule][1] for rule in out[key]}
    out["codebook_used"] = _spread([r["codebook"]["used"] for r in runs])
    out["encode_frames_per_s"] = _spread([r["speed"]["encode_frames_per_s_batched"] for r in runs])
    out["decode_frames_per_s"] = _spread([r["speed"]["decode_frames_per_s_batched"] for r in runs])
    return out


def markdown(report: dict[str, Any]) -> str:
    def cell(s: dict[str, float], fmt: str = ".1f") -> str:
        if s["min"] == s["max"]:
            return format(s["median"], fmt)
        return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"

    lines = [
        f"# Tokenizer variants ({report['steps']} steps, demo recipe; {report['date']})",
        "",
        "Median over seeds (min–max). mm: root-aligned MPJPE of the round trip on motion not trained on.",
        "Survival: share of rule checks right on the original that stay right after the round trip "
        "(test / test_compositional; target ≥ 0.90).",
        "",
    ]
    first = next(iter(report["variants"].values()))["summary"]
    held = [k for k in ("bandai_test_mm", "lafan1_mm", "clip_012314_mm") if k in first]
    head = ["variant", "seeds", "embedded test mm", *held, *RULES, "codes used", "enc/dec kframes/s", "train s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, v in report["variants"].items():
        s = v["summary"]
        rules = []
        for rule in RULES:
            parts = [cell(s[f"survival_{sp}"][rule], ".2f") for sp in ("test", "test_compositional")
                     if rule in s.get(f"survival_{sp}", {})]  # fmt: skip
            rules.append(" / ".join(parts) or "–")
        speed = f"{s['encode_frames_per_s']['median'] / 1e3:.0f} / {s['decode_frames_per_s']['median'] / 1e3:.0f}"
        lines.append("| " + " | ".join([
            name, str(len(v["runs"])), cell(s["embedded_test_mm"]), *(cell(s[k]) for k in held), *rules,
            cell(s["codebook_used"], ".0f"), speed, cell(s["train_s"], ".0f") if "train_s" in s else "–",
        ]) + " |")  # fmt: skip
    lines += [
        "",
        "The same round trips another way: `unquantized` decodes the encoder's output without the codebook",
        "(what quantisation cannot be blamed for); `base` decodes the first of several residual layers alone",
        "(what the language model writes).",
        "",
    ]
    head = ["variant", "path", "embedded test mm", *held, *RULES]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, v in report["variants"].items():
        s = v["summary"]
        for path in ("unquantized", "base"):
            if f"survival_test@{path}" not in s:
                continue
            rules = [" / ".join(cell(s[f"survival_{sp}@{path}"][rule], ".2f") for sp in ("test", "test_compositional")
                                if rule in s.get(f"survival_{sp}@{path}", {})) or "–" for rule in RULES]  # fmt: skip
            mm = [cell(s[f"{k.removesuffix('_mm')}_mm@{path}"]) if f"{k}@{path}" in s else "–"
                  for k in ("embedded_test_mm", *held)]  # fmt: skip
            lines.append("| " + " | ".join([name, path, *mm, *rules]) + " |")
    lines += ["", "Variants (TokenizerConfig overrides of the tiny preset):", ""]
    for n, v in report["variants"].items():
        mix = "; mix " + ", ".join(f"{Path(m['root']).name} ×{m['repeat']}" for m in v["mix"]) if v.get("mix") else ""
        lines.append(f"- `{n}`: {json.dumps(v['model']) if v['model'] else 'none'}{mix}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "lm_quality" / "data")
    parser.add_argument("--bandai", type=Path, default=ROOT / "data" / "bandai")
    parser.add_argument(
        "--coverage",
        type=Path,
        default=ROOT / "data" / "coverage",
        help="A `remogpt data coverage` folder, for the variants that mix it in.",
    )
    parser.add_argument("--mocap-cache", type=Path, default=ROOT / "runs" / "bench_cache" / "bvhtools")
    parser.add_argument("--variants", nargs="+", default=["t2m_gpt", "ends"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=2000, help="Training steps (the demo's: 2,000).")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "tokenizer_variants")
    parser.add_argument("--out", default="tokenizer_variants")
    args = parser.parse_args()

    splits = {split: labelled_split(args.data, split) for split in ("test", "test_compositional")}
    held_out = held_out_sets(args.data, args.bandai, args.mocap_cache)
    path = RESULTS / f"{args.out}.json"
    report: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if report.get("steps") != args.steps or report.get("data") != str(args.data):
        report = {}
    report.update({
        "benchmark": "tokenizer_variants", "date": time.strftime("%Y-%m-%d"), "steps": args.steps,
        "data": str(args.data),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "held_out": {**{split: len(clips) for split, (clips, _) in splits.items()},
                     **{k: len(v) for k, v in held_out.items()}},
    })  # fmt: skip
    report.setdefault("variants", {})
    for name in args.variants:
        folders = {"coverage": args.coverage, "bandai": args.bandai}
        variant = {"model": VARIANTS[name]["model"], "mix": _mix(VARIANTS[name], folders)}
        entry = report["variants"].get(name, {**variant, "runs": []})
        if (entry["model"], entry.get("mix", [])) != (variant["model"], variant["mix"]):
            entry = {**variant, "runs": []}
        done = {r["seed"] for r in entry["runs"]}
        for seed in args.seeds:
            if seed in done:
                continue
            out = args.work / f"{name}_steps{args.steps}" / f"seed{seed}"
            train_s = None
            if not (out / "tokenizer" / "manifest.json").is_file():
                started = time.perf_counter()
                resume = (out / "tokenizer" / "checkpoints" / "last.ckpt").is_file()
                cfg = recipe(args.data, seed, variant["model"], args.steps, variant["mix"])
                train_tokenizer(cfg, out, resume=resume)
                train_s = time.perf_counter() - started if not resume else None
                print(f"{name} seed {seed}: trained in {time.perf_counter() - started:.0f} s", flush=True)
            tok = MotionTokenizer.from_pretrained(out)
            row = {"seed": seed, "fingerprint": tok.fingerprint, **score(tok, splits, held_out)}
            if train_s is not None:
                row["train_s"] = train_s
            entry["runs"].append(row)
            entry["runs"].sort(key=lambda r: r["seed"])
            report["variants"][name] = entry
            entry["summary"] = summarise(entry["runs"])
            path.write_text(json.dumps(report, indent=2) + "\n")
            path.with_suffix(".md").write_text(markdown(report))
            print(markdown(report), flush=True)


if __name__ == "__main__":
    main()
