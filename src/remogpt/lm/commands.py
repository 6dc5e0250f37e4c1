"""CLI commands of the language-model stage: `train lm`, `generate`, `caption` (registered by `remogpt.cli`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from remogpt.artifacts import DEFAULT_RUN, retrain_if_forced
from remogpt.config import layered_config
from remogpt.errors import UsageError

__all__ = ["register"]


#: `--run` and `--out` of the commands that read a trained run and write one output folder.
RunOpt = Annotated[Path, typer.Option(help="Run folder (tokenizer/, retriever/, lm/), e.g. the demo's.")]
OutOpt = Annotated[Path, typer.Option(help="Output folder (replaced as a whole if it holds an earlier output).")]


@contextmanager
def _output_folder(out: Path) -> Iterator[Path]:
    """A staging folder for `out` (checked at once), moved into its place when the body succeeds and
    removed in any case: an interrupted command never leaves half an output where a whole one was."""
    import shutil

    from remogpt.artifacts import replace_folder, staging_folder

    staging = staging_folder(out, GENERATION_REPORT)
    try:
        yield staging
        replace_folder(staging, out, GENERATION_REPORT)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: `--guidance`, as `generate` and `eval t2m` take it.
GuidanceOpt = Annotated[
    float | None,
    typer.Option(
        help=(
            "Classifier-free guidance scale: the text weighed against the same prompt without it "
            "(≥ 1; up to 2× the sampling time; default: the model's, 1 = off)."
        )
    ),
]


def train_lm_command(
    run: Annotated[
        Path, typer.Option("--run", "--out", help="Run folder holding tokenizer/ and retriever/.")
    ] = DEFAULT_RUN,
    data: Annotated[
        Path | None, typer.Option(help="HumanML3D-layout folder (train split). Default: the config's, data/embedded.")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="tiny (CPU), tiny_compose (CPU; context never holds the answer) or paper (T5-base).")
    ] = "tiny",
    config: Annotated[
        Path | None, typer.Option(help="YAML LMConfig: its fields over the preset's; flags over both.")
    ] = None,
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
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto (default: the config's, auto).")] = None,
    devices: Annotated[str | None, typer.Option(help="auto, a count or a list like 0,1.")] = None,
    strategy: Annotated[str | None, typer.Option(help="auto, ddp, …")] = None,
    precision: Annotated[str | None, typer.Option(help="32-true, or bf16-mixed / 16-mixed on GPUs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the config's, 0).")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted training, or reuse finished stages with the same settings.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Delete RUN/lm and train it from scratch.")] = False,
) -> None:
    """Train the retrieval-augmented T5 (stage 1 without context, stage 2 with retrieved pairs)."""
    from remogpt.lm.config import LMConfig
    from remogpt.lm.train import train_lm

    given = {
        "lm_init": str(lm_init) if lm_init else None, "stage1_steps": stage1_steps, "stage2_steps": stage2_steps,
        "retrieval": {"modality": modality, "k": k},
        "data": {"root": str(data) if data is not None else None},
        "trainer": {"accelerator": accelerator, "devices": devices, "strategy": strategy, "precision": precision,
                    "seed": seed, "batch_size": batch_size},
    }  # fmt: skip
    cfg = layered_config(LMConfig, preset, config, given)
    retrain_if_forced(force, resume, run / "lm")
    result = train_lm(cfg, run, resume, log=typer.echo)
    if result.rank == 0:  # under DDP, once
        typer.echo(f"wrote {result.run_dir} ({result.samples} training samples, {result.seconds:.0f} s)")


#: The most motions one `generate` call samples (about 1.5 s each on 2 CPU cores): a typo like
#: `--num-samples 1000` would otherwise run for half an hour without a word.
MAX_SAMPLES = 64
#: Generated motions shown in the video beside the retrieved ones (all are written as .npy).
VIDEO_SAMPLES = 4
GENERATION_REPORT = "generation.json"


def _read_prompts(path: Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"--prompts {path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"--prompts {path}: is a folder; give a text file with one prompt per line") from None
    except UnicodeDecodeError:
        raise UsageError(f"--prompts {path}: not UTF-8 text") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not prompts:
        raise UsageError(f"--prompts {path}: no prompts (one per line; # starts a comment)")
    return prompts


def _write_generation(folder: Path, text: str, results: list, model, video: bool, exports: list[str],
                      run: Path, stats: dict | None = None, mode: str = "text_to_motion") -> dict:  # fmt: skip
    """One prompt's output: joints and features (.npy), exports, the video, and generation.json last."""
    import numpy as np

    from remogpt.artifacts import atomic_write_text
    from remogpt.motion.export import export_motion

    report: dict = {"text": text, "run": str(run), "mode": mode, "samples": []}
    for n, res in enumerate(results):
        np.save(folder / f"motion_{n}_joints.npy", res.joints.astype(np.float32))
        np.save(folder / f"motion_{n}_features.npy", res.features.astype(np.float32))
        files = [export_motion(res.joints, folder / f"motion_{n}.{fmt}")["path"] for fmt in exports]
        entry = {"frames": len(res.features), "codes": len(res.codes), "attempts": res.attempts,
                 "problem": res.problem, "exports": [Path(f).name for f in files]}  # fmt: skip
        if hasattr(res, "report"):  # an edit: what it keeps of the input, and where it joins
            entry.update(res.report())
        report["samples"].append(entry)
    report["retrieved"] = results[0].references
    if stats is not None:
        report["stats"] = stats
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
        render_grid(motions, folder / "motion.mp4", captions=captions, titles=titles)
    atomic_write_text(folder / GENERATION_REPORT, json.dumps(report, indent=2) + "\n")  # written last: the marker
    return report


def _slug(index: int, text: str) -> str:
    import re

    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return f"{index:04d}_{words or 'prompt'}"


def generate_command(
    text: Annotated[
        str | None, typer.Argument(help="What the motion should show, e.g. 'a person jumps twice then waves'.")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Text file, one prompt per line: one sub-folder of --out per prompt.")
    ] = None,
    run: RunOpt = DEFAULT_RUN,
    out: OutOpt = Path("out"),
    num_samples: Annotated[int, typer.Option(min=1, max=MAX_SAMPLES, help="How many motions to sample.")] = 1,
    seed: Annotated[int, typer.Option(help="Sampling seed (the same text and seed: the same motion).")] = 0,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (> 0; default: the model's).")] = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="Top-k sampling (≥ 1; default: the model's).")] = None,
    rerank: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help=(
                "Best of N: sample N candidates per motion and keep the one that matches the text best (see "
                "--rerank-by; N× the sampling time; default: the model's, 1 = off)."
            ),
        ),
    ] = None,
    rerank_by: Annotated[
        str | None,
        typer.Option(
            help=(
                "What picks the best of N: retriever, captioner (the model's own caption likelihood) or both "
                "(default: the model's)."
            )
        ),
    ] = None,
    guidance: GuidanceOpt = None,
    video: Annotated[bool, typer.Option(help="Also render an MP4 with the retrieved references beside it.")] = True,
    export: Annotated[
        str | None, typer.Option("--export", help="Also write each motion as bvh, glb and/or npz, e.g. bvh,glb.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=256, help="Sequences sampled together.")] = 8,
    from_motion: Annotated[
        Path | None,
        typer.Option("--from", help="Continue this motion (.npy features or joints, or .bvh) as the text says."),
    ] = None,
    to_motion: Annotated[
        Path | None, typer.Option("--to", help="With --from and --frames: fill the frames between the two motions.")
    ] = None,
    frames: Annotated[
        int | None, typer.Option(help="New frames (20 fps): how long the continuation or the in-between is.")
    ] = None,
    edit: Annotated[
        str | None, typer.Option(help="With --from: regenerate its arms or legs (legs: with the root) from the text.")
    ] = None,
) -> None:
    """Text → motion: joints and features (.npy), what was retrieved (.json), a video, and exports.
    With --from: continue a motion, fill between two (--to), or regenerate its arms or legs (--edit)."""
    import math
    import sys
    import time

    from remogpt.lm.remogpt import ReMoGPT

    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"--temperature must be a number > 0, got {temperature}")
    from remogpt.lm.config import RERANK_SCORES

    if rerank_by is not None and rerank_by not in RERANK_SCORES:
        raise UsageError(f"--rerank-by must be one of {', '.join(RERANK_SCORES)}, got {rerank_by!r}")
    if guidance is not None and not (math.isfinite(guidance) and guidance >= 1):
        raise UsageError(f"--guidance must be a number ≥ 1 (1: off), got {guidance}")
    if from_motion is not None or to_motion is not None or edit is not None or frames is not None:
        from remogpt.motion.export import parse_formats

        _edit_command(text, prompts, run, out, num_samples, seed, video, parse_formats(export, "--export"),
                      from_motion, to_motion, frames, edit,
                      {"temperature": temperature, "top_k": top_k, "rerank": rerank, "rerank_score": rerank_by,
                       "guidance_scale": guidance})  # fmt: skip
        return
    if (text is None) == (prompts is None):
        raise UsageError("give either a text or --prompts FILE (one prompt per line), not both" if text is not None
                         else "give a text, e.g. 'a person walks forward', or --prompts FILE")  # fmt: skip
    texts = [text] if text is not None else _read_prompts(prompts)  # type: ignore[arg-type, list-item]
    if text is not None and not text.strip():
        raise UsageError("the text is empty; describe a motion, e.g. 'a person walks forward'")
    from remogpt.motion.export import parse_formats

    exports = parse_formats(export, "--export")
    with _output_folder(out) as staging:  # --out checked now, before minutes of work
        model = ReMoGPT.from_pretrained(run)
        bar = None
        candidates = model.cfg.rerank_candidates if rerank is None else rerank
        total = len(texts) * num_samples * candidates  # sequences sampled (progress counts every candidate)
        if total > 4 and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, desc="generate", unit="motion", leave=False)
        rows = []
        per_call = max(1, batch_size // num_samples)  # prompts sampled together
        for start in range(0, len(texts), per_call):
            chunk = texts[start : start + per_call]
            t0 = time.perf_counter()
            results = model.generate_motion(chunk, num_samples=num_samples, seed=seed, temperature=temperature,
                                            top_k=top_k, batch_size=batch_size, rerank=candidates,
                                            rerank_score=rerank_by, guidance_scale=guidance,
                                            progress=bar.update if bar else None)  # fmt: skip
            seconds = (time.perf_counter() - t0) / len(chunk)
            for k, prompt in enumerate(chunk):
                index = start + k
                mine = results[k * num_samples : (k + 1) * num_samples]
                folder = staging if text is not None else staging / _slug(index, prompt)
                folder.mkdir(exist_ok=True)
                stats = dict(model.stats) if text is not None else None  # batch: in summary.json
                report = _write_generation(folder, prompt, mine, model, video, exports, run, stats)
                problems = [s["problem"] for s in report["samples"] if s["problem"]]
                rows.append({"index": index, "text": prompt, "folder": folder.name if text is None else ".",
                             "frames": [s["frames"] for s in report["samples"]], "problems": problems,
                             "seconds": round(seconds, 3)})  # fmt: skip
        if bar is not None:
            bar.close()
        if text is not None:
            for ref in results[0].references:
                typer.echo(f"  retrieved ({ref['direction']}, {ref['score']:.3f}) {ref['id']}: {ref['caption']}")
        else:
            _write_summary(staging, rows, dict(model.stats), run, seed)
    if text is not None:
        shown = f" (the first {VIDEO_SAMPLES} in the video)" if video and num_samples > VIDEO_SAMPLES else ""
        extra = (", motion.mp4" if video else "") + "".join(f", .{fmt}" for fmt in exports)
        typer.echo(f"wrote {out}/ ({num_samples} motion(s){shown}{extra}, {GENERATION_REPORT})")
    else:
        bad = sum(1 for r in rows if r["problems"])
        typer.echo(f"wrote {out}/ ({len(rows)} prompts × {num_samples} motion(s), one folder each; "
                   f"summary.json, summary.csv; {bad} prompt(s) with a problem)")  # fmt: skip


def _edit_command(text: str | None, prompts: Path | None, run: Path, out: Path, num_samples: int, seed: int,
                  video: bool, exports: list[str], from_motion: Path | None, to_motion: Path | None,
                  frames: int | None, edit: str | None, sampling: dict) -> None:  # fmt: skip
    """`generate --from …`: continue, in-between or part edit, every input checked before the model loads."""

    from remogpt.lm import editing
    from remogpt.motion.files import read_motion_features

    if prompts is not None:
        raise UsageError("--from, --to, --frames and --edit take one text, not --prompts")
    if from_motion is None:
        raise UsageError("--to, --frames and --edit need --from MOTION (.npy or .bvh): the motion to start from")
    if frames is not None and frames < 1:
        raise UsageError(f"--frames must be ≥ 1 (new frames at 20 fps), got {frames}")
    if edit is not None:
        if edit not in ("arms", "legs"):
            raise UsageError(f"--edit must be arms or legs, got {edit!r}")
        if to_motion is not None or frames is not None:
            raise UsageError("--edit keeps the length of --from: it takes neither --to nor --frames")
    if to_motion is not None and frames is None:
        raise UsageError("--to needs --frames N: how many frames to fill between --from and --to")
    if text is None and to_motion is None:
        raise UsageError("give a text: what the continuation or the edited part should do")
    if text is not None and not text.strip():
        raise UsageError("the text is empty; describe a motion, e.g. 'a person walks forward'")
    start = read_motion_features(from_motion)
    end = read_motion_features(to_motion) if to_motion is not None else None
    mode = "edit_" + edit if edit else "inbetween" if end is not None else "continue"
    with _output_folder(out) as staging:  # --out checked now, before minutes of work
        from remogpt.lm.remogpt import ReMoGPT

        model = ReMoGPT.from_pretrained(run)
        sampling = {k: v for k, v in sampling.items() if v is not None}
        results = []
        for n in range(num_samples):
            if edit:
                results.append(editing.edit_parts(model, start, text, edit, seed=seed + n, **sampling))
            elif end is not None:
                results.append(editing.inbetween(model, start, end, frames, text, seed=seed + n, **sampling))
            else:
                results.append(editing.continue_motion(model, text, start, frames, seed=seed + n, **sampling))
        _write_generation(staging, results[0].text, results, model, video, exports, run, dict(model.stats), mode)
    first = results[0]
    kept = (f"kept frames {', '.join(f'{a}–{b}' for a, b in first.kept_frames)}" if first.kept_frames
            else f"kept {', '.join(first.kept_parts)}")  # fmt: skip
    how = f", continued by the {first.continued_by}" if first.continued_by else ""
    typer.echo(f"{mode}: {len(first.features)} frames, {kept}{how}; text: {first.text}")
    typer.echo(f"wrote {out}/ ({num_samples} motion(s){', motion.mp4' if video else ''}"
               f"{''.join(f', .{fmt}' for fmt in exports)}, {GENERATION_REPORT})")  # fmt: skip


def timeline_command(
    spec: Annotated[
        str | None,
        typer.Argument(help="'A (4 s); then B; then C (3 s)': texts in order, each with an optional duration."),
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="The timeline as a file: JSON [{text, seconds}] or one entry per line.")
    ] = None,
    run: RunOpt = DEFAULT_RUN,
    out: OutOpt = Path("out"),
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    video: Annotated[bool, typer.Option(help="Also render an MP4 of the motion.")] = True,
    export: Annotated[
        str | None, typer.Option("--export", help="Also write the motion as bvh, glb and/or npz, e.g. bvh,glb.")
    ] = None,
    segments_by: Annotated[
        str, typer.Option(help="How each part after the first goes on from the one before: 'prefix' (the last "
                               "codes handed to the decoder; measured best) or 'task' (the continuation task, "
                               "for a run trained on it).")
    ] = "prefix",
) -> None:
    """Texts in order → one continuous motion of any length; each part retrieves for its own text."""

    from remogpt.lm import editing
    from remogpt.motion.export import parse_formats

    if (spec is None) == (file is None):
        raise UsageError("give a timeline such as 'a person walks (4 s); then waves (2 s)', or --file FILE, not both"
                         if spec is not None else "give a timeline such as 'a person walks (4 s); then waves (2 s)'"
                         " or --file FILE")  # fmt: skip
    entries = editing.parse_timeline(spec) if spec is not None else editing.read_timeline_file(file)  # type: ignore[arg-type]
    exports = parse_formats(export, "--export")
    ways = {"prefix": editing.PREFIX, "task": editing.TASK}
    if segments_by not in ways:
        raise UsageError(f"--segments-by must be prefix or task, got {segments_by!r}")
    with _output_folder(out) as staging:  # --out checked now, before minutes of work
        from remogpt.lm.remogpt import ReMoGPT

        model = ReMoGPT.from_pretrained(run)
        result = editing.timeline(model, entries, seed=seed, segments_by=ways[segments_by])
        _write_generation(staging, result.text, [result], model, False, exports, run, dict(model.stats), "timeline")
        if video:
            from remogpt.motion.render import render_grid

            render_grid([result.features], staging / "motion.mp4", captions=[result.text], titles=["timeline"])
    for segment in result.segments:
        typer.echo(f"  {segment['start'] / 20:6.1f} s  {segment['frames'] / 20:5.1f} s  {segment['text']}")
    files = (", motion.mp4" if video else "") + "".join(f", .{fmt}" for fmt in exports)
    how = f", continued by the {result.continued_by}" if result.continued_by else ""
    typer.echo(f"wrote {out}/ ({len(result.features) / 20:.1f} s, {len(result.segments)} parts{how}{files}, "
               f"{GENERATION_REPORT})")  # fmt: skip


def _write_summary(folder: Path, rows: list[dict], stats: dict, run: Path, seed: int) -> None:
    """summary.json (everything) and summary.csv (one row per prompt, for spreadsheets); the folder's
    generation.json marks it as this command's output (so a later run may replace it)."""
    import csv
    import io

    from remogpt.artifacts import atomic_write_text

    summary = {"run": str(run), "seed": seed, "prompts": rows, "stats": stats,
               "seconds": round(sum(r["seconds"] for r in rows), 3)}  # fmt: skip
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "text", "folder", "frames", "problems", "seconds"])
    for r in rows:
        writer.writerow([r["index"], r["text"], r["folder"], " ".join(map(str, r["frames"])), "; ".join(r["problems"]),
                         r["seconds"]])  # fmt: skip
    atomic_write_text(folder / "summary.csv", buffer.getvalue())
    atomic_write_text(folder / GENERATION_REPORT, json.dumps({"batch": True, "prompts": len(rows)}) + "\n")


def caption_command(
    motions: Annotated[list[Path], typer.Argument(help=".npy files: features (T, 263) or joints (T, 22, 3).")],
    run: RunOpt = DEFAULT_RUN,
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
    app.command("timeline")(timeline_command)
    app.command("caption")(caption_command)
