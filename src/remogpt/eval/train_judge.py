"""Training the attribute judge on a generated folder's train split (`remogpt train judge`).

Each frame's target is the phase it belongs to (labels.jsonl), so the loss is a sum of per-frame
cross-entropies, one per head. After training, the judge reads the real clips of the validation
split and freshly generated ones; an attribute ('clap.count') is scored from then on only if it is
read at ≥ min_accuracy there (`choose_scored`). That choice is written into the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from remogpt.eval.judge import AttributeJudge, JudgeConfig, JudgeError, LabelBook, frame_targets, judge_inputs

__all__ = ["choose_scored", "judge_split_accuracy", "train_judge", "wilson_lower_bound"]


def _generated_clip(seed: int, index: int, compositional_share: float) -> list[tuple[np.ndarray, list[dict]]]:
    """(features, phases) of one freshly generated clip and its mirror (a pure function of seed, index)."""
    from remogpt.data.synth.compose import build_joints, mirror_labels, sample_compositional_spec, sample_spec
    from remogpt.motion import mirror_features, process_joints

    rng = np.random.default_rng((seed, index))
    spec = sample_compositional_spec(rng) if rng.random() < compositional_share else sample_spec(rng, "val")
    features = process_joints(build_joints(spec, rng))[0].astype(np.float32)
    row = {"id": f"{index:06d}", **spec.to_dict()}
    return [(features, row["phases"]), (mirror_features(features), mirror_labels(row)["phases"])]


def _generated_clips(seed: int, count: int, compositional_share: float,
                     workers: int = 2) -> list[tuple[np.ndarray, list[dict]]]:  # fmt: skip
    from remogpt.workers import torch_threads, worker_pool

    args = ([seed] * count, range(count), [compositional_share] * count)
    if workers <= 1 or count < 50:
        with torch_threads(1):
            return [c for pair in map(_generated_clip, *args) for c in pair]
    with worker_pool(workers) as pool:
        return [c for pair in pool.map(_generated_clip, *args, chunksize=32) for c in pair]


class _FrameTagging(Dataset):
    """Whole clips of a split with their per-frame targets (inputs precomputed once), and generated ones."""

    def __init__(self, data_root: Path, split: str, seed: int,
                 generated: Sequence[tuple[np.ndarray, list[dict]]] = ()) -> None:  # fmt: skip
        from remogpt.data.folder import load_split

        book = LabelBook.of(data_root)
        self.items: list[tuple[np.ndarray, dict[str, np.ndarray]]] = [
            (judge_inputs(f), frame_targets(phases, len(f))) for f, phases in generated
        ]
        for clip in load_split(data_root, split):
            if "#" in clip.id:
                continue
            phases = book.phases(clip.id)
            if phases is None:
                continue
            self.items.append((judge_inputs(clip.features), frame_targets(phases, clip.length)))
        if not self.items:
            raise JudgeError(f"{data_root}: no labelled clips in the {split} split to train the judge on")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        x, y = self.items[index]
        a, b = 0, len(x)
        if self.rng.random() < 0.5:  # drop a few frames at the ends: phases need not start where the data's do
            a, b = int(self.rng.integers(0, 8)), len(x) - int(self.rng.integers(0, 8))
        return x[a:b], {h: v[a:b] for h, v in y.items()}


def _collate(items: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> dict[str, Any]:
    T = max(len(x) for x, _ in items)
    x = np.zeros((len(items), T, items[0][0].shape[1]), np.float32)
    mask = np.zeros((len(items), T), bool)
    targets = {h: np.zeros((len(items), T), np.int64) for h in items[0][1]}
    for i, (xi, yi) in enumerate(items):
        x[i, : len(xi)] = xi
        x[i, len(xi) :] = xi[-1]  # hold the last pose rather than jump to zeros
        mask[i, : len(xi)] = True
        for h, v in yi.items():
            targets[h][i, : len(v)] = v
    return {"x": torch.as_tensor(x), "mask": torch.as_tensor(mask),
            "targets": {h: torch.as_tensor(v) for h, v in targets.items()}}  # fmt: skip


def _lightning_module(model: AttributeJudge, cfg: JudgeConfig, seed: int):  # type: ignore[no-untyped-def]
    import lightning.pytorch as pl

    class JudgeTraining(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.noise = torch.Generator().manual_seed(seed)

        def training_step(self, batch: dict[str, Any], _idx: int) -> torch.Tensor:
            x = batch["x"]
            if cfg.noise > 0:  # in normalised units, so the same noise for every channel's scale
                x = x + cfg.noise * model.std * torch.randn(x.shape, generator=self.noise)
            logits = self.model(x)
            mask = batch["mask"]
            loss = torch.zeros(())
            for head, out in logits.items():
                loss = loss + torch.nn.functional.cross_entropy(out[mask], batch["targets"][head][mask])
            self.log("train/loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            from transformers import get_cosine_with_min_lr_schedule_with_warmup

            opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=1e-4)
            # a tenth warm-up, then cosine; valid for any max_steps ≥ 1 (the smoke tests train 10)
            warmup = cfg.max_steps // 10
            sched = get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, max(cfg.max_steps, warmup + 1),
                                                                 min_lr_rate=0.01)  # fmt: skip
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return JudgeTraining()


def judge_split_accuracy(judge: AttributeJudge, data_root: Path | str, split: str,
                         scored: set[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Attribute accuracy of the judge on the real clips (whole clips and timed segments) of a split."""
    from remogpt.data.folder import load_split
    from remogpt.eval.judge import attribute_accuracy

    book = LabelBook.of(data_root)
    expected, judged = [], []
    for clip in load_split(data_root, split):
        phases = book.phases(clip.id)
        if phases is None:
            continue
        expected.append(phases)
        judged.append(judge.judge(clip.features))
    result = attribute_accuracy(expected, judged, scored)
    result["phase_count_right"] = float(np.mean([len(e) == len(j) for e, j in zip(expected, judged, strict=True)]))
    return result


def wilson_lower_bound(found: int, total: int, z: float) -> float:
    """The lower end of the one-sided Wilson score interval of found / total at z (0 for total 0)."""
    from scipy.stats import binomtest, norm

    if total <= 0:
        return 0.0
    two_sided = 2.0 * float(norm.cdf(z)) - 1.0  # the two-sided level whose lower end is the one-sided bound
    return float(binomtest(found, total).proportion_ci(two_sided, "wilson").low)


def choose_scored(judge: AttributeJudge, data_root: Path | str, cfg: JudgeConfig,
                  workers: int = 1) -> tuple[set[str], dict[str, Any]]:  # fmt: skip
    """The attributes the judge reads well enough to be scored, and the manifest's record of why.

    An attribute ('clap.count') is scored if it is read at >= min_accuracy on the real validation
    clips and on `selection_clips` freshly generated ones, on each set that holds it at least
    min_support times, and on both together with a margin (`wilson_lower_bound`); otherwise it is
    left out."""
    from remogpt.eval.judge import attribute_accuracy

    val = judge_split_accuracy(judge, data_root, "val")
    fresh_clips = _generated_clips(cfg.selection_seed, cfg.selection_clips, cfg.selection_compositional, workers)
    fresh = attribute_accuracy([p for _, p in fresh_clips], judge.judge_many([f for f, _ in fresh_clips]))
    scored, left_out = set(), {}
    for key in sorted(set(val["per_key"]) | set(fresh["per_key"])):
        rows = [r for r in (val["per_key"].get(key), fresh["per_key"].get(key)) if r is not None]
        found, total = sum(r["found"] for r in rows), sum(r["total"] for r in rows)
        supported = [r for r in rows if r["total"] >= cfg.min_support]
        well_read = all(r["accuracy"] >= cfg.min_accuracy for r in supported)
        well_read = well_read and wilson_lower_bound(found, total, cfg.selection_z) >= cfg.min_accuracy
        if supported and well_read:
            scored.add(key)
        else:
            left_out[key] = {"found": found, "total": total, "accuracy": found / total,
                             "validation": val["per_key"].get(key), "generated": fresh["per_key"].get(key)}  # fmt: skip
    report = {"validation": {k: v for k, v in val.items() if k != "per_key"}, "validation_per_key": val["per_key"],
              "generated_per_key": fresh["per_key"], "left_out": left_out}  # fmt: skip
    return scored, report


def _input_statistics(inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std (floored at 1e-4) over all frames of all clips, in two passes of
    float64 sums: stacking the clips first (and numpy's temporaries for std) took about twice the
    data set's inputs in memory again, which set the demo's peak."""
    frames = sum(len(x) for x in inputs)
    mean = sum((x.sum(0, dtype=np.float64) for x in inputs), np.zeros(inputs[0].shape[1])) / frames
    var = sum((np.square(x - mean).sum(0) for x in inputs), np.zeros_like(mean)) / frames
    return mean.astype(np.float32), np.maximum(np.sqrt(var), 1e-4).astype(np.float32)


def train_judge(
    data_root: Path | str, run_dir: Path | str, cfg: JudgeConfig | None = None, trainer_cfg: Any = None,
    resume: bool = False,
) -> AttributeJudge:  # fmt: skip
    """Train on `data_root`'s train split, choose the scored attributes on its val split, save to `run_dir`."""
    from remogpt.artifacts import hash_folder, read_manifest
    from remogpt.training import TrainerConfig, fit, training_settings

    cfg = cfg or JudgeConfig()
    tcfg = trainer_cfg or TrainerConfig(max_steps=cfg.max_steps, batch_size=cfg.batch_size,
                                        checkpoint_every_n_steps=500)  # fmt: skip
    data_root, run_dir = Path(data_root), Path(run_dir)
    import os

    workers = min(2, os.cpu_count() or 1)
    generated = _generated_clips(cfg.supplement_seed, cfg.supplement_clips, cfg.supplement_compositional, workers)
    train = _FrameTagging(data_root, "train", tcfg.seed, generated)
    del generated  # the dataset holds their judge inputs; the raw features are not needed again
    mean, std = _input_statistics([x for x, _ in train.items])
    torch.manual_seed(tcfg.seed)
    model = AttributeJudge(cfg, mean, std)
    loader = DataLoader(train, batch_size=tcfg.batch_size, shuffle=True, drop_last=True, collate_fn=_collate,
                        num_workers=tcfg.num_workers, generator=torch.Generator().manual_seed(tcfg.seed))  # fmt: skip
    fit(_lightning_module(model, cfg, tcfg.seed), loader, run_dir, tcfg, resume=resume,
        settings=training_settings({"judge": cfg.to_dict(), "data": {"root": str(data_root)}}))
    model.eval()
    model.scored, report = choose_scored(model, data_root, cfg, workers)
    model.save_pretrained(run_dir, data_hash=hash_folder(data_root), extra=report)
    model.manifest = read_manifest(run_dir, stage="judge")
    return model
