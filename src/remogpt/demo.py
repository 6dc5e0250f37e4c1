"""`remogpt demo`: the main job on the embedded default, runnable on any laptop.

It builds (or reuses) the embedded data set and checks it, trains the tiny tokenizer, the PL-TMR
retriever (with its train-split database) and the retrieval-augmented T5 with short CPU budgets,
then generates motions for test prompts and a new sentence, captions test motions, renders videos
(each generated motion beside what was retrieved and the real clip) and prints a quality table.
Every stage is cached in the run folder: a second run reuses what exists, and an interrupted
training resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.artifacts import StageCache, atomic_write_text, fingerprint_config
from remogpt.config import ConfigBase, ConfigError

#: The LMConfig presets that train in the demo's minutes on a CPU.
LM_CPU_PRESETS = ("tiny", "tiny_compose")
TOKENIZER_CPU_PRESETS = ("tiny", "tiny_detail", "tiny_rvq")

__all__ = ["DemoConfig", "DemoResult", "run_demo"]

#: A sentence that is not in the data: composed from primitives the data has, in an order it may not.
NEW_PROMPT = "a person jumps twice then waves with the right hand."


@dataclass
class DemoConfig(ConfigBase):
    """Training budgets of the demo (the tiny presets' models, fewer steps) and what it shows.

    The defaults keep `remogpt demo` within ten minutes on two CPU cores; the stage presets'
    own step counts (`remogpt train …`) train longer and better.
    """

    # 2,000 (was 1,000): the reconstructions of the embedded test split, scored by the matching
    # evaluator, went from FID 0.73-1.63 / R-Top1 0.59-0.61 to FID 0.09-0.14 / R-Top1 0.67-0.69
    # (benchmarks/tokenizer_terms.py --steps 2000, seeds 0-2), and the demo's LM from R-Top1 0.475-0.501 /
    # FID 0.52-1.59 to 0.526-0.540 / 0.14-0.21 (lm_quality.py). It trains beside the retriever: the
    # demo took about 15 s more. 3,000 gave the LM no gain the 3 seeds can tell from noise (R-Top1
    # +0.002 to +0.011, FID -0.03 to +0.02) for 70 s more per demo (lm_quality_tokenizer3000.json).
    tokenizer_steps: int = 2000
    # tiny_detail: tiny plus loss terms on the wrists and feet, in the same time (TokenizerTrainConfig.PRESETS):
    # better joints (benchmarks/tokenizer_variants.py), but a fresh demo on it scored worse through the
    # judge and the evaluator (round trip attributes 0.766 vs 0.808-0.825, LM FID 1.06 vs 0.44-0.59;
    # benchmarks/results/lm_quality_tiny_detail.json, seed 0), so the demo stays on tiny. tiny_rvq (4 residual
    # code layers, the LM's residual head writing layers 2-4): round-trip ceiling up (unseen-composition
    # attributes 0.81-0.83 vs 0.73-0.74), the model down (0.407-0.410 vs 0.422-0.427, test R-Top1
    # 0.543-0.547 vs 0.585-0.606; 3 fresh demos, lm_quality_rvq.json).
    tokenizer_preset: str = "tiny"
    retriever_steps: int = 300
    # The language model's recipe: an LMConfig CPU preset (tiny, or tiny_compose: its training context
    # never holds the answer; see LMConfig.PRESETS and benchmarks/lm_compose.py).
    lm_preset: str = "tiny"
    # The language model's few minutes all go to training with retrieved context (stage 2), which is
    # what the demo uses; a context-free stage 1 first is for long budgets (`remogpt train lm`).
    lm_stage1_steps: int = 0
    lm_stage2_steps: int = 500  # the copy head learns to copy in ~400 (loss 0.2); more steps mostly help captions
    # The attribute judge is trained once per data folder and kept beside it (`judge_folder`).
    judge_steps: int = 1500
    judge_generated_clips: int = 2000  # clips it learns from beside the train split (JudgeConfig.supplement_clips)
    judge_selection_clips: int = 1000  # fresh clips that choose its scored attributes (JudgeConfig.selection_clips)
    eval_prompts: int = 32  # test prompts and motions behind the quality table
    examples: int = 4  # test prompts and motions rendered to video
    seed: int = 0
    # Use the second core where a stage leaves it idle: the tokenizer (then the LM's motion codes)
    # trains in a second process while the retriever trains on one thread (each gains only 1.1–1.2×
    # from a second thread), and the videos are drawn in two processes. Off: one job at a time,
    # all threads each.
    parallel: bool = True

    def __post_init__(self) -> None:
        for name in ("tokenizer_steps", "retriever_steps", "judge_steps", "eval_prompts", "examples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.tokenizer_preset not in TOKENIZER_CPU_PRESETS:
            raise ConfigError(f"tokenizer_preset must be one of {', '.join(TOKENIZER_CPU_PRESETS)} (CPU presets), "
                              f"got {self.tokenizer_preset!r}")  # fmt: skip
        if self.lm_preset not in LM_CPU_PRESETS:
            raise ConfigError(
                f"lm_preset must be one of {', '.join(LM_CPU_PRESETS)} (CPU presets), got {self.lm_preset!r}"
            )
        if self.lm_stage1_steps < 0 or self.lm_stage2_steps < 1:
            raise ConfigError("lm_stage1_steps must be ≥ 0 and lm_stage2_steps ≥ 1")


@dataclass
class DemoResult:
    out: Path
    data: Path
    seconds: float
    data_reused: bool
    videos: list[Path] = field(default_factory=list)
    stills: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    reused_stages: list[str] = field(default_factory=list)


@dataclass
class _StageClock:
    """The wall time of consecutive phases (one after the other, so that they add up to the total)
    and this process's peak memory at the end of each; `beside` holds the times of stages that ran
    at the same time inside one phase (the tokenizer and the retriever on one core each)."""

    started: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)
    beside: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._last = self.started

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self.peak_rss_mb[phase] = _peak_rss_mb()
        self._last = now

    def total(self) -> float:
        """Every lap so far and the time since the last one (the end of the run)."""
        self.lap("finish")
        return self._last - self.started


def _peak_rss_mb() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak / 1024**2 if sys.platform == "darwin" else peak / 1024)  # bytes on macOS, KiB on Linux


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """What decides a stage's result: its config, without where the data lives or how progress shows."""
    skip = {"root", "progress_bar"}
    return {k: _settings(v) if isinstance(v, dict) else v for k, v in config.items() if k not in skip}


def run_demo(
    out: Path | str = "runs/demo",
    data: Path | str = "data/embedded",
    clips: int | None = None,
    workers: int | None = None,
    num_examples: int | None = None,
    config: DemoConfig | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """The main job on the embedded data: build and check it, train the three stages, generate and
    caption test prompts, render videos; each stage is reused when it is already in `out`."""
    from remogpt.data import load_split

    timings = _StageClock()
    cfg = config or DemoConfig()
    if num_examples is not None:
        cfg = cfg.replace(examples=num_examples)
    out, data = Path(out), Path(data)
    out.mkdir(parents=True, exist_ok=True)
    synth, report = _data_stage(data, clips, workers or _default_workers(), log)
    q = report.stats.get("quality", {})
    timings.lap("data")

    reused = _train_stages(out, data, synth.data_hash, cfg, timings, log)

    test = load_split(data, "test") or load_split(data, "train")  # a very small build may have no test clips
    judge_dir = _judge_stage(data, synth.data_hash, cfg, log)
    timings.lap("judge")
    key = _generation_key(out, cfg) + f"-judge:{_judge_fingerprint(judge_dir)}"
    shown = _previous_generation(out, key)
    if shown is None:
        log(f"[6/6] generating and captioning {min(cfg.eval_prompts, len(test))} test prompts/motions → {out}")
        compositional = load_split(data, "test_compositional") if (data / "test_compositional.txt").is_file() else []
        shown = _generate_and_caption(out, test, cfg, log, judge_dir, data, compositional)
        shown["generation_key"] = key
    else:
        reused.append("generation")
        log(f"[6/6] generations, captions and videos of this model are already in {out} — reused")
    timings.lap("generate_and_caption")

    learn = synth.stats.get("learnability", {})
    summary = {
        "data": str(data),
        "data_hash": synth.data_hash,
        "data_reused": synth.reused,  # a build already there: the data stage only checked it
        "motions": report.stats.get("clips"),
        "splits": report.stats.get("split_ids"),
        "captions": report.stats.get("captions"),
        "vocabulary": report.stats.get("vocabulary"),
        "check_ok": report.ok,
        "quality": q,
        "learnability_accuracy": learn.get("accuracy"),
        "learnability_chance": learn.get("chance_majority"),
        "config": cfg.to_dict(),
        "reused_stages": reused,
        **shown,
    }
    _print_table(summary, log)
    seconds = timings.total()
    # Consecutive phases: they add up to the total that the last line prints ("finish": the table).
    summary["seconds"] = {**{k: round(v, 2) for k, v in timings.seconds.items()}, "total": round(seconds, 2)}
    summary["seconds_beside"] = {k: round(v, 1) for k, v in timings.beside.items()}  # inside tokenizer+retriever
    # This process's high-water mark after each phase (worker processes are not included).
    summary["peak_rss_mb"] = timings.peak_rss_mb
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    log(f"done in {seconds:.0f} s; watch {shown['videos'][0]} (generated motions beside what was retrieved).")
    videos = [Path(v) for v in shown["videos"]]
    return DemoResult(out, data, seconds, synth.reused, videos, [Path(p) for p in shown["stills"]], summary, reused)


def judge_folder(data: Path | str) -> Path:
    """Where the demo keeps the attribute judge of a data folder: beside it (it depends on the data
    and its labels only, so every demo run on that folder shares it; inside, it would change the data hash)."""
    data = Path(data)
    return data.parent / f"{data.name}-judge"


def _judge_stage(data: Path, data_hash: str, cfg: DemoConfig, log: Callable[[str], None]) -> Path | None:
    """Train the attribute judge of the data folder once (reused by later runs); None without labels."""
    from remogpt.eval.judge import JudgeConfig
    from remogpt.eval.train_judge import train_judge
    from remogpt.training import TrainerConfig

    if not (data / "labels.jsonl").is_file():
        log("      no labels.jsonl in the data folder: attribute accuracy is not measured")
        return None
    judge_cfg = JudgeConfig(max_steps=cfg.judge_steps, supplement_clips=cfg.judge_generated_clips,
                            selection_clips=cfg.judge_selection_clips)  # fmt: skip
    where = judge_folder(data)
    settings = {"judge": judge_cfg.to_dict(), "seed": 0}
    cache = StageCache("retrain", log)
    state = cache.state(where, settings, data_hash)
    log(f"[5/6] attribute judge (reads actions, sides, directions and counts from the joints) → {where}"
        + _SAY_STATE[state])  # fmt: skip
    if state == "done":
        return where
    cache.record(where, settings)
    t0 = time.perf_counter()
    tcfg = TrainerConfig(max_steps=judge_cfg.max_steps, batch_size=judge_cfg.batch_size, seed=0,
                         progress_bar=sys.stderr.isatty(), checkpoint_every_n_steps=250)  # fmt: skip
    judge = train_judge(data, where, judge_cfg, tcfg, resume=state == "resume")
    log(f"      trained in {time.perf_counter() - t0:.0f} s; {len(judge.scored or ())} attributes read at ≥ 90 % "
        "on real validation clips and fresh generated ones are scored")  # fmt: skip
    return where


def _judge_fingerprint(judge_dir: Path | None) -> str:
    from remogpt.artifacts import read_manifest

    return read_manifest(judge_dir).fingerprint if judge_dir is not None else "none"


def _data_stage(data: Path, clips: int | None, workers: int, log: Callable[[str], None]) -> tuple[Any, Any]:
    """Build (or reuse) the embedded data set and check it; a failed check stops the demo."""
    from remogpt.data import check_folder
    from remogpt.data.synth import SynthConfig, progress_bar, synthesize
    from remogpt.errors import RemogptError

    synth_cfg = SynthConfig() if clips is None else SynthConfig(clips=clips)
    log(f"[1/6] embedded data set → {data} ({synth_cfg.clips} clips + mirrors, seed {synth_cfg.seed})")
    with progress_bar(synth_cfg.clips) as bar:
        synth = synthesize(data, synth_cfg, workers=workers, progress=bar)
    if synth.reused:
        log("      reused the finished build already there "
            "(delete the folder or use `remogpt data synth --force` to rebuild)")  # fmt: skip
    else:
        log(f"      built {synth.clips_written} motions in {synth.seconds:.1f} s "
            f"({synth.clips_per_second:.0f} motions/s)")  # fmt: skip
    report = check_folder(data, workers=workers)
    q = report.stats.get("quality", {})
    log(f"      data check: {'OK' if report.ok else 'FAILED'} — {report.stats.get('clips', 0)} motions, "
        f"{report.stats.get('captions', 0)} captions, "
        f"foot skating {q.get('foot_skating_mean', float('nan')):.4f} m/frame")  # fmt: skip
    if not report.ok:
        log(report.format(max_problems=20))
        raise RemogptError(f"{data}: the data check failed; see the problems above")
    return synth, report


def _train_stages(out: Path, data: Path, data_hash: str, cfg: DemoConfig, timings: _StageClock,
                  log: Callable[[str], None]) -> list[str]:  # fmt: skip
    """Tokenizer, retriever (+ database) and LM of the run folder, each trained unless already there;
    returns the names of those reused.

    When both the tokenizer and the retriever are to be trained on a machine with two cores or more,
    they train side by side, one core each (the retriever gains only 1.1–1.4× from a second thread),
    and the tokenizer takes both cores from the step where the retriever is expected to be done
    (`_handoff_step`), waiting there for it if need be."""
    progress = sys.stderr.isatty()
    reused: list[str] = []
    cache = StageCache("retrain", log)
    to_train = [name for name, (_, settings) in (("tokenizer", _tokenizer_config(data, cfg)),
                                                ("retriever", _retriever_config(data, cfg)))
                if cache.state(out / name, settings, data_hash) != "done"]  # fmt: skip
    two_cores = cfg.parallel and (os.cpu_count() or 1) >= 2
    job: tuple[Callable[..., tuple[list[str], float]], tuple] | None
    if two_cores and to_train == ["tokenizer", "retriever"]:
        log(f"[2/6] motion tokenizer: trains on one core beside the retriever, on both from step "
            f"{_handoff_step(cfg)} (its lines follow the retriever's)")  # fmt: skip
        job = (_tokenizer_and_codes_job, (out, data, data_hash, cfg))
    else:
        if _tokenizer_stage(out, data, data_hash, cfg, progress, log):
            reused.append("tokenizer")
        timings.lap("tokenizer")
        job = (_codes_job, (out, data)) if two_cores else None  # the LM's codes, made beside the retriever
    retriever, done, job_seconds = _retriever_stage(out, data, data_hash, cfg, progress, log, job, timings)
    if done:
        reused.append("retriever")
    if "tokenizer" in timings.seconds:
        timings.beside.pop("retriever", None)  # one after the other: each is a phase of its own
        timings.lap("retriever")
    else:  # trained beside the retriever: both together, and each one's own time
        timings.beside["tokenizer"] = job_seconds
        timings.lap("tokenizer+retriever")
    if _lm_stage(out, data, data_hash, cfg, retriever.fingerprint, progress, log):
        reused.append("lm")
    timings.lap("lm")
    return reused


#: Seconds per step on one core of the reference machine (2 cores), for the hand-off estimate: the
#: retriever 0.36 (300 steps in 106–109 s) plus 17 s for its index, the tokenizer 0.19; the worker
#: process starts about 10 s after the retriever (spawn, imports, loading the clips).
_RETRIEVER_STEP_S, _INDEX_S, _WORKER_START_S, _TOKENIZER_STEP_S = 0.36, 17.0, 10.0, 0.19


def _handoff_step(cfg: DemoConfig) -> int:
    """The tokenizer step at which the retriever beside it should be done, so the tokenizer can take
    both cores; a fixed step, so that the trained weights do not depend on the timing."""
    expected = (_RETRIEVER_STEP_S * cfg.retriever_steps + _INDEX_S - _WORKER_START_S) / _TOKENIZER_STEP_S
    return min(cfg.tokenizer_steps, round(expected))


def _codes_job(out: Path, data: Path, core_freed: Any = None) -> tuple[list[str], float]:
    """The LM's motion codes of every clip (a worker-process job); returns what to log and its seconds.
    `core_freed` is not waited for: the codes take far less time than the retriever beside them."""
    from remogpt.artifacts import RunFolder
    from remogpt.tokenizer import tokenize_folder

    t0 = time.perf_counter()
    made = tokenize_folder(out / "tokenizer", data, RunFolder(out).codes)
    cores = "both cores" if core_freed is not None and core_freed.is_set() else "the other core"
    line = f"      motion codes of {made.clips} clips made beside it, on {cores} ({made.seconds:.0f} s)"
    return [line], time.perf_counter() - t0


def _tokenizer_and_codes_job(out: Path, data: Path, data_hash: str, cfg: DemoConfig,
                             core_freed: Any) -> tuple[list[str], float]:  # fmt: skip
    """Train the tokenizer on this process's one thread, and on two from the hand-off step once
    `core_freed` is set; then make the codes (a worker-process job). Returns lines to log and seconds."""
    import torch

    from remogpt.training import more_threads_at

    t0 = time.perf_counter()
    lines: list[str] = []
    handoff = more_threads_at(_handoff_step(cfg), core_freed, threads=2)
    _tokenizer_stage(out, data, data_hash, cfg, False, lines.append, callbacks=[handoff])
    if handoff.switched_at is not None:
        lines.append(f"      took both cores at step {handoff.switched_at} (waited {handoff.waited_s:.0f} s there "
                     "for the retriever)")  # fmt: skip
    core_freed.wait()  # the codes too run on both cores once the retriever is done
    torch.set_num_threads(2)
    more, _ = _codes_job(out, data, core_freed)
    return lines + more, time.perf_counter() - t0


_SAY_STATE = {"done": " — reused", "resume": " — resuming", "new": ""}


def _tokenizer_config(data: Path, cfg: DemoConfig, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """The demo's tokenizer training config and the settings that decide whether it can be reused."""
    from remogpt.tokenizer import TokenizerTrainConfig

    tok_cfg = TokenizerTrainConfig.preset(
        cfg.tokenizer_preset, data={"root": str(data)},
        trainer={"max_steps": cfg.tokenizer_steps, "progress_bar": progress, "seed": cfg.seed,
                 "val_every_n_steps": max(cfg.tokenizer_steps, 1)},
        lr_milestones=[s for s in (int(0.8 * cfg.tokenizer_steps),) if s > 0],
    )  # fmt: skip
    return tok_cfg, _settings(tok_cfg.to_dict())


def _tokenizer_stage(out: Path, data: Path, data_hash: str, cfg: DemoConfig, progress: bool,
                     log: Callable[[str], None], callbacks: list[Any] | None = None) -> bool:  # fmt: skip
    """Train (or resume) the tokenizer unless it is there with these settings; True when reused."""
    from remogpt.tokenizer import train_tokenizer
    from remogpt.training import last_checkpoint

    tok_cfg, settings = _tokenizer_config(data, cfg, progress)
    cache = StageCache("retrain", log)
    state = cache.state(out / "tokenizer", settings, data_hash)
    log(
        f"[2/6] motion tokenizer (VQ-VAE, {cfg.tokenizer_preset}, {cfg.tokenizer_steps} steps) → {out / 'tokenizer'}"
        + _SAY_STATE[state]
    )
    if state == "done":
        return True
    cache.record(out / "tokenizer", settings)
    resume = state == "resume" and last_checkpoint(out / "tokenizer") is not None
    res = train_tokenizer(tok_cfg, out, resume=resume, callbacks=callbacks)
    _stop_if_interrupted(res.artifact is None, out)
    mpjpe = res.metrics.get("val/mpjpe_aligned_mm")
    log(f"      {res.steps} steps in {res.seconds:.0f} s ({res.windows_per_second or 0:.0f} windows/s)"
        + (f"; validation MPJPE {mpjpe:.1f} mm (aligned)" if mpjpe is not None else ""))  # fmt: skip
    return False


def _retriever_config(data: Path, cfg: DemoConfig) -> tuple[Any, dict[str, Any]]:
    """The demo's retriever config and the settings that decide whether it can be reused."""
    from remogpt.retrieval import RetrieverConfig

    ret_cfg = RetrieverConfig.preset("tiny", data={"root": str(data)},
                                     trainer={"max_steps": cfg.retriever_steps, "seed": cfg.seed})  # fmt: skip
    return ret_cfg, _settings(ret_cfg.to_dict())


def _retriever_stage(out: Path, data: Path, data_hash: str, cfg: DemoConfig, progress: bool,
                     log: Callable[[str], None], beside: tuple[Callable[..., tuple[list[str], float]], tuple] | None,
                     timings: _StageClock) -> tuple[Any, bool, float]:  # fmt: skip
    """The retriever with its train-split database (trained unless there), whether it was reused, and
    the seconds of the job beside it. `beside` (a job and its arguments, returning lines to log and
    its seconds) runs in a one-thread worker process while the retriever trains on one thread here;
    once the retriever is indexed, the job is told that this core is free."""
    from remogpt.retrieval import encode_split_captions, train_retriever
    from remogpt.training import last_checkpoint

    t0 = time.perf_counter()
    ret_cfg, settings = _retriever_config(data, cfg)
    cache = StageCache("retrain", log)
    state = cache.state(out / "retriever", settings, data_hash)
    log(f"[3/6] PL-TMR retriever (6 part encoders + MiniLM, {cfg.retriever_steps} steps) → {out / 'retriever'}"
        + _SAY_STATE[state])  # fmt: skip
    if state == "done":
        retriever = _indexed_retriever(out, data, log)
        timings.beside["retriever"] = time.perf_counter() - t0
        return retriever, True, 0.0
    cache.record(out / "retriever", settings)
    t1 = time.perf_counter()
    new = encode_split_captions(ret_cfg, progress=progress)  # on every thread (MiniLM gains 2.0× from 2)
    if new:
        log(f"      {new} captions encoded with the frozen MiniLM in {time.perf_counter() - t1:.0f} s "
            "(cached for later runs)")  # fmt: skip
    job_seconds = 0.0
    with _beside(beside) as job:
        resume = state == "resume" and last_checkpoint(out / "retriever") is not None
        res = train_retriever(ret_cfg, out, resume=resume, progress=progress and job is None)
        _stop_if_interrupted(bool(res.interrupted), out)
        log(f"      {res.steps} steps in {res.seconds:.0f} s")
        retriever = _indexed_retriever(out, data, log)
        timings.beside["retriever"] = time.perf_counter() - t0
        if job is not None:
            lines, job_seconds = job.result()  # an error of the job (an interrupted tokenizer) surfaces here
            for line in lines:
                log(line)
    return retriever, False, job_seconds


def _indexed_retriever(out: Path, data: Path, log: Callable[[str], None]) -> Any:
    from remogpt.retrieval import Retriever

    retriever = Retriever.from_pretrained(out, data_root=data)
    if retriever.database is None:
        t0 = time.perf_counter()
        retriever.build_index(data, "train")
        log(f"      indexed the train split (motion and caption embeddings, faiss) in {time.perf_counter() - t0:.0f} s")
    return retriever


def _lm_stage(out: Path, data: Path, data_hash: str, cfg: DemoConfig, retriever_fingerprint: str, progress: bool,
              log: Callable[[str], None]) -> bool:  # fmt: skip
    """Train (or resume) the language model unless it is there for these stages and settings; True when reused."""
    from remogpt.lm import LMConfig, train_lm
    from remogpt.tokenizer import MotionTokenizer

    lm_cfg = LMConfig.preset(cfg.lm_preset, stage1_steps=cfg.lm_stage1_steps, stage2_steps=cfg.lm_stage2_steps,
                             data={"root": str(data)}, trainer={"progress_bar": progress, "seed": cfg.seed,
                             "checkpoint_every_n_steps": 100, "log_every_n_steps": 25})  # fmt: skip
    lm_settings = {"lm": _settings(fingerprint_config("lm", lm_cfg.to_dict())), "seed": cfg.seed,
                   "retriever": retriever_fingerprint,
                   "tokenizer": MotionTokenizer.from_pretrained(out).fingerprint}  # fmt: skip
    cache = StageCache("retrain", log)
    lm_state = cache.state(out / "lm", lm_settings, data_hash)
    log(f"[4/6] ReMoGPT language model (T5 {lm_cfg.num_layers}+{lm_cfg.num_decoder_layers} layers, "
        f"d={lm_cfg.d_model}, {cfg.lm_preset}; {cfg.lm_stage1_steps} + {cfg.lm_stage2_steps} steps) → {out / 'lm'}"
        + _SAY_STATE[lm_state])  # fmt: skip
    if lm_state == "done":
        return True
    cache.record(out / "lm", lm_settings)
    res = train_lm(lm_cfg, out, lm_state == "resume", log=log)
    log(f"      trained in {res.seconds:.0f} s")
    return False


@dataclass
class _SideJob:
    """A job in a one-thread worker process, and the event that tells it this process's core is free."""

    future: Future
    core_freed: Any  # a multiprocessing Manager's Event

    def result(self) -> Any:
        """Hand this process's core to the job, then wait for its result."""
        self.core_freed.set()
        return self.future.result()


@contextmanager
def _beside(job: tuple[Callable[..., Any], tuple] | None) -> Iterator[_SideJob | None]:
    """Run `job` (a function and its arguments; the core-freed event is passed last) in a one-thread
    worker process while the body runs on one thread here; yields it, or None when there is no job.
    The event is set when the body ends in any way, so the worker never waits for a core forever."""
    if job is None:
        yield None
        return
    from multiprocessing import get_context

    from remogpt.workers import torch_threads, worker_pool

    # The manager outlives the worker, which may still ask for the event as it ends.
    with get_context("spawn").Manager() as manager, worker_pool(1) as pool:
        side = _SideJob(pool.submit(job[0], *job[1], core_freed := manager.Event()), core_freed)
        try:
            with torch_threads(1):
                yield side
        finally:
            core_freed.set()


def _generation_key(out: Path, cfg: DemoConfig) -> str:
    """Identifies what step 5 shows: the trained LM's weights and what the demo asks of it."""
    import hashlib

    from remogpt.artifacts import read_manifest

    weights = read_manifest(out / "lm").extra.get("weights_sha256", "")
    return hashlib.sha256(json.dumps([weights, cfg.to_dict(), NEW_PROMPT]).encode()).hexdigest()[:16]


def _previous_generation(out: Path, key: str) -> dict[str, Any] | None:
    """The previous run's step-5 results, when they belong to the same model and settings and its
    videos are still there."""
    try:
        previous = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if previous.get("generation_key") != key or not all(Path(v).is_file() for v in previous.get("videos", [])):
        return None
    names = ("videos", "stills", "new_prompt", "generation_examples", "caption_examples", "results", "generation_key")
    return {n: previous[n] for n in names if n in previous}


def _stop_if_interrupted(interrupted: bool, out: Path) -> None:
    if interrupted:
        from remogpt.errors import RemogptError

        raise RemogptError(f"training interrupted; run `remogpt demo --out {out}` again to resume where it stopped")


def _generate_and_caption(out: Path, test: list, cfg: DemoConfig, log: Callable[[str], None],
                          judge_dir: Path | None = None, data: Path | None = None,
                          compositional: list | None = None) -> dict[str, Any]:  # fmt: skip
    """Generation and captioning on test data (never seen in training), videos, and the quality table."""
    import torch

    from remogpt.eval import caption_metrics
    from remogpt.lm import ReMoGPT

    torch.manual_seed(cfg.seed)
    model = ReMoGPT.from_pretrained(out)
    rng = np.random.default_rng(cfg.seed)
    clips = [test[i] for i in sorted(rng.choice(len(test), size=min(cfg.eval_prompts, len(test)), replace=False))]
    prompts = [c.captions[0].text for c in clips]

    t0 = time.perf_counter()
    generated = model.generate_motion(prompts, num_samples=1, seed=cfg.seed)
    gen_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    captions = model.caption([c.features for c in clips])
    cap_seconds = time.perf_counter() - t0
    new = model.generate_motion([NEW_PROMPT], num_samples=2, seed=cfg.seed)

    # Quality, measured with the run's own PL-TMR embeddings (a quick check; `remogpt eval` uses the
    # separately trained matching evaluator): does each generated motion match its own prompt best?
    retriever = model.retriever
    text_emb = retriever.embed_text(prompts)

    def r1(motions: list[np.ndarray]) -> float:
        emb = retriever.embed_motion(motions)
        sim = text_emb @ emb.T
        return float(np.mean(np.argmax(sim, axis=1) == np.arange(len(prompts))))

    real_r1 = r1([c.features for c in clips])
    gen_r1 = r1([g.features for g in generated])
    # The top-1 retrieved motion of each direction in the prompt: what a copy of the context scores.
    copy_r1 = {d: r1([retriever.motion(i) for i in ids]) for d in ("t2m", "t2t")
               if None not in (ids := [_first_reference(g.references, d) for g in generated])}  # fmt: skip
    references = [[cap.text for cap in c.captions] for c in clips]
    caps = caption_metrics(captions, references, bertscore=False)
    m2t_top1 = [r.captions[0] for r in retriever.search(motion=[c.features for c in clips], k=1, target="text")]
    copy_caps = caption_metrics(m2t_top1, references, bertscore=False)
    words = {"test": _words_check(model, clips, generated, judge_dir, data)}
    if compositional:
        size = min(cfg.eval_prompts, len(compositional))
        comp = [compositional[i] for i in sorted(rng.choice(len(compositional), size=size, replace=False))]
        comp_gen = model.generate_motion([c.captions[0].text for c in comp], num_samples=1, seed=cfg.seed)
        words["test_compositional"] = _words_check(model, comp, comp_gen, judge_dir, data)
    problems = {k: v for k, v in model.stats.items() if k != "sequences"}

    shown = min(cfg.examples, len(clips))
    # Beside each generated motion, the retrieved pair the model learnt to copy (its gold slot).
    copied = "t2t" if model.cfg.retrieval.gold_slot == "same" else "t2m"
    videos, stills = _render_examples(out, retriever, clips[:shown], generated[:shown], captions[:shown], new,
                                      cfg.parallel, copied)  # fmt: skip
    examples = [{"prompt": g.text, "frames": len(g.features), "retrieved": g.references, "problem": g.problem}
                for g in generated[:shown]]  # fmt: skip
    caption_examples = [{"id": c.id, "real": c.captions[0].text, "generated": t}
                        for c, t in zip(clips[:shown], captions[:shown], strict=True)]  # fmt: skip
    n = len(clips)
    return {
        "videos": [str(v) for v in videos],
        "stills": [str(s) for s in stills],
        "new_prompt": {"text": NEW_PROMPT, "frames": [len(g.features) for g in new], "retrieved": new[0].references},
        "generation_examples": examples,
        "caption_examples": caption_examples,
        "results": {
            "prompts": n,
            "t2m_R1_real": real_r1,
            "t2m_R1_generated": gen_r1,
            "t2m_R1_retrieved_copy": copy_r1.get("t2m"),  # text→motion retrieval's top-1
            "t2m_R1_retrieved_copy_t2t": copy_r1.get("t2t"),  # the nearest training caption's motion
            "m2t_generated": {k: v for k, v in caps.items() if isinstance(v, float)},
            "m2t_retrieved_copy": {k: v for k, v in copy_caps.items() if isinstance(v, float)},
            "words": words,
            "invalid_sequences": problems,
            "seconds_per_prompt": gen_seconds / n,
            "seconds_per_caption": cap_seconds / n,
        },
    }


def _words_check(model: Any, clips: list, generated: list, judge_dir: Path | None,
                 data: Path | None) -> dict[str, Any]:  # fmt: skip
    """What the words say, checked from the motions: the model's copy rate and, with a judge, the attribute
    accuracy of the generated motions, the real clips, their tokenizer round trip and the two copies."""
    from remogpt.eval.metrics import copy_rate

    contexts = [[model.database_codes(r["id"]) for r in g.references] for g in generated]
    rate = copy_rate([g.codes for g in generated], contexts) if any(contexts) else None
    out: dict[str, Any] = {"prompts": len(clips), "copy_rate": rate, "attributes": None}
    if judge_dir is None or data is None:
        return out
    from remogpt.eval.judge import AttributeJudge, LabelBook

    judge, book = AttributeJudge.from_pretrained(judge_dir), LabelBook.of(data)
    keep = [i for i, c in enumerate(clips) if book.phases(c.id) is not None]
    expected = [book.phases(clips[i].id) for i in keep]
    rows = {
        "generated": [generated[i].features for i in keep],
        "real": [clips[i].features for i in keep],
        "real_roundtrip": [model.tokenizer.reconstruct(clips[i].features, crop=True,
                                                       layers=model.tokenizer.num_quantizers).cpu().numpy()
                           for i in keep],
    }
    for direction in ("t2m", "t2t"):
        ids = [_first_reference(generated[i].references, direction) for i in keep]
        if None not in ids:
            rows[f"copy_{direction}"] = [model.retriever.motion(sample_id) for sample_id in ids]
    out["attributes"] = {}
    for row, motions in rows.items():
        acc = judge.accuracy(expected, motions)
        out["attributes"][row] = {"attributes": acc["attributes"], "all_correct": acc["all_correct"]}
    return out


def _first_reference(references: list[dict[str, Any]], direction: str) -> int | None:
    return next((r["id"] for r in references if r["direction"] == direction), None)


def _render_examples(out: Path, retriever: Any, clips: list, generated: list, captions: list[str], new: list,
                     parallel: bool, copied: str = "t2m") -> tuple[list[Path], list[Path]]:  # fmt: skip
    """The demo's videos (the new sentence, each example beside its retrieved and real motion, the
    captioned clips) and a still of each generated example; drawn in two processes when `parallel`
    (matplotlib draws on one core). The retrieved motion shown is the first of direction `copied`."""
    from remogpt.motion.render import render_grid, save_still

    cell = {"size_per_cell": (300, 300)}
    videos: list[tuple[Callable[..., Path], tuple, dict]] = [
        (render_grid, ([g.features for g in new], out / "new_prompt.mp4"),
         {"captions": [NEW_PROMPT] * len(new), "titles": ["sample 1", "sample 2"], **cell}),
    ]  # fmt: skip
    for n, (clip, g) in enumerate(zip(clips, generated, strict=True)):
        ref = next((r for r in g.references if r["direction"] == copied), g.references[0])
        motions = [g.features, retriever.motion(ref["id"]), clip.features]
        titles = ["generated (ReMoGPT)", f"retrieved ({ref['direction']})", "real test clip"]
        labels = {"captions": [g.text, ref["caption"], clip.captions[0].text], "titles": titles, **cell}
        videos.append((render_grid, (motions, out / f"generated_{n}.mp4"), labels))
    videos.append((render_grid, ([c.features for c in clips], out / "captioned.mp4"),
                   {"captions": [f"ReMoGPT: {t}" for t in captions],
                    "titles": [f"real: {c.captions[0].text}"[:60] for c in clips], **cell}))  # fmt: skip
    videos.append(_preview_job(out, retriever, new[0]))
    still = {"title": "generated (ReMoGPT)"}
    stills = [(save_still, (g.features, out / f"generated_{n}.png"), {"caption": g.text, **still})
              for n, g in enumerate(generated)]  # fmt: skip
    jobs = videos + stills
    if parallel and (os.cpu_count() or 1) >= 2 and len(jobs) > 2:
        from remogpt.workers import worker_pool

        with worker_pool(2) as pool:
            paths = list(pool.map(_call, jobs))
    else:
        paths = [_call(job) for job in jobs]
    return paths[: len(videos)], paths[len(videos) :]


#: The small animated GIF of the new sentence beside what was retrieved for it (the README shows it).
PREVIEW_GIF = "preview.gif"


def _preview_job(out: Path, retriever: Any, generated: Any) -> tuple[Callable[..., Path], tuple, dict]:
    """The new sentence's first sample beside its top text→motion and text→text references: joints at
    10 frames per second and a still camera, so that the GIF stays under a megabyte."""
    from remogpt.motion import features_to_joints
    from remogpt.motion.render import render_grid

    motions, titles, captions = [generated.features], ["generated (ReMoGPT)"], [generated.text]
    for direction in ("t2m", "t2t"):
        ref = next((r for r in generated.references if r["direction"] == direction), None)
        if ref is not None:
            motions.append(retriever.motion(ref["id"]))
            titles.append(f"retrieved {direction.replace('2', '→')}")
            captions.append(ref["caption"])
    joints = [np.asarray(features_to_joints(m))[::2] for m in motions]  # 20 → 10 fps
    return (render_grid, (joints, out / PREVIEW_GIF),
            {"captions": captions, "titles": titles, "fps": 10.0, "size_per_cell": (200, 200),
             "camera": "static", "show_frame_counter": False})  # fmt: skip


def _call(job: tuple[Callable[..., Any], tuple, dict]) -> Any:
    fn, args, kwargs = job
    return fn(*args, **kwargs)


def _copies(results: dict[str, Any]) -> str:
    shares = [(name, results.get(key)) for name, key in (("text→motion", "t2m_R1_retrieved_copy"),
                                                          ("text→text", "t2m_R1_retrieved_copy_t2t"))]  # fmt: skip
    return " / ".join(f"{name} {100 * v:.0f}%" for name, v in shares if v is not None) or "–"


def _pct(share: float | None) -> str:
    """A share as a whole percentage; "–" where the judge scored nothing (too few trained attributes)."""
    return "–" if share is None else f"{100 * share:.0f}%"


def _words_rows(words: dict[str, Any]) -> list[tuple[str, str]]:
    """The quality table's rows of attribute accuracy and copy rate, per split."""
    rows = []
    names = {"test": "test", "test_compositional": "unseen compositions"}
    for split, w in words.items():
        if w.get("attributes"):
            a = w["attributes"]
            copies = " / ".join(f"{d} {_pct(a[f'copy_{d}']['attributes'])}" for d in ("t2m", "t2t")
                                if f"copy_{d}" in a)  # fmt: skip
            rows.append(
                (
                    f"attributes found, {w['prompts']} {names.get(split, split)} prompts**",
                    f"generated {_pct(a['generated']['attributes'])}  | real clips "
                    f"{_pct(a['real']['attributes'])} (after the tokenizer "
                    f"{_pct(a['real_roundtrip']['attributes'])})  | top-1 retrieved motion {copies or '–'}",
                )
            )
        if w.get("copy_rate"):
            c = w["copy_rate"]
            rows.append(
                (
                    f"copy rate, {names.get(split, split)} prompts",
                    f"{_pct(c['identical'])} of sequences are a retrieved motion's codes; "
                    f"{_pct(c['same_offset'])} of codes equal one at the same offset",
                )
            )
    return rows


def _print_table(summary: dict, log: Callable[[str], None]) -> None:
    q = summary["quality"] or {}
    r = summary["results"]
    g, c = r["m2t_generated"], r["m2t_retrieved_copy"]
    rows = [
        ("data", f"{summary['motions']} motions (train/val/test "
                 f"{' / '.join(str(v) for v in (summary['splits'] or {}).values())}), check "
                 f"{'OK' if summary['check_ok'] else 'FAILED'}, foot skating "
                 f"{q.get('foot_skating_mean', float('nan')):.4f} m/frame"),
        (f"text→motion R@1 among {r['prompts']} test prompts*",
         f"generated {100 * r['t2m_R1_generated']:.0f}%  | real clips {100 * r['t2m_R1_real']:.0f}%  "
         f"| top-1 retrieved motion {_copies(r)}  | chance {100 / r['prompts']:.0f}%"),
        ("motion→text BLEU@4 / ROUGE-L / CIDEr",
         f"generated {g['BLEU@4']:.3f} / {g['ROUGE_L']:.3f} / {g['CIDEr']:.3f}  | top-1 retrieved caption "
         f"{c['BLEU@4']:.3f} / {c['ROUGE_L']:.3f} / {c['CIDEr']:.3f}"),
        *_words_rows(r.get("words") or {}),
        ("invalid generated sequences", ", ".join(f"{k} ×{v}" for k, v in r["invalid_sequences"].items()) or "none"),
        ("time per prompt / caption (CPU, batch)",
         f"{r['seconds_per_prompt']:.2f} s / {r['seconds_per_caption']:.2f} s"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    log("")
    for k, v in rows:
        log(f"  {k.ljust(width)}  {v}")
    log("  * scored with the run's own PL-TMR embeddings (a quick check; `remogpt eval t2m` uses the evaluator)")
    if any((w or {}).get("attributes") for w in (r.get("words") or {}).values()):
        log(
            "  ** per phase, in order: actions, sides, directions and counts, read from the joints by the attribute "
            "judge; unseen compositions: the test_compositional split, whose compositions no training clip has"
        )
    log("")
    log(f"  new sentence: {summary['new_prompt']['text']!r} → {summary['new_prompt']['frames']} frames")
    for ex in summary["generation_examples"]:
        log(f"  generated {ex['frames']:3d} frames for: {ex['prompt']}")
    for ex in summary["caption_examples"]:
        log(f"  caption of {ex['id']}: {ex['generated']!r}  (real: {ex['real']!r})")
    log("")
