"""Does real motion capture in the training mix make the tokenizer work on real motion?

Usage: python benchmarks/tokenizer_mix.py [--data data/embedded] [--bandai data/bandai] [--steps 1000]
Writes benchmarks/results/tokenizer_mix.json (tokenizer_mix_steps<N>.json for another budget than the
demo's 1,000 steps) and prints a table.

Two tokenizers with the demo's recipe and budget (tiny preset, `--steps` steps, seed 0): one trained on
the embedded (procedural) data only, as today, and one on the embedded data plus the train split of
the imported Bandai-Namco sets (`remogpt data import-bandai`; `--mix` with `--repeat` windows per clip
and epoch). Both are scored on held-out motion neither saw: the embedded test split, the Bandai test
split (takes never trained on, with their mirrors), the two LAFAN1 takes of the bvhtools sdist (another
studio and rig) and the real HumanML3D clip 012314 from ../shared, with benchmarks/tokenizer.py's
`evaluate` (MPJPE global / root-aligned / local, feature MAE, the mean-pose baseline, codebook use).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

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


def _config(data: Path, steps: int, mix: list[dict]) -> TokenizerTrainConfig:
    """The demo's tokenizer recipe (remogpt.demo), at `steps`."""
    return TokenizerTrainConfig.preset(
        "tiny", data={"root": str(data)}, mix=mix,
        trainer={"max_steps": steps, "progress_bar": False, "seed": 0, "val_every_n_steps": steps},
        lr_milestones=[s for s in (int(0.8 * steps),) if s > 0],
    )  # fmt: skip


def _split_clips(root: Path, split: str) -> list[np.ndarray]:
    clips = [load_features(root / "new_joint_vecs" / f"{i}.npy") for i in read_split_ids(root, split)]
    return [c[: len(c) - len(c) % 4] for c in clips if len(c) >= 4]


def _lafan(cache: Path) -> list[np.ndarray]:
    out = []
    for path in bench.fetch_mocap(cache)[: len(bench.LAFAN_MEMBERS)]:
        for clip in import_bvh(path, rig="auto", segment_frames=196).clips:
            out.append(clip.features[: len(clip.features) - len(clip.features) % 4])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "embedded")
    parser.add_argument("--bandai", type=Path, default=ROOT / "data" / "bandai")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2, help="Windows per Bandai clip and epoch.")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "tokenizer_mix")
    parser.add_argument("--mocap-cache", type=Path, default=ROOT / "runs" / "bench_cache" / "bvhtools")
    args = parser.parse_args()
    sets = {"embedded_test": _split_clips(args.data, "test"), "bandai_test": _split_clips(args.bandai, "test"),
            "lafan1": _lafan(args.mocap_cache)}  # fmt: skip
    if bench.SHARED_CLIP.is_file():
        real = np.load(bench.SHARED_CLIP, allow_pickle=False).astype(np.float32)
        sets["humanml3d_012314"] = [real[: len(real) - len(real) % 4]]
    variants = {"procedural_only": [], "with_bandai": [{"root": str(args.bandai), "repeat": args.repeat}]}
    result: dict = {
        "benchmark": "tokenizer_mix",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "steps": args.steps,
        "bandai_repeat": args.repeat,
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
            train_tokenizer(_config(args.data, args.steps, mix), run, resume=resume)
            print(f"{name}: trained in {time.perf_counter() - started:.0f} s", flush=True)
        tok = MotionTokenizer.from_pretrained(run)
        manifest = json.loads((run / "tokenizer" / "manifest.json").read_text())
        scores = {}
        for set_name, clips in sets.items():
            metrics, _, _ = bench.evaluate(tok, clips)
            scores[set_name] = metrics
        result["variants"][name] = {"mix": mix, "train_windows_per_epoch": manifest["extra"]["train_clips"],
                                    "train_seconds": manifest["extra"]["train_seconds"], "scores": scores}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    name = "tokenizer_mix.json" if args.steps == 1000 else f"tokenizer_mix_steps{args.steps}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=float) + "\n")
    _print(result)


def _print(result: dict) -> None:
    print(f"\nroot-aligned MPJPE (mm) of reconstructions, {result['steps']} steps; mean pose in brackets")
    sets = list(result["held_out"])
    print(f"{'tokenizer':<18}" + "".join(f"{s:>22}" for s in sets))
    for name, v in result["variants"].items():
        scores = v["scores"]
        cells = [f"{scores[s]['mpjpe_aligned_mm']:.1f} ({scores[s]['baseline_mean_pose']['mpjpe_aligned_mm']:.0f})"
                 for s in sets]  # fmt: skip
        print(f"{name:<18}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
