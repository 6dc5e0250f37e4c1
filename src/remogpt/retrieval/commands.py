"""CLI of the retrieval stage: `train retriever`, `index build`, `retrieve`. Cheap to import: the
heavy modules (torch, transformers, faiss, Lightning) are imported inside the commands."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from remogpt.artifacts import DEFAULT_RUN, retrain_if_forced
from remogpt.config import layered_config
from remogpt.errors import UsageError


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)


def train_retriever_cmd(
    out: Annotated[Path, typer.Option("--out", help="Run folder; the retriever is written to OUT/retriever.")] = (
        DEFAULT_RUN
    ),
    preset: Annotated[str, typer.Option(help="tiny (2 CPU cores, minutes) or paper (GPUs).")] = "tiny",
    config: Annotated[
        Path | None, typer.Option(help="A YAML RetrieverConfig: its fields over the preset's; flags over both.")
    ] = None,
    whole_body: Annotated[
        bool, typer.Option("--whole-body", help="The baseline: one encoder over all dims (TMR-style).")
    ] = False,
    data: Annotated[Path | None, typer.Option(help="Data folder (HumanML3D layout).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Training steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size (per device).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto.")] = None,
    devices: Annotated[str | None, typer.Option(help="auto, a count or a list like 0,1.")] = None,
    strategy: Annotated[str | None, typer.Option(help="auto, ddp, …")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/retriever/checkpoints.")] = False,
    index: Annotated[bool, typer.Option("--index/--no-index", help="Build the train-split index after.")] = True,
    force: Annotated[bool, typer.Option(help="Delete OUT/retriever and train it from scratch.")] = False,
) -> None:
    """Train PL-TMR (or the whole-body baseline) and build its retrieval index."""
    from remogpt.retrieval.config import RetrieverConfig
    from remogpt.retrieval.retriever import Retriever
    from remogpt.retrieval.train import train_retriever

    given = {
        "motion": {"part_level": False if whole_body else None},
        "data": {"root": str(data) if data is not None else None},
        "trainer": {"max_steps": max_steps, "batch_size": batch_size, "seed": seed, "accelerator": accelerator,
                    "devices": devices, "strategy": strategy},
    }  # fmt: skip
    cfg = layered_config(RetrieverConfig, preset, config, given)
    run_dir = out / "retriever"
    retrain_if_forced(force, resume, run_dir)
    result = train_retriever(cfg, out, resume=resume, progress=sys.stderr.isatty(), log=typer.echo)
    if result.interrupted:
        typer.echo(f"interrupted after {result.steps} steps; continue with --resume --out {out}")
        raise typer.Exit(130)
    loss = f"{result.final_loss:.3f}" if result.final_loss is not None else "n/a"
    done = (
        f"{result.new_steps} steps"
        if not result.resumed_from
        else (f"{result.new_steps} steps after resuming at step {result.resumed_from} ({result.steps} in all)")
    )
    typer.echo(f"trained {done} in {result.seconds:.0f} s (final loss {loss}); wrote {run_dir}")
    if index:
        retriever = Retriever.from_pretrained(run_dir, load_index=False)
        db = retriever.build_index()
        typer.echo(f"indexed {len(db)} samples and {len(db.caption_texts)} captions in {run_dir / 'index'}")


def index_build(
    run: Annotated[Path, typer.Argument(help="A retriever run (runs/NAME or runs/NAME/retriever).")] = DEFAULT_RUN,
    data: Annotated[Path | None, typer.Option(help="Data folder to index (default: the training data).")] = None,
    split: Annotated[str, typer.Option(help="Which split becomes the database.")] = "train",
    kind: Annotated[str, typer.Option(help="auto, flat (exact), hnsw or ivf.")] = "auto",
    exact_max: Annotated[int, typer.Option(min=1, help="auto: exact search up to this many entries.")] = 100_000,
) -> None:
    """Embed every sample of a split (motion and captions) and write the faiss indexes."""
    from remogpt.retrieval.index import IndexConfig
    from remogpt.retrieval.retriever import Retriever

    if kind not in ("auto", "flat", "hnsw", "ivf"):
        raise UsageError(f"--kind must be auto, flat, hnsw or ivf, got {kind!r}")
    retriever = Retriever.from_pretrained(run, load_index=False)
    db = retriever.build_index(data, split, IndexConfig(kind=kind, exact_max=exact_max))  # type: ignore[arg-type]
    recall = f", recall@10 {db.motion_index.recall_at_10:.3f}" if db.motion_index.kind != "flat" else ""
    typer.echo(
        f"indexed {len(db)} samples and {len(db.caption_texts)} captions ({db.motion_index.kind}{recall}) "
        f"in {retriever.run_dir / 'index'}"
    )


def retrieve(
    query: Annotated[str | None, typer.Argument(help="A caption, e.g. 'a person waves'.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many samples.")] = 5,
    run: Annotated[Path, typer.Option(help="A retriever run with an index.")] = DEFAULT_RUN,
    motion: Annotated[
        Path | None, typer.Option(help="Query with a motion instead: features (T, 263) or joints (T, 22, 3).")
    ] = None,
    target: Annotated[str, typer.Option(help="motion (t→m, m→m) or text (t→t, m→t).")] = "motion",
    exclude: Annotated[list[str] | None, typer.Option(help="Sample ids to exclude with their mirrors.")] = None,
    render: Annotated[
        Path | None, typer.Option(help="Also render the retrieved motions side by side (.mp4/.gif).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")] = None,
) -> None:
    """Print the k database samples most similar to a caption (or a motion), best first."""
    from remogpt.artifacts import check_output_file
    from remogpt.errors import warn_if_no_words
    from remogpt.motion.files import read_motion_file
    from remogpt.retrieval.errors import RetrievalInputError, TruncationWarning
    from remogpt.retrieval.retriever import Retriever

    if (query is None) == (motion is None):
        raise UsageError("give a caption or --motion FILE.npy (exactly one)")
    if target not in ("motion", "text"):
        raise UsageError(f"--target must be motion or text, got {target!r}")
    if json_out is not None:
        check_output_file(json_out, "--json")
    if render is not None:
        if render.suffix.lower() not in (".mp4", ".gif"):
            suffix = render.suffix or "(none)"
            raise UsageError(f"--render {render}: unsupported suffix {suffix!r} (use .mp4 or .gif)")
        check_output_file(render, "--render")
    array = read_motion_file(motion) if motion is not None else None  # joints become features
    if query is not None:
        warn_if_no_words(query, "the query")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        retriever = Retriever.from_pretrained(run)
        try:
            result = retriever.search(
                text=query,
                motion=array,
                k=k,
                target=target,  # type: ignore[arg-type]
                exclude_ids=exclude,
                with_motions=render is not None,
            )
        except RetrievalInputError as exc:  # the one query motion is the file: name it
            if motion is None or not str(exc).startswith("motion #0: "):
                raise
            raise UsageError(f"{motion}: {str(exc).removeprefix('motion #0: ')}") from None
    _echo_warnings([w for w in caught if issubclass(w.category, TruncationWarning)])
    assert not isinstance(result, list)
    typer.echo(f"{result.direction}: {query if query is not None else motion}")
    typer.echo(result.table())
    if json_out is not None:
        from remogpt.artifacts import atomic_write_text

        payload = {
            "query": query if query is not None else str(motion),
            "direction": result.direction,
            "results": [
                {"rank": r + 1, "id": i, "score": float(s), "caption": c}
                for r, (i, s, c) in enumerate(zip(result.ids, result.scores, result.captions, strict=True))
            ],
        }
        atomic_write_text(json_out, json.dumps(payload, indent=2) + "\n")
    if render is not None:
        from remogpt.motion.render import render_grid

        written = render_grid(
            result.motions or [],
            render,
            captions=result.captions,
            titles=[f"#{r + 1} {i} ({s:.2f})" for r, (i, s) in enumerate(zip(result.ids, result.scores, strict=True))],
        )
        typer.echo(f"wrote {written}")


def register(app: typer.Typer, train_app: typer.Typer, data_app: typer.Typer) -> None:
    """Add the retrieval commands to the `remogpt` app."""
    train_app.command("retriever")(train_retriever_cmd)
    index_app = typer.Typer(help="The retrieval database (faiss index) of a trained retriever.", no_args_is_help=True)
    app.add_typer(index_app, name="index")
    index_app.command("build")(index_build)
    app.command("retrieve")(retrieve)
