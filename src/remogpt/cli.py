"""The `remogpt` command: a thin shell over the library (parse, call one public function, print).

Errors that come from the user's input (a bad file, a bad value) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from remogpt import __version__
from remogpt.artifacts import DEFAULT_RUN
from remogpt.errors import RemogptError, RemogptWarning, UsageError

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
    max_problems: Annotated[int, typer.Option(min=0, help="Print at most this many problems.")] = 200,
    workers: Annotated[int, typer.Option(min=1, help="Processes; the report does not depend on it.")] = 2,
) -> None:
    """Validate a data folder and list every problem with its file (exit 1 if there are errors)."""
    from remogpt.data import check_folder
    from remogpt.motion import HUMANML3D, KIT

    spec = {"auto": None, "humanml3d": HUMANML3D, "kit": KIT}.get(skeleton.lower(), "bad")
    if spec == "bad":
        raise UsageError(f"--skeleton must be auto, humanml3d or kit, got {skeleton!r}")
    if json_out is not None:
        from remogpt.artifacts import check_output_file

        check_output_file(json_out, "--json")  # before the check, so that exit 1 always means "the data has errors"
    report = check_folder(path, skeleton=spec, progress=sys.stderr.isatty(), workers=workers)  # type: ignore[arg-type]
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


@data_app.command("import-bandai")
def data_import_bandai(
    root: Annotated[
        Path,
        typer.Argument(
            help="Folder holding Bandai-Namco-Research-Motiondataset-1 and/or -2 (as published), or one of them."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (HumanML3D layout).")] = Path("data/bandai"),
    workers: Annotated[int, typer.Option(min=1, help="Processes; the output does not depend on it.")] = 2,
    force: Annotated[bool, typer.Option(help="Replace --out if it holds something.")] = False,
) -> None:
    """Import the Bandai-Namco real motion capture (CC BY-NC 4.0) with captions from its labels."""
    from remogpt.data.bandai import find_takes, import_bandai
    from remogpt.data.synth import progress_bar

    total = len(find_takes(root))
    with progress_bar(total) as bar:
        result = import_bandai(root, out, workers=workers, force=force, progress=bar)
    splits = ", ".join(f"{k} {v}" for k, v in result.stats["clips_per_split"].items())
    typer.echo(f"imported {result.takes} takes as {result.clips} clips (with mirrors: {splits}) into {out} "
               f"in {result.seconds:.0f} s; hash {result.data_hash[:16]}")  # fmt: skip
    typer.echo(f"licence CC BY-NC 4.0: do not redistribute {out}; details in {out / 'DATA_CARD.md'}")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (HumanML3D layout).")] = Path("data/embedded"),
    clips: Annotated[int | None, typer.Option(help="Original clips (each also gets a mirror). Default 4000.")] = None,
    compositional_clips: Annotated[
        int | None,
        typer.Option(min=0, help="Originals of the test_compositional split. Default 7.5 % of --clips (300)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed → byte-identical folder.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes; the output does not depend on it.")] = 2,
    preset: Annotated[str, typer.Option(help="tiny (400 clips), default (4000) or paper (16000).")] = "default",
    config: Annotated[Path | None, typer.Option(help="A YAML SynthConfig (overrides the preset).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a finished build of this config is there.")] = False,
) -> None:
    """Generate the embedded text–motion data set (procedural motions, part-level captions)."""
    from remogpt.data.synth import SynthConfig, progress_bar, synthesize

    if config is not None:
        cfg = SynthConfig.from_yaml(config)
    elif preset == "default":
        cfg = SynthConfig()
    else:
        cfg = SynthConfig.preset(preset)
    if clips is not None:
        cfg = cfg.replace(clips=clips)
    if compositional_clips is not None:
        cfg = cfg.replace(compositional_clips=compositional_clips)
    cfg = cfg.replace(seed=seed) if seed != cfg.seed else cfg
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    with progress_bar(cfg.total_clips) as bar:
        result = synthesize(out, cfg, workers=workers, force=force, progress=bar)
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


@data_app.command("coverage")
def data_coverage(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (HumanML3D layout, train split only).")] = Path(
        "data/coverage"
    ),
    clips: Annotated[int, typer.Option(min=1, help="Clips of smooth random motion.")] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed → byte-identical folder.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes; the output does not depend on it.")] = 2,
    force: Annotated[bool, typer.Option(help="Rebuild even if a finished build of this config is there.")] = False,
) -> None:
    """Generate uncaptioned random motion within human joint limits, for the tokenizer's `--mix` only."""
    from remogpt.data.synth import progress_bar
    from remogpt.data.synth.coverage import CoverageConfig, synthesize_coverage

    cfg = CoverageConfig(clips=clips, seed=seed)
    with progress_bar(cfg.clips) as bar:
        info = synthesize_coverage(out, cfg, workers=workers, force=force, progress=bar)
    if info["reused"]:
        typer.echo(f"{out}: already built with this config (hash {info['data_hash'][:16]}); use --force to rebuild")
        return
    typer.echo(f"wrote {info['clips']} uncaptioned motions to {out} in {info['seconds']:.1f} s; "
               f"hash {info['data_hash'][:16]}; train a tokenizer on them with --mix {out}")  # fmt: skip


#: What `remogpt render` writes: a video, an animated GIF, or a strip of key frames.
RENDER_SUFFIXES = (".mp4", ".gif", ".png")


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
    from remogpt.artifacts import check_output_file
    from remogpt.motion.files import read_motion_file
    from remogpt.motion.render import render_grid, render_motion, save_still

    if out.suffix.lower() not in RENDER_SUFFIXES:
        raise UsageError(f"--out {out}: unsupported suffix {out.suffix or '(none)'!r} "
                         f"(use {', '.join(RENDER_SUFFIXES)})")  # fmt: skip
    check_output_file(out, "--out")
    if fps is not None and not 0 < fps <= 240:
        raise UsageError(f"--fps must be in (0, 240], got {fps}")
    arrays = [read_motion_file(path, as_features=False) for path in motions]  # joints stay joints
    caps = list(caption or [])
    if caps and len(caps) != len(arrays):
        raise UsageError(f"got {len(caps)} --caption values for {len(arrays)} motions")
    if out.suffix.lower() == ".png":
        if len(arrays) != 1:
            raise UsageError("a .png output takes one motion")
        written = save_still(arrays[0], out, caption=caps[0] if caps else None, fps=fps)
    elif len(arrays) == 1:
        written = render_motion(arrays[0], out, caption=caps[0] if caps else None, fps=fps)
    else:
        written = render_grid(arrays, out, captions=caps or None, titles=[p.stem for p in motions], fps=fps)
    typer.echo(f"wrote {written}")


def export_targets(motions: list[Path], to: Path, formats: str | None) -> list[tuple[Path, Path]]:
    """(input, output) pairs: `--to` is the file for one motion, or a folder (with `--format`)."""
    from remogpt.motion.export import EXPORT_FORMATS, parse_formats

    chosen = parse_formats(formats, "--format")
    as_folder = to.is_dir() or str(to).endswith(("/", "\\")) or not to.suffix
    if not as_folder:
        if len(motions) > 1:
            raise UsageError(f"--to {to}: {len(motions)} motions need a folder (and --format), not one file")
        if chosen:
            raise UsageError("--format is for a folder --to; a file's suffix already says its format")
        if to.suffix.lower().lstrip(".") not in EXPORT_FORMATS:
            raise UsageError(f"--to {to}: unknown format {to.suffix!r} (use .bvh, .glb or .npz, or a folder)")
        return [(motions[0], to)]
    if not chosen:
        raise UsageError(f"--to {to} is a folder: say which files to write, e.g. --format bvh,glb")
    stems = [m.stem for m in motions]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise UsageError(f"several motions share the name(s) {dup}; their files in {to} would collide")
    return [(m, to / f"{m.stem}.{fmt}") for m in motions for fmt in chosen]


@app.command("export")
def export(
    motions: Annotated[list[Path], typer.Argument(help=".npy files: features (T, 263) or joints (T, 22, 3).")],
    to: Annotated[Path, typer.Option("--to", "-o", help="out.bvh, out.glb or out.npz; or a folder with --format.")],
    formats: Annotated[
        str | None, typer.Option("--format", help="With a folder --to: bvh, glb and/or npz, e.g. bvh,glb.")
    ] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of the file written (resampled from the input's).")] = 20.0,
    source_fps: Annotated[float, typer.Option(help="Frame rate of the input (HumanML3D: 20).")] = 20.0,
    units: Annotated[str, typer.Option(help="BVH units: m or cm.")] = "m",
    bones: Annotated[
        str, typer.Option(help="Bone lengths: reference (HumanML3D's, in every file) or clip (the motion's own).")
    ] = "reference",
) -> None:
    """Export motions for animation tools: BVH (Blender, MotionBuilder…), glTF binary (.glb), or .npz."""
    from remogpt.artifacts import check_output_file
    from remogpt.motion.export import BONE_CHOICES, export_motion, motion_joints
    from remogpt.motion.files import read_motion_file

    for name, value in (("--fps", fps), ("--source-fps", source_fps)):
        if not 0 < value <= 240:
            raise UsageError(f"{name} must be in (0, 240], got {value}")
    if units not in ("m", "cm"):
        raise UsageError(f"--units must be m or cm, got {units!r}")
    if bones not in BONE_CHOICES:
        raise UsageError(f"--bones must be one of {', '.join(BONE_CHOICES)}, got {bones!r}")
    pairs = export_targets(motions, to, formats)
    for _, target in pairs:
        check_output_file(target, "--to")
    joints = {m: motion_joints(read_motion_file(m, as_features=False), str(m)) for m in motions}  # all checked first
    for source, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        report = export_motion(joints[source], target, fps=fps, units=units, source_fps=source_fps, bones=bones)
        typer.echo(f"wrote {target} ({report['frames']} frames at {fps:g} fps, {report['bytes'] / 1024:.0f} KiB; "
                   f"largest rotation step {report['max_rotation_step_deg']:.1f}°)")  # fmt: skip


@app.command("serve")
def serve_command(
    run: Annotated[Path, typer.Option(help="Run folder (tokenizer/, retriever/, lm/), e.g. the demo's.")] = DEFAULT_RUN,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 7860,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, max=100, help="Largest uploaded motion file, MB.")] = 5.0,
) -> None:
    """A local web app: text → motion (video, 3D view, downloads), motion → text, retrieval."""
    from remogpt.serve import ServeConfig, serve

    typer.echo(f"loading {run} …")
    serve(run, host=host, port=port, cfg=ServeConfig(max_upload_mb=max_upload_mb))


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where videos and the summary go.")] = DEFAULT_RUN,
    data: Annotated[Path, typer.Option(help="Where the embedded data set is built (cached).")] = Path("data/embedded"),
    clips: Annotated[int | None, typer.Option(help="Size of the embedded data set (default 4000 + mirrors).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes for building the data (default: up to 2).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML DemoConfig: training budgets, prompts shown.")] = None,
) -> None:
    """The main job: build the embedded data, train tiny tokenizer, retriever and LM, generate and caption."""
    from remogpt.demo import DemoConfig, run_demo

    cfg = DemoConfig.from_yaml(config) if config is not None else None
    run_demo(out=out, data=data, clips=clips, workers=workers, config=cfg, log=typer.echo)


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


_python_show_warning = warnings.showwarning


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """Our warnings as one `warning:` line (Python's format adds a source line users cannot act on)."""
    if issubclass(category, RemogptWarning):
        typer.echo(f"warning: {_one_line(str(message))}", err=True)
    else:
        _python_show_warning(message, category, *args, **kwargs)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of `python -m remogpt`.

    Every error the user can cause ends here as one line on stderr and exit status 2: bad options
    (click's usage errors, made one line with a pointer to --help), bad files and values
    (`RemogptError`) and places the system refuses (`OSError`: permissions, full disk, a folder
    where a file was expected). Anything else is a bug and keeps its traceback."""
    # Typer ships click inside (recent versions) or depends on it (older ones): take its classes
    # from typer's own BadParameter, whichever it is.
    click_errors = {c.__name__: c for c in typer.BadParameter.__mro__}
    usage_error, click_exception = click_errors["UsageError"], click_errors["ClickException"]
    try:
        with warnings.catch_warnings():  # restores Python's display after the command
            warnings.showwarning = _show_warning
            code = app(args=argv, prog_name="remogpt", standalone_mode=False)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `remogpt data` alone: the help, as before
            exc.show()
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {_one_line(exc.format_message())}{where}", err=True)
        sys.exit(2)
    except click_exception as exc:
        typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except RemogptError as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{_one_line(exc.strerror or str(exc))}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)  # as click's standalone mode does
