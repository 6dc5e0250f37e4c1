"""Motion files given by users (`.npy`): the one reader behind `caption`, `retrieve --motion` and `render`.

A user's file may hold features (T, D) or joint positions (T, J, 3); whatever it is, a problem is
reported once, the same way, naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from remogpt.artifacts import load_npy
from remogpt.motion.features import canonicalize, joints_to_features
from remogpt.motion.skeleton import MotionFormatError, check_feature_values, skeleton_for_dim

__all__ = ["read_motion_features", "read_motion_file"]


def read_motion_file(path: Path | str, feature_dim: int | None = None, as_features: bool = True) -> np.ndarray:
    """A motion from a `.npy` file, checked: numeric, finite, plausible values, a known shape.

    With `as_features`, joints (T, J, 3) are canonicalised and turned into features (T − 1, D), as
    the data sets were made; with `feature_dim`, features of another width are refused."""
    path = Path(path)
    array = load_npy(path)
    if array.dtype.kind not in "fiu":
        raise MotionFormatError(f"{path}: expected a numeric array, got dtype {array.dtype}")
    check_feature_values(array, str(path))
    if array.ndim == 3 and array.shape[-1] == 3:
        if not as_features:
            return array
        try:
            array = joints_to_features(canonicalize(array.astype(np.float64))).astype(np.float32)
        except MotionFormatError as exc:
            raise MotionFormatError(f"{path}: {exc}") from None
    if array.ndim != 2:
        expected = f"features (T, {feature_dim or 263})" + (" or joints (T, 22, 3)" if as_features else "")
        raise MotionFormatError(f"{path}: expected {expected}, got shape {array.shape}")
    if feature_dim is not None and array.shape[1] != feature_dim:
        raise MotionFormatError(f"{path}: expected features (T, {feature_dim}), got shape {array.shape}")
    if feature_dim is None:
        try:
            skeleton_for_dim(array.shape[1])
        except ValueError:
            raise MotionFormatError(f"{path}: {array.shape[1]} feature dims match no known skeleton") from None
    return array.astype(np.float32, copy=False)


def read_motion_features(path: Path | str, feature_dim: int | None = None) -> np.ndarray:
    """Raw features (T, D) of a `.npy` (features or joints) or a `.bvh` file (the whole take, 20 fps)."""
    path = Path(path)
    if not path.is_file():
        raise MotionFormatError(f"{path}: {'is a folder' if path.is_dir() else 'file not found'}")
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        from remogpt.motion.bvh import import_bvh

        features = import_bvh(path, min_frames=1).clips[0].features.astype(np.float32)
        if feature_dim is not None and features.shape[1] != feature_dim:
            raise MotionFormatError(f"{path}: features of {features.shape[1]} dims, expected {feature_dim}")
        return features
    if suffix != ".npy":
        raise MotionFormatError(f"{path}: not a motion file (.npy features or joints, or .bvh)")
    return read_motion_file(path, feature_dim=feature_dim)
