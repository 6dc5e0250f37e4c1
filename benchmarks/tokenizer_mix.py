"""Does real motion capture in the training mix make the tokenizer work on real motion?

Usage: python benchmarks/tokenizer_mix.py [--data data/embedded] [--bandai data/bandai] [--steps 1000]
       [--work runs/tokenizer_mix] [--lafan-take1 20] [--keep-rig-layout] [--model KEY=VALUE …] [--out NAME]
Writes benchmarks/results/tokenizer_mix.json (tokenizer_mix_steps<N>.json for another budget than the
demo's 1,000 steps; NAME.json with --out) and prints a table. LAFAN1 is imported with its hips and
collars moved to SMPL's places (`conform_segments`), or as its rig has them with --keep-rig-layout;
the Bandai folder's importer version (2 and later: moved) is recorded.

Two tokenizers with the demo's recipe and budget (tiny preset, `--steps` steps, seed 0): one trained on
the embedded (procedural) data only, as today, and one on the embedded data plus the train split of
the imported Bandai-Namco sets (`remogpt data import-bandai`; `--mix` with `--repeat` windows per clip
and epoch). Both are scored on held-out motion neither saw: the embedded test split, the Bandai test
split (takes never trained on, with their mirrors), the two LAFAN1 takes of the bvhtools sdist (another
studio and rig) and the real HumanML3D clip 012314 from ../shared, with benchmarks/tokenizer.py's
`evaluate` (MPJPE global / root-aligned / local, feature MAE, the mean-pose baseline, codebook use).

`--lafan-take1 R` adds a third tokenizer: embedded + Bandai + the first LAFAN1 take (test.bvh, cut
into 196-frame clips, R windows per clip and epoch), and scores every tokenizer on each take alone
(`lafan1_take1`, which the third trained on, and `lafan1_take2`, test2.bvh, which none saw): does a
few minutes of the other studio's capture in the mix make the tokenizer work on the rest of it?
`feature_stats` says how far each set's features lie from the training data's (the root's angular
velocity spread, |z| percentiles per feature group under the tokenizer's Mean/Std).
`without_codebook` (per set) decodes the encoder's output before it is quantised: if real motion is
far off even then, the encoder and decoder do not generalise to it, and more or finer codes cannot help.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remogpt.data.folder import load_features, read_split_ids
from remogpt.motion.bvh import import_bvh
from remogpt.tokenizer import MotionTokenizer, TokenizerTrainConfig, train_tokenizer

_spec = importlib.util.spec_from_file_location("tokenizer_bench", Path(__file__).with_name("tokenizer.py"))
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # benchmarks/tokenizer.py: evaluate, fetch_mocap, the LAFAN1 members

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def _config(data: Path, steps: int, mix: list[dict], model: dict[str, Any] | None = None) -> TokenizerTrainConfig:
    """The demo's tokenizer recipe (remogpt.demo), at `steps`, with `model` overrides."""
    return TokenizerTrainConfig.preset(
        "tiny", data={"root": str(data)}, mix=mix, model=model or {},
        trainer={"max_steps": steps, "progress_bar": False, "seed": 0, "val_every_n_steps": steps},
        lr_milestones=[s for s in (int(0.8 * steps),) if s > 0],
    )  # fmt: skip


def _split_clips(root: Path, split: str) -> list[np.ndarray]:
    clips = [load_features(root / "new_joint_vecs" / f"{i}.npy") for i in read_split_ids(root, split)]
    return [c[: len(c) - len(c) % 4] for c in clips if len(c) >= 4]


def _lafan(cache: Path, conform: bool) -> list[np.ndarray]:
    out = []
    for path in bench.fetch_mocap(cache)[: len(bench.LAFAN_MEMBERS)]:
        for clip in import_bvh(path, rig="auto", segment_frames=196, conform=conform).clips:
            out.append(clip.features[: len(clip.features) - len(clip.features) % 4])
    return out


GROUP_NAMES = (
    "root_angular_velocity",
    "root_linear_velocity",
    "root_height",
    "joint_positions",
    "joint_rotations",
    "joint_velocities",
    "foot_contacts",
)  # feature_groups' order


def _importer(folder: Path) -> dict[str, Any]:
    """Which import made the Bandai folder (its importer version says whether hips and collars were conformed)."""
    info = folder / "import.json"
    if not info.is_file():
        return {}
    data = json.loads(info.read_text(encoding="utf-8"))
    return {k: data.get(k) for k in ("importer", "importer_version", "data_hash")}


def _feature_stats(clips: list[np.ndarray], normalizer: Any) -> dict[str, Any]:
    """How far a set's features lie from the training distribution: the root's angular velocity spread
    (rad/frame) and, per feature group, the 99th percentile of |z| under the tokenizer's Mean/Std."""
    from remogpt.data.normalize import feature_groups

    features = np.concatenate(clips)
    z = np.abs(normalizer.normalize(features))
    groups = feature_groups((features.shape[1] + 1) // 12)
    p99 = {name: float(np.percentile(z[:, g], 99)) for name, g in zip(GROUP_NAMES, groups, strict=True)}
    return {"root_angular_velocity_std": float(features[:, 0].std()), "abs_z_p99": p99}


def _without_codebook(tok: MotionTokenizer, clips: list[np.ndarray]) -> dict[str, float]:
    """MPJPE of the autoencoder alone: the encoder's latents go to the decoder unquantised."""
    from remogpt.tokenizer import reconstruction_metrics

    recon = [tok.reconstruct_unquantized(clip).numpy() for clip in clips]
    metrics = reconstruction_metrics(clips, recon, tok.normalizer)
    return {k: metrics[k] for k in ("mpjpe_aligned_mm", "mpjpe_local_mm", "feature_mae")}


def _import_take(path: Path, out: Path, conform: bool) -> Path:
    """A BVH take as a HumanML3D-layout mix folder: 196-frame clips, all of them in train.txt."""
    if not (out / "train.txt").is_file():
        (out / "new_joint_vecs").mkdir(parents=True, exist_ok=True)
        names = []
        for k, clip in enumerate(import_bvh(path, rig="auto", segment_frames=196, conform=conform).clips):
            names.append(f"{path.stem}_{k:03d}")
            np.save(out / "new_joint_vecs" / f"{names[-1]}.npy", clip.features.astype(np.float32))
        (out / "train.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "embedded")
    parser.add_argument("--bandai", type=Path, default=ROOT / "data" / "bandai")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2, help="Windows per Bandai clip and epoch.")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "tokenizer_mix")
    parser.add_argument("--mocap-cache", type=Path, default=ROOT / "runs" / "bench_cache" / "bvhtools")
    parser.add_argument("--lafan-take1", type=int, default=0, metavar="R",
                        help="also train with LAFAN1's first take in the mix, R windows per clip (0: not)")  # fmt: skip
    parser.add_argument(
        "--keep-rig-layout",
        action="store_true",
        help="import LAFAN1 with its own hip and collar layout (as before conform_segments)",
    )
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="tokenizer model overrides, e.g. heading_weight=1 aligned_joint_weight=1")  # fmt: skip
    parser.add_argument("--out", default=None,
                        help="results name (default: tokenizer_mix[_steps<N>][_lafan1_take1])")  # fmt: skip
    args = parser.parse_args()
    conform = not args.keep_rig_layout
    model = {key: float(value) for key, value in (item.split("=", 1) for item in args.model)}
    sets = {"embedded_test": _split_clips(args.data, "test"), "bandai_test": _split_clips(args.bandai, "test"),
            "lafan1": _lafan(args.mocap_cache, conform)}  # fmt: skip
    if bench.SHARED_CLIP.is_file():
        real = np.load(bench.SHARED_CLIP, allow_pickle=False).astype(np.float32)
        sets["humanml3d_012314"] = [real[: len(real) - len(real) % 4]]
    variants = {"procedural_only": [], "with_bandai": [{"root": str(args.bandai), "repeat": args.repeat}]}
    if args.lafan_take1:
        takes = bench.fetch_mocap(args.mocap_cache)[: len(bench.LAFAN_MEMBERS)]
        sets["lafan1_take1"], sets["lafan1_take2"] = (  # take 1 the third tokenizer trains on; take 2 nobody
            [c.features[: len(c.features) - len(c.features) % 4]
             for c in import_bvh(take, rig="auto", segment_frames=196, conform=conform).clips]
            for take in takes)  # fmt: skip
        take1 = _import_take(takes[0], args.work / "lafan1_take1", conform)
        variants["with_bandai_lafan1_take1"] = [*variants["with_bandai"],
                                                {"root": str(take1), "repeat": args.lafan_take1}]  # fmt: skip
    result: dict = {
        "benchmark": "tokenizer_mix",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "steps": args.steps,
        "bandai_repeat": args.repeat,
        "model_overrides": model,
        "bandai_importer": _importer(args.bandai),
        "lafan1_rig_layout": "kept" if args.keep_rig_layout else "SMPL's (remogpt.motion.bvh.conform_segments)",
        "held_out": {name: {"clips": len(c), "minutes": round(sum(len(x) for x in c) / 20 / 60, 2)}
                     for name, c in sets.items()},
        "licences": {"bandai": "CC BY-NC 4.0 (read from a local copy, not committed)",
                     "lafan1": "CC BY-NC-ND 4.0 (bvhtools sdist, not committed)"},
        "variants": {},
    }  # fmt: skip
    for name, mix in variants.items():
        run = args.work / name
        if not (run / "tokenizer" / "manifest.json").is_file():
            started = time.perf_counter()
            resume = (run / "tokenizer" / "checkpoints" / "last.ckpt").is_file()
            train_tokenizer(_config(args.data, args.steps, mix, model), run, resume=resume)
            print(f"{name}: trained in {time.perf_counter() - started:.0f} s", flush=True)
        tok = MotionTokenizer.from_pretrained(run)
        manifest = json.loads((run / "tokenizer" / "manifest.json").read_text())
        scores = {}
        for set_name, clips in sets.items():
            metrics, _, _ = bench.evaluate(tok, clips)
            metrics["without_codebook"] = _without_codebook(tok, clips)
            scores[set_name] = metrics
        if "feature_stats" not in result:  # every variant normalises with the main folder's Mean/Std
            train_sets = {
                "embedded_train": _split_clips(args.data, "train"),
                "bandai_train": _split_clips(args.bandai, "train"),
            }
            result["feature_stats"] = {name: _feature_stats(clips, tok.normalizer)
                                       for name, clips in {**train_sets, **sets}.items()}  # fmt: skip
        result["variants"][name] = {"mix": mix, "train_windows_per_epoch": manifest["extra"]["train_clips"],
                                    "train_seconds": manifest["extra"]["train_seconds"], "scores": scores}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    name = "tokenizer_mix" if args.steps == 1000 else f"tokenizer_mix_steps{args.steps}"
    name += "_lafan1_take1" if args.lafan_take1 else ""
    name = (args.out or name) + ".json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=float) + "\n")
    _print(result)


def _print(result: dict) -> None:
    print(f"\nroot-aligned MPJPE (mm) of reconstructions, {result['steps']} steps; mean pose in brackets")
    sets = list(result["held_out"])
    print(f"{'tokenizer':<26}" + "".join(f"{s:>22}" for s in sets))
    for name, v in result["variants"].items():
        scores = v["scores"]
        cells = [f"{scores[s]['mpjpe_aligned_mm']:.1f} ({scores[s]['baseline_mean_pose']['mpjpe_aligned_mm']:.0f})"
                 for s in sets]  # fmt: skip
        print(f"{name:<26}" + "".join(f"{c:>22}" for c in cells))
        cells = [f"{scores[s]['without_codebook']['mpjpe_aligned_mm']:.1f}" if "without_codebook" in scores[s] else "–"
                 for s in sets]  # fmt: skip
        print(f"{'  without the codebook':<26}" + "".join(f"{c:>22}" for c in cells))
    print("\nfeatures under the main folder's Mean/Std: root angular velocity std (rad/frame); |z| p99 of the "
          "joint rotations and positions")  # fmt: skip
    for name, v in result.get("feature_stats", {}).items():
        print(f"{name:<26}{v['root_angular_velocity_std']:>10.4f}{v['abs_z_p99']['joint_rotations']:>8.1f}"
              f"{v['abs_z_p99']['joint_positions']:>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
