"""Training the matching evaluator on a data set's train split (`remogpt train evaluator`).

As Guo et al.: a hinge contrastive loss on Euclidean distances — matched (text, motion) pairs are
pulled together, each text is pushed at least `margin` away from another motion of the batch (the
batch shifted by a random non-zero offset). Word vectors are learned from the split's captions.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from remogpt.eval.evaluator import Evaluator, EvaluatorConfig, WordVectorizer

__all__ = ["contrastive_hinge", "train_evaluator"]


def contrastive_hinge(a: torch.Tensor, b: torch.Tensor, negative: bool, margin: float) -> torch.Tensor:
    """mean(d²) for matched pairs, mean(max(0, margin − d)²) for mismatched ones (d = Euclidean)."""
    d = torch.nn.functional.pairwise_distance(a, b, keepdim=True)
    if negative:
        return torch.clamp(margin - d, min=0.0).pow(2).mean()
    return d.pow(2).mean()


def _vocabulary(dataset) -> list[str]:  # type: ignore[no-untyped-def]
    counts: Counter[str] = Counter()
    for clip in dataset.clips:
        for cap in clip.captions:
            counts.update(t.partition("/")[0] for t in cap.tokens)
    return ["sos", "eos", "unk", *sorted(w for w in counts if w not in ("sos", "eos", "unk"))]


class _Collate:
    def __init__(self, vectorizer: WordVectorizer) -> None:
        self.vectorizer = vectorizer

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        from remogpt.data import collate_motion_text

        batch = collate_motion_text(items)
        encoded = [self.vectorizer.encode(t) for t in batch.tokens]
        return {
            "features": batch.features,
            "lengths": batch.lengths,
            "words": torch.as_tensor(np.stack([e[0] for e in encoded])),
            "pos": torch.as_tensor(np.stack([e[1] for e in encoded])),
            "cap_lens": torch.as_tensor([e[2] for e in encoded]),
        }


def _lightning_module(model: Evaluator, cfg: EvaluatorConfig, seed: int):  # type: ignore[no-untyped-def]
    import lightning.pytorch as pl

    class EvaluatorTraining(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.rng = np.random.default_rng(seed)

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            m = self.model.motion_embedding(batch["features"], batch["lengths"])
            t = self.model.text_embedding(batch["words"], batch["pos"], batch["cap_lens"])
            shift = int(self.rng.integers(1, len(m))) if len(m) > 1 else 0
            pos = contrastive_hinge(t, m, negative=False, margin=cfg.margin)
            neg = contrastive_hinge(t, m.roll(-shift, 0), negative=True, margin=cfg.margin)
            loss = pos + neg
            self.log_dict({"train/loss": loss, "train/pos": pos, "train/neg": neg}, prog_bar=True)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.model.parameters(), lr=cfg.lr)

    return EvaluatorTraining()


def train_evaluator(
    data_root: Path | str,
    run_dir: Path | str,
    cfg: EvaluatorConfig | None = None,
    trainer_cfg=None,  # type: ignore[no-untyped-def]
    resume: bool = False,
) -> Evaluator:
    """Train on `data_root`'s train split; writes the artifact to `run_dir` and returns the model."""
    from remogpt.artifacts import hash_folder
    from remogpt.data import open_split
    from remogpt.training import TrainerConfig, fit, training_settings

    cfg = cfg or EvaluatorConfig()
    tcfg = trainer_cfg or TrainerConfig(max_steps=cfg.max_steps, batch_size=cfg.batch_size)
    data_root, run_dir = Path(data_root), Path(run_dir)
    train = open_split(data_root, "train", captions="random", crop="random", seed=tcfg.seed)
    words = _vocabulary(train)
    rng = np.random.default_rng(tcfg.seed)
    vectors = rng.normal(0.0, 1.0, size=(len(words), cfg.dim_word)).astype(np.float32)
    torch.manual_seed(tcfg.seed)  # the initial weights depend on the seed only, not on what ran before
    model = Evaluator(cfg, WordVectorizer(vectors, words), train.normalizer.mean, train.normalizer.std)
    loader = DataLoader(train, batch_size=tcfg.batch_size, shuffle=True, drop_last=True,
                        collate_fn=_Collate(model.vectorizer), num_workers=tcfg.num_workers,
                        generator=torch.Generator().manual_seed(tcfg.seed))  # fmt: skip
    module = _lightning_module(model, cfg, tcfg.seed)
    fit(module, loader, run_dir, tcfg, resume=resume,
        settings=training_settings({"evaluator": cfg.to_dict(), "data": {"root": str(data_root)}}))
    model.save_pretrained(run_dir, data_hash=hash_folder(data_root))
    return model.eval()
