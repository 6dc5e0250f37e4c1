"""`remogpt demo`: the main job on the embedded default, runnable on any laptop.

Today it builds (or reuses) the embedded data set, checks it, and renders a few test clips with
their captions; as the tokenizer, retriever and language model land, it trains their tiny presets
and adds generation and captioning. Every step is cached, so a second run is quick.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from remogpt.artifacts import atomic_write_text

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    out: Path
    data: Path
    seconds: float
    data_reused: bool
    videos: list[Path] = field(default_factory=list)
    stills: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_demo(
    out: Path | str = "runs/demo",
    data: Path | str = "data/embedded",
    clips: int | None = None,
    workers: int | None = None,
    num_examples: int = 4,
    log: Callable[[str], None] = print,
) -> DemoResult:
    from remogpt.data import check_folder, load_split
    from remogpt.data.synth.generate import SynthConfig, synthesize
    from remogpt.motion.render import render_grid, save_still

    started = time.perf_counter()
    out, data = Path(out), Path(data)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SynthConfig() if clips is None else SynthConfig(clips=clips)
    log(f"[1/3] embedded data set → {data} ({cfg.clips} clips + mirrors, seed {cfg.seed})")
    bar = _progress_bar(cfg.clips)
    synth = synthesize(data, cfg, workers=workers or _default_workers(), progress=bar)
    _close(bar)
    if synth.reused:
        log(
            "      reused the finished build already there "
            "(delete the folder or use `remogpt data synth --force` to rebuild)"
        )
    else:
        log(
            f"      built {synth.clips_written} motions in {synth.seconds:.1f} s "
            f"({synth.clips_per_second:.0f} motions/s)"
        )
    report = check_folder(data)
    q = report.stats.get("quality", {})
    log(
        f"[2/3] data check: {'OK' if report.ok else 'FAILED'} — {report.stats.get('clips', 0)} motions, "
        f"{report.stats.get('captions', 0)} captions, "
        f"foot skating {q.get('foot_skating_mean', float('nan')):.4f} m/frame"
    )
    if not report.ok:
        log(report.format(max_problems=20))

    test = load_split(data, "test") or load_split(data, "train")  # a very small build may have no test clips
    rng = np.random.default_rng(0)
    picks = [test[i] for i in sorted(rng.choice(len(test), size=min(num_examples, len(test)), replace=False))]
    log(f"[3/3] rendering {len(picks)} test clips with their captions → {out}")
    motions = [c.features for c in picks]
    captions = [c.captions[0].text for c in picks]
    titles = [f"test clip {c.id}" for c in picks]
    video = render_grid(motions, out / "test_clips.mp4", captions=captions, titles=titles)
    gif = render_grid(motions, out / "test_clips.gif", captions=captions, titles=titles, size_per_cell=(240, 240))
    stills = [
        save_still(
            c.features,
            out / f"clip_{c.id.replace('#', '_')}.png",
            caption=c.captions[0].text,
            title=f"test clip {c.id}",
        )
        for c in picks
    ]
    learn = synth.stats.get("learnability", {})
    summary = {
        "data": str(data),
        "data_hash": synth.data_hash,
        "motions": report.stats.get("clips"),
        "splits": report.stats.get("split_ids"),
        "captions": report.stats.get("captions"),
        "vocabulary": report.stats.get("vocabulary"),
        "check_ok": report.ok,
        "quality": q,
        "learnability_accuracy": learn.get("accuracy"),
        "learnability_chance": learn.get("chance_majority"),
        "examples": [{"id": c.id, "caption": c.captions[0].text, "frames": c.length} for c in picks],
        "videos": [str(video), str(gif)],
    }
    seconds = time.perf_counter() - started
    summary["seconds"] = round(seconds, 1)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    _print_table(summary, log)
    log(f"done in {seconds:.1f} s; open {video} to watch the clips.")
    return DemoResult(out, data, seconds, synth.reused, [video, gif], stills, summary)


def _print_table(summary: dict, log: Callable[[str], None]) -> None:
    q = summary["quality"] or {}
    rows = [
        ("motions (with mirrors)", summary["motions"]),
        ("train / val / test", " / ".join(str(v) for v in (summary["splits"] or {}).values())),
        ("captions / vocabulary", f"{summary['captions']} / {summary['vocabulary']} words"),
        ("data check", "OK" if summary["check_ok"] else "FAILED"),
        ("bone-length spread", f"{q.get('bone_length_spread_max', float('nan')):.1e} m"),
        ("foot skating in contact", f"{q.get('foot_skating_mean', float('nan')):.4f} m/frame"),
        (
            "first action from motion (linear probe)",
            f"{100 * (summary['learnability_accuracy'] or 0):.1f}% "
            f"(chance {100 * (summary['learnability_chance'] or 0):.1f}%)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    log("")
    for k, v in rows:
        log(f"  {k.ljust(width)}  {v}")
    log("")
    for ex in summary["examples"]:
        log(f"  {ex['id']:<18}  {ex['frames']:3d} frames  {ex['caption']}")
    log("")


def _progress_bar(total: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    bar = tqdm(total=total, desc="      generating", unit="clip", leave=False, mininterval=0.5, disable=None)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    update.bar = bar  # type: ignore[attr-defined]
    return update


def _close(progress) -> None:  # type: ignore[no-untyped-def]
    bar = getattr(progress, "bar", None)
    if bar is not None:
        bar.close()
