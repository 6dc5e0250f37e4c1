"""The shared Lightning harness: learning, atomic checkpoints, resume, logs."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from remogpt.artifacts import ArtifactError
from remogpt.config import ConfigError
from remogpt.training import TrainerConfig, fit, last_checkpoint


class Regression(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.linear(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.Adam(self.parameters(), lr=0.05)


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [3.0], [0.5]])
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)


def cfg(steps: int) -> TrainerConfig:
    return TrainerConfig(max_steps=steps, accelerator="cpu", devices="1", checkpoint_every_n_steps=10,
                         log_every_n_steps=5, progress_bar=False)  # fmt: skip


def test_learns_and_writes_logs_and_checkpoint(tmp_path: Path):
    model = Regression()
    with torch.no_grad():
        x, y = next(iter(loader()))
        before = torch.nn.functional.mse_loss(model.linear(x), y).item()
    trainer = fit(model, loader(), tmp_path / "run", cfg(120))
    assert trainer.global_step == 120
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(model.linear(x), y).item()
    assert after < 0.05 * before
    assert last_checkpoint(tmp_path / "run") is not None
    assert (tmp_path / "run" / "logs" / "version_0" / "metrics.csv").is_file()
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.tmp"))  # atomic writes leave nothing behind


def test_resume_continues_from_the_checkpoint(tmp_path: Path):
    fit(Regression(), loader(), tmp_path / "run", cfg(30))
    state = torch.load(last_checkpoint(tmp_path / "run"), weights_only=True)  # plain tensors and containers only
    assert state["global_step"] == 30
    resumed = Regression()
    trainer = fit(resumed, loader(), tmp_path / "run", cfg(50), resume=True)
    assert trainer.global_step == 50
    logs = tmp_path / "run" / "logs"
    first = (logs / "version_0" / "metrics.csv").read_text().splitlines()[1:]
    second = (logs / "version_1" / "metrics.csv").read_text().splitlines()[1:]
    assert first[-1].split(",")[1] == "29" and second[0].split(",")[1] == "34"  # continues, nothing overwritten


def test_existing_checkpoint_is_never_continued_silently(tmp_path: Path):
    fit(Regression(), loader(), tmp_path / "run", cfg(10))
    with pytest.raises(ArtifactError, match="already holds a training checkpoint"):
        fit(Regression(), loader(), tmp_path / "run", cfg(20))


def test_resume_without_checkpoint_and_bad_config(tmp_path: Path):
    with pytest.raises(ArtifactError, match="nothing to resume"):
        fit(Regression(), loader(), tmp_path / "empty", cfg(5), resume=True)
    with pytest.raises(ConfigError, match="max_steps"):
        TrainerConfig(max_steps=0)
    with pytest.raises(ConfigError, match="devices"):
        TrainerConfig(devices="two").lightning_devices()
    assert TrainerConfig(devices="0,1").lightning_devices() == [0, 1]


def test_the_pipeline_trainers_share_one_head():
    """train_<stage>(cfg, run_dir, resume) → run_dir/<stage>/ for the tokenizer, the retriever and the LM."""
    import inspect

    from remogpt.lm import train_lm
    from remogpt.retrieval import train_retriever
    from remogpt.tokenizer import train_tokenizer

    for trainer in (train_tokenizer, train_retriever, train_lm):
        head = list(inspect.signature(trainer).parameters.values())[:3]
        assert [p.name for p in head] == ["cfg", "run_dir", "resume"], trainer.__name__
        assert head[2].default is False
