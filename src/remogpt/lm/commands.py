"""CLI commands of the language-model stage: `train lm`, `generate`, `caption` (registered by `remogpt.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from remogpt.artifacts import DEFAULT_RUN
from remogpt.errors import UsageError

__all__ = ["register"]


def train_lm_command(
    run: Annotated[
        Path, typer.Option("--run", "--out", help="Run folder holding tokenizer/ and retriever/.")
    ] = DEFAULT_RUN,
    data: Annotated[Path, typer.Option(help="HumanML3D-layout folder (train split).")] = Path("data/embedded"),
    preset: Annotated[str, typer.Option(help="tiny (CPU) or paper (T5-base size).")] = "tiny",
    config: Annotated[Path | None, typer.Option(help="YAML LMConfig (overrides the preset).")] = None,
    lm_init: Annotated[Path | None, typer.Option(help="Local pretrained T5/Flan-T5 folder to start from.")] = None,
    stage1_steps: Annotated[
        int | None, typer.Option(min=0, help="Steps without context (default: the config's).")
    ] = None,
    stage2_steps: Annotated[
        int | None, typer.Option(min=0, help="Steps with retrieved context (default: config).")
    ] = None,
    modality: Annotated[str | None, typer.Option(help="Context: none, t2t, t2m or both.")] = None,
    k: Annotated[int | None, typer.Option(min=0, help="Retrieved pairs per modality.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    accelerator: Annotated[str, typer.Option(help="cpu, gpu or auto.")] = "auto",
    devices: Annotated[str, typer.Option(help="auto, a count or a list like 0,1.")] = "auto",
    strategy: Annotated[str, typer.Option(help="auto, ddp, …")] = "auto",
    precision: Annotated[str, typer.Option(help="32-true, or bf16-mixed / 16-mixed on GPUs.")] = "32-true",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted training.")] = False,
) -> None:
    """Train the retrieval-augmented T5 (stage 1 without context, stage 2 with retrieved pairs)."""
    from remogpt.lm.config import LMConfig
    from remogpt.lm.train import train_lm

    cfg = LMConfig.from_yaml(config) if config else LMConfig.preset(preset)
    overrides = {"lm_init": str(lm_init) if lm_init else None, "stage1_steps": stage1_steps,
                 "stage2_steps": stage2_steps}  # fmt: skip
    cfg = cfg.replace(**{key: v for key, v in overrides.items() if v is not None})
    retrieval = {key: v for key, v in (("modality", modality), ("k", k)) if v is not None}
    if retrieval:
        cfg = cfg.replace(retrieval=retrieval)
    trainer = {"accelerator": accelerator, "devices": devices, "strategy": strategy, "precision": precision,
               "seed": seed, **({"batch_size": batch_size} if batch_size is not None else {})}  # fmt: skip
    cfg = cfg.replace(data={"root": str(data)}, trainer=trainer)
    result = train_lm(cfg, run, resume, log=typer.echo)
    typer.echo(f"wrote {result.run_dir} ({result.samples} training samples, {result.seconds:.0f} s)")


#: The most motions one `generate` call samples (about 1.5 s each on 2 CPU cores): a typo like
#: `--num-samples 1000` would otherwise run for half an hour without a word.
MAX_SAMPLES = 64
#: Generated motions shown in the video beside the retrieved ones (all are written as .npy).
VIDEO_SAMPLES = 4
GENERATION_REPORT = "generation.json"


def generate_command(
    text: Annotated[str, typer.Argument(help="What the motion should show, e.g. 'a person jumps twice then waves'.")],
    run: Annotated[Path, typer.Option(help="Run folder (tokenizer/, retriever/, lm/), e.g. the demo's.")] = DEFAULT_RUN,
    out: Annotated[Path, typer.Option(help="Output folder (replaced as a whole if it holds an earlier output).")] = (
        Path("out")
    ),
    num_samples: Annotated[int, typer.Option(min=1, max=MAX_SAMPLES, help="How many motions to sample.")] = 1,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature (> 0; default: the model's).")
    ] = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="Top-k sampling (≥ 1; default: the model's).")] = None,
    video: Annotated[bool, typer.Option(help="Also render an MP4 with the retrieved references beside it.")] = True,
) -> None:
    """Text → motion: writes joints and features (.npy), what was retrieved (.json) and a video."""
    import math
    import shutil
    import sys

    import numpy as np

    from remogpt.artifacts import atomic_write_text, replace_folder, staging_folder
    from remogpt.lm.remogpt import ReMoGPT

    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"--temperature must be a number > 0, got {temperature}")
    if not text.strip():
        raise UsageError("the text is empty; describe a motion, e.g. 'a person walks forward'")
    staging = staging_folder(out, GENERATION_REPORT)  # checks --out now, before minutes of work
    try:
        model = ReMoGPT.from_pretrained(run)
        bar = None
        if num_samples > 4 and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=num_samples, desc="generate", unit="motion", leave=False)
        results = model.generate_motion([text], num_samples=num_samples, seed=seed, temperature=temperature,
                                        top_k=top_k, batch_size=8, progress=bar.update if bar else None)  # fmt: skip
        if bar is not None:
            bar.close()
        report = {"text": text, "run": str(run), "samples": []}
        for n, res in enumerate(results):
            np.save(staging / f"motion_{n}_joints.npy", res.joints.astype(np.float32))
            np.save(staging / f"motion_{n}_features.npy", res.features.astype(np.float32))
            report["samples"].append({"frames": len(res.features), "codes": len(res.codes),
                                      "attempts": res.attempts, "problem": res.problem})  # fmt: skip
        report["retrieved"] = results[0].references
        report["stats"] = dict(model.stats)
        for ref in results[0].references:
            typer.echo(f"  retrieved ({ref['direction']}, {ref['score']:.3f}) {ref['id']}: {ref['caption']}")
        if video:
            from remogpt.motion.render import render_grid

            shown = results[:VIDEO_SAMPLES]
            motions = [r.features for r in shown]
            captions = [text] * len(shown)
            titles = [f"generated {n}" for n in range(len(shown))]
            for ref in results[0].references:
                motions.append(model.retriever.motion(ref["id"]))
                captions.append(ref["caption"])
                titles.append(f"retrieved {ref['direction']}")
            render_grid(motions, staging / "motion.mp4", captions=captions, titles=titles)
        atomic_write_text(staging / GENERATION_REPORT, json.dumps(report, indent=2) + "\n")  # written last: the marker
        replace_folder(staging, out, GENERATION_REPORT)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shown_note = f" (the first {VIDEO_SAMPLES} in the video)" if video and len(results) > VIDEO_SAMPLES else ""
    typer.echo(f"wrote {out}/ ({len(results)} motion(s){shown_note}{', motion.mp4' if video else ''}, "
               f"{GENERATION_REPORT})")  # fmt: skip


def caption_command(
    motions: Annotated[list[Path], typer.Argument(help=".npy files: features (T, 263) or joints (T, 22, 3).")],
    run: Annotated[Path, typer.Option(help="Run folder (tokenizer/, retriever/, lm/), e.g. the demo's.")] = DEFAULT_RUN,
    num_beams: Annotated[int, typer.Option(min=1, max=32, help="Beam search width (1 = greedy).")] = 1,
) -> None:
    """Motion → text: one caption per motion file."""
    from remogpt.lm.remogpt import ReMoGPT
    from remogpt.motion.files import read_motion_file

    arrays = [read_motion_file(path) for path in motions]  # every file checked before the model loads
    model = ReMoGPT.from_pretrained(run)
    dim, unit = model.tokenizer.feature_dim, model.tokenizer.downsample
    for path, arr in zip(motions, arrays, strict=True):
        if arr.shape[1] != dim:
            raise UsageError(f"{path}: expected features (T, {dim}) or joints (T, 22, 3), got shape {arr.shape}")
        if len(arr) < unit:
            raise UsageError(f"{path}: {len(arr)} frames; at least {unit} are needed")
    for path, text in zip(motions, model.caption(arrays, num_beams=num_beams), strict=True):
        typer.echo(f"{path}: {text}")


def register(app: typer.Typer, train_app: typer.Typer, data_app: typer.Typer) -> None:
    train_app.command("lm")(train_lm_command)
    app.command("generate")(generate_command)
    app.command("caption")(caption_command)
