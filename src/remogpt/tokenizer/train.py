"""`train_tokenizer`: data folder → trained tokenizer artifact `OUT/tokenizer/`, via the shared harness."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from remogpt.artifacts import ArtifactError, hash_folder
from remogpt.data.folder import detect_skeleton, load_features, motion_file, read_split_ids
from remogpt.data.normalize import Normalizer
from remogpt.motion.skeleton import HUMANML3D, KIT
from remogpt.tokenizer.config import TokenizerTrainConfig
from remogpt.tokenizer.errors import TokenizerError
from remogpt.tokenizer.module import EpochReseed, ThroughputMeter, TokenizerModule, WindowDataset
from remogpt.tokenizer.tokenizer import STAGE
from remogpt.training import LAST_CHECKPOINT, fit, last_checkpoint, load_checkpoint, training_settings

__all__ = ["TrainResult", "load_clips", "train_tokenizer"]


@dataclass
class TrainResult:
    artifact: Path | None  # None when the run was interrupted (resume it with resume=True)
    steps: int
    seconds: float
    windows_per_second: float | None
    train_clips: int
    metrics: dict[str, float] = field(default_factory=dict)
    rank: int = 0  # this process's global rank (DDP runs this function in every process)
    resumed_from: int = 0  # the step an interrupted run continued at (0: a fresh run)

    @property
    def new_steps(self) -> int:
        return self.steps - self.resumed_from


def load_clips(root: Path | str, split: str, skeleton: Any = None) -> tuple[list[str], list[np.ndarray]]:
    """Every whole clip of a split (ids and raw features); no length filter, no caption segments."""
    root = Path(root)
    spec = skeleton or detect_skeleton(root)
    ids = read_split_ids(root, split)
    return ids, [load_features(motion_file(root, clip_id), spec) for clip_id in ids]


def _mix_clips(root: Path, spec: Any) -> tuple[list[str], list[np.ndarray]]:
    """A mix folder's train clips; it must hold motions of the main folder's skeleton."""
    if not (root / "train.txt").is_file():
        raise TokenizerError(f"{root}: no train.txt (a data-mix folder must be in HumanML3D layout)")
    other = detect_skeleton(root)
    if other.feature_dim != spec.feature_dim:
        raise TokenizerError(f"{root}: {other.name} data ({other.feature_dim}-d) cannot join {spec.name} data "
                             f"({spec.feature_dim}-d) in one tokenizer")  # fmt: skip
    ids, feats = load_clips(root, "train", spec)
    return [f"{root.name}/{i}" for i in ids], feats


def _data_hash(root: Path, cfg: TokenizerTrainConfig) -> str:
    """The main folder's hash, or with a mix, one hash of every folder's and its repeat."""
    if not cfg.mix:
        return hash_folder(root)
    import hashlib

    parts = [hash_folder(root)] + [f"{hash_folder(m.root)}x{m.repeat}" for m in cfg.mix]
    return hashlib.sha256("+".join(parts).encode()).hexdigest()


def _check_checkpoint_fits(module: TokenizerModule, ckpt: Path) -> None:
    """Refuse to resume from a checkpoint of another feature dimension or codebook size, by name."""
    state = load_checkpoint(ckpt).get("state_dict", {})
    prefix = "tokenizer."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.tokenizer.state_dict()
    wrong = [f"{k} {tuple(weights[k].shape)} (config {tuple(v.shape)})" for k, v in own.items()
             if k in weights and weights[k].shape != v.shape]  # fmt: skip
    missing = sorted(set(own) - set(weights))
    if wrong or missing:
        detail = "; ".join(wrong[:3]) if wrong else f"missing {missing[:3]}"
        raise TokenizerError(
            f"{ckpt}: the checkpoint does not fit this config (other feature dimension or codebook size?): {detail}"
        )


def train_tokenizer(
    cfg: TokenizerTrainConfig,
    run_dir: Path | str,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train the VQ-VAE on `cfg.data.root` and write the artifact to `run_dir/tokenizer/`.

    Checkpoints and logs go to the same folder (`checkpoints/last.ckpt`, `logs/version_N/`);
    `resume=True` continues the step count from the last checkpoint. Under DDP every process runs
    this function; rank 0 writes the artifact. `callbacks`: more Lightning callbacks for the run.
    """
    from lightning.pytorch.utilities import rank_zero_only

    say = log if log is not None and rank_zero_only.rank == 0 else (lambda _msg: None)  # once, not per process
    run_dir = Path(run_dir) / STAGE
    root = Path(cfg.data.root)
    spec = {"humanml3d": HUMANML3D, "kit": KIT}.get(cfg.data.skeleton) or detect_skeleton(root)
    if spec.feature_dim != cfg.model.feature_dim:
        raise TokenizerError(
            f"{root}: {spec.name} data has {spec.feature_dim}-d features but the tokenizer config says "
            f"feature_dim={cfg.model.feature_dim}"
        )
    ckpt = last_checkpoint(run_dir)
    if resume and ckpt is None:
        raise ArtifactError(f"{run_dir}: nothing to resume (no checkpoints/{LAST_CHECKPOINT}); drop --resume")
    if not resume and ckpt is not None:
        # Lightning would silently continue from it (its on-exception checkpoint makes ckpt_path=None mean "last").
        raise TokenizerError(f"{run_dir} already holds a training run; continue it with --resume, or use another --out")
    started = time.perf_counter()
    train_ids, train_feats = load_clips(root, "train", spec)
    normalizer = Normalizer.for_folder(root, train_feats)  # the main folder's statistics, for the mix too
    seed = cfg.trainer.seed
    repeats = [1] * len(train_ids)
    for extra in cfg.mix:
        ids, feats = _mix_clips(extra.root, spec)
        say(f"{len(ids)} more training clips from {extra.root} (each {extra.repeat}× per epoch)")
        train_ids, train_feats, repeats = train_ids + ids, train_feats + feats, repeats + [extra.repeat] * len(ids)
    train_set = WindowDataset(train_feats, normalizer, cfg.window, seed=seed, ids=train_ids, repeats=repeats)
    del train_feats
    say(f"{len(train_set)} training windows per epoch from {root}" + (" and its mix" if cfg.mix else "")
        + f" ({train_set.dropped} clips shorter than {cfg.window} frames left out)")  # fmt: skip
    val_loader = None
    if (root / "val.txt").is_file() and cfg.val_clips != 0:
        val_ids, val_feats = load_clips(root, "val", spec)
        if cfg.val_clips is not None:
            val_ids, val_feats = val_ids[: cfg.val_clips], val_feats[: cfg.val_clips]
        try:
            val_set = WindowDataset(val_feats, normalizer, cfg.window, random=False, ids=val_ids)
            val_loader = DataLoader(val_set, batch_size=cfg.trainer.batch_size, shuffle=False)
        except TokenizerError:
            say("no validation clip is as long as the window; training without validation")
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=cfg.trainer.batch_size, shuffle=True, generator=generator,
                              num_workers=cfg.trainer.num_workers, persistent_workers=False)  # fmt: skip
    torch.manual_seed(seed)  # the initial weights depend on the seed only, not on what ran before
    module = TokenizerModule(cfg, normalizer)
    if ckpt is not None:
        _check_checkpoint_fits(module, ckpt)
    meter = ThroughputMeter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")  # val_clips=0 means none, knowingly
        trainer = fit(module, train_loader, run_dir, cfg.trainer, val_loader=val_loader, resume=resume,
                      settings=training_settings(cfg.to_dict(), ignore={"trainer"}),
                      extra_callbacks=[EpochReseed(train_set), meter, *(callbacks or [])])  # fmt: skip
    seconds = time.perf_counter() - started
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    result = TrainResult(None, int(trainer.global_step), seconds, meter.windows_per_second, len(train_set), metrics,
                         rank=int(trainer.global_rank), resumed_from=trainer.remogpt_start_step)  # fmt: skip
    if trainer.interrupted:
        return result
    if trainer.is_global_zero:
        tokenizer = module.tokenizer.cpu().eval()
        tokenizer.save_pretrained(
            run_dir,
            train_config=cfg,
            data_hash=_data_hash(root, cfg),
            extra={"steps": result.steps, "train_clips": len(train_set), "train_seconds": round(seconds, 1),
                   "windows_per_second": meter.windows_per_second, "world_size": trainer.world_size,
                   "metrics": metrics},
        )  # fmt: skip
    result.artifact = run_dir
    return result
