"""The `remogpt` command: a thin shell over the library (parse, call one public function, print).

Errors that come from the user's input (a bad file, a bad value) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from remogpt import __version__
from remogpt.errors import RemogptError

app = typer.Typer(
    name="remogpt",
    help="Retrieval-augmented motion–language modelling: text → 3D motion, motion → text, part-level retrieval.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Data folders in the HumanML3D layout: build the embedded set, check a folder.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
#: `remogpt train <stage>`: the stages register their training commands (see `_STAGE_COMMANDS`).
train_app = typer.Typer(help="Train a stage: tiny presets on a CPU, paper presets on GPUs (DDP).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"remogpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """remogpt command line."""


@data_app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="A HumanML3D-layout folder (new_joint_vecs/, texts/, train.txt …).")],
    skeleton: Annotated[str, typer.Option(help="auto, humanml3d or kit.")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    max_problems: Annotated[int, typer.Option(help="Print at most this many problems.")] = 200,
) -> None:
    """Validate a data folder and list every problem with its file (exit 1 if there are errors)."""
    from remogpt.data import check_folder
    from remogpt.motion import HUMANML3D, KIT

    spec = {"auto": None, "humanml3d": HUMANML3D, "kit": KIT}.get(skeleton.lower(), "bad")
    if spec == "bad":
        raise _UserError(f"--skeleton must be auto, humanml3d or kit, got {skeleton!r}")
    report = check_folder(path, skeleton=spec, progress=sys.stderr.isatty())  # type: ignore[arg-type]
    typer.echo(report.format(max_problems=max_problems))
    if json_out is not None:
        from remogpt.artifacts import atomic_write_text

        payload = {
            "root": str(report.root),
            "skeleton": report.skeleton.name if report.skeleton else None,
            "ok": report.ok,
            "stats": report.stats,
            "problems": [{"severity": p.severity, "path": p.path, "message": p.message} for p in report.problems],
        }
        atomic_write_text(json_out, json.dumps(payload, indent=2, default=str) + "\n")
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (HumanML3D layout).")] = Path("data/embedded"),
    clips: Annotated[int | None, typer.Option(help="Original clips (each also gets a mirror). Default 4000.")] = None,
    seed: Annotated[int, typer.Option(help="Same seed → byte-identical folder.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes; the output does not depend on it.")] = 2,
    preset: Annotated[str, typer.Option(help="tiny (400 clips), default (4000) or paper (16000).")] = "default",
    config: Annotated[Path | None, typer.Option(help="A YAML SynthConfig (overrides the preset).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a finished build of this config is there.")] = False,
) -> None:
    """Generate the embedded text–motion data set (procedural motions, part-level captions)."""
    from remogpt.data.synth.generate import SynthConfig, synthesize
    from remogpt.demo import _close, _progress_bar

    if config is not None:
        cfg = SynthConfig.from_yaml(config)
    elif preset == "default":
        cfg = SynthConfig()
    else:
        cfg = SynthConfig.preset(preset)
    if clips is not None:
        cfg = cfg.replace(clips=clips)
    cfg = cfg.replace(seed=seed) if seed != cfg.seed else cfg
    if workers < 1:
        raise _UserError(f"--workers must be at least 1, got {workers}")
    bar = _progress_bar(cfg.clips)
    result = synthesize(out, cfg, workers=workers, force=force, progress=bar)
    _close(bar)
    if result.reused:
        typer.echo(f"{out}: already built with this config (hash {result.data_hash[:16]}); use --force to rebuild")
        return
    learn = result.stats.get("learnability", {})
    accuracy = learn.get("accuracy")
    learn_text = (
        f"learnability: {100 * accuracy:.1f}% first-action accuracy on test "
        f"(chance {100 * learn['chance_majority']:.1f}%)"
        if accuracy is not None
        else "learnability: not measured (too few clips)"
    )
    typer.echo(
        f"wrote {result.clips_written} motions to {out} in {result.seconds:.1f} s "
        f"({result.clips_per_second:.0f} motions/s, {workers} workers); hash {result.data_hash[:16]}"
    )
    typer.echo(f"{learn_text}; details in {out / 'DATA_CARD.md'}")


@app.command("render")
def render(
    motions: Annotated[list[Path], typer.Argument(help="One or more .npy files: joints (T, J, 3) or features (T, D).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .mp4, .gif or .png (a strip of key frames).")] = Path(
        "motion.mp4"
    ),
    caption: Annotated[list[str] | None, typer.Option(help="Caption per motion (repeat the option).")] = None,
    fps: Annotated[float | None, typer.Option(help="Frames per second (default: the skeleton's, 20).")] = None,
) -> None:
    """Render motions as a stick-figure video (several motions: side by side)."""
    import numpy as np

    from remogpt.motion.render import render_frames, render_grid, render_motion, save_still
    from remogpt.motion.skeleton import MotionFormatError

    arrays = []
    for path in motions:
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except FileNotFoundError:
            raise _UserError(f"{path}: file not found") from None
        except (ValueError, OSError, EOFError) as exc:
            raise _UserError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0]})") from None
        try:  # validate now, so the error names the file
            render_frames(arrays[-1], frames=[0], size=(160, 160))
        except MotionFormatError as exc:
            raise _UserError(f"{path}: {exc}") from None
    caps = list(caption or [])
    if caps and len(caps) != len(arrays):
        raise _UserError(f"got {len(caps)} --caption values for {len(arrays)} motions")
    if out.suffix.lower() == ".png":
        if len(arrays) != 1:
            raise _UserError("a .png output takes one motion")
        written = save_still(arrays[0], out, caption=caps[0] if caps else None, fps=fps)
    elif len(arrays) == 1:
        written = render_motion(arrays[0], out, caption=caps[0] if caps else None, fps=fps)
    else:
        written = render_grid(arrays, out, captions=caps or None, titles=[p.stem for p in motions], fps=fps)
    typer.echo(f"wrote {written}")


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where videos and the summary go.")] = Path("runs/demo"),
    data: Annotated[Path, typer.Option(help="Where the embedded data set is built (cached).")] = Path("data/embedded"),
    clips: Annotated[int | None, typer.Option(help="Size of the embedded data set (default 4000 + mirrors).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes for building the data (default: up to 2).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML DemoConfig: training budgets, prompts shown.")] = None,
) -> None:
    """The main job: build the embedded data, train tiny tokenizer, retriever and LM, generate and caption."""
    from remogpt.demo import DemoConfig, run_demo

    cfg = DemoConfig.from_yaml(config) if config is not None else None
    run_demo(out=out, data=data, clips=clips, workers=workers, config=cfg, log=typer.echo)


class _UserError(RemogptError):
    """Raised by commands for bad arguments; printed as one line."""


#: Modules with a `register(app, train_app, data_app)` function adding a stage's commands. They must
#: be cheap to import (heavy imports go inside the command functions) so that `--help` stays fast.
_STAGE_COMMANDS: tuple[str, ...] = (
    "remogpt.tokenizer.commands",
    "remogpt.eval.commands",
    "remogpt.retrieval.commands",
    "remogpt.lm.commands",
)


def _register_stages() -> None:
    import importlib

    for name in _STAGE_COMMANDS:
        importlib.import_module(name).register(app, train_app, data_app)


_register_stages()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of `python -m remogpt`."""
    try:
        app(args=argv, prog_name="remogpt")  # standalone mode: usage errors and exit codes handled
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except (RemogptError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
