"""The paper's ablations on one data set: Table 1 (retrievers), Table 6 (retrieval modality) and
Table 8 (rare motions), over several seeds, resumable, written to one Markdown file and a JSON.

    from remogpt.eval.ablation import AblationConfig, run_ablation
    run_ablation("data/embedded", "runs/ablation", seeds=(0, 1))

What is trained (everything reused from `work_dir` when already there with the same settings):
- one motion tokenizer shared by every seed and variant, and one matching evaluator (trained once,
  separately from everything it judges), unless paths to existing ones are given;
- per seed: a PL-TMR and a whole-body retriever (Table 1), one stage-1 language model (no context,
  its own run `runs/stage1`) copied into every variant, and per variant a stage 2 with its retrieval
  setting: none, t2t, t2m, both k = 1, both k = 2, both with the whole-body retriever (Table 6);
- evaluations: `eval_t2m` (and `eval_m2t`) per variant, `eval_retrieval` per retriever, and
  `eval_rare` of both (k = 1) against none (Table 8).

Layout of `work_dir`: `ablation.json` (settings and wall time of every piece), `shared/tokenizer`,
`shared/codes`, `evaluator/`, `seed<S>/retrievers/{pl,wb}/retriever`, `seed<S>/runs/<variant>/` (links to
the shared tokenizer, codes and the seed's retriever, plus its own `lm/`), `seed<S>/results/*.json`.
A piece is skipped when its artifact or result is there and was made with the same settings; an
artifact made with other settings is refused with a message (never silently overwritten), and an
interrupted training resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remogpt.config import ConfigBase, ConfigError
from remogpt.errors import RemogptError
from remogpt.eval.runners import COPY_M2T as COPY_M2T_ROW
from remogpt.eval.runners import COPY_T2M as COPY_T2M_ROW
from remogpt.eval.runners import COPY_T2T as COPY_T2T_ROW
from remogpt.eval.runners import TOKENIZER_ROUNDTRIP

__all__ = [
    "PAPER_CLAIMS",
    "VARIANTS",
    "AblationConfig",
    "AblationError",
    "ablation_markdown",
    "claim_verdict",
    "paired_difference",
    "run_ablation",
]

MANIFEST = "ablation.json"


class AblationError(RemogptError, RuntimeError):
    """A work folder that cannot be continued (other settings, an interrupted training); says what to do."""


@dataclasses.dataclass(frozen=True)
class Variant:
    retriever: str  # "pl" or "wb"
    modality: str
    k: int
    label: str  # Table 6's "Retrieval Modality" column
    samples: str  # Table 6's "#Retrieved Samples" column


#: Table 6's rows, in the paper's order.
VARIANTS: dict[str, Variant] = {
    "none": Variant("pl", "none", 1, "–", "–"),
    "t2t": Variant("pl", "t2t", 1, "T2T or M2M", "1"),
    "t2m": Variant("pl", "t2m", 1, "T2M or M2T", "1"),
    "both_k1": Variant("pl", "both", 1, "Both", "1+1"),
    "both_k2": Variant("pl", "both", 2, "Both", "2+2"),
    "both_wb": Variant("wb", "both", 1, "Both (whole-body retriever)", "1+1"),
}
RETRIEVER_LABELS = {"pl": "PL-TMR", "wb": "whole-body (TMR-style)"}
RARE_ROW, RARE_BASELINE_ROW = "ReMoGPT (both, 1+1)", "no retrieval"  # Table 8's two rows


@dataclasses.dataclass
class AblationConfig(ConfigBase):
    """Budgets of `run_ablation`. Models are the stages' `tiny` presets with these step counts, then the
    override mappings (same keys as each stage's YAML config) on top. The default evaluation is a
    reduced protocol that fits CPUs (5 repeats, MModality 100 texts × 10 generations with 5 pairs);
    the `protocol` preset is the paper's (20 repeats, 100 × 30 with 10 pairs)."""

    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1])
    variants: list[str] = dataclasses.field(default_factory=lambda: list(VARIANTS))  # in training order
    split: str = "test"  # evaluated split (Tables 1 and 6)
    rare_split: str | None = None  # Table 8's split (None: the same)
    # Training budgets (optimiser steps) and model overrides.
    tokenizer_steps: int = 1500
    evaluator_steps: int | None = None  # None: the evaluator preset's own
    retriever_steps: int = 400
    lm_stage1_steps: int = 300
    lm_stage2_steps: int = 700
    tokenizer: dict[str, Any] = dataclasses.field(default_factory=dict)  # TokenizerTrainConfig overrides
    evaluator: dict[str, Any] = dataclasses.field(default_factory=dict)  # EvaluatorConfig overrides
    retriever: dict[str, Any] = dataclasses.field(default_factory=dict)  # RetrieverConfig overrides
    lm: dict[str, Any] = dataclasses.field(default_factory=dict)  # LMConfig overrides
    accelerator: str = "auto"
    devices: str = "auto"
    threads: int | None = None  # torch CPU threads (None: leave as is)
    # Text-to-motion evaluation (Table 6).
    repeats: int = 5
    num_prompts: int | None = None  # samples of the split per repeat (None: all)
    diversity_times: int = 300
    mmodality: bool = True
    mm_texts: int = 100
    mm_generations: int = 10
    mm_times: int = 5
    # Motion-to-text columns of Table 6.
    m2t: bool = True
    m2t_prompts: int | None = None
    m2t_repeats: int = 20  # R-Precision shuffles (captions are generated once)
    bertscore: bool = False
    # Tables 1 and 8.
    table1: bool = True
    text_to_text: bool = True
    rare: bool = True
    rare_repeats: int = 1
    rare_num_ranges: int = 10

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "protocol": {"repeats": 20, "mm_generations": 30, "mm_times": 10, "rare_repeats": 20, "bertscore": True},
    }

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})")
        if self.evaluator_steps is not None and self.evaluator_steps < 1:
            raise ConfigError(f"evaluator_steps must be ≥ 1, got {self.evaluator_steps}")
        for name in ("tokenizer_steps", "retriever_steps", "lm_stage2_steps", "repeats",
                     "diversity_times", "mm_texts", "m2t_repeats", "rare_repeats", "rare_num_ranges"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lm_stage1_steps < 0:
            raise ConfigError(f"lm_stage1_steps must be ≥ 0, got {self.lm_stage1_steps}")
        if self.mmodality and self.mm_generations <= self.mm_times:
            raise ConfigError(f"mm_generations ({self.mm_generations}) must exceed mm_times ({self.mm_times})")


# ----------------------------------------------------------------------------- bookkeeping


def _key(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _merge(base: dict[str, Any], *updates: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of plain mappings (later wins; lists are replaced, not merged)."""
    out = json.loads(json.dumps(base, default=str))
    for upd in updates:
        for k, v in upd.items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = _merge(out[k], v)
            else:
                out[k] = json.loads(json.dumps(v, default=str))
    return out


class _State:
    """`work_dir/ablation.json`: each piece's settings key, status and wall time (written atomically).

    Several processes may share one work folder (e.g. one per seed, `--seed 0` and `--seed 1` side by
    side, one core each): every write takes a lock on the folder, re-reads the file and changes only
    this process's own entries, so that no process loses another's pieces.
    """

    def __init__(self, work: Path) -> None:
        self.path = work / MANIFEST
        self.lock_path = work / (MANIFEST + ".lock")
        self.data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pieces": {}}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise AblationError(f"{self.path}: not valid JSON ({exc}); delete it to start over") from None
        data.setdefault("pieces", {})
        return data

    def update(self, pieces: dict[str, Any] | None = None, **top: Any) -> None:
        """Set these pieces and top-level entries, under the lock, on top of what is on disk now."""
        from remogpt.eval.reports import write_json

        try:
            import fcntl
        except ImportError:  # Windows: no lock (run one process per work folder there)
            fcntl = None  # type: ignore[assignment]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                data["pieces"].update(pieces or {})
                data.update(top)
                write_json(self.path, data)
                self.data = data
            finally:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def pieces(self) -> dict[str, Any]:
        """Every process's pieces, as on disk now."""
        self.data = self._read()
        return self.data["pieces"]

    def piece(self, name: str) -> dict[str, Any] | None:
        return self.data["pieces"].get(name)

    def start(self, name: str, key: str) -> float:
        self.update({name: {"key": key, "status": "running"}})
        return time.perf_counter()

    def finish(self, name: str, key: str, started: float, **extra: Any) -> None:
        self.update({name: {"key": key, "status": "done", "seconds": round(time.perf_counter() - started, 1),
                            **extra}})  # fmt: skip


def _artifact(state: _State, name: str, key: str, path: Path, make: Callable[[], None], log: Callable[[str], None],
              ready: Callable[[], bool] | None = None) -> None:  # fmt: skip
    """Train a stage unless it is there with the same settings; refuse one made with other settings."""
    from remogpt.artifacts import ArtifactError, StageCache

    finished = (lambda _d: ready()) if ready is not None else None
    try:
        status = StageCache("refuse", log).state(path, {"ablation_key": key}, finished=finished)
    except ArtifactError as exc:
        raise AblationError(f"{exc} ({name})") from None
    if status == "done":
        log(f"  {name}: reused ({path})")
        return
    log(f"  {name}: training → {path}" + (" (resuming)" if status == "resume" else ""))
    started = state.start(name, key)
    StageCache.record(path, {"ablation_key": key})
    make()
    if not (ready or (lambda: (path / "manifest.json").is_file()))():
        raise AblationError(f"{name}: training stopped before the end; run the ablation again to resume it")
    state.finish(name, key, started)


def _cached_result(path: Path, key: str) -> dict[str, Any] | None:
    """A finished evaluation result with this key (a JSON whose `ablation_key` matches), else None."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return old if isinstance(old, dict) and old.get("ablation_key") == key else None


def _result(state: _State, name: str, key: str, path: Path, make: Callable[[], Any], log: Callable[[str], None]) -> Any:
    """An evaluation result (JSON), recomputed when missing or made with other settings."""
    from remogpt.eval.reports import write_json

    if (old := _cached_result(path, key)) is not None:
        log(f"  {name}: reused ({path})")
        return old
    log(f"  {name}: evaluating → {path}")
    started = state.start(name, key)
    result = make()
    result["ablation_key"] = key
    write_json(path, result)
    state.finish(name, key, started)
    return result


def _link(target: Path, link: Path) -> None:
    """`link` → `target` (a relative symlink; a copy where symlinks are not allowed)."""
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return
        if link.is_symlink():
            link.unlink()
        else:
            raise AblationError(f"{link} exists and is not {target}; delete it or use another work folder")
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(os.path.relpath(target, link.parent), link, target_is_directory=True)
    except OSError:
        shutil.copytree(target, link)


def _stage_dir(path: Path, stage: str) -> Path:
    """A stage folder from itself or from a run folder holding it."""
    if (path / "manifest.json").is_file():
        return path
    if (path / stage / "manifest.json").is_file():
        return path / stage
    raise AblationError(f"{path}: no trained {stage} here (nor in {path / stage})")


# ----------------------------------------------------------------------------- the run


def run_ablation(
    data_root: Path | str,
    work_dir: Path | str,
    seeds: Sequence[int] | None = None,
    out_md: Path | str | None = "benchmarks/results/paper_tables.md",
    config: AblationConfig | None = None,
    tokenizer_dir: Path | str | None = None,
    evaluator_dir: Path | str | None = None,
    log: Callable[[str], None] = print,
    import_reports: Sequence[Path | str] = (),
    train: bool = True,
) -> dict[str, Any]:
    """Train (or reuse) everything the ablation needs, evaluate it, and write `out_md` and a JSON beside it.

    `seeds` overrides `config.seeds`. `tokenizer_dir` / `evaluator_dir` use existing artifacts
    instead of training them. `import_reports`: earlier reports (their JSON) whose results are reused
    where they match this run's keys (checked; see `_import_results`). `train=False` trains nothing and
    tabulates what is finished: each row over the seeds that have it. Returns the report that the JSON holds.
    """
    import torch

    from remogpt.artifacts import hash_folder

    started = time.perf_counter()
    cfg = config or AblationConfig()
    if seeds is not None:
        cfg = cfg.replace(seeds=list(seeds))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    data, work = Path(data_root), Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    state = _State(work)
    data_hash = hash_folder(data)
    state.update(config=cfg.to_dict(), data={"root": str(data), "hash": data_hash})
    data_info = _data_info(data, data_hash, cfg)
    counts = ", ".join(f"{k[: -len('_samples')]}: {v} samples" for k, v in data_info.items() if k.endswith("_samples"))
    log(f"ablation on {data} ({counts}), seeds {cfg.seeds}, variants {cfg.variants} → {work}")

    tok_dir, tok_key = _tokenizer(state, cfg, data, data_hash, work, tokenizer_dir, log)
    ev_dir, ev_key = _evaluator(state, cfg, data, data_hash, work, evaluator_dir, log)
    for earlier in import_reports:
        _import_results(Path(earlier), work, cfg, data, data_hash, tok_key, ev_key, state, log)
    encoder = _shared_text_encoder()
    per_seed: dict[str, Any] = {}
    for seed in cfg.seeds:
        log(f"seed {seed}")
        per_seed[str(seed)] = _one_seed(state, cfg, seed, data, data_hash, work, tok_dir, tok_key, ev_dir, ev_key,
                                        encoder, log, train=train)  # fmt: skip
    t2t = None
    if cfg.table1 and cfg.text_to_text:
        from remogpt.eval.runners import eval_text_to_text

        t2t = _result(
            state,
            "table1 text-to-text",
            _t2t_key(cfg, data_hash),
            work / "results" / "t2t.json",
            lambda: eval_text_to_text(data, seed=cfg.seeds[0], split=cfg.split, encoder=encoder),
            log,
        )
    report = {
        "title": "The paper's tables on this data (remogpt eval ablation)",
        "data": data_info,
        "seeds": cfg.seeds,
        "config": cfg.to_dict(),
        "work_dir": str(work),
        "evaluator": str(ev_dir),
        "evaluator_given": evaluator_dir is not None,
        "tokenizer": str(tok_dir),
        "tokenizer_given": tokenizer_dir is not None,
        "tokenizer_key": tok_key,
        "evaluator_key": ev_key,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "per_seed": per_seed,
        "text_to_text": t2t,
        "pieces": state.pieces(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report["tables"] = _aggregate(report, cfg)
    if out_md is not None:
        _write_outputs(report, Path(out_md))
        log(f"wrote {out_md} and {Path(out_md).with_suffix('.json')}")
    return report


def _t2t_key(cfg: AblationConfig, data_hash: str) -> str:
    return _key({"split": cfg.split, "data": data_hash})


def _import_results(report_path: Path, work: Path, cfg: AblationConfig, data: Path, data_hash: str, tok_key: str,
                    ev_key: str, state: _State, log: Callable[[str], None]) -> None:  # fmt: skip
    """Write an earlier report's per-seed results into `work` as finished results, so that this run uses
    them instead of training their models again (e.g. when the models are gone, or were made on another
    machine). Each must carry the key this run computes for it, that is, come from the same data,
    tokenizer and evaluator (their weights' fingerprints when given), seed and settings; one that does
    not is refused with its name. Existing results in `work` are kept; seeds not in this run are skipped."""
    from remogpt.eval.reports import write_json

    try:
        earlier = json.loads(report_path.read_text(encoding="utf-8"))
        per_seed, old_data = earlier["per_seed"], earlier["data"]["hash"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AblationError(f"{report_path}: not an ablation report JSON ({exc})") from None
    if old_data != data_hash:
        raise AblationError(f"{report_path}: made on other data (hash {old_data[:16]}, this run's {data_hash[:16]})")
    files: dict[Path, dict[str, Any]] = {}
    for seed_name, entry in per_seed.items():
        seed = int(seed_name)
        if seed not in cfg.seeds:
            log(f"  {report_path}: seed {seed} is not in this run; skipped")
            continue
        keys = _seed_keys(cfg, seed, data, data_hash, tok_key, ev_key)
        results = work / f"seed{seed}" / "results"
        found = [(f"table1 {k}", keys.table1[k], results / f"table1_{k}.json", r) for k, r in entry["table1"].items()]
        found += [(f"t2m {n}", keys.t2m[n], results / f"t2m_{n}.json", r) for n, r in entry["t2m"].items()]
        found += [(f"m2t {n}", keys.m2t[n], results / f"m2t_{n}.json", r) for n, r in entry["m2t"].items()]
        if entry.get("rare"):
            found.append(("rare", keys.rare, results / "rare.json", entry["rare"]))
        for name, key, path, result in found:
            if result.get("ablation_key") != key:
                raise AblationError(
                    f"{report_path}: seed {seed} {name} was made with other inputs or settings (key "
                    f"{result.get('ablation_key')}, this run's {key}): another tokenizer, evaluator, config or code"
                )  # fmt: skip
            files[path] = result
    t2t = earlier.get("text_to_text")
    if t2t and t2t.get("ablation_key") == _t2t_key(cfg, data_hash):
        files[work / "results" / "t2t.json"] = t2t
    written = 0
    for path, result in files.items():
        if not path.is_file():
            write_json(path, result)
            written += 1
    imported = {name: {**piece, "imported_from": str(report_path)} for name, piece in earlier.get("pieces", {}).items()
                if name not in state.pieces() and name.split(" ")[0] == "seed"
                and int(name.split(" ")[1]) in cfg.seeds}  # fmt: skip
    state.update(imported)
    log(
        f"  imported {written} results of seeds {sorted(int(s) for s in per_seed if int(s) in cfg.seeds)} "
        f"from {report_path}"
    )


def _data_info(data: Path, data_hash: str, cfg: AblationConfig) -> dict[str, Any]:
    """The data folder, its hash, and the samples and captions of every split the ablation reads."""
    from remogpt.data import load_split

    splits = {s: load_split(data, s) for s in dict.fromkeys(("train", cfg.split, cfg.rare_split or cfg.split))}
    return {"root": str(data), "hash": data_hash,
            **{f"{s}_samples": len(c) for s, c in splits.items()},
            **{f"{s}_captions": sum(len(x.captions) for x in c) for s, c in splits.items()}}  # fmt: skip


def _shared_text_encoder() -> Any:
    from remogpt.retrieval import TextEncoder

    return TextEncoder()


def _trainer(cfg: AblationConfig, steps: int, seed: int, batch_size: int, **extra: Any) -> Any:
    from remogpt.training import TrainerConfig

    return TrainerConfig(max_steps=steps, batch_size=batch_size, accelerator=cfg.accelerator, devices=cfg.devices,
                         seed=seed, progress_bar=False, **extra)  # fmt: skip


def _tokenizer(state: _State, cfg: AblationConfig, data: Path, data_hash: str, work: Path,
               given: Path | str | None, log: Callable[[str], None]) -> tuple[Path, str]:  # fmt: skip
    from remogpt.artifacts import read_manifest

    if given is not None:
        path = _stage_dir(Path(given), "tokenizer")
        return path, "given:" + read_manifest(path, stage="tokenizer").fingerprint
    from remogpt.tokenizer import TokenizerTrainConfig, train_tokenizer
    from remogpt.training import last_checkpoint

    steps = cfg.tokenizer_steps
    base = {"data": {"root": str(data)}, "lr_milestones": [s for s in (int(0.8 * steps),) if s > 0],
            "trainer": {"max_steps": steps, "seed": 0, "progress_bar": False, "val_every_n_steps": steps,
                        "accelerator": cfg.accelerator, "devices": cfg.devices}}  # fmt: skip
    tcfg = TokenizerTrainConfig.from_dict(_merge(TokenizerTrainConfig.preset("tiny").to_dict(), base, cfg.tokenizer))
    path = work / "shared" / "tokenizer"
    key = _key({"cfg": tcfg.to_dict(), "data": data_hash})

    def make() -> None:
        train_tokenizer(tcfg, work / "shared", resume=last_checkpoint(path) is not None)

    _artifact(state, "tokenizer", key, path, make, log)
    return path, key


def _evaluator(state: _State, cfg: AblationConfig, data: Path, data_hash: str, work: Path,
               given: Path | str | None, log: Callable[[str], None]) -> tuple[Path, str]:  # fmt: skip
    from remogpt.artifacts import read_manifest

    if given is not None:
        path = _stage_dir(Path(given), "evaluator")
        return path, "given:" + read_manifest(path, stage="evaluator").fingerprint
    from remogpt.eval.evaluator import EvaluatorConfig
    from remogpt.eval.train_evaluator import train_evaluator
    from remogpt.training import last_checkpoint

    steps = {"max_steps": cfg.evaluator_steps} if cfg.evaluator_steps is not None else {}
    ecfg = EvaluatorConfig.from_dict(_merge(EvaluatorConfig.preset("tiny").to_dict(), steps, cfg.evaluator))
    path = work / "evaluator"
    key = _key({"cfg": ecfg.to_dict(), "data": data_hash})

    def make() -> None:
        tcfg = _trainer(cfg, ecfg.max_steps, 0, ecfg.batch_size, checkpoint_every_n_steps=max(100, ecfg.max_steps // 4))
        train_evaluator(data, path, ecfg, tcfg, resume=last_checkpoint(path) is not None)

    _artifact(state, "evaluator", key, path, make, log)
    return path, key


def _retriever_config(cfg: AblationConfig, seed: int, kind: str, data: Path) -> Any:
    from remogpt.retrieval import RetrieverConfig

    base = {"data": {"root": str(data)},
            "trainer": {"max_steps": cfg.retriever_steps, "seed": seed, "progress_bar": False,
                      "accelerator": cfg.accelerator, "devices": cfg.devices}}  # fmt: skip
    return RetrieverConfig.from_dict(_merge(RetrieverConfig.preset("tiny").to_dict(), base, cfg.retriever,
                                            {"motion": {"part_level": kind == "pl"}}))  # fmt: skip


def _retriever(state: _State, cfg: AblationConfig, seed: int, kind: str, data: Path, key: str, path: Path,
               encoder: Any, log: Callable[[str], None]) -> None:  # fmt: skip
    from remogpt.retrieval import Retriever, train_retriever
    from remogpt.training import last_checkpoint

    rcfg = _retriever_config(cfg, seed, kind, data)
    shared = encoder if encoder.matches(rcfg.text) and rcfg.text.frozen else None

    def make() -> None:
        if not (path / "manifest.json").is_file():
            train_retriever(rcfg, path.parent, resume=last_checkpoint(path) is not None, text_encoder=shared,
                            progress=False)  # fmt: skip
        if (path / "manifest.json").is_file():
            retriever = Retriever.from_pretrained(path, text_encoder=shared, data_root=data)
            if retriever.database is None:
                retriever.build_index(data, "train")

    def ready() -> bool:
        return (path / "manifest.json").is_file() and (path / "index" / "manifest.json").is_file()

    _artifact(state, f"seed {seed} retriever {kind}", key, path, make, log, ready=ready)


def _lm_config(cfg: AblationConfig, variant: Variant, seed: int) -> Any:
    from remogpt.lm import LMConfig

    trainer = {"seed": seed, "accelerator": cfg.accelerator, "devices": cfg.devices, "progress_bar": False,
               "checkpoint_every_n_steps": 100, "log_every_n_steps": 25}  # fmt: skip
    base = {"stage1_steps": cfg.lm_stage1_steps, "stage2_steps": cfg.lm_stage2_steps, "trainer": trainer}
    merged = _merge(LMConfig.preset("tiny").to_dict(), base, cfg.lm,
                    {"retrieval": {"modality": variant.modality, "k": variant.k}})  # fmt: skip
    return LMConfig.from_dict(merged)


@dataclasses.dataclass(frozen=True)
class _SeedKeys:
    """Every piece key of one seed, computed before anything trains, so that finished results can be
    reused without the models that made them (e.g. results imported from an earlier report)."""

    retriever: dict[str, str]  # kind -> retriever key
    table1: dict[str, str]  # kind -> its Table 1 result key
    stage1: str | None
    lm: dict[str, str]  # variant -> LM key
    t2m: dict[str, str]
    m2t: dict[str, str]
    rare: str


def _t2m_args(cfg: AblationConfig, seed: int) -> dict[str, Any]:
    return {"repeats": cfg.repeats, "num_prompts": cfg.num_prompts, "mmodality": cfg.mmodality, "seed": seed,
            "split": cfg.split, "diversity_times": cfg.diversity_times, "mm_texts": cfg.mm_texts,
            "mm_generations": cfg.mm_generations, "mm_times": cfg.mm_times}  # fmt: skip


def _m2t_args(cfg: AblationConfig, seed: int) -> dict[str, Any]:
    return {"bertscore": cfg.bertscore, "repeats": cfg.m2t_repeats, "num_prompts": cfg.m2t_prompts, "seed": seed,
            "split": cfg.split}  # fmt: skip


def _rare_args(cfg: AblationConfig, seed: int) -> dict[str, Any]:
    return {"repeats": cfg.rare_repeats, "seed": seed, "split": cfg.rare_split or cfg.split,
            "num_ranges": cfg.rare_num_ranges, "diversity_times": cfg.diversity_times}  # fmt: skip


def _stage1_config(cfg: AblationConfig, seed: int) -> Any:
    """The context-free stage 1 that every variant of a seed starts from (its own run, no stage 2)."""
    return _lm_config(cfg, Variant("pl", "none", 1, "", ""), seed).replace(stage2_steps=0)


def _seed_keys(cfg: AblationConfig, seed: int, data: Path, data_hash: str, tok_key: str, ev_key: str) -> _SeedKeys:
    """The keys of every variant (not only the configured ones), from settings and input keys alone."""
    from remogpt.artifacts import fingerprint_config

    ret = {kind: _key({"cfg": _retriever_config(cfg, seed, kind, data).to_dict(), "data": data_hash})
           for kind in ("pl", "wb")}  # fmt: skip
    stage1 = None
    if cfg.lm_stage1_steps > 0:
        stage1_cfg = fingerprint_config("lm", _stage1_config(cfg, seed).to_dict())
        stage1 = _key({"lm": stage1_cfg, "seed": seed, "tokenizer": tok_key, "data": data_hash})
    lm = {name: _key({"lm": fingerprint_config("lm", _lm_config(cfg, v, seed).to_dict()), "seed": seed,
                      "tokenizer": tok_key, "retriever": ret[v.retriever], "data": data_hash})
          for name, v in VARIANTS.items()}  # fmt: skip
    return _SeedKeys(
        retriever=ret,
        table1={kind: _key({"retriever": ret[kind], "split": cfg.split, "seed": seed}) for kind in ret},
        stage1=stage1,
        lm=lm,
        t2m={n: _key({"lm": k, "evaluator": ev_key, **_t2m_args(cfg, seed)}) for n, k in lm.items()},
        m2t={n: _key({"lm": k, "evaluator": ev_key, **_m2t_args(cfg, seed)}) for n, k in lm.items()},
        rare=_key({"lm": [lm["both_k1"], lm["none"]], "evaluator": ev_key, **_rare_args(cfg, seed)}),
    )


def _one_seed(state: _State, cfg: AblationConfig, seed: int, data: Path, data_hash: str, work: Path, tok_dir: Path,
              tok_key: str, ev_dir: Path, ev_key: str, encoder: Any, log: Callable[[str], None],
              train: bool = True) -> dict[str, Any]:  # fmt: skip
    """One seed's pieces. Models are trained only where a result they would feed is missing; with
    `train=False` nothing is trained and a variant without its results (or finished model) is left out."""
    from remogpt.artifacts import ArtifactError, StageCache
    from remogpt.eval.runners import eval_retrieval
    from remogpt.lm import train_lm

    root = work / f"seed{seed}"
    results = root / "results"
    keys = _seed_keys(cfg, seed, data, data_hash, tok_key, ev_key)
    out: dict[str, Any] = {"table1": {}, "t2m": {}, "m2t": {}, "rare": None, "lm_keys": {}}

    def evaluated(name: str) -> bool:
        return _cached_result(results / f"t2m_{name}.json", keys.t2m[name]) is not None and (
            not cfg.m2t or _cached_result(results / f"m2t_{name}.json", keys.m2t[name]) is not None
        )

    def trained(name: str) -> bool:
        lm_dir = root / "runs" / name / "lm"
        try:
            return StageCache("refuse", lambda _m: None).state(lm_dir, {"ablation_key": keys.lm[name]}) == "done"
        except ArtifactError:  # made with other settings: `_artifact` refuses it with the piece's name
            return False

    want_rare = cfg.rare and {"none", "both_k1"} <= set(cfg.variants)
    rare_done = want_rare and _cached_result(results / "rare.json", keys.rare) is not None
    needs_model = {n for n in cfg.variants if not evaluated(n)}
    if want_rare and not rare_done:
        needs_model |= {"none", "both_k1"}
    if not train:  # only what is finished: a variant whose model is not there is left out
        needs_model = {n for n in needs_model if trained(n)}
        want_rare = want_rare and (rare_done or (trained("none") and trained("both_k1")))
    table1_kinds = [
        k for k in ("pl", "wb") if cfg.table1 and _cached_result(results / f"table1_{k}.json", keys.table1[k]) is None
    ]
    kinds = {VARIANTS[v].retriever for v in needs_model} | set(table1_kinds)
    if needs_model and cfg.lm_stage1_steps > 0:
        kinds.add("pl")  # stage 1 links the PL-TMR retriever
    for kind in sorted(kinds, key=["pl", "wb"].index):
        if train or (root / "retrievers" / kind / "retriever" / "manifest.json").is_file():
            _retriever(state, cfg, seed, kind, data, keys.retriever[kind], root / "retrievers" / kind / "retriever",
                       encoder, log)  # fmt: skip
    if cfg.table1:
        for kind in ("pl", "wb"):
            if kind in table1_kinds and not (root / "retrievers" / kind / "retriever" / "manifest.json").is_file():
                continue  # train=False and no retriever: left out
            out["table1"][kind] = _result(
                state, f"seed {seed} table1 {kind}", keys.table1[kind], results / f"table1_{kind}.json",
                partial(eval_retrieval, root / "retrievers" / kind, data, seed=seed, split=cfg.split,
                        label=RETRIEVER_LABELS[kind], text_encoder=encoder), log,
            )  # fmt: skip

    def link_stages(run: Path, kind: str) -> None:
        _link(tok_dir, run / "tokenizer")
        _link(root / "retrievers" / kind / "retriever", run / "retriever")
        (work / "shared" / "codes").mkdir(parents=True, exist_ok=True)
        _link(work / "shared" / "codes", run / "codes")

    def train_run(run: Path, lm_cfg: Any) -> None:
        # resume=True: continue an interrupted stage, and keep the shared stage 1's vocabulary.
        train_lm(lm_cfg.replace(data={"root": str(data)}), run, resume=True, log=lambda m: log(f"    {m.strip()}"))

    # Stage 1 (no context) is trained once in its own run; every variant starts its stage 2 from a copy,
    # so all variants load stage 1 from disk the same way.
    stage1 = root / "runs" / "stage1"
    if keys.stage1 is not None:
        out["lm_keys"]["stage1"] = keys.stage1
        if train and any(not trained(n) for n in needs_model):
            link_stages(stage1, "pl")
            _artifact(state, f"seed {seed} lm stage 1", keys.stage1, stage1 / "lm",
                      partial(train_run, stage1, _stage1_config(cfg, seed)), log)  # fmt: skip

    evals = _Evals(state, cfg, seed, data, ev_dir, ev_key, results, log)
    for name in cfg.variants:
        variant = VARIANTS[name]
        run = root / "runs" / name
        if name not in needs_model and not evaluated(name):
            log(f"  seed {seed} {name}: left out (not trained, and training is off)")
            continue
        out["lm_keys"][name] = keys.lm[name]
        if name in needs_model:
            link_stages(run, variant.retriever)
            lm_cfg = _lm_config(cfg, variant, seed)

            def make(run: Path = run, lm_cfg: Any = lm_cfg, variant: Variant = variant) -> None:
                lm = run / "lm"
                if cfg.lm_stage1_steps > 0:
                    if not (lm / "stage1" / "model" / "model.safetensors").is_file():
                        shutil.copytree(stage1 / "lm" / "stage1" / "model", lm / "stage1" / "model",
                                        dirs_exist_ok=True)  # fmt: skip
                        shutil.copytree(stage1 / "lm" / "vocabulary", lm / "vocabulary", dirs_exist_ok=True)
                    table, own = stage1 / "lm" / "retrievals.json", lm / "retrievals.json"
                    if variant.retriever == "pl" and table.is_file() and not own.is_file():
                        shutil.copy2(table, own)  # the LM checks its key (retriever, data, ids) before using it
                train_run(run, lm_cfg)

            _artifact(state, f"seed {seed} lm {name}", keys.lm[name], run / "lm", make, log)
        out["t2m"][name], m2t = evals.variant(name, run, keys)
        if m2t is not None:
            out["m2t"][name] = m2t
    if want_rare:
        out["rare"] = evals.rare(root / "runs", keys)
    return out


@dataclasses.dataclass
class _Evals:
    """One seed's evaluations of the trained variants, each cached under its key (LM, evaluator, settings)."""

    state: _State
    cfg: AblationConfig
    seed: int
    data: Path
    ev_dir: Path
    ev_key: str
    results: Path
    log: Callable[[str], None]

    def variant(self, name: str, run: Path, keys: _SeedKeys) -> tuple[Any, Any]:
        """Text-to-motion and (when configured) motion-to-text of one variant's run."""
        from remogpt.eval.runners import eval_m2t, eval_t2m

        cfg, seed = self.cfg, self.seed
        t2m = _result(
            self.state,
            f"seed {seed} t2m {name}",
            keys.t2m[name],
            self.results / f"t2m_{name}.json",
            partial(eval_t2m, run, self.data, self.ev_dir, label=name, log=self.log, **_t2m_args(cfg, seed)),
            self.log,
        )
        if not cfg.m2t:
            return t2m, None
        m2t = _result(
            self.state,
            f"seed {seed} m2t {name}",
            keys.m2t[name],
            self.results / f"m2t_{name}.json",
            partial(eval_m2t, run, self.data, self.ev_dir, label=name, log=self.log, **_m2t_args(cfg, seed)),
            self.log,
        )
        return t2m, m2t

    def rare(self, runs: Path, keys: _SeedKeys) -> Any:
        """Table 8: the both-modalities k=1 variant against the one without retrieval."""
        from remogpt.eval.runners import eval_rare

        return _result(
            self.state, f"seed {self.seed} rare", keys.rare, self.results / "rare.json",
            partial(eval_rare, runs / "both_k1", self.data, self.ev_dir, baseline_run_dir=runs / "none",
                    label=RARE_ROW, baseline_label=RARE_BASELINE_ROW, log=self.log,
                    **_rare_args(self.cfg, self.seed)), self.log,
        )  # fmt: skip


# ----------------------------------------------------------------------------- aggregation and report


def _t_half_width(values: np.ndarray) -> float | None:
    """Half-width of the 95 % Student-t interval of the mean (n − 1 degrees of freedom); None for n < 2.
    With 3 seeds t = 4.30: the honest width of an interval over so few runs."""
    from scipy.stats import t

    if values.size < 2:
        return None
    return float(t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))


def _over_seeds(values: Sequence[float | None]) -> dict[str, Any] | None:
    """Mean, sample std (ddof = 1; 0 with one seed) and 95 % t-interval half-width over seeds."""
    if not values or any(v is None for v in values):
        return None
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "ci95": _t_half_width(arr), "values": [float(v) for v in arr]}  # fmt: skip


#: Table 6's metrics that the claims are decided on: (task, metric, higher is better, label).
CLAIM_METRICS: tuple[tuple[str, str, bool, str], ...] = (
    ("t2m", "top1", True, "R-Top1"), ("t2m", "FID", False, "FID"), ("t2m", "MMDist", False, "MMDist"),
    ("m2t", "top1", True, "M2T R-Top1"), ("m2t", "BLEU@4", True, "BLEU@4"), ("m2t", "CIDEr", True, "CIDEr"),
)  # fmt: skip
#: The paper's claims (Sec. "Ablation", Tables 6 and 8) as paired comparisons: (claim, A, B, kind).
#: "better": A beats B; "equal": A and B do not differ. A "copy:" side is a copy baseline row of the
#: same seed's evaluation (no generation), the sceptic's comparison rather than the paper's.
PAPER_CLAIMS: tuple[tuple[str, str, str, str], ...] = (
    ("retrieval augmentation improves the model", "both_k1", "none", "better"),
    ("retrieval augmentation improves the model", "t2t", "none", "better"),
    ("retrieval augmentation improves the model", "t2m", "none", "better"),
    ("both modalities beat one", "both_k1", "t2t", "better"),
    ("both modalities beat one", "both_k1", "t2m", "better"),
    ("not sensitive to the number of retrieved samples", "both_k2", "both_k1", "equal"),
    ("part-level retrieval beats whole-body retrieval", "both_k1", "both_wb", "better"),
    ("(sceptic) the model beats copying what its prompt holds", "both_k1", "copy:t2t", "better"),
    ("(sceptic) the model beats copying what its prompt holds", "both_k1", "copy:t2m", "better"),
)
#: Table 8's claim: retrieval helps generation, rare prompts most (lower is better for each).
RARE_CLAIM_METRICS = ("MMDist", "Top5%_MMDist", "Balanced_MMDist")
_COPY_ROWS = {"t2t": ("t2m", COPY_T2T_ROW), "t2m": ("t2m", COPY_T2M_ROW), "m2t": ("m2t", COPY_M2T_ROW)}


def paired_difference(a: Sequence[float], b: Sequence[float], higher_is_better: bool) -> dict[str, Any]:
    """Per-seed differences A − B, signed so that a positive value favours A, with their mean and
    95 % t-interval (None bounds for one seed). Paired, as A and B of a seed share its retriever,
    tokenizer, prompts and evaluator, which removes the between-seed variation they share."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not higher_is_better:
        d = -d
    half = _t_half_width(d)
    mean = float(d.mean())
    return {"mean": mean, "lo": None if half is None else mean - half, "hi": None if half is None else mean + half,
            "n": int(d.size), "values": [float(x) for x in d]}  # fmt: skip


def claim_verdict(diff: dict[str, Any], kind: str) -> str:
    """For a "better" claim: reproduced, reversed (the interval lies on the other side of 0) or not
    decided (it spans 0); for an "equal" claim: reproduced (it spans 0) or not reproduced."""
    if diff["lo"] is None:
        return "not decided (one seed)"
    spans_zero = diff["lo"] <= 0.0 <= diff["hi"]
    if kind == "equal":
        return "reproduced (no difference found)" if spans_zero else "not reproduced (they differ)"
    if spans_zero:
        return "not decided (interval spans 0)"
    return "reproduced" if diff["lo"] > 0 else "reversed"


def _copy_source(cfg: AblationConfig) -> str | None:
    """The variant whose evaluation holds the copy-baseline rows: the first with the PL-TMR retriever
    (those rows depend only on the seed's retriever, prompts and evaluator, not on the variant)."""
    return next((v for v in cfg.variants if VARIANTS[v].retriever == "pl"), None)


def _claim(claim: str, a: str, b: str, task: str, metric: str, kind: str, va: Sequence[float],
           vb: Sequence[float], higher_is_better: bool) -> dict[str, Any]:  # fmt: skip
    diff = paired_difference(va, vb, higher_is_better)
    return {"claim": claim, "a": a, "b": b, "task": task, "metric": metric, "kind": kind,
            "a_mean": float(np.mean(va)), "b_mean": float(np.mean(vb)), "difference": diff,
            "verdict": claim_verdict(diff, kind)}  # fmt: skip


def _claims(per: dict[str, Any], seeds: list[str], cfg: AblationConfig) -> list[dict[str, Any]]:
    """Every claim of PAPER_CLAIMS (and Table 8's) whose two sides were run, per metric."""
    from remogpt.eval.results import ProtocolResult

    source = _copy_source(cfg)

    def side(seed: str, name: str, task: str, metric: str) -> float | None:
        if name.startswith("copy:"):
            row_task, row = _COPY_ROWS["m2t" if task == "m2t" else name.removeprefix("copy:")]
            if source is None or row_task not in per[seed] or source not in per[seed][row_task]:
                return None
            result = ProtocolResult.from_dict(per[seed][row_task][source], f"seed {seed} {row_task} {source}")
            return result.mean(row, metric) if row in result.rows else None
        if name not in per[seed].get(task, {}):
            return None
        return ProtocolResult.from_dict(per[seed][task][name], f"seed {seed} {task} {name}").mean(name, metric)

    claims = []
    for claim, a, b, kind in PAPER_CLAIMS:
        for task, metric, higher, label in CLAIM_METRICS:
            if b == "copy:t2m" and task == "m2t":
                continue  # one caption copy row: compared once, under copy:t2t
            pairs = [(side(s, a, task, metric), side(s, b, task, metric)) for s in seeds]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]  # the seeds with both sides
            if not pairs:
                continue
            va, vb = [x for x, _ in pairs], [y for _, y in pairs]
            b_label = (
                ("copy top-1 caption" if task == "m2t" else f"copy top-1 motion ({b[5:]})")
                if b.startswith("copy:")
                else b
            )
            claims.append(_claim(claim, a, b_label, task, label, kind, va, vb, higher))  # type: ignore[arg-type]
    if have := _with(per, seeds, "rare"):
        rare = [ProtocolResult.from_dict(per[s]["rare"], f"seed {s} rare") for s in have]
        a, b = RARE_ROW, RARE_BASELINE_ROW
        if all(a in r.rows and b in r.rows for r in rare):
            for metric in RARE_CLAIM_METRICS:
                va, vb = [r.mean(a, metric) for r in rare], [r.mean(b, metric) for r in rare]
                if any(v is None for v in va + vb):
                    continue
                claims.append(_claim("retrieval helps rare motions (Table 8)", "both_k1", "none", "rare", metric,
                                     "better", va, vb, False))  # type: ignore[arg-type]  # fmt: skip
    return claims


def _with(per: dict[str, Any], seeds: list[str], *path: str) -> list[str]:
    """The seeds whose results hold `path` (e.g. "t2m", "none"): a row is tabulated over those."""

    def has(entry: Any, keys: tuple[str, ...]) -> bool:
        for k in keys:
            if not isinstance(entry, dict) or not entry.get(k):
                return False
            entry = entry[k]
        return True

    return [s for s in seeds if has(per[s], path)]


def _aggregate(report: dict[str, Any], cfg: AblationConfig) -> dict[str, Any]:
    """Tables 1, 6 and 8 over seeds. Each row is over the seeds that have it (all of them, unless a run
    without training left some out); the row's `seeds` says which."""
    from remogpt.eval.results import ProtocolResult, RetrievalResult

    seeds = [str(s) for s in cfg.seeds]
    per = report["per_seed"]
    tables: dict[str, Any] = {"table1": {}, "table6": {}, "table8": {}}
    if cfg.table1:
        for kind in ("pl", "wb"):
            have = _with(per, seeds, "table1", kind)
            if not have:
                continue
            found = [RetrievalResult.from_dict(per[s]["table1"][kind], f"seed {s} table1 {kind}") for s in have]
            rows = {}
            for proto in ("all", "small_batches"):
                if all(r.protocol(proto) for r in found):
                    rows[proto] = {k: _over_seeds([r.protocols[proto][k] for r in found])
                                   for k in found[0].protocols[proto] if not k.endswith("/len")}  # fmt: skip
            curves = [r.recall_curve for r in found if r.recall_curve is not None]
            tables["table1"][kind] = {"label": found[0].label, "motion_params": found[0].motion_params,
                                      "seeds": [int(s) for s in have], **rows}  # fmt: skip
            if len(curves) == len(found):
                tables["table1"][kind]["recall_curve"] = {
                    "k": list(curves[0].k),
                    "t2m": np.mean([c.t2m for c in curves], axis=0).tolist(),
                    "m2t": np.mean([c.m2t for c in curves], axis=0).tolist(),
                }
    for name in sorted(cfg.variants, key=list(VARIANTS).index):  # the paper's row order, whatever order trained
        have = _with(per, seeds, "t2m", name)
        if not have:
            continue
        t2m = [ProtocolResult.from_dict(per[s]["t2m"][name], f"seed {s} t2m {name}") for s in have]
        row: dict[str, Any] = {"seeds": [int(s) for s in have]}
        for metric in ("top1", "top2", "top3", "FID", "MMDist", "Diversity", "MModality"):
            row[f"t2m/{metric}"] = _over_seeds([r.mean(name, metric) for r in t2m])
            row[f"real/{metric}"] = _over_seeds([r.mean("Real", metric) for r in t2m])
        if cfg.m2t:
            m2t = [ProtocolResult.from_dict(per[s]["m2t"][name], f"seed {s} m2t {name}")
                   for s in _with(per, have, "m2t", name)]  # fmt: skip
            for metric in ("top1", "top3", "MMDist", "Length_avg", "BLEU@1", "BLEU@4", "ROUGE_L", "CIDEr", "BERTScore"):
                values = [r.mean(name, metric) for r in m2t]
                row[f"m2t/{metric}"] = _over_seeds(values) if len(m2t) == len(have) else None
        invalid = [r.invalid.get(name) for r in t2m]
        row["invalid_fraction"] = _over_seeds([i.invalid_fraction if i else None for i in invalid])
        row["samples_failed"] = _over_seeds([float(i.samples_failed) if i else None for i in invalid])
        tables["table6"][name] = row
    tables["baselines"] = _baselines(per, seeds, cfg)
    tables["claims"] = _claims(per, seeds, cfg)
    have = _with(per, seeds, "rare")
    if have:
        rare = [ProtocolResult.from_dict(per[s]["rare"], f"seed {s} rare") for s in have]
        for name in rare[0].rows:
            tables["table8"][name] = {
                "seeds": [int(s) for s in have],
                **{m: _over_seeds([r.mean(name, m) for r in rare])
                   for m in ("MMDist", "Top5%_MMDist", "Balanced_MMDist", "Diversity", "Top5%_Diversity")},
            }  # fmt: skip
    return tables


def _baselines(per: dict[str, Any], seeds: list[str], cfg: AblationConfig) -> dict[str, Any]:
    """The rows that need no language model, over seeds: the copy baselines and the tokenizer's round
    trip, from the evaluation of the first variant that uses the PL-TMR retriever (they do not depend
    on the variant, only on the seed's retriever, prompts and evaluator)."""
    from remogpt.eval.results import ProtocolResult

    source = _copy_source(cfg)
    if source is None:
        return {}
    out: dict[str, Any] = {}
    for task, rows, metrics in (
        ("t2m", (TOKENIZER_ROUNDTRIP, COPY_T2M_ROW, COPY_T2T_ROW), ("top1", "top2", "top3", "FID", "MMDist",
                                                                     "Diversity")),
        ("m2t", (COPY_M2T_ROW,), ("top1", "MMDist", "BLEU@4", "CIDEr")),
    ):  # fmt: skip
        have = _with(per, seeds, task, source)
        if not have:
            continue
        results = [ProtocolResult.from_dict(per[s][task][source], f"seed {s} {task} {source}") for s in have]
        for row in rows:
            if all(row in r.rows for r in results):
                out[row] = {"task": task, "seeds": [int(s) for s in have],
                            **{m: _over_seeds([r.mean(row, m) for r in results]) for m in metrics}}  # fmt: skip
    return out


def _cell(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """mean ± the 95 % t-interval's half-width over seeds (the mean alone for one seed)."""
    if entry is None:
        return "–"
    if entry.get("ci95") is not None:
        return f"{entry['mean']:.{digits}f} ± {entry['ci95']:.{digits}f}"
    return f"{entry['mean']:.{digits}f}"


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def claims_markdown(claims: list[dict[str, Any]]) -> list[str]:
    """The claims table: each paired comparison, its mean difference with the 95 % interval, the verdict."""
    if not claims:
        return []
    lines = ["", "## The paper's claims, decided", "",
             "Each row compares two settings seed by seed (same seed: same retriever, tokenizer, prompts and "
             "evaluator), as A − B signed so that **positive favours A** (lower FID / MMDist count as positive). "
             "Interval: 95 % Student-t over the seeds' differences. A \"better\" claim is *reproduced* when "
             "the interval lies above 0, *reversed* when below, *not decided* when it spans 0; a \"no "
             "difference\" claim is reproduced when it spans 0. Rows marked (sceptic) are not the paper's: "
             "they compare with the copy baselines, what the prompt already holds.", "",
             "| claim | A | B | metric | seeds | A (mean) | B (mean) | A − B, favouring A [95 % interval] | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        d = c["difference"]
        digits = 2 if c["metric"] in ("BLEU@4", "CIDEr") else 3
        interval = f"{_fmt(d['mean'], digits)} [{_fmt(d['lo'], digits)}, {_fmt(d['hi'], digits)}]"
        lines.append(f"| {c['claim']} | {c['a']} | {c['b']} | {c['metric']} | {d['n']} | {c['a_mean']:.{digits}f} | "
                     f"{c['b_mean']:.{digits}f} | {interval} | {c['verdict']} |")  # fmt: skip
    return lines


def ablation_markdown(report: dict[str, Any]) -> str:
    """paper_tables.md: Tables 1, 6 and 8 (mean ± 95 % interval over seeds), the claims decided, budgets, wall
    times, per-seed details."""
    from remogpt.eval.reports import m2t_markdown, rare_markdown, retrieval_markdown, t2m_markdown

    cfg = AblationConfig.from_dict(report["config"])
    d = report["data"]
    seeds = report["seeds"]
    spread = (f"mean ± the half-width of its 95 % Student-t interval over {len(seeds)} seeds" if len(seeds) > 1
              else "one seed (no interval over seeds)")  # fmt: skip
    split_info = ", ".join(f"{k.removesuffix('_samples')} {v} samples" for k, v in d.items() if k.endswith("_samples"))
    lines = [
        f"# {report['title']}",
        "",
        f"Data `{d['root']}` (hash {d['hash'][:16]}): {split_info}. Seeds {seeds}; every cell is {spread}; "
        f"per-seed tables with their 95% intervals over repeats follow below. Evaluated split: {cfg.split}"
        f"{f' ({cfg.num_prompts} samples)' if cfg.num_prompts else ''}. Evaluator `{report['evaluator']}` "
        + ("(trained here once on the train split, separate from every model it judges). "
           if not report.get("evaluator_given") else "(given). ")
        + (f"Tokenizer `{report['tokenizer']}` (given; `tokenizer_steps` below does not apply). "
           if report.get("tokenizer_given") else "")
        + "Wall time of this invocation "
        f"{report['seconds'] / 60:.1f} min on {report['machine']['platform']} "
        f"(torch {report['machine']['torch']}, {report['machine']['threads']} threads); the time each part took "
        "when it was made is listed under \"Wall time per part\".",
    ]  # fmt: skip
    t1 = report["tables"]["table1"]
    if t1:
        lines += ["", "## Table 1: text–motion retrieval (TMR protocol; R@k in %, MedR 1-based)", ""]
        from remogpt.eval.results import RetrievalResult

        t2t = RetrievalResult.from_dict(report["text_to_text"]) if report.get("text_to_text") else None
        for proto, title in (("all", "all samples"), ("small_batches", "small batches of 32")):
            for direction, name in (("t2m", "Text-to-motion"), ("m2t", "Motion-to-text")):
                lines += [f"**{name}, {title}**", "", "| Methods | #Params | R@1 ↑ | R@2 ↑ | R@3 ↑ | R@5 ↑ | R@10 ↑ | "
                          "MedR ↓ |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
                for entry in t1.values():
                    cells = [_cell(entry.get(proto, {}).get(f"{direction}/{m}") if entry.get(proto) else None, 2)
                             for m in ("R01", "R02", "R03", "R05", "R10", "MedR")]  # fmt: skip
                    params = entry.get("motion_params")
                    lines.append(f"| {entry['label']} | {params / 1e6:.2f}M | " + " | ".join(cells) + " |"
                                 if params else f"| {entry['label']} | – | " + " | ".join(cells) + " |")  # fmt: skip
                if t2t is not None and (m := t2t.protocol(proto)):
                    cells = [f"{m[f'{direction}/{k}']:.2f}" for k in ("R01", "R02", "R03", "R05", "R10", "MedR")]
                    lines.append(f"| {t2t.label} | – | " + " | ".join(cells) + " |")
                lines.append("")
        lines.append("Recall curves (mean over seeds): `" + _png_name(report, "recall") + "`.")
    t6 = report["tables"]["table6"]
    lines += [
        "",
        "## Table 6: retrieval modality (text-to-motion: Guo et al. protocol; motion-to-text: captions of the "
        "test motions)",
        "",
        f"Text-to-motion: repeats per seed {cfg.repeats}, Diversity over {cfg.diversity_times} pairs, "
        + (f"MModality on {cfg.mm_texts} texts × {cfg.mm_generations} generations with {cfg.mm_times} pairs"
           if cfg.mmodality else "no MModality")
        + (f"; motion-to-text: greedy captions, BLEU/CIDEr on 0–100, BERTScore {'on' if cfg.bertscore else 'off'}"
           if cfg.m2t else "") + ".",
        "",
    ]  # fmt: skip
    header = ["Retrieval modality", "#Retrieved", "R-Top1 ↑", "R-Top2 ↑", "R-Top3 ↑", "FID ↓", "MMDist ↓",
              "Diversity →", "MModality ↑"]  # fmt: skip
    if cfg.m2t:
        header += ["M2T R-Top1 ↑", "M2T MMDist ↓", "BLEU@4 ↑", "CIDEr ↑"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    real = next(iter(t6.values()), None)
    t2m_keys = ("top1", "top2", "top3", "FID", "MMDist", "Diversity", "MModality")
    if real is not None:
        lines.append("| Real | – | " + " | ".join(_cell(real[f"real/{m}"]) for m in t2m_keys)
                     + (" | – | – | – | – |" if cfg.m2t else " |"))  # fmt: skip
    for name, row in t6.items():
        v = VARIANTS[name]
        cells = [_cell(row[f"t2m/{m}"]) for m in ("top1", "top2", "top3", "FID", "MMDist", "Diversity", "MModality")]
        if cfg.m2t:
            cells += [_cell(row["m2t/top1"]), _cell(row["m2t/MMDist"]), _cell(row["m2t/BLEU@4"], 2),
                      _cell(row["m2t/CIDEr"], 2)]  # fmt: skip
        lines.append(f"| {v.label}{_seeds_note(row, seeds)} | {v.samples} | " + " | ".join(cells) + " |")
    baselines = report["tables"].get("baselines", {})
    for row, entry in baselines.items():
        if entry["task"] == "t2m":
            cells = [_cell(entry.get(m)) for m in ("top1", "top2", "top3", "FID", "MMDist", "Diversity")] + ["–"]
            lines.append(f"| {row} (no LM) | – | " + " | ".join(cells) + (" | – | – | – | – |" if cfg.m2t else " |"))
        elif cfg.m2t:
            cells = ["–"] * 7 + [_cell(entry.get("top1")), _cell(entry.get("MMDist")), _cell(entry.get("BLEU@4"), 2),
                                 _cell(entry.get("CIDEr"), 2)]  # fmt: skip
            lines.append(f"| {row} (no LM) | – | " + " | ".join(cells) + " |")
    invalid = [f"{n} {_cell(r['invalid_fraction'])} / {_cell(r['samples_failed'], 1)}" for n, r in t6.items()]
    lines += ["", "Invalid generated sequences (share of sampled sequences) / samples without any valid motion "
              "(a retrieved motion stood in), per variant: " + "; ".join(invalid) + "."]  # fmt: skip
    t8 = report["tables"]["table8"]
    if t8:
        first_rare = report["per_seed"][str(next(iter(t8.values()))["seeds"][0])]["rare"]
        lines += ["", f"## Table 8: rare motions (ReMoDiffuse protocol; rareness from {first_rare['text_embedder']}, "
                  f"{first_rare['num_ranges']} rareness ranges, rarest 5% = {first_rare['top_count']} samples of "
                  f"{first_rare['samples']}, {first_rare['split']} split)", "",
                  "| Method | MMDist ↓ | Top 5% MMDist ↓ | Balanced MMDist ↓ | Diversity ↑ | Top 5% Diversity ↑ |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for name, row in t8.items():
            cells = [_cell(row[m]) for m in ("MMDist", "Top5%_MMDist", "Balanced_MMDist", "Diversity",
                                             "Top5%_Diversity")]  # fmt: skip
            lines.append(f"| {name}{_seeds_note(row, seeds)} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Rareness against text–motion distance (seed " + str(first_rare["seed"]) + "): `"
                     + _png_name(report, "rareness") + "`.")  # fmt: skip
    lines += claims_markdown(report["tables"].get("claims", []))
    lines += ["", "## Budgets", "", "```yaml", cfg.to_yaml().rstrip(), "```", "", "## Wall time per part", "",
              "| part | seconds |", "|---|---|"]  # fmt: skip
    for name, piece in report["pieces"].items():
        lines.append(f"| {name} | {piece.get('seconds', '–')} |")
    lines += ["", "## Per-seed results (mean ± 1.96·σ/√repeats within the seed)"]
    for seed in seeds:
        entry = report["per_seed"][str(seed)]
        lines += ["", f"### Seed {seed}", ""]
        if entry["table1"]:
            lines.append(_demote(retrieval_markdown(list(entry["table1"].values()))))
        for name in entry["t2m"]:
            lines.append(_demote(t2m_markdown(entry["t2m"][name])))
            if name in entry["m2t"]:
                lines.append(_demote(m2t_markdown(entry["m2t"][name])))
        if entry["rare"]:
            lines.append(_demote(rare_markdown(entry["rare"])))
    return "\n".join(lines) + "\n"


def _seeds_note(row: dict[str, Any], seeds: list[int]) -> str:
    """A note such as " (seeds 2)" after a row label when the row is over fewer seeds than the table."""
    have = row.get("seeds", seeds)
    return "" if list(have) == list(seeds) else f" (seed{'s' if len(have) > 1 else ''} {', '.join(map(str, have))})"


def _demote(markdown: str) -> str:
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines()) + "\n"


def _png_name(report: dict[str, Any], what: str) -> str:
    return Path(report.get("out_md", "paper_tables.md")).stem + f"_{what}.png"


def _write_outputs(report: dict[str, Any], out_md: Path) -> None:
    from remogpt.artifacts import atomic_write_text
    from remogpt.eval.reports import plot_rareness, plot_recall_curves, write_json

    report["out_md"] = str(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    t1 = report["tables"]["table1"]
    if t1:
        first = report["per_seed"][str(next(iter(t1.values()))["seeds"][0])]["table1"]
        curves = [{"label": e["label"], "samples": first[k]["samples"], "split": first[k]["split"],
                   "metrics": {"recall_curve": e["recall_curve"]}} for k, e in t1.items()]  # fmt: skip
        plot_recall_curves(curves, out_md.with_name(_png_name(report, "recall")))
    t8 = report["tables"]["table8"]
    rare = report["per_seed"][str(next(iter(t8.values()))["seeds"][0])]["rare"] if t8 else None
    if rare:
        plot_rareness(rare, out_md.with_name(_png_name(report, "rareness")))
    atomic_write_text(out_md, ablation_markdown(report))
    write_json(out_md.with_suffix(".json"), report)
