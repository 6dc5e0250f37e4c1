"""Is the tokenizer's error on the real HumanML3D clip 012314 a defect of the path or a limit of the data?

Usage: python benchmarks/tokenizer_overfit.py [--data data/embedded] [--steps 1500] [--seeds 0]
Writes benchmarks/results/tokenizer_overfit.json (and .md) and prints a table.

Needs ../shared/data/humanml3d_012314_new_joint_vecs.npy (and _new_joints.npy); exits with a reason
when it is absent. Three checks, each independent of the others:

1. The feature path alone: joints recovered from the clip's 263 features with
   `features_to_joints` against the clip's own new_joints.npy (HumanML3D's output). A bug in the
   feature layout or the recovery shows here, before any network.
2. The normalisation: the clip's z-scores under the embedded data's Mean/Std, per feature group
   (root angular velocity, root linear velocity, root height, joint positions, rotations, joint
   velocities, foot contacts), beside the embedded train clips' own 99.9th percentile and maximum.
3. Overfitting: the demo's tokenizer recipe (tiny preset: 512 × 64 codebook, width 128, down 4,
   64-frame windows, batch 32, lr 1e-3) trained on this one clip alone, under the embedded data's
   Mean/Std and under the clip's own (HumanML3D's grouped statistics of that clip). If the network,
   the normalisation, the cropping and the evaluation are right, it must reconstruct the clip it
   trains on to well under 20 mm root-aligned. The error is measured with the same
   `reconstruction_metrics` as benchmarks/tokenizer.py, on the whole clip (cropped to 168 frames).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SHARED = ROOT.parent / "shared" / "data"
CLIP = SHARED / "humanml3d_012314_new_joint_vecs.npy"
JOINTS = SHARED / "humanml3d_012314_new_joints.npy"
#: HumanML3D's 263 features, in order (Guo et al. 2022; see ../shared/spec).
GROUPS = {
    "root angular velocity (0)": slice(0, 1),
    "root linear velocity (1-2)": slice(1, 3),
    "root height (3)": slice(3, 4),
    "joint positions, ric (4-66)": slice(4, 67),
    "joint rotations, 6D (67-192)": slice(67, 193),
    "joint velocities (193-258)": slice(193, 259),
    "foot contacts (259-262)": slice(259, 263),
}


def feature_path_check(features: np.ndarray, joints: np.ndarray) -> dict[str, float]:
    """Joints from the features against HumanML3D's own joints: the recovery without any network."""
    from remogpt.motion.features import features_to_joints

    recovered = features_to_joints(features.astype(np.float64))
    n = min(len(recovered), len(joints))
    diff = np.linalg.norm(recovered[:n] - joints[:n], axis=-1)
    aligned = np.linalg.norm((recovered[:n] - recovered[:n, :1]) - (joints[:n] - joints[:n, :1]), axis=-1)
    return {"frames": n, "global_mm_mean": float(diff.mean() * 1000), "global_mm_max": float(diff.max() * 1000),
            "aligned_mm_mean": float(aligned.mean() * 1000), "aligned_mm_max": float(aligned.max() * 1000)}  # fmt: skip


def zscore_check(features: np.ndarray, data: Path) -> dict[str, Any]:
    """Per feature group: the clip's largest |z| and its share of frames×dims with |z| > 6, beside the
    embedded train clips' 99.9th percentile and maximum of |z|."""
    from remogpt.data.folder import load_features, read_split_ids
    from remogpt.data.normalize import Normalizer

    norm = Normalizer.load(data)
    ids = read_split_ids(data, "train")
    rng = np.random.default_rng(0)
    sample = [ids[i] for i in rng.choice(len(ids), size=min(800, len(ids)), replace=False)]
    train_z = np.abs(np.concatenate([norm.normalize(load_features(data / "new_joint_vecs" / f"{i}.npy"))
                                     for i in sample]))  # fmt: skip
    clip_z = np.abs(norm.normalize(features))
    out: dict[str, Any] = {"train_clips_sampled": len(sample), "groups": {}}
    for name, cols in GROUPS.items():
        c, t = clip_z[:, cols], train_z[:, cols]
        out["groups"][name] = {
            "clip_max_abs_z": float(c.max()),
            "clip_share_over_6": float((c > 6).mean()),
            "train_p999_abs_z": float(np.quantile(t, 0.999)),
            "train_max_abs_z": float(t.max()),
        }
    worst = np.argsort(clip_z.max(axis=0))[::-1][:8]
    out["worst_dims"] = [{"dim": int(d), "clip_max_abs_z": float(clip_z[:, d].max()),
                          "train_max_abs_z": float(train_z[:, d].max())} for d in worst]  # fmt: skip
    return out


def overfit(features: np.ndarray, normalizer: Any, steps: int, seed: int, terms: bool = False) -> dict[str, Any]:
    """The demo's tokenizer recipe trained on this one clip alone; its reconstruction of the same clip.

    With `terms`, the loss also holds the motion-level terms (heading_weight and aligned_joint_weight 1:
    the integrated yaw and the root-aligned joints), which the feature loss weighs at 1/263."""
    from remogpt.tokenizer import TokenizerTrainConfig, reconstruction_metrics
    from remogpt.tokenizer.module import TokenizerModule, WindowDataset
    from remogpt.training import fit

    cfg = TokenizerTrainConfig()
    if terms:
        cfg = cfg.replace(model={"heading_weight": 1.0, "aligned_joint_weight": 1.0})
    cfg = cfg.replace(lr_milestones=[int(0.8 * steps)], warmup_steps=min(200, steps // 10),
                      trainer={"max_steps": steps, "seed": seed, "progress_bar": False, "accelerator": "cpu",
                               "devices": "1", "val_every_n_steps": None, "checkpoint_every_n_steps": 10 * steps,
                               "log_every_n_steps": 50})  # fmt: skip
    torch.manual_seed(seed)
    # Enough windows of the one clip per epoch that an epoch is many batches (random start each time).
    dataset = WindowDataset([features], normalizer, cfg.window, seed=seed, repeats=[cfg.trainer.batch_size * 50])
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.trainer.batch_size, shuffle=True)
    module = TokenizerModule(cfg, normalizer)
    tmp = Path(tempfile.mkdtemp(prefix="tok_overfit_"))
    t0 = time.perf_counter()
    try:
        fit(module, loader, tmp, cfg.trainer)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - t0
    tok = module.tokenizer.eval()
    with torch.no_grad():
        recon = tok.reconstruct(features).cpu().numpy()
        x = torch.as_tensor(normalizer.normalize(features))[None]
        latent = tok.vqvae.encode_latent(x)  # the same clip through encoder and decoder, no codebook
        continuous = tok.vqvae.decoder(latent.transpose(1, 2)).transpose(1, 2)
        no_codebook = normalizer.denormalize(continuous[0].numpy())
        codes = tok.encode(features).numpy()
    metrics = reconstruction_metrics([features], [recon], normalizer)
    raw = reconstruction_metrics([features], [no_codebook], normalizer)
    # Where the root-aligned error comes from: the reconstruction with the clip's own root channels
    # (0-3: heading velocity, planar velocity, height) put back, so nothing is integrated wrongly.
    true_root = recon.copy()
    true_root[:, :4] = features[: len(recon), :4]
    rooted = reconstruction_metrics([features[: len(recon)]], [true_root], normalizer)
    return {"seconds": seconds, "steps": steps, "seed": seed,
            "aligned_mm": metrics["mpjpe_aligned_mm"], "global_mm": metrics["mpjpe_mm"],
            "feature_mae": metrics["feature_mae"], "no_codebook_aligned_mm": raw["mpjpe_aligned_mm"],
            "local_mm": metrics["mpjpe_local_mm"], "true_root_aligned_mm": rooted["mpjpe_aligned_mm"],
            "distinct_codes": int(len(np.unique(codes))), "codes": int(codes.size)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "embedded")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    if not CLIP.is_file() or not JOINTS.is_file():
        raise SystemExit(f"{CLIP} (and {JOINTS.name}) not found: this benchmark needs the real HumanML3D clip")
    from remogpt.data.normalize import Normalizer, grouped_mean_std
    from remogpt.tokenizer import reconstruction_metrics

    features = np.load(CLIP, allow_pickle=False).astype(np.float32)
    joints = np.load(JOINTS, allow_pickle=False).astype(np.float32)
    features = features[: len(features) - len(features) % 4]
    embedded = Normalizer.load(args.data)
    own = Normalizer(*grouped_mean_std([features]))
    mean_pose = [np.broadcast_to(embedded.mean, features.shape).copy()]
    result: dict[str, Any] = {
        "benchmark": "tokenizer_overfit",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "clip": {"file": CLIP.name, "frames": int(len(features))},
        "data": str(args.data),
        "feature_path": feature_path_check(features, joints),
        "zscores": zscore_check(features, args.data),
        "mean_pose_aligned_mm": reconstruction_metrics([features], mean_pose, embedded)["mpjpe_aligned_mm"],
        "overfit": {},
    }
    variants = (("embedded Mean/Std", embedded, False), ("the clip's own Mean/Std", own, False),
                ("embedded Mean/Std, + heading and joint terms", embedded, True))  # fmt: skip
    for name, normalizer, terms in variants:
        runs = [overfit(features, normalizer, args.steps, seed, terms) for seed in args.seeds]
        result["overfit"][name] = {"runs": runs, **{k: statistics.median(r[k] for r in runs)
                                                    for k in ("aligned_mm", "local_mm", "true_root_aligned_mm",
                                                              "no_codebook_aligned_mm", "feature_mae",
                                                              "seconds")}}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tokenizer_overfit.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    fp = result["feature_path"]
    lines = [f"# Tokenizer on HumanML3D clip 012314 ({result['clip']['frames']} frames)", "",
             f"1. Feature path: joints from the features vs HumanML3D's new_joints: {fp['aligned_mm_mean']:.2f} mm "
             f"root-aligned (max {fp['aligned_mm_max']:.2f}), {fp['global_mm_mean']:.2f} mm global.", "",
             "2. |z| under the embedded data's Mean/Std:", "",
             "| group | clip max | clip share > 6 | embedded train p99.9 | embedded train max |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, g in result["zscores"]["groups"].items():
        lines.append(f"| {name} | {g['clip_max_abs_z']:.1f} | {100 * g['clip_share_over_6']:.1f} % | "
                     f"{g['train_p999_abs_z']:.1f} | {g['train_max_abs_z']:.1f} |")  # fmt: skip
    lines += ["", f"3. Overfit on the clip alone ({args.steps} steps, seeds {args.seeds}; mean pose "
              f"{result['mean_pose_aligned_mm']:.0f} mm):", "",
              "| statistics | root-aligned mm (median) | per seed | local mm (heading frame) | root-aligned "
              "with the clip's root channels | without codebook | feature MAE | s |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, o in result["overfit"].items():
        per = ", ".join(f"{r['aligned_mm']:.1f}" for r in o["runs"])
        lines.append(f"| {name} | {o['aligned_mm']:.1f} | {per} | {o['local_mm']:.1f} | "
                     f"{o['true_root_aligned_mm']:.1f} | {o['no_codebook_aligned_mm']:.1f} | "
                     f"{o['feature_mae']:.3f} | {o['seconds']:.0f} |")  # fmt: skip
    (RESULTS / "tokenizer_overfit.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
