"""PyTorch Dataset over a data folder's samples, and the padding collate function.

Normalised features, lengths cropped to a multiple of the tokenizer's downsampling rate (reference
rule), one caption per item. Randomness (which caption, where to crop) comes from a generator seeded
by (seed, epoch, index), so a run is reproducible and workers agree whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from remogpt.config import DataConfig
from remogpt.data.folder import DataFormatError, MotionClip, detect_skeleton, load_split
from remogpt.data.normalize import Normalizer
from remogpt.motion.skeleton import HUMANML3D, KIT, SkeletonSpec

__all__ = ["MotionBatch", "MotionTextDataset", "collate_motion_text", "open_split", "split_clips"]

CaptionMode = Literal["random", "first", "all"]
CropMode = Literal["random", "start"]


@dataclass
class MotionBatch:
    """A padded batch. `mask[b, t]` is True on real frames."""

    features: Tensor  # (B, T_max, D) normalised, zeros after each length
    mask: Tensor  # (B, T_max) bool
    lengths: Tensor  # (B,) long
    captions: list[str]
    tokens: list[tuple[str, ...]]
    ids: list[str]

    def to(self, device: torch.device | str) -> MotionBatch:
        return MotionBatch(self.features.to(device), self.mask.to(device), self.lengths.to(device),
                           self.captions, self.tokens, self.ids)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


class MotionTextDataset(Dataset):
    """(motion, caption) items from a list of clips.

    captions="random" picks one of a clip's captions per access (training, as the reference);
    "first" always the first (the TMR retrieval protocol); "all" makes one item per caption.
    """

    def __init__(
        self,
        clips: Sequence[MotionClip],
        normalizer: Normalizer,
        unit_length: int = 4,
        max_length: int = 196,
        captions: CaptionMode = "random",
        crop: CropMode = "random",
        seed: int = 0,
    ) -> None:
        if not clips:
            raise DataFormatError("no samples: the split is empty after the length filter")
        dims = {c.features.shape[-1] for c in clips}
        if dims != {normalizer.dim}:
            raise DataFormatError(f"clip feature dims {sorted(dims)} do not match the statistics ({normalizer.dim})")
        self.clips = list(clips)
        self.normalizer = normalizer
        self.unit_length = unit_length
        self.max_length = max_length - max_length % unit_length
        self.caption_mode = captions
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        if captions == "all":
            self._index = [(i, k) for i, c in enumerate(self.clips) for k in range(len(c.captions))]
        else:
            self._index = [(i, -1) for i in range(len(self.clips))]

    def set_epoch(self, epoch: int) -> None:
        """Change the random captions/crops for a new epoch (call from the training loop)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> dict:
        clip_idx, cap_idx = self._index[index]
        clip = self.clips[clip_idx]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if cap_idx < 0:
            cap_idx = int(rng.integers(len(clip.captions))) if self.caption_mode == "random" else 0
        caption = clip.captions[cap_idx]
        length = min(clip.length, self.max_length)
        length -= length % self.unit_length
        if length < self.unit_length:
            raise DataFormatError(f"{clip.id}: {clip.length} frames, fewer than unit_length {self.unit_length}")
        start = int(rng.integers(clip.length - length + 1)) if self.crop == "random" else 0
        features = self.normalizer.normalize(clip.features[start : start + length])
        return {
            "features": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
            "length": length,
            "caption": caption.text,
            "tokens": caption.tokens,
            "id": clip.id,
        }


def collate_motion_text(items: Sequence[dict]) -> MotionBatch:
    """Pad to the longest item of the batch; the mask marks real frames."""
    if not items:
        raise ValueError("collate_motion_text: empty batch")
    lengths = torch.tensor([int(it["length"]) for it in items], dtype=torch.long)
    dim = items[0]["features"].shape[-1]
    t_max = int(lengths.max())
    features = torch.zeros(len(items), t_max, dim, dtype=torch.float32)
    for b, it in enumerate(items):
        features[b, : it["length"]] = it["features"]
    mask = torch.arange(t_max)[None, :] < lengths[:, None]
    return MotionBatch(
        features=features,
        mask=mask,
        lengths=lengths,
        captions=[it["caption"] for it in items],
        tokens=[tuple(it["tokens"]) for it in items],
        ids=[it["id"] for it in items],
    )


def _skeleton(config: DataConfig) -> SkeletonSpec:
    if config.skeleton == "humanml3d":
        return HUMANML3D
    if config.skeleton == "kit":
        return KIT
    return detect_skeleton(Path(config.root))


def split_clips(config: DataConfig | Path | str, split: str = "train", limit: int | None = None) -> list[MotionClip]:
    """One split's samples under a stage's data config (skeleton, frame limits): what every stage trains on."""
    cfg = config if isinstance(config, DataConfig) else DataConfig(root=Path(config))
    return load_split(cfg.root, split, _skeleton(cfg), cfg.min_frames, cfg.max_frames, limit=limit)


def open_split(
    config: DataConfig | Path | str,
    split: str = "train",
    captions: CaptionMode = "random",
    crop: CropMode = "random",
    seed: int = 0,
    limit: int | None = None,
) -> MotionTextDataset:
    """The Dataset of one split of a folder; Mean/Std come from the folder (computed on train if absent)."""
    cfg = config if isinstance(config, DataConfig) else DataConfig(root=Path(config))
    clips = split_clips(cfg, split, limit=limit)
    root = Path(cfg.root)
    if (root / "Mean.npy").exists() and (root / "Std.npy").exists():
        normalizer = Normalizer.load(root)
    else:
        train = clips if split == "train" else split_clips(cfg, "train")
        normalizer = Normalizer.for_folder(root, (c.features for c in train))
    return MotionTextDataset(clips, normalizer, cfg.unit_length, cfg.max_length, captions, crop, seed)
