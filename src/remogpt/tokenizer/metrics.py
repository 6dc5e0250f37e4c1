"""How faithful a tokenizer is: joint errors, feature errors and codebook use (small pure functions).

MPJPE is reported three ways: `mpjpe_mm` on the joints recovered from the features as they are
(the trajectory and heading are integrated from root velocities, so their drift counts);
`mpjpe_aligned_mm` with the pelvis subtracted in every frame (MotionGPT's reconstruction MPJPE; a
drift of the heading still counts, as it turns the whole body); and `mpjpe_local_mm` on the
root-relative joint positions in each frame's own heading frame (the ric features plus the pelvis
height), the pose error alone. Means are over all frames of all clips (long clips weigh more).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from remogpt.data.normalize import Normalizer
from remogpt.motion.features import features_to_joints
from remogpt.tokenizer.errors import TokenizerError

__all__ = ["codebook_stats", "mpjpe", "reconstruction_metrics"]


def mpjpe(joints_true: np.ndarray, joints_pred: np.ndarray, align_root: bool = False) -> np.ndarray:
    """Per-frame mean joint distance (same units as the input) of (T, J, 3) arrays."""
    a, b = np.asarray(joints_true, dtype=np.float64), np.asarray(joints_pred, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise TokenizerError(f"mpjpe: joints must have equal (T, J, 3) shapes, got {a.shape} and {b.shape}")
    if align_root:
        a, b = a - a[:, :1], b - b[:, :1]
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1)


def _local_joints(features: np.ndarray) -> np.ndarray:
    """(T, J, 3) joints relative to the pelvis ground point, in each frame's heading frame."""
    joints = (features.shape[-1] + 1) // 12
    ric = features[:, 4 : 4 + 3 * (joints - 1)].reshape(len(features), joints - 1, 3)
    pelvis = np.zeros((len(features), 1, 3))
    pelvis[:, 0, 1] = features[:, 3]
    return np.concatenate([pelvis, ric], axis=1)


def reconstruction_metrics(
    originals: Sequence[np.ndarray], reconstructions: Sequence[np.ndarray], normalizer: Normalizer
) -> dict[str, float]:
    """MPJPE (mm, global and root-aligned) and feature errors (normalised space) over clip pairs."""
    if len(originals) != len(reconstructions) or not originals:
        raise TokenizerError(f"need equal, non-zero numbers of clips, got {len(originals)} and {len(reconstructions)}")
    errors, aligned, local, abs_err, sq_err = [], [], [], [], []
    for i, (x, y) in enumerate(zip(originals, reconstructions, strict=True)):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise TokenizerError(f"clip {i}: original {x.shape} and reconstruction {y.shape} differ")
        jx, jy = features_to_joints(x), features_to_joints(y)
        errors.append(mpjpe(jx, jy))
        aligned.append(mpjpe(jx, jy, align_root=True))
        local.append(mpjpe(_local_joints(x), _local_joints(y)))
        diff = normalizer.normalize(y) - normalizer.normalize(x)
        abs_err.append(np.abs(diff).mean(axis=-1))
        sq_err.append(np.square(diff).mean(axis=-1))
    frames = np.concatenate(errors)
    return {
        "clips": len(originals),
        "frames": int(frames.size),
        "mpjpe_mm": float(frames.mean() * 1000.0),
        "mpjpe_aligned_mm": float(np.concatenate(aligned).mean() * 1000.0),
        "mpjpe_local_mm": float(np.concatenate(local).mean() * 1000.0),
        "feature_mae": float(np.concatenate(abs_err).mean()),
        "feature_rmse": float(np.sqrt(np.concatenate(sq_err).mean())),
    }


def codebook_stats(codes: Sequence[np.ndarray], codebook_size: int) -> dict[str, float]:
    """Perplexity (exp of the entropy of the code histogram) and fraction of codes used at least once."""
    flat = np.concatenate([np.asarray(c, dtype=np.int64).ravel() for c in codes]) if codes else np.zeros(0, np.int64)
    if flat.size == 0:
        raise TokenizerError("codebook_stats: no codes")
    if flat.min() < 0 or flat.max() >= codebook_size:
        raise TokenizerError(f"codebook_stats: codes outside [0, {codebook_size})")
    counts = np.bincount(flat, minlength=codebook_size).astype(np.float64)
    p = counts / counts.sum()
    nz = p[p > 0]
    return {
        "codes": int(flat.size),
        "perplexity": float(np.exp(-(nz * np.log(nz)).sum())),
        "used": int((counts > 0).sum()),
        "usage": float((counts > 0).mean()),
    }
