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
    path: Annotated[
        Path, typer.Argument(help="A HumanML3D-layout folder (new_joint_vecs/, texts/, train.txt …).")
    ],
    skeleton: Annotated[str, typer.Option(help="auto, humanml3d or kit.")] = "auto",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
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
            "problems": [
                {"severity": p.severity, "path": p.path, "message": p.message} for p in report.problems
            ],
        }
        atomic_write_text(json_out, json.dumps(payload, indent=2, default=str) + "\n")
    if not report.ok:
        raise typer.Exit(1)


class _UserError(Exception):
    """Raised by commands for bad arguments; printed as one line."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from remogpt.artifacts import ArtifactError
    from remogpt.config import ConfigError
    from remogpt.data.folder import DataFormatError
    from remogpt.motion.skeleton import MotionFormatError

    return (_UserError, ArtifactError, ConfigError, DataFormatError, MotionFormatError, FileNotFoundError)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of `python -m remogpt`."""
    try:
        app(args=argv, prog_name="remogpt")  # standalone mode: usage errors and exit codes handled
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if isinstance(exc, _user_error_types()):
            typer.echo(f"error: {exc}", err=True)
            sys.exit(2)
        raise
