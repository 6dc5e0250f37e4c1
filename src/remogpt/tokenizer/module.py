"""Training pieces: random-window datasets over normalised features and the Lightning module.

The VQ-VAE trains on short windows (64 frames) cut at random from whole clips, one window per clip
per epoch (T2M-GPT's sampling); which window comes from a generator seeded by (seed, epoch, index),
so a run is reproducible whatever the number of workers or processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from remogpt.data.normalize import Normalizer
from remogpt.motion.features import features_to_joints
from remogpt.tokenizer.config import TokenizerTrainConfig
from remogpt.tokenizer.errors import TokenizerError
from remogpt.tokenizer.model import tokenizer_loss
from remogpt.tokenizer.tokenizer import MotionTokenizer

__all__ = ["ThroughputMeter", "TokenizerModule", "WindowDataset"]


class WindowDataset(Dataset):
    """One `window`-frame slice of normalised features per clip; random start unless `random=False`.

    Clips shorter than the window are left out (as T2M-GPT does); the features of all clips are
    held in one array, so the memory is that of the data and nothing more. `repeats[i]` windows of
    clip i per epoch (default 1), so a small folder of a data mix can weigh more without copies.
    """

    def __init__(
        self,
        clips: Sequence[np.ndarray],
        normalizer: Normalizer,
        window: int,
        seed: int = 0,
        random: bool = True,
        ids: Sequence[str] | None = None,
        repeats: Sequence[int] | None = None,
    ) -> None:
        keep = [i for i, c in enumerate(clips) if c.shape[0] >= window]
        if not keep:
            longest = max((c.shape[0] for c in clips), default=0)
            raise TokenizerError(f"no clip has {window} frames (the training window); the longest has {longest}")
        self.window = window
        self.seed = seed
        self.random = random
        self.epoch = 0
        self.ids = [ids[i] for i in keep] if ids is not None else [str(i) for i in keep]
        self.lengths = np.array([clips[i].shape[0] for i in keep], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        # Filled clip by clip: the peak is the raw clips plus this array, not also a normalised copy of each.
        self.features = np.empty((int(self.lengths.sum()), normalizer.dim), dtype=np.float32)
        for i, offset, length in zip(keep, self.offsets, self.lengths, strict=True):
            self.features[offset : offset + length] = normalizer.normalize(clips[i])
        self.dropped = len(clips) - len(keep)
        counts = np.ones(len(keep), dtype=np.int64) if repeats is None else np.asarray([repeats[i] for i in keep])
        if (counts < 1).any():
            raise TokenizerError(f"repeats must be ≥ 1, got {int(counts.min())}")
        self.order = np.repeat(np.arange(len(keep)), counts)  # dataset index → clip

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Tensor:
        clip = int(self.order[index])
        length = int(self.lengths[clip])
        start = 0
        if self.random:
            start = int(np.random.default_rng((self.seed, self.epoch, index)).integers(length - self.window + 1))
        begin = int(self.offsets[clip]) + start
        return torch.from_numpy(self.features[begin : begin + self.window])


class EpochReseed(pl.Callback):
    """New random windows every epoch (Lightning calls `set_epoch` on samplers, not on datasets)."""

    def __init__(self, dataset: WindowDataset) -> None:
        self.dataset = dataset

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.dataset.set_epoch(trainer.current_epoch)


class ThroughputMeter(pl.Callback):
    """Time spent in training steps (forward, backward, optimiser), after `skip` warm-up steps."""

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self.seconds = 0.0
        self.windows = 0
        self._start = 0.0
        self._seen = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._seen += 1
        if self._seen > self.skip:
            self.seconds += time.perf_counter() - self._start
            self.windows += int(batch.shape[0]) * trainer.world_size

    @property
    def windows_per_second(self) -> float | None:
        return self.windows / self.seconds if self.seconds > 0 else None


class TokenizerModule(pl.LightningModule):
    """Trains a `MotionTokenizer`'s VQ-VAE; the codebook follows EMAs inside the forward pass."""

    def __init__(self, cfg: TokenizerTrainConfig, normalizer: Normalizer) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = MotionTokenizer(cfg.model, normalizer)
        self.tokenizer.train()

    def _step(self, batch: Tensor) -> tuple[dict[str, Tensor], Any]:
        out = self.tokenizer.vqvae(batch)
        losses = tokenizer_loss(
            out.reconstruction, batch, out.commit_loss, self.cfg.model, self.tokenizer.mean, self.tokenizer.std
        )
        return losses, out

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        losses, out = self._step(batch)
        logs = {f"train/{k}": v.detach() for k, v in losses.items()}
        logs["train/perplexity"] = out.perplexity.detach()
        logs["train/usage"] = out.usage.detach()
        self.log_dict(logs, batch_size=batch.shape[0])
        self.log("loss", losses["loss"].detach(), prog_bar=True, logger=False, batch_size=batch.shape[0])
        self.log("ppl", out.perplexity.detach(), prog_bar=True, logger=False, batch_size=batch.shape[0])
        return losses["loss"]

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        losses, out = self._step(batch)
        mean, std = self.tokenizer.mean, self.tokenizer.std
        joints_true = features_to_joints(batch * std + mean)
        joints_pred = features_to_joints(out.reconstruction * std + mean)
        mpjpe = (joints_true - joints_pred).norm(dim=-1).mean() * 1000.0
        aligned = ((joints_true - joints_true[..., :1, :]) - (joints_pred - joints_pred[..., :1, :])).norm(dim=-1)
        logs = {f"val/{k}": v for k, v in losses.items()}
        logs["val/feature_mae"] = (out.reconstruction - batch).abs().mean()
        logs["val/mpjpe_mm"] = mpjpe
        logs["val/mpjpe_aligned_mm"] = aligned.mean() * 1000.0
        logs["val/perplexity"] = out.perplexity
        self.log_dict(logs, batch_size=batch.shape[0], sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.cfg.lr, betas=tuple(self.cfg.betas), weight_decay=self.cfg.weight_decay
        )
        scheduler = self.cfg.lr_schedule(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
