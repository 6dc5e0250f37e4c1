"""CLI of the tokenizer stage: `remogpt train tokenizer`, `remogpt tokenize`, `remogpt data import-bvh`.

Cheap to import (the heavy modules load inside the commands), so `remogpt --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from remogpt.artifacts import DEFAULT_RUN, RunFolder, retrain_if_forced
from remogpt.config import layered_config
from remogpt.errors import UsageError

__all__ = ["register"]


MIX_HELP = (
    "Another data folder to train on too, as FOLDER or FOLDER:REPEAT (windows per clip and epoch); "
    "repeatable, e.g. --mix data/bandai:2."
)


def _mix_folder(text: str) -> dict[str, Any]:
    head, _, tail = text.rpartition(":")
    folder, repeat = (head, tail) if head and tail.isdigit() else (text, "1")
    if not Path(folder).is_dir():
        raise UsageError(f"--mix {text}: {folder} is not a folder")
    if int(repeat) < 1:
        raise UsageError(f"--mix {text}: the repeat must be ≥ 1")
    return {"root": folder, "repeat": int(repeat)}


def train_tokenizer_command(
    data: Annotated[
        Path | None, typer.Option(help="HumanML3D-layout data folder (train/val splits). Default: data/embedded.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help=f"Run folder; the artifact goes to OUT/tokenizer/. Default: {DEFAULT_RUN}.")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="tiny (CPU, minutes), tiny_detail (+ loss terms on wrists and feet), tiny_rvq "
                               "(tiny_detail + 4 residual code layers), paper (GPUs).")
    ] = "tiny",
    config: Annotated[
        Path | None, typer.Option(help="A YAML TokenizerTrainConfig: its fields over the preset's; flags over both.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Training steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Windows per step and process.")] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto.")] = None,
    devices: Annotated[str | None, typer.Option(help="auto, a count (2) or a list (0,1).")] = None,
    strategy: Annotated[str | None, typer.Option(help="auto, ddp, ddp_spawn, … (Lightning).")] = None,
    num_nodes: Annotated[int | None, typer.Option(min=1, help="Machines for multi-node DDP.")] = None,
    precision: Annotated[str | None, typer.Option(help="32-true, bf16-mixed, 16-mixed.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="DataLoader worker processes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights, windows and shuffling.")] = None,
    mix: Annotated[list[str] | None, typer.Option(help=MIX_HELP)] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/tokenizer/checkpoints/last.ckpt.")] = False,
    force: Annotated[bool, typer.Option(help="Delete OUT/tokenizer and train it from scratch.")] = False,
) -> None:
    """Train the VQ-VAE motion tokenizer (progress bar, checkpoints, CSV/TensorBoard logs, DDP)."""
    from remogpt.tokenizer.config import TokenizerTrainConfig
    from remogpt.tokenizer.train import train_tokenizer

    trainer = {"max_steps": max_steps, "batch_size": batch_size, "accelerator": accelerator, "devices": devices,
               "strategy": strategy, "num_nodes": num_nodes, "precision": precision, "num_workers": workers,
               "seed": seed}  # fmt: skip
    given = {"data": {"root": str(data) if data is not None else None}, "trainer": trainer,
             "mix": [_mix_folder(m) for m in mix] if mix else None}  # fmt: skip
    cfg = layered_config(TokenizerTrainConfig, preset, config, given)
    run = out if out is not None else DEFAULT_RUN
    retrain_if_forced(force, resume, run / "tokenizer")
    result = train_tokenizer(cfg, run, resume=resume, log=lambda m: typer.echo(m, err=True))
    if result.rank != 0:
        return
    if result.artifact is None:
        typer.echo(f"interrupted at step {result.steps}; continue with --resume", err=True)
        raise typer.Exit(130)
    speed = f", {result.windows_per_second:.0f} windows/s" if result.windows_per_second else ""
    val = result.metrics.get("val/mpjpe_mm")
    val_text = f"; val MPJPE {val:.1f} mm" if val is not None else ""
    done = (
        f"{result.new_steps} steps"
        if not result.resumed_from
        else (f"{result.new_steps} steps after resuming at step {result.resumed_from} ({result.steps} in all)")
    )
    typer.echo(f"trained {done} in {result.seconds:.0f} s{speed}{val_text}; wrote {result.artifact}")


def tokenize_command(
    data: Annotated[Path, typer.Argument(help="HumanML3D-layout folder (or an import-bvh folder).")],
    tokenizer: Annotated[
        Path, typer.Option(help="Tokenizer artifact (runs/NAME or runs/NAME/tokenizer).")
    ] = DEFAULT_RUN,
    out: Annotated[Path | None, typer.Option(help="Cache folder. Default: <run>/codes/<data folder name>.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Clips encoded together.")] = 64,
    force: Annotated[bool, typer.Option(help="Re-encode even if the cache is current.")] = False,
) -> None:
    """Encode every clip of DATA into cached codes (one .npy per clip + index.json), reused when current."""
    from remogpt.tokenizer.cache import folder_clip_ids, tokenize_folder
    from remogpt.tokenizer.tokenizer import MotionTokenizer

    tok = MotionTokenizer.from_pretrained(tokenizer)
    target = out if out is not None else RunFolder.of(tokenizer).codes / data.resolve().name
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(folder_clip_ids(data)), desc="tokenize", unit="clip", leave=False)
    result = tokenize_folder(tok, data, target, batch_size=batch_size, force=force,
                             progress=bar.update if bar is not None else None)  # fmt: skip
    if bar is not None:
        bar.close()
    if result.reused:
        typer.echo(f"{target}: codes of {result.clips} clips are current (tokenizer {result.fingerprint}); reused")
        return
    skipped = f", {len(result.skipped)} skipped (too short)" if result.skipped else ""
    typer.echo(f"encoded {result.clips} clips{skipped} in {result.seconds:.1f} s into {target}")


def import_bvh_command(
    files: Annotated[list[Path], typer.Argument(help="One or more .bvh files.")],
    out: Annotated[Path, typer.Option(help="Folder for new_joint_vecs/, new_joints/ and import.json.")] = Path(
        "data/imported"
    ),
    rig: Annotated[str, typer.Option(help="auto, lafan1, mixamo or cmu (joint-name map).")] = "auto",
    joint_map: Annotated[
        Path | None, typer.Option("--map", help="YAML/JSON 'smpl_joint: bvh_joint' lines for other rigs.")
    ] = None,
    units: Annotated[str, typer.Option(help="auto, m, cm, mm or inch.")] = "auto",
    up: Annotated[str, typer.Option(help="auto, y or z: the file's up axis.")] = "auto",
    segment: Annotated[int, typer.Option(help="Cut into clips of this many frames at 20 fps (0: whole).")] = 0,
    keep_rig_layout: Annotated[
        bool,
        typer.Option(
            "--keep-rig-layout",
            help="Keep the rig's hip and collar joints where it has them instead of moving them to SMPL's places in "
            "the pelvis and chest.",
        ),
    ] = False,
) -> None:
    """Import BVH motion capture as HumanML3D features (SMPL-22, 20 fps, canonical)."""
    from remogpt.motion.bvh import import_bvh_files

    if segment < 0:
        raise UsageError(f"--segment must be ≥ 0, got {segment}")
    report = import_bvh_files(files, out, rig=rig, joint_map=joint_map, units=units, up=up,
                              segment_frames=segment or None, conform=not keep_rig_layout)  # fmt: skip
    for item in report:
        moved = [{"pelvis": "hips", "spine3": "collars"}[s] for s in item["conformed_segments"]]
        layout = f", {' and '.join(moved)} moved to SMPL's places" if moved else ""
        frames = sum(c["frames"] for c in item["clips"])
        typer.echo(f"{item['source']}: rig {item['rig']}, {item['source_fps']:g} fps, units ×{item['unit_scale']:g}"
                   f"{layout} → {len(item['clips'])} clip(s), {frames} frames")  # fmt: skip
    typer.echo(f"wrote {out}")


def register(app: typer.Typer, train_app: typer.Typer, data_app: typer.Typer) -> None:
    train_app.command("tokenizer")(train_tokenizer_command)
    app.command("tokenize")(tokenize_command)
    data_app.command("import-bvh")(import_bvh_command)
