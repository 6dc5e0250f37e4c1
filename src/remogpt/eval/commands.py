"""CLI commands of the evaluation stage (registered by `remogpt.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def train_evaluator_command(
    data: Annotated[Path, typer.Option(help="HumanML3D-layout folder to train on (its train split).")] = Path(
        "data/embedded"
    ),
    out: Annotated[Path, typer.Option(help="Run directory for the evaluator artifact.")] = Path("runs/evaluator"),
    preset: Annotated[str, typer.Option(help="tiny (CPU) or paper (the official evaluator's sizes).")] = "tiny",
    config: Annotated[Path | None, typer.Option(help="YAML EvaluatorConfig (overrides the preset).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Training steps (default: the config's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the config's).")] = None,
    accelerator: Annotated[str, typer.Option(help="cpu, gpu or auto.")] = "auto",
    devices: Annotated[str, typer.Option(help="auto, a count or a list like 0,1.")] = "auto",
    strategy: Annotated[str, typer.Option(help="auto, ddp, …")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
) -> None:
    """Train the text–motion matching evaluator (Guo et al.) used for FID, R-Precision and MMDist."""
    from remogpt.eval import r_precision
    from remogpt.eval.evaluator import EvaluatorConfig
    from remogpt.eval.train_evaluator import train_evaluator
    from remogpt.training import TrainerConfig

    cfg = EvaluatorConfig.from_yaml(config) if config else EvaluatorConfig.preset(preset)
    if max_steps is not None or batch_size is not None:
        cfg = cfg.replace(**{k: v for k, v in (("max_steps", max_steps), ("batch_size", batch_size)) if v is not None})
    tcfg = TrainerConfig(max_steps=cfg.max_steps, batch_size=cfg.batch_size, accelerator=accelerator,
                         devices=devices, strategy=strategy, seed=seed)  # fmt: skip
    model = train_evaluator(data, out, cfg, tcfg, resume=resume)
    from remogpt.data import load_split

    test = load_split(data, "test")
    if len(test) >= 32:
        m = model.embed_motions([c.features for c in test])
        t = model.embed_texts([c.captions[0].tokens for c in test])
        top = r_precision(t, m)
        typer.echo(f"real test motions: R-Precision top-1/2/3 {top[0]:.3f}/{top[1]:.3f}/{top[2]:.3f}")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer, train_app: typer.Typer, data_app: typer.Typer) -> None:
    train_app.command("evaluator")(train_evaluator_command)
