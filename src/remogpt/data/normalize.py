"""Mean/Std normalisation of features, with the reference's grouped standard deviation.

HumanML3D's statistics do not use a per-dimension std: every block of the feature vector (root
angular velocity, root linear velocity, root height, ric, rot, velocity, contacts) uses the mean
std of its block, which keeps the relative scale of dims inside a block. Models trained on one set
of statistics only work with that set, so statistics travel with every artifact.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from remogpt.artifacts import atomic_save_npy
from remogpt.data.folder import DataFormatError
from remogpt.motion.features import ArrayT
from remogpt.motion.skeleton import SkeletonSpec, skeleton_for_dim

__all__ = ["FeatureMoments", "Normalizer", "feature_groups", "grouped_mean_std"]


def feature_groups(num_joints: int) -> list[slice]:
    """The 7 blocks of the feature vector that share one std in the reference statistics."""
    ric_end = 4 + 3 * (num_joints - 1)
    rot_end = 4 + 9 * (num_joints - 1)
    vel_end = rot_end + 3 * num_joints
    return [slice(0, 1), slice(1, 3), slice(3, 4), slice(4, ric_end), slice(ric_end, rot_end),
            slice(rot_end, vel_end), slice(vel_end, vel_end + 4)]  # fmt: skip


class FeatureMoments:
    """Running per-dimension sums (float64) of features, for Mean/Std without holding the data.

    Adding clips in the same order gives bit-identical results, whatever produced them.
    """

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.total_sq: np.ndarray | None = None
        self.count = 0

    def add(self, features: np.ndarray) -> None:
        f64 = np.asarray(features, dtype=np.float64)
        self.add_sums(f64.sum(0), np.square(f64).sum(0), f64.shape[0])

    def add_sums(self, total: np.ndarray, total_sq: np.ndarray, count: int) -> None:
        if self.total is None or self.total_sq is None:
            self.total, self.total_sq = np.zeros_like(total), np.zeros_like(total_sq)
        self.total += total
        self.total_sq += total_sq
        self.count += count

    def grouped_mean_std(self, skeleton: SkeletonSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-dim mean and the reference's block-averaged std over everything added."""
        if self.total is None or self.total_sq is None or self.count < 2:
            raise DataFormatError("cannot compute Mean/Std: fewer than 2 frames of data")
        mean = self.total / self.count
        std = np.sqrt(np.maximum(self.total_sq / self.count - np.square(mean), 0.0))
        spec = skeleton or skeleton_for_dim(len(mean))
        for group in feature_groups(spec.num_joints):
            std[group] = std[group].mean()
        zero = std <= 1e-8
        if zero.any():
            # A block that never varies (e.g. no foot contact ever): dividing by ~0 would explode it.
            std[zero] = 1.0
        return mean.astype(np.float32), std.astype(np.float32)


def grouped_mean_std(
    features: Iterable[np.ndarray], skeleton: SkeletonSpec | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dim mean and the reference's block-averaged std over all frames of all clips (streamed)."""
    moments = FeatureMoments()
    for f in features:
        moments.add(f)
    return moments.grouped_mean_std(skeleton)


@dataclass(frozen=True)
class Normalizer:
    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)

    def __post_init__(self) -> None:
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise DataFormatError(f"Mean/Std shapes differ or are not 1-D: {self.mean.shape}, {self.std.shape}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all()):
            raise DataFormatError("Mean/Std contain NaN/inf")
        if (self.std <= 0).any():
            raise DataFormatError(f"Std has {(self.std <= 0).sum()} non-positive entries")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def normalize(self, features: ArrayT) -> ArrayT:
        return self._apply(features, lambda x, m, s: (x - m) / s)

    def denormalize(self, features: ArrayT) -> ArrayT:
        return self._apply(features, lambda x, m, s: x * s + m)

    def _apply(self, features: ArrayT, fn) -> ArrayT:  # type: ignore[no-untyped-def]
        if features.shape[-1] != self.dim:
            raise DataFormatError(f"features have {features.shape[-1]} dims, the statistics {self.dim}")
        if isinstance(features, Tensor):
            m = torch.as_tensor(self.mean, dtype=features.dtype, device=features.device)
            s = torch.as_tensor(self.std, dtype=features.dtype, device=features.device)
            return fn(features, m, s)
        return fn(features, self.mean, self.std).astype(np.result_type(features.dtype, np.float32))

    @classmethod
    def load(cls, folder: Path | str) -> Normalizer:
        folder = Path(folder)
        arrays = []
        for name in ("Mean.npy", "Std.npy"):
            path = folder / name
            try:
                arrays.append(np.load(path, allow_pickle=False).astype(np.float32))
            except FileNotFoundError:
                raise DataFormatError(f"{path}: not found") from None
            except (ValueError, OSError, EOFError) as exc:
                raise DataFormatError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None
        try:
            return cls(arrays[0], arrays[1])
        except DataFormatError as exc:
            raise DataFormatError(f"{folder}: {exc}") from None

    def save(self, folder: Path | str) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in (("Mean.npy", self.mean), ("Std.npy", self.std)):
            atomic_save_npy(folder / name, arr.astype(np.float32))

    @classmethod
    def for_folder(cls, folder: Path | str, clips_features: Iterable[np.ndarray] | None = None) -> Normalizer:
        """The folder's Mean/Std; computed from the given clips (the train split) and saved when absent."""
        folder = Path(folder)
        if (folder / "Mean.npy").exists() and (folder / "Std.npy").exists():
            return cls.load(folder)
        if clips_features is None:
            raise DataFormatError(f"{folder}: has no Mean.npy/Std.npy and no clips were given to compute them")
        mean, std = grouped_mean_std(clips_features)
        norm = cls(mean, std)
        try:
            norm.save(folder)
        except OSError as exc:
            warnings.warn(f"{folder}: could not save computed Mean/Std ({exc}); using them in memory", stacklevel=2)
        return norm
