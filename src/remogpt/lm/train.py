"""Training ReMoGPT (`remogpt train lm`): codes, retrieval cache, vocabulary, then two stages.

Stage 1 is motion–language pre-training without context (as MotionGPT); stage 2 instruction-tunes
the same model with the retrieved pairs in the prompt (Eq. 4). Each stage is a Lightning run with
its own checkpoints, so an interrupted training resumes inside the stage it was in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler

from remogpt.artifacts import Manifest, RunFolder, hash_folder, sha256_file, write_manifest
from remogpt.lm.config import LMConfig
from remogpt.lm.data import (
    LengthBucketBatchSampler,
    LMDataset,
    RetrievalTable,
    answer_exclusions,
    lm_collate,
    samples_from_split,
)
from remogpt.lm.model import build_t5
from remogpt.lm.prompts import PromptBuilder
from remogpt.lm.vocab import MotionVocabulary

__all__ = ["LM_STAGE", "LMTrainResult", "prepare_codes", "train_lm"]

LM_STAGE = "lm"
RETRIEVAL_K_MAX = 2  # cached per direction; enough for the 1+1 and 2+2 settings of Table 6


@dataclass
class LMTrainResult:
    run_dir: Path
    seconds: float
    samples: int
    stage_seconds: dict[str, float]
    samples_per_second: dict[str, float]
    rank: int = 0  # this process's global rank (DDP runs train_lm in every process; rank 0 writes)


@dataclass(frozen=True)
class SelfFeeding:
    """Scheduled sampling's settings for one stage (`LMConfig.scheduled_sampling`)."""

    rate: float  # the share of motion codes replaced at the stage's last step
    temperature: float  # of the model's own samples
    motion_ids: tuple[int, int]  # [first, end) of the motion-token ids
    steps: int  # the stage's length (the rate rises linearly over it)
    seed: int


def self_fed_decoder_inputs(model: Any, batch: dict, share: float, temperature: float,
                            motion_ids: tuple[int, int], generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    """Decoder inputs in which `share` of the true motion codes (in expectation) are the model's own.

    One gradient-free teacher-forced pass gives, at every target position, a code sampled from the
    model at `temperature` (motion tokens only); where a coin with `share` falls and the truth is a
    motion code, that sample replaces it, and the sequence is shifted right as T5 does.
    """
    labels = batch["labels"]
    first, end = motion_ids
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=model._shift_right(labels)).logits[..., first:end]  # fmt: skip
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        own = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view_as(labels) + first
    is_motion = (labels >= first) & (labels < end)
    replace = is_motion & (torch.rand(labels.shape, generator=generator) < share)
    return model._shift_right(torch.where(replace, own, labels))


def _lightning_module(model: Any, lr: float, weight_decay: float, warmup: int, steps: int, schedule: str,
                      self_feeding: SelfFeeding | None = None) -> Any:  # fmt: skip
    import lightning.pytorch as pl

    class LMTraining(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            if self_feeding is not None and self_feeding.rate > 0:
                step = int(self.global_step)
                share = self_feeding.rate * min(1.0, step / max(1, self_feeding.steps - 1))
                generator = torch.Generator().manual_seed(self_feeding.seed * 1_000_003 + step)
                own = self_fed_decoder_inputs(self.model, batch, share, self_feeding.temperature,
                                              self_feeding.motion_ids, generator)  # fmt: skip
                batch = {**batch, "decoder_input_ids": own}
            loss = self.model(**batch).loss
            self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
            if getattr(self.model, "residual_loss", None) is not None:
                self.log("train/residual_loss", self.model.residual_loss, batch_size=batch["input_ids"].shape[0])
            return loss

        def configure_optimizers(self) -> Any:
            opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
            from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

            if schedule == "cosine":
                sched = get_cosine_schedule_with_warmup(opt, warmup, max(steps, warmup + 1))
            else:
                sched = get_constant_schedule_with_warmup(opt, warmup)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return LMTraining()


def _snapshots(model: Any, folder: Path, every: int) -> Any:
    from lightning.pytorch.callbacks import Callback

    class Snapshots(Callback):
        def on_train_batch_end(self, trainer: Any, *_args: Any) -> None:
            step = trainer.global_step
            if step % every == 0 and trainer.is_global_zero:
                model.save_pretrained(str(folder / f"step_{step}"))

    return Snapshots()


#: LMConfig fields that only sampling reads (saved with the model as its defaults): a finished stage
#: is reused under other values of them.
SAMPLING_FIELDS = frozenset({"top_k", "rerank_candidates", "rerank_score", "guidance_scale"})
#: ... and those that only stage 2 reads: a finished stage 1 is reused under other values of them
#: (the ablation and the benchmarks start every variant's stage 2 from one stage 1).
STAGE2_FIELDS = frozenset({"stage2_lr", "retrieval", "train_context_exclude", "context_dropout", "pair_dropout"})


def stage_settings(cfg: LMConfig, stage: str) -> dict[str, Any]:
    """What decides what one LM stage learns (its step count is the trainer's `max_steps`)."""
    from remogpt.training import training_settings

    ignore = {"trainer", "stage1_steps", "stage2_steps", *SAMPLING_FIELDS}
    if stage == "stage1":
        ignore |= STAGE2_FIELDS
    return {"lm_stage": stage, **training_settings(cfg.to_dict(), ignore=ignore)}


def _finished_stage(stage_dir: Path, cfg: LMConfig, stage_cfg: Any, resume: bool) -> bool:
    """Whether a finished stage in `stage_dir` is reused as it is: only under `resume`, and only if
    it was trained with these settings. The same settings with another step count continue its
    training from its last checkpoint (False); other settings are refused, naming the field."""
    from remogpt.artifacts import ArtifactError
    from remogpt.training import check_settings, last_checkpoint, recorded_settings, run_settings

    if not (stage_dir / "model" / "model.safetensors").is_file():
        return False
    if not resume:
        raise ArtifactError(f"{stage_dir}: holds a finished training; reuse it with --resume (if its settings are "
                            "the ones asked for), retrain with --force, or train into another folder")  # fmt: skip
    wanted = run_settings(stage_settings(cfg, stage_dir.name), stage_cfg)
    check_settings(stage_dir, wanted, allow={"trainer.max_steps"})
    stored = recorded_settings(stage_dir)
    if stored is None or stored["trainer"].get("max_steps") == stage_cfg.max_steps:
        return True
    if last_checkpoint(stage_dir) is None:
        raise ArtifactError(f"{stage_dir}: trained for {stored['trainer'].get('max_steps')} steps and has no "
                            f"checkpoint to continue to {stage_cfg.max_steps}; retrain with --force")  # fmt: skip
    return False


def _load_t5(path: Path, dropout_rate: float) -> Any:
    """A saved stage's T5, in training mode (from_pretrained returns eval mode: no dropout), with
    this run's dropout rather than the one it was saved with."""
    from remogpt.lm.model import load_t5, set_dropout

    return set_dropout(load_t5(path), dropout_rate).train()


def prepare_codes(tokenizer_dir: Path | str, data_root: Path | str, out: Path | str, all_layers: bool = False
                  ) -> tuple[Any, dict]:  # fmt: skip
    """The motion tokenizer and the (cached) codes of every clip of the data folder: (L,) base codes,
    or with `all_layers` (L, q) for a residual tokenizer."""
    from remogpt.tokenizer import MotionTokenizer, load_codes, tokenize_folder

    tokenizer = MotionTokenizer.from_pretrained(tokenizer_dir)
    tokenize_folder(tokenizer, data_root, out)
    return tokenizer, load_codes(out, tokenizer, all_layers=all_layers)


def _retrieval_table(retriever: Any, data_root: Path, data_hash: str, samples: list, features: list,
                     path: Path, log: Callable[[str], None], exclude: str = "self") -> RetrievalTable:  # fmt: skip
    """Every training sample's retrieved context (leaving out its answers, `exclude`), from the cache
    at `path` when it is current."""
    from remogpt.data import composition_keys

    if retriever.database is None or Path(retriever.database.data_root).resolve() != data_root.resolve():
        log("      building the retrieval database over the train split")
        retriever.build_index(data_root, "train")
    key = RetrievalTable.make_key(retriever.fingerprint, data_hash, RETRIEVAL_K_MAX, [s.id for s in samples], exclude)
    table = RetrievalTable.load_if_current(path, key)
    if table is None:
        keys = composition_keys(data_root) if exclude == "composition" else None
        exclusions = answer_exclusions(samples, exclude, keys)
        left_out = f", leaving out {sum(map(len, exclusions.values()))} answers under other names" if exclusions else ""
        log(f"      retrieving context for every training sample{left_out} (cached for the next run)")
        table = RetrievalTable.compute(retriever, samples, features, RETRIEVAL_K_MAX, key, exclusions=exclusions)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    return table


def _vocabulary(cfg: LMConfig, samples: list, prompts: PromptBuilder, folder: Path, resume: bool,
                rank: int = 0) -> MotionVocabulary:  # fmt: skip
    """The text + motion vocabulary: the resumed run's, a pretrained T5's, or a BPE trained on the captions.
    Under DDP the other processes start once rank 0 trains, and read the vocabulary it wrote."""
    if (folder / "tokenizer.json").is_file() and (resume or rank != 0):
        vocab = MotionVocabulary.from_pretrained(folder, cfg.codebook_size)
    elif cfg.lm_init is not None:
        vocab = MotionVocabulary.from_pretrained(cfg.lm_init, cfg.codebook_size)
    else:
        vocab = MotionVocabulary.build((c for s in samples for c in s.captions), prompts.all_texts(),
                                       cfg.codebook_size, cfg.text_vocab_size)  # fmt: skip
    if rank == 0:
        vocab.save_pretrained(folder)
    return vocab


def _stage_loader(cfg: LMConfig, tcfg: Any, dataset: LMDataset, collate: Any) -> DataLoader:
    order = RandomSampler(dataset, generator=torch.Generator().manual_seed(tcfg.seed))
    if cfg.length_buckets:
        batches = LengthBucketBatchSampler(order, tcfg.batch_size, drop_last=False)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=tcfg.num_workers)
    return DataLoader(dataset, batch_size=tcfg.batch_size, sampler=order, collate_fn=collate,
                      num_workers=tcfg.num_workers)  # fmt: skip


def train_lm(
    cfg: LMConfig | None, run_dir: Path | str, resume: bool = False, *,
    log: Callable[[str], None] = lambda _m: None, snapshot_every: int | None = None,
) -> LMTrainResult:  # fmt: skip
    """Train the LM of run `run_dir` (which must hold `tokenizer/` and `retriever/`) into `run_dir/lm`,
    on the train split of `cfg.data` with the trainer settings `cfg.trainer`, as every stage.

    `snapshot_every` N also saves the weights every N steps of each stage in
    `lm/<stage>/snapshots/step_<n>/` (Hugging Face folders), for learning curves.
    Under DDP (`trainer.devices` > 1) every process runs this function; rank 0 logs and writes."""
    from lightning.pytorch.utilities import rank_zero_only

    from remogpt.retrieval import Retriever
    from remogpt.training import fit

    if rank_zero_only.rank != 0:
        log = lambda _m: None  # noqa: E731 - once, not per process

    started = time.perf_counter()
    cfg = cfg or LMConfig()
    tcfg = cfg.trainer
    run_dir, data_root = Path(run_dir), Path(cfg.data.root)
    out = run_dir / LM_STAGE
    run = RunFolder(run_dir)
    run.require("tokenizer", "retriever")
    tokenizer, layered_codes = prepare_codes(run.stage("tokenizer"), data_root, run.codes, all_layers=True)
    if tokenizer.codebook_size != cfg.codebook_size or tokenizer.num_quantizers - 1 != cfg.residual_layers:
        cfg = cfg.replace(codebook_size=tokenizer.codebook_size, residual_layers=tokenizer.num_quantizers - 1)
    samples, features = samples_from_split(cfg.data, "train", layered_codes, with_features=True)
    # Prompts show the base layer of retrieved motions; the targets' residual layers are the samples'.
    clip_codes = {k: v[:, 0] if v.ndim == 2 else v for k, v in layered_codes.items()}
    del layered_codes
    log(f"      {len(samples)} training samples with motion codes")

    retriever = Retriever.from_pretrained(run_dir / "retriever", data_root=data_root)
    data_hash = hash_folder(data_root)
    table = _retrieval_table(
        retriever, data_root, data_hash, samples, features, out / "retrievals.json", log, cfg.train_context_exclude
    )
    del features
    prompts = PromptBuilder.from_file()
    vocab = _vocabulary(cfg, samples, prompts, out / "vocabulary", resume, rank_zero_only.rank)
    torch.manual_seed(tcfg.seed)  # the initial weights depend on the seed only, not on what ran before
    model = build_t5(cfg, vocab, tokenizer.codebook_vectors())
    collate = lm_collate(vocab, cfg.max_input_tokens, cfg.max_target_tokens, cfg.residual_layers)

    stage_seconds, throughput = {}, {}
    rank = rank_zero_only.rank
    stages = [("stage1", None, cfg.stage1_steps, cfg.lr), ("stage2", cfg.retrieval, cfg.stage2_steps, cfg.stage2_lr)]
    for name, retrieval, steps, lr in stages:
        if steps <= 0:
            continue
        stage_dir = out / name
        stage_cfg = tcfg.replace(max_steps=steps)
        if _finished_stage(stage_dir, cfg, stage_cfg, resume):  # finished in an earlier run: reuse its weights
            model = _load_t5(stage_dir / "model", cfg.dropout_rate)
            log(f"      {name}: reused the finished stage in {stage_dir}")
            continue
        loader = _stage_loader(cfg, tcfg, LMDataset(samples, clip_codes, vocab, prompts, retrieval, table,
                               seed=tcfg.seed, gold_rate=retrieval.gold_rate if retrieval is not None else 0.0,
                               text_dropout=cfg.text_dropout, context_dropout=cfg.context_dropout,
                               pair_dropout=cfg.pair_dropout, continue_rate=cfg.continue_rate,
                               continue_prompt_codes=cfg.continue_prompt_codes,
                               transition_rate=cfg.transition_rate),
                               collate)  # fmt: skip
        t0 = time.perf_counter()
        motion_ids = (vocab.motion_offset, vocab.motion_offset + vocab.codebook_size)
        feeding = SelfFeeding(cfg.scheduled_sampling, cfg.temperature, motion_ids, steps, tcfg.seed)
        module = _lightning_module(model, lr, cfg.weight_decay, min(cfg.warmup_steps, steps // 2), steps, cfg.schedule,
                                   feeding)  # fmt: skip
        callbacks = [_snapshots(model, stage_dir / "snapshots", snapshot_every)] if snapshot_every else None
        trainer = fit(module, loader, stage_dir, stage_cfg, extra_callbacks=callbacks,
                      resume=resume and (stage_dir / "checkpoints" / "last.ckpt").is_file(),
                      settings=stage_settings(cfg, name))  # fmt: skip
        rank = int(trainer.global_rank)
        if rank == 0:  # under DDP every process holds the same weights; one writes them
            model.save_pretrained(str(stage_dir / "model"))  # safetensors; handles T5's shared embeddings
        stage_seconds[name] = time.perf_counter() - t0
        new_steps = steps - trainer.remogpt_start_step  # a resumed stage: only these ran in this launch
        throughput[name] = new_steps * tcfg.batch_size * trainer.world_size / stage_seconds[name]
        resumed = f" after resuming at step {trainer.remogpt_start_step}" if trainer.remogpt_start_step else ""
        log(f"      {name}: {new_steps} steps{resumed} in {stage_seconds[name]:.0f} s "
            f"({throughput[name]:.1f} samples/s)")  # fmt: skip

    if rank != 0:
        return LMTrainResult(out, time.perf_counter() - started, len(samples), stage_seconds, throughput, rank)
    model.save_pretrained(str(out))  # config.json + model.safetensors (Hugging Face layout)
    sha = sha256_file(out / "model.safetensors")
    cfg.to_yaml(out / "config.yaml")
    write_manifest(out, Manifest(
        stage=LM_STAGE,
        config=cfg.to_dict(),
        data_hash=data_hash,
        inputs={"tokenizer": tokenizer.fingerprint, "retriever": retriever.fingerprint},
        extra={"weights_sha256": sha, "train_samples": len(samples), "stage_seconds": stage_seconds,
               "samples_per_second": throughput},
    ))  # fmt: skip
    return LMTrainResult(out, time.perf_counter() - started, len(samples), stage_seconds, throughput)
