"""Training PL-TMR (or the whole-body baseline) with the project's Lightning harness, and its artifact.

A run directory `runs/<name>/retriever/` holds manifest.json, config.yaml, model.safetensors and the
data's Mean/Std (a motion query is normalised exactly as in training); `index/` is added by
`build_index`. A frozen text encoder's weights are not copied into the run (only its content hash,
checked when the run is loaded); a fine-tuned one's are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from remogpt.artifacts import (
    Manifest,
    hash_folder,
)
from remogpt.config import ConfigError
from remogpt.data import collate_motion_text, detect_skeleton, open_split
from remogpt.motion import HUMANML3D, KIT, SkeletonSpec
from remogpt.retrieval.config import RetrieverConfig
from remogpt.retrieval.model import RetrievalModel, build_model, info_nce
from remogpt.retrieval.saved import STAGE, count_parameters, load_retriever_model, save_retriever
from remogpt.retrieval.text import TextEncoder

__all__ = [
    "STAGE",
    "LengthBucketSampler",
    "RetrieverModule",
    "SentenceTable",
    "TrainResult",
    "load_retriever_model",
    "save_retriever",
    "train_retriever",
]



@dataclass
class SentenceTable:
    """Frozen sentence embeddings of a fixed set of captions (lookup by text)."""

    texts: list[str]
    emb: np.ndarray  # (N, d) float32, unit-norm

    def __post_init__(self) -> None:
        self._row = {t: i for i, t in enumerate(self.texts)}

    @classmethod
    def encode(
        cls, encoder: TextEncoder, texts: Sequence[str], cache_dir: Path | str | None = None, progress: bool = False
    ) -> SentenceTable:
        unique = sorted(set(texts))
        return cls(unique, encoder.encode(unique, cache_dir=cache_dir, progress=progress))

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        return self.emb[[self._row[t] for t in texts]]


def encode_split_captions(
    cfg: RetrieverConfig,
    splits: Sequence[str] = ("train", "val"),
    cache_dir: Path | str | None = None,
    progress: bool = False,
) -> int:
    """Put every caption of these splits of `cfg.data` into the frozen text model's on-disk cache
    (what `train_retriever` reads first); returns how many distinct captions were new to it.

    A caller that wants all threads for the sentence model and fewer for the training (the demo)
    runs this first; the training then finds every embedding cached."""
    from remogpt.data.folder import caption_file, load_captions, read_split_ids

    root = Path(cfg.data.root)
    texts = sorted({
        c.text
        for split in splits if (root / f"{split}.txt").is_file()
        for clip_id in read_split_ids(root, split) if caption_file(root, clip_id).is_file()
        for c in load_captions(caption_file(root, clip_id))
    })  # fmt: skip
    if not texts:
        return 0
    encoder = TextEncoder.from_config(cfg.text.replace(finetune_layers=0))
    cache = encoder.cache(Path(cache_dir) if cache_dir is not None else None)
    new = len(cache.missing(texts))
    if new:
        encoder.encode(texts, cache_dir=cache_dir, progress=progress)
    return new


class _Collate:
    """collate_motion_text plus each caption's frozen sentence embedding (a picklable class, for workers)."""

    def __init__(self, table: SentenceTable) -> None:
        self.table = table

    def __call__(self, items: Sequence[dict]) -> dict[str, Any]:
        batch = collate_motion_text(items)
        return {
            "features": batch.features,
            "mask": batch.mask,
            "captions": batch.captions,
            "ids": batch.ids,
            "sentence": torch.from_numpy(self.table.lookup(batch.captions)),
        }


class LengthBucketSampler:
    """Shuffled sample order in which each run of `batch_size` indices has similar lengths.

    Pools of `pool_batches` batches are drawn at random, sorted by length, cut into batches and the
    batches shuffled: a batch pads to a length close to its own motions', which roughly halves the
    transformer's work on CPUs (HumanML3D lengths run from 2 to 10 s). A plain index sampler, so
    Lightning's distributed wrapper can still split it across processes.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool_batches: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.pool = batch_size, seed, max(1, pool_batches) * batch_size
        self.epoch = 0
        self._iterations = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Any:
        rng = np.random.default_rng((self.seed, self.epoch, self._iterations))
        self._iterations += 1
        order = rng.permutation(len(self.lengths))
        batches: list[np.ndarray] = []
        for s in range(0, len(order), self.pool):
            pool = order[s : s + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[b : b + self.batch_size] for b in range(0, len(pool), self.batch_size)]
        full = [b for b in batches if len(b) == self.batch_size]
        rest = [b for b in batches if len(b) < self.batch_size]
        for i in rng.permutation(len(full)):
            yield from full[i].tolist()
        for b in rest:  # partial batches last, so a drop_last loader drops only them
            yield from b.tolist()


def _lightning_module_base() -> type:
    import lightning.pytorch as pl

    return pl.LightningModule


class RetrieverModule(_lightning_module_base()):  # type: ignore[misc]
    """Lightning wrapper: the symmetric InfoNCE step, the optimiser and a quick validation recall."""

    def __init__(self, model: RetrievalModel, cfg: RetrieverConfig) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self._val: list[tuple[Tensor, Tensor]] = []

    def _latents(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        motion = self.model.embed_motion(batch["features"], batch["mask"])
        if self.model.text_encoder is not None and not self.model.text_encoder.frozen:
            text = self.model.embed_text(batch["captions"])
        else:
            text = self.model.embed_sentences(batch["sentence"])
        return text, motion

    def _gather(self, x: Tensor) -> Tensor:
        if self.trainer.world_size > 1 and self.cfg.gather_negatives:
            return self.all_gather(x, sync_grads=True).flatten(0, 1)
        return x

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        text, motion = self._latents(batch)
        sentence = batch["sentence"]
        text, motion, sentence = self._gather(text), self._gather(motion), self._gather(sentence)
        loss = info_nce(text, motion, self.model.temperature, sentence, self.cfg.filter_threshold)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(text))
        if self.cfg.learn_temperature:
            self.log("train/temperature", self.model.temperature.detach(), batch_size=len(text))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        text, motion = self._latents(batch)
        self._val.append((text.detach().cpu(), motion.detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        text = torch.cat([t for t, _ in self._val])
        motion = torch.cat([m for _, m in self._val])
        self._val.clear()
        sim = text @ motion.T
        # A quick progress signal only (no tie handling; under DDP each process ranks its own share of
        # the split and the numbers are averaged); Table 1 numbers come from remogpt.eval.
        rank = (sim > sim.diag()[:, None]).sum(1)
        self.log("val/t2m_R01", (100.0 * (rank < 1).float().mean()).to(self.device), prog_bar=True, sync_dist=True)
        self.log("val/t2m_R05", (100.0 * (rank < 5).float().mean()).to(self.device), sync_dist=True)
        loss = info_nce(text, motion, self.model.temperature.detach().cpu())
        self.log("val/loss", loss.to(self.device), sync_dist=True)

    def configure_optimizers(self) -> Any:
        decay, no_decay, text_params = [], [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("text_encoder."):
                text_params.append(p)
            elif p.ndim >= 2:
                decay.append(p)
            else:
                no_decay.append(p)
        groups = [
            {"params": decay, "weight_decay": self.cfg.weight_decay, "lr": self.cfg.lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": self.cfg.lr},
        ]
        if text_params:
            groups.append({"params": text_params, "weight_decay": self.cfg.weight_decay, "lr": self.cfg.text_lr})
        optimizer = torch.optim.AdamW(groups)
        from transformers import get_cosine_with_min_lr_schedule_with_warmup

        # linear warm-up from 0, then cosine down to 10 % of each group's lr at the last step
        steps = max(self.cfg.trainer.max_steps, self.cfg.warmup_steps + 1)
        schedule = get_cosine_with_min_lr_schedule_with_warmup(optimizer, self.cfg.warmup_steps, steps, min_lr_rate=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _skeleton(cfg: RetrieverConfig) -> SkeletonSpec:
    if cfg.data.skeleton == "humanml3d":
        return HUMANML3D
    if cfg.data.skeleton == "kit":
        return KIT
    return detect_skeleton(Path(cfg.data.root))


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    final_loss: float | None
    manifest: Manifest
    model: RetrievalModel | None = None
    interrupted: bool = False
    resumed_from: int = 0  # the step an interrupted run continued at (0: a fresh run)

    @property
    def new_steps(self) -> int:
        return self.steps - self.resumed_from


def train_retriever(
    cfg: RetrieverConfig,
    run_dir: Path | str,
    resume: bool = False,
    text_encoder: TextEncoder | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a retriever on `cfg.data`'s train split and write the artifact to `run_dir/retriever/`
    (checkpoints and logs in the same folder; `resume=True` continues from its last checkpoint).

    `text_encoder` lets a caller share an already loaded (frozen) sentence model; it must match
    `cfg.text`. The frozen sentence embeddings of every caption are computed once (cached on disk):
    they feed the text head when the text model is frozen and TMR's near-duplicate filter always.
    """
    from remogpt.training import fit, training_settings

    say = log or (lambda _msg: None)
    run_dir = Path(run_dir) / STAGE  # the stage's own folder, like every train_<stage>
    skeleton = _skeleton(cfg)
    t0 = time.perf_counter()
    train_set = open_split(cfg.data, "train", captions="random", crop="random", seed=cfg.trainer.seed)
    has_val = (Path(cfg.data.root) / "val.txt").is_file()
    val_set = open_split(cfg.data, "val", captions="first", crop="start") if has_val else None
    data_hash = hash_folder(cfg.data.root)

    base, live_text = _text_encoders(cfg, text_encoder)
    captions = [c.text for clip in train_set.clips for c in clip.captions]
    if val_set is not None:
        captions += [clip.captions[0].text for clip in val_set.clips]
    say(f"encoding {len(set(captions))} distinct captions with the frozen text model (cached after the first time)")
    table = SentenceTable.encode(base, captions, cache_dir=cache_dir, progress=progress)
    torch.manual_seed(cfg.trainer.seed)
    model = build_model(cfg, base.dim, live_text, skeleton).train()  # a loaded text model starts in eval mode
    module = RetrieverModule(model, cfg)
    train_loader, val_loader = _loaders(cfg, train_set, val_set, _Collate(table))
    trainer_cfg = cfg.trainer.replace(progress_bar=cfg.trainer.progress_bar and progress)
    say(
        f"training {'part-level' if cfg.motion.part_level else 'whole-body'} retriever: "
        f"{count_parameters(model.motion_encoder) / 1e6:.2f}M motion-encoder parameters, {trainer_cfg.max_steps} steps"
    )
    trainer = fit(module, train_loader, run_dir, trainer_cfg, val_loader=val_loader, resume=resume,
                  settings=training_settings(cfg.to_dict(), ignore={"trainer"}))
    seconds = time.perf_counter() - t0
    loss = trainer.callback_metrics.get("train/loss")
    final_loss = float(loss) if loss is not None else None
    manifest = Manifest(STAGE, cfg.to_dict())
    if trainer.interrupted:
        return TrainResult(run_dir, int(trainer.global_step), seconds, final_loss, manifest, model, interrupted=True,
                           resumed_from=trainer.remogpt_start_step)  # fmt: skip
    if trainer.is_global_zero:
        manifest = save_retriever(
            run_dir,
            model.cpu(),
            cfg,
            train_set.normalizer,
            data_hash=data_hash,
            text_identity=base.identity,
            text_dim=base.dim,
            skeleton=skeleton,
            extra={
                "train": {"steps": int(trainer.global_step), "seconds": round(seconds, 1), "final_loss": final_loss}
            },
        )
    return TrainResult(
        run_dir,
        int(trainer.global_step),
        seconds,
        final_loss,
        manifest,
        model.eval(),
        resumed_from=trainer.remogpt_start_step,
    )


def _text_encoders(cfg: RetrieverConfig, given: TextEncoder | None) -> tuple[TextEncoder, TextEncoder | None]:
    """The frozen sentence model (its embeddings feed the near-duplicate filter, and the text head
    when frozen) and the fine-tuned one (None when the text side is frozen); `given` is reused."""
    if given is not None and not given.matches(cfg.text):
        raise ConfigError(f"the text encoder passed in ({given.spec}) is not the one cfg.text names")
    base = given if given is not None and given.frozen else TextEncoder.from_config(cfg.text.replace(finetune_layers=0))
    if cfg.text.frozen:
        return base, None
    return base, given if given is not None and not given.frozen else TextEncoder.from_config(cfg.text)


def _loaders(cfg: RetrieverConfig, train_set: Any, val_set: Any, collate: Any) -> tuple[Any, Any]:
    from torch.utils.data import DataLoader

    bs = cfg.trainer.batch_size
    sampler = None
    if cfg.length_buckets:
        lengths = [min(c.length, train_set.max_length) for c in train_set.clips]
        sampler = LengthBucketSampler(lengths, bs, seed=cfg.trainer.seed)
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=sampler is None, sampler=sampler,
                              drop_last=len(train_set) > bs, collate_fn=collate, num_workers=cfg.trainer.num_workers,
                              persistent_workers=False)  # fmt: skip
    if val_set is None:
        return train_loader, None
    return train_loader, DataLoader(val_set, batch_size=256, shuffle=False, collate_fn=collate, num_workers=0)
