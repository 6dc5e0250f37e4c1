"""The paper's evaluations as functions: a trained run (and the matching evaluator) in, numbers out.

    from remogpt.eval.runners import eval_t2m, eval_m2t, eval_retrieval, eval_rare
    result = eval_t2m("runs/demo", "data/embedded", "runs/evaluator", repeats=20)
    result["rows"]["ReMoGPT"]["FID"]        # {"mean": …, "interval": …, "values": [one per repeat]}

Every result is a JSON-ready dict naming its protocol, data split, evaluator and seeds; every random
choice is seeded. `remogpt.eval.reports` turns them into Markdown tables in the paper's layout,
JSON files and plots. Models are used only through their public APIs (`ReMoGPT.from_pretrained`,
`Retriever.from_pretrained`, `Evaluator.from_pretrained`). Heavy imports happen inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.eval.metrics import (
    EvalInputError,
    _gt_ranks,
    diversity,
    frechet_distance,
    mm_dist,
    multimodality,
    r_precision,
    rare_motion_metrics,
    rareness,
    retrieval_metrics,
    retrieval_metrics_small_batches,
)

__all__ = [
    "COPY_M2T",
    "COPY_T2M",
    "COPY_T2T",
    "R_PRECISION_BATCH",
    "T2M_METRICS",
    "TOKENIZER_ROUNDTRIP",
    "eval_m2t",
    "eval_rare",
    "eval_retrieval",
    "eval_t2m",
    "eval_text_to_text",
    "mean_interval",
    "recall_curve",
    "reference_crop",
    "summarize_repeats",
    "text_to_text_sim",
]

R_PRECISION_BATCH = 32  # Guo et al.: R-Precision among 32 (text, motion) pairs
#: Rows of the copy baselines: a retrieved training motion or caption returned as it is.
COPY_T2M = "Retrieved top-1 motion (text→motion)"
COPY_T2T = "Retrieved top-1 motion (text→text)"
COPY_M2T = "Retrieved top-1 caption (motion→text)"
#: The ceiling of any language model that writes codes for this tokenizer: the real motions encoded and
#: decoded again (the LM can at best write a motion's own codes).
TOKENIZER_ROUNDTRIP = "Real through the tokenizer (VQ-VAE round trip)"
T2M_METRICS = ("top1", "top2", "top3", "FID", "MMDist", "Diversity", "MModality")
M2T_METRICS = ("top1", "top2", "top3", "MMDist", "Length_avg", "BLEU@1", "BLEU@4", "ROUGE_L", "CIDEr", "BERTScore")
RARE_METRICS = ("MMDist", "Top5%_MMDist", "Balanced_MMDist", "Diversity", "Top5%_Diversity")
RARENESS_EMBEDDER = "all-MiniLM-L6-v2 sentence embeddings (frozen, mean pooling; the retriever's text model)"

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    return None


# ----------------------------------------------------------------------------- statistics


def mean_interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean and the reference's 95% interval over repeats: 1.96·σ/√n, σ the population std (ddof=0),
    exactly as Guo et al.'s `get_metric_statistics`."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise EvalInputError("no values to summarise")
    return {
        "mean": float(arr.mean()),
        "interval": float(1.96 * arr.std() / math.sqrt(arr.size)),
        "values": [float(v) for v in arr],
    }


def summarize_repeats(per_repeat: Sequence[dict[str, float | None]]) -> dict[str, dict[str, Any] | None]:
    """{metric: mean_interval over repeats}, None where a metric is not defined (e.g. Real MModality)."""
    keys = list(dict.fromkeys(k for row in per_repeat for k in row))
    out: dict[str, dict[str, Any] | None] = {}
    for key in keys:
        values = [row.get(key) for row in per_repeat]
        out[key] = None if any(v is None for v in values) else mean_interval([float(v) for v in values])  # type: ignore[arg-type]
    return out


def _finite(emb: np.ndarray, what: str) -> np.ndarray:
    bad = int((~np.isfinite(emb)).sum())
    if bad:
        raise EvalInputError(f"{what}: the evaluator returned {bad} NaN/inf values (check the motions and evaluator)")
    return emb


# ----------------------------------------------------------------------------- shared inputs


def _samples(data_root: Path | str, split: str) -> list[Any]:
    """The split's samples sorted by id (the TMR protocol sorts ids; it also makes every draw reproducible)."""
    from remogpt.data import load_split

    clips = sorted(load_split(data_root, split), key=lambda c: c.id)
    if not clips:
        raise EvalInputError(f"{data_root}: the {split} split holds no samples")
    return clips


def _select(n: int, num_prompts: int | None, seed: int) -> np.ndarray:
    """A fixed seeded subset of `num_prompts` sample indices (all samples when None), sorted."""
    if num_prompts is None or num_prompts >= n:
        return np.arange(n)
    if num_prompts < 1:
        raise EvalInputError(f"num_prompts must be ≥ 1, got {num_prompts}")
    return np.sort(np.random.RandomState(seed).choice(n, num_prompts, replace=False))


def _need_batches(n: int, split: str) -> int:
    """Samples used per repeat: the shuffled split cut into batches of 32, the last partial one dropped."""
    used = n // R_PRECISION_BATCH * R_PRECISION_BATCH
    if used == 0:
        raise EvalInputError(
            f"R-Precision needs at least {R_PRECISION_BATCH} samples (one batch); the {split} split has {n}"
        )
    return used


def _check_diversity(n: int, times: int, what: str) -> None:
    if times < 1:
        raise EvalInputError(f"diversity_times must be ≥ 1, got {times}")
    if n <= times:
        raise EvalInputError(
            f"Diversity with {times} pairs needs more than {times} {what}, got {n} "
            f"(evaluate more samples, or pass diversity_times below {n})"
        )


def _require_evaluator(evaluator_dir: Path | str) -> Any:
    from remogpt.artifacts import ArtifactError
    from remogpt.eval.evaluator import Evaluator

    path = Path(evaluator_dir)
    if not (path / "manifest.json").is_file():
        raise ArtifactError(f"{path}: no trained evaluator here (train one: remogpt train evaluator --out {path})")
    return Evaluator.from_pretrained(path)


def _require_run(run_dir: Path | str) -> None:
    from remogpt.artifacts import RunFolder

    RunFolder(Path(run_dir)).require("tokenizer", "retriever", "lm")


def _evaluator_info(evaluator: Any, evaluator_dir: Path | str) -> dict[str, Any]:
    manifest = getattr(evaluator, "manifest", None)
    return {"dir": str(evaluator_dir), "fingerprint": manifest.fingerprint if manifest else None,
            "data_hash": manifest.data_hash if manifest else None}  # fmt: skip


def reference_crop(features: np.ndarray, rng: np.random.RandomState, unit_length: int = 4) -> np.ndarray:
    """The reference evaluation loader's crop of a real motion (Guo et al.'s Text2MotionDatasetV2):
    the length is cut to a multiple of 4, one unit shorter with probability 1/3, at a random start.
    It is why the Real row's FID is small but not zero."""
    n = len(features)
    coin = rng.choice(["single", "single", "double"])
    length = (n // unit_length - (1 if coin == "double" else 0)) * unit_length
    if length < unit_length:
        length = n // unit_length * unit_length
    start = rng.randint(0, n - length + 1)
    return features[start : start + length]


def _pick_captions(clips: Sequence[Any], rng: np.random.RandomState, caption: str) -> list[Any]:
    """One caption per sample: a random one (the reference loader's `random.choice`) or the first."""
    if caption == "first":
        return [c.captions[0] for c in clips]
    if caption != "random":
        raise EvalInputError(f"caption must be 'random' or 'first', got {caption!r}")
    return [c.captions[rng.randint(len(c.captions))] for c in clips]


def _problem_kind(key: str) -> str:
    return re.sub(r"\d+", "N", key)


def _invalid_stats(before: Counter[str], after: Counter[str], generated: Sequence[Any]) -> dict[str, Any]:
    """Malformed generations: per kind (counts of sampled sequences) and per returned sample."""
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    sequences = int(delta.pop("sequences", 0))
    kinds: Counter[str] = Counter()
    invalid = 0
    for key, count in delta.items():
        if key.startswith("invalid"):
            kinds[_problem_kind(key.removeprefix("invalid: "))] += count
            invalid += count
        else:
            kinds[key] += count
    return {
        "sequences": sequences,
        "invalid_sequences": invalid,
        "invalid_fraction": invalid / sequences if sequences else 0.0,
        "by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "samples": len(generated),
        "samples_retried": sum(1 for g in generated if g.attempts > 1),
        "samples_failed": sum(1 for g in generated if g.problem == "no valid motion generated"),
    }


def _retrieval_setting(model: Any, retrieval: Any) -> dict[str, Any]:
    setting = retrieval if retrieval is not None else model.retrieval
    return setting.to_dict()


# ----------------------------------------------------------------------------- text → motion


def eval_t2m(
    run_dir: Path | str, data_root: Path | str, evaluator_dir: Path | str,
    repeats: int = 20, num_prompts: int | None = None, mmodality: bool = True, retrieval: Any = None,
    seed: int = 0, split: str = "test", caption: str = "random",
    diversity_times: int = 300, mm_texts: int = 100, mm_generations: int = 30, mm_times: int = 10,
    label: str = "ReMoGPT", batch_size: int = 32, copy_baselines: bool = True, model: Any = None,
    rerank: int | None = None, rerank_score: str | None = None, guidance_scale: float | None = None,
    judge_dir: Path | str | None = None, log: Log = _quiet,
) -> dict[str, Any]:  # fmt: skip
    """Text-to-motion with Guo et al.'s protocol (Tables 2, 3, 6): R-Precision, FID, MMDist, Diversity, MModality.

    Repeat r (r = 0 … repeats−1) draws everything from seed + r: the split (or its fixed seeded
    subset of `num_prompts` samples) is shuffled and cut into batches of 32, the last partial batch
    dropped from every metric (as the reference loader's drop_last); each sample gets one caption,
    chosen at random as the reference loader does (`caption="first"` takes the first instead); one
    motion per caption is generated with seed seed + r. Metrics on evaluator embeddings: R-Precision
    top-1/2/3 in batches of 32 (Euclidean), MMDist, FID against the real motions of all evaluated
    samples (embedded once, with the reference's random crop), Diversity over `diversity_times`
    pairs, and MModality on `mm_texts` texts × `mm_generations` generations with `mm_times` pairs
    (the paper: 100 × 30, 10 pairs). The Real row has the same metrics with the real motions
    (reference-cropped anew in each repeat). Each metric: mean ± 1.96·σ/√repeats.
    `retrieval` (a RetrievalPromptConfig) overrides the trained context setting; `model`, an already
    loaded `ReMoGPT` of `run_dir` (e.g. with a training snapshot's weights), is used instead of loading it.
    With `copy_baselines`, two more rows score what a sceptic would compare with: the top-1
    retrieved training motion itself, found text→motion by the run's retriever, and found through
    the nearest training caption (text→text); no generation at all. A third, the Real motions
    through the run's VQ-VAE (encoded and decoded), is the ceiling of any model writing its codes.
    `rerank` N makes every generated motion the best of N samples by `rerank_score` (see
    `ReMoGPT.generate_motion`; defaults: the model's settings); the result records both, and the
    classifier-free `guidance_scale` (default: the model's; 1: off).

    Two measures of what the words say, in every row: with `judge_dir` (a trained attribute judge,
    `remogpt train judge`) and a data folder with labels, `Attributes` (the share of each prompt's
    attributes found in the motion) and `AllAttributes` (the share of prompts with all found); and,
    for the model, `CopyRate` (the share of sequences identical to a retrieved context motion's
    codes) and `CodeOverlap` (the share of codes equal to one at the same offset).
    """
    from remogpt.lm import RERANK_SCORES, ReMoGPT

    started = time.perf_counter()
    if repeats < 1:
        raise EvalInputError(f"repeats must be ≥ 1, got {repeats}")
    _require_run(run_dir)
    evaluator = _require_evaluator(evaluator_dir)
    clips = _samples(data_root, split)
    sel = _select(len(clips), num_prompts, seed)
    used = _need_batches(len(sel), split)
    _check_diversity(used, diversity_times, "samples per repeat")
    mm = (mm_texts, mm_generations, mm_times) if mmodality else None
    if mm is not None:
        _check_mmodality(*mm, len(sel), split)
    model = model or ReMoGPT.from_pretrained(run_dir, data_root=data_root)
    before = Counter(model.stats)
    ref_rng = np.random.RandomState([seed, 1])  # the ground-truth set of the FID, drawn once
    real_ref = _finite(evaluator.embed_motions([reference_crop(clips[i].features, ref_rng) for i in sel]),
                       "real motions")  # fmt: skip
    copies = {COPY_T2M: "motion", COPY_T2T: "text"} if copy_baselines else {}
    rerank = model.cfg.rerank_candidates if rerank is None else rerank
    rerank_score = model.cfg.rerank_score if rerank_score is None else rerank_score
    if rerank_score not in RERANK_SCORES:
        raise EvalInputError(f"rerank_score must be one of {', '.join(RERANK_SCORES)}, got {rerank_score!r}")
    guidance_scale = model.cfg.guidance_scale if guidance_scale is None else guidance_scale
    if not (isinstance(guidance_scale, int | float) and np.isfinite(guidance_scale) and guidance_scale >= 1):
        raise EvalInputError(f"guidance_scale must be a number ≥ 1 (1: off), got {guidance_scale!r}")
    judge, labels = _judge_and_labels(judge_dir, data_root)
    setup = _T2MSetup(model, evaluator, clips, sel, used, caption, retrieval, batch_size, label, copies, mm, rerank,
                      rerank_score, float(guidance_scale), judge, labels)  # fmt: skip
    reference_rows = [*copies, TOKENIZER_ROUNDTRIP] if copy_baselines else []
    per_repeat: dict[str, list[dict[str, float | None]]] = {row: [] for row in ("Real", label, *reference_rows)}
    generated_all: list[Any] = []
    per_repeat_words: list[dict[str, Any]] = []
    gen_seconds = 0.0
    for r in range(repeats):
        rep = _t2m_repeat(setup, seed + r)
        per_repeat_words.append(rep.attribute_details)
        gen_seconds, generated_all = gen_seconds + rep.seconds, generated_all + rep.generated
        for row, emb in rep.embeddings.items():
            metrics = _t2m_metrics(rep.text_emb, emb, real_ref, diversity_times, seed + r)
            per_repeat[row].append({**metrics, "MModality": rep.mmodality if row == label else None,
                                    **rep.words.get(row, {})})  # fmt: skip
        last = per_repeat[label][-1]
        log(f"      repeat {r + 1}/{repeats}: R-top1 {last['top1']:.3f}, FID {last['FID']:.3f}, "
            f"MMDist {last['MMDist']:.3f}")  # fmt: skip
    return {
        "task": "t2m",
        "protocol": "text-to-motion, Guo et al. 2022 (R-Precision in batches of 32, FID, MMDist, Diversity, MModality)",
        **_run_info(run_dir, data_root, split, evaluator, evaluator_dir, model, retrieval, label, seed),
        "repeats": repeats, "repeat_seeds": [seed + r for r in range(repeats)], "rerank_candidates": rerank,
        "rerank_score": rerank_score if rerank > 1 else None, "guidance_scale": float(guidance_scale),
        "samples": len(sel), "samples_per_repeat": used, "caption": caption, "diversity_times": diversity_times,
        "mmodality": dict(zip(("texts", "generations", "times"), mm, strict=True)) if mm else None,
        "interval": "mean ± 1.96·σ/√repeats (σ: population std over repeats, as the reference)",
        "rows": {row: summarize_repeats(values) for row, values in per_repeat.items()},
        "judge": _judge_info(judge, judge_dir),
        "attributes_per_kind": _attributes_per_kind(per_repeat_words),
        "invalid": _invalid_stats(before, model.stats, generated_all),
        "seconds": {"total": time.perf_counter() - started, "generation": gen_seconds},
    }  # fmt: skip


@dataclass
class _T2MSetup:
    """What every repeat of `eval_t2m` shares."""

    model: Any
    evaluator: Any
    clips: list
    selection: np.ndarray
    used: int
    caption: str
    retrieval: Any
    batch_size: int
    label: str
    copies: dict[str, str]  # copy-baseline row → retrieval target
    mmodality: tuple[int, int, int] | None  # texts, generations per text, pairs
    rerank: int = 1  # candidates per generated motion
    rerank_score: str = "both"  # what picks the best of them (see ReMoGPT.generate_motion)
    guidance_scale: float = 1.0  # classifier-free guidance (1: off)
    judge: Any = None  # an AttributeJudge, or None
    labels: Any = None  # the data folder's LabelBook, or None


@dataclass
class _T2MRepeat:
    embeddings: dict[str, np.ndarray]  # row → evaluator motion embeddings
    text_emb: np.ndarray
    mmodality: float | None
    generated: list
    seconds: float
    words: dict[str, dict[str, float | None]] = field(default_factory=dict)  # row → attribute / copy measures
    attribute_details: dict[str, Any] = field(default_factory=dict)  # row → per-kind found / total


def _judge_and_labels(judge_dir: Path | str | None, data_root: Path | str) -> tuple[Any, Any]:
    if judge_dir is None:
        return None, None
    from remogpt.eval.judge import AttributeJudge, LabelBook

    if not (Path(judge_dir) / "manifest.json").is_file():
        raise EvalInputError(f"{judge_dir}: no attribute judge there; train one with `remogpt train judge`")
    return AttributeJudge.from_pretrained(judge_dir), LabelBook.of(data_root)


def _judge_info(judge: Any, judge_dir: Path | str | None) -> dict[str, Any] | None:
    if judge is None:
        return None
    left_out = sorted(judge.manifest.extra.get("left_out", {}))
    return {"dir": str(judge_dir), "fingerprint": judge.manifest.fingerprint, "scored": len(judge.scored or ()),
            "left_out": left_out}  # fmt: skip


def _attributes_per_kind(per_repeat: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]] | None:
    """Row → kind (name, side, direction, count) → accuracy over all repeats together."""
    if not per_repeat or not per_repeat[0]:
        return None
    out: dict[str, dict[str, list[int]]] = {}
    for rep in per_repeat:
        for row, kinds in rep.items():
            for kind, v in kinds.items():
                acc = out.setdefault(row, {}).setdefault(kind, [0, 0])
                acc[0] += v["found"]
                acc[1] += v["total"]
    return {row: {k: v[0] / v[1] for k, v in kinds.items() if v[1]} for row, kinds in out.items()}


def _words_measures(setup: _T2MSetup, chosen: Sequence[Any], motions: dict[str, list[np.ndarray]],
                    gen: Sequence[Any]) -> tuple[dict[str, dict[str, float | None]], dict[str, Any]]:  # fmt: skip
    """Attribute accuracy of every row's motions and the model's copy rate (see `eval_t2m`)."""
    from remogpt.eval.metrics import copy_rate

    words: dict[str, dict[str, float | None]] = {}
    details: dict[str, Any] = {}
    if setup.judge is not None:
        expected = [setup.labels.phases(c.id) for c in chosen]
        keep = [i for i, e in enumerate(expected) if e is not None]
        for row, ms in motions.items():
            acc = setup.judge.accuracy([expected[i] for i in keep], [ms[i] for i in keep])
            words[row] = {"Attributes": acc["attributes"], "AllAttributes": acc["all_correct"]}
            details[row] = acc["per_kind"]
    contexts = [[setup.model.database_codes(ref["id"]) for ref in g.references] for g in gen]
    if any(contexts):
        rate = copy_rate([g.codes for g in gen], contexts)
        words.setdefault(setup.label, {}).update({"CopyRate": rate["identical"], "CodeOverlap": rate["same_offset"]})
    return words, details


def _check_mmodality(texts: int, generations: int, times: int, available: int, split: str) -> None:
    if generations <= times:
        raise EvalInputError(
            f"MModality with {times} pairs needs more than {times} generations per text, got {generations}"
        )
    if not 1 <= texts <= available:
        raise EvalInputError(f"MModality on {texts} texts needs that many samples; the {split} split has {available}")


def _t2m_repeat(setup: _T2MSetup, s: int) -> _T2MRepeat:
    """One repeat: a seeded shuffle of the prompts, one generation each, the copy baselines, MModality."""
    import torch

    model, evaluator = setup.model, setup.evaluator
    torch.manual_seed(s)
    rng = np.random.RandomState([s, 0])
    order = setup.selection[rng.permutation(len(setup.selection))][: setup.used]
    chosen = [setup.clips[i] for i in order]
    caps = _pick_captions(chosen, rng, setup.caption)
    real = [reference_crop(c.features, rng) for c in chosen]
    t0 = time.perf_counter()
    gen = model.generate_motion([c.text for c in caps], num_samples=1, seed=s, retrieval=setup.retrieval,
                                batch_size=setup.batch_size, rerank=setup.rerank,
                                rerank_score=setup.rerank_score, guidance_scale=setup.guidance_scale)  # fmt: skip
    seconds = time.perf_counter() - t0
    text_emb = _finite(evaluator.embed_texts([list(c.tokens) or c.text for c in caps]), "caption embeddings")
    motions: dict[str, list[np.ndarray]] = {"Real": real, setup.label: [g.features for g in gen]}
    for row, target in setup.copies.items():
        found = model.retriever.search(text=[c.text for c in caps], k=1, target=target, with_motions=False)
        motions[row] = [model.retriever.motion(f.ids[0]) for f in found]
    if setup.copies:  # the tokenizer's ceiling (all its code layers), on the same real crops as the Real row
        layers = model.tokenizer.num_quantizers
        motions[TOKENIZER_ROUNDTRIP] = [model.tokenizer.reconstruct(r, layers=layers).cpu().numpy() for r in real]
    embs = {row: _finite(evaluator.embed_motions(ms), row if row != setup.label else "generated motions")
            for row, ms in motions.items()}  # fmt: skip
    words, details = _words_measures(setup, chosen, motions, gen)
    mm_value, generated = None, list(gen)
    if setup.mmodality is not None:
        texts, generations, times = setup.mmodality
        mm_idx = np.random.RandomState([s, 2]).choice(setup.selection, texts, replace=False)
        mm_caps = _pick_captions([setup.clips[i] for i in mm_idx], np.random.RandomState([s, 3]), setup.caption)
        t0 = time.perf_counter()
        mm_gen = model.generate_motion([c.text for c in mm_caps], num_samples=generations, seed=s,
                                       retrieval=setup.retrieval, batch_size=setup.batch_size,
                                       rerank=setup.rerank, rerank_score=setup.rerank_score,
                                       guidance_scale=setup.guidance_scale)  # fmt: skip
        seconds += time.perf_counter() - t0
        generated += mm_gen
        mm_emb = _finite(evaluator.embed_motions([g.features for g in mm_gen]), "MModality motions")
        mm_value = multimodality(mm_emb.reshape(texts, generations, -1), times, seed=s)
    return _T2MRepeat(embs, text_emb, mm_value, generated, seconds, words, details)


def _t2m_metrics(text_emb: np.ndarray, emb: np.ndarray, real_ref: np.ndarray, diversity_times: int, s: int) -> dict:
    top = r_precision(text_emb, emb, top_k=3, batch_size=R_PRECISION_BATCH, seed=s)
    return {
        "top1": float(top[0]), "top2": float(top[1]), "top3": float(top[2]),
        "FID": frechet_distance(emb, real_ref),
        "MMDist": mm_dist(text_emb, emb),
        "Diversity": diversity(emb, diversity_times, seed=s),
    }  # fmt: skip


def _run_info(run_dir: Path | str, data_root: Path | str, split: str, evaluator: Any, evaluator_dir: Path | str,
              model: Any, retrieval: Any, label: str, seed: int) -> dict[str, Any]:  # fmt: skip
    """What a t2m / m2t result was computed from (run, data, evaluator, retrieval setting, seed)."""
    return {
        "run_dir": str(run_dir),
        "data_root": str(data_root),
        "split": split,
        "evaluator": _evaluator_info(evaluator, evaluator_dir),
        "lm_fingerprint": _lm_fingerprint(run_dir),
        "retrieval": _retrieval_setting(model, retrieval),
        "label": label,
        "seed": seed,
    }


def _lm_fingerprint(run_dir: Path | str) -> str | None:
    from remogpt.artifacts import read_manifest

    try:
        return read_manifest(Path(run_dir) / "lm").fingerprint
    except Exception:  # an LM written by an older version: the result is still valid, only less traceable
        return None


# ----------------------------------------------------------------------------- motion → text


def eval_m2t(
    run_dir: Path | str,
    data_root: Path | str,
    evaluator_dir: Path | str,
    bertscore: bool = True,
    repeats: int = 20,
    num_prompts: int | None = None,
    retrieval: Any = None,
    seed: int = 0,
    split: str = "test",
    num_beams: int = 1,
    label: str = "ReMoGPT",
    batch_size: int = 32,
    copy_baselines: bool = True,
    model: Any = None,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Motion-to-text (Tables 4, 5): caption every test motion (greedy with num_beams=1), then
    BLEU@1/4, ROUGE-L, CIDEr (COCO scorers, 0–100, references: all captions of the clip), BERTScore
    (the model used is named), and R-Precision / MMDist of the generated captions against the real
    motions with the evaluator's encoders, plus Length_avg (mean words per caption after the
    protocol's normalisation). Captions are deterministic, so repeats only reshuffle the
    R-Precision batches (seed + r). The Real row uses the ground-truth first captions. With
    `copy_baselines`, one more row scores the top-1 training caption retrieved motion→text by the
    run's retriever (what the prompt's context already holds), with every metric.
    """
    from remogpt.eval.captions import caption_metrics
    from remogpt.lm import ReMoGPT

    started = time.perf_counter()
    if repeats < 1:
        raise EvalInputError(f"repeats must be ≥ 1, got {repeats}")
    _require_run(run_dir)
    evaluator = _require_evaluator(evaluator_dir)
    clips = _samples(data_root, split)
    chosen = [clips[i] for i in _select(len(clips), num_prompts, seed)]
    _need_batches(len(chosen), split)
    model = model or ReMoGPT.from_pretrained(run_dir, data_root=data_root)
    t0 = time.perf_counter()
    predictions = model.caption([c.features for c in chosen], num_beams=num_beams, retrieval=retrieval,
                                batch_size=batch_size)  # fmt: skip
    caption_seconds = time.perf_counter() - t0
    references = [[cap.text for cap in c.captions] for c in chosen]
    if len(predictions) != len(references):
        raise EvalInputError(f"{len(predictions)} generated captions for {len(references)} motions")
    log(f"      captioned {len(predictions)} motions in {caption_seconds:.0f} s")
    candidates = {label: predictions}
    if copy_baselines:
        found = model.retriever.search(motion=[c.features for c in chosen], k=1, target="text", with_motions=False)
        candidates[COPY_M2T] = [f.captions[0] for f in found]
    scores = {row: caption_metrics(texts, references, bertscore=bertscore) for row, texts in candidates.items()}
    rows = _m2t_rows(evaluator, chosen, candidates, scores, repeats, seed)
    return {
        "task": "m2t",
        "protocol": "motion-to-text, TM2T/MotionGPT (COCO caption scorers on normalised captions, BERTScore, "
        "R-Precision in batches of 32 and MMDist with the matching evaluator)",
        **_run_info(run_dir, data_root, split, evaluator, evaluator_dir, model, retrieval, label, seed),
        "repeats": repeats,
        "samples": len(chosen),
        "decoding": "greedy" if num_beams == 1 else f"beam search ({num_beams} beams)",
        "bertscore_model": scores[label].get("BERTScore_model"),
        "interval": "R-Precision: mean ± 1.96·σ/√repeats over batch shuffles; other metrics are deterministic",
        "rows": rows,
        "examples": [
            {"id": c.id, "generated": p, "references": refs}
            for c, p, refs in zip(chosen[:10], predictions[:10], references[:10], strict=True)
        ],
        "seconds": {"total": time.perf_counter() - started, "captioning": caption_seconds},
    }


def _m2t_rows(evaluator: Any, chosen: list, candidates: dict[str, list[str]], scores: dict[str, dict],
              repeats: int, seed: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each row's R-Precision (reshuffled batches, seed + r), MMDist and Length_avg against the real
    motions, beside its caption scores; the Real row scores the ground-truth first captions."""
    from remogpt.eval.captions import normalize_caption

    motion_emb = _finite(evaluator.embed_motions([c.features for c in chosen]), "real motions")
    text_embs = {
        "Real": _finite(evaluator.embed_texts([list(c.captions[0].tokens) or c.captions[0].text for c in chosen]),
                        "ground-truth captions"),
        **{row: _finite(evaluator.embed_texts(texts), f"{row} captions") for row, texts in candidates.items()},
    }  # fmt: skip
    lengths = {row: [len(normalize_caption(p).split()) for p in texts] for row, texts in candidates.items()}
    lengths["Real"] = [len(normalize_caption(c.captions[0].text).split()) for c in chosen]
    rows: dict[str, dict[str, Any]] = {}
    for row, text_emb in text_embs.items():
        tops = np.array([r_precision(text_emb, motion_emb, 3, R_PRECISION_BATCH, seed + r) for r in range(repeats)])
        entry: dict[str, Any] = {f"top{k + 1}": mean_interval(tops[:, k]) for k in range(3)}
        entry["MMDist"] = mean_interval([mm_dist(text_emb, motion_emb)])
        entry["Length_avg"] = mean_interval([float(np.mean(lengths[row]))])
        for key in ("BLEU@1", "BLEU@4", "ROUGE_L", "CIDEr", "BERTScore"):
            value = scores[row].get(key) if row in scores else None
            entry[key] = mean_interval([float(value)]) if isinstance(value, float) else None
        rows[row] = entry
    return rows


# ----------------------------------------------------------------------------- retrieval (Table 1)


def recall_curve(sim: np.ndarray, max_k: int = 20) -> dict[str, list[float]]:
    """R@k in percent for k = 1 … max_k, both directions, from the protocol's tie-averaged ranks."""
    sim = np.asarray(sim, dtype=np.float64)
    ks = range(1, min(max_k, sim.shape[0]) + 1)
    out: dict[str, list[float]] = {"k": [float(k) for k in ks]}
    for direction, matrix in (("t2m", sim), ("m2t", sim.T)):
        ranks = _gt_ranks(matrix)
        out[direction] = [100.0 * float(np.mean(ranks < k)) for k in ks]
    return out


def _table1_metrics(sim: np.ndarray, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"all": retrieval_metrics(sim), "recall_curve": recall_curve(sim)}
    if sim.shape[0] >= R_PRECISION_BATCH:
        out["small_batches"] = retrieval_metrics_small_batches(sim, R_PRECISION_BATCH, seed)
    else:
        out["small_batches"] = None
        out["small_batches_note"] = f"needs at least {R_PRECISION_BATCH} samples, got {sim.shape[0]}"
    return out


def eval_retrieval(
    retriever_run_dir: Path | str,
    data_root: Path | str,
    seed: int = 0,
    split: str = "test",
    label: str | None = None,
    text_encoder: Any = None,
) -> dict[str, Any]:
    """Table 1 for one retriever, with the TMR protocol: the cosine similarity of all test texts (the
    first caption of each sample) and all test motions, samples sorted by id; R@1/2/3/5/10 and MedR
    (ties averaged) both ways; plus the "small batches" variant (32, seeded shuffle, averaged) and
    the recall curve R@k, k = 1…20. `retriever_run_dir` is a retriever folder or a run holding one;
    `text_encoder` shares an already loaded sentence model (it must be the one the retriever names)."""
    from remogpt.retrieval import Retriever

    started = time.perf_counter()
    retriever = Retriever.from_pretrained(retriever_run_dir, text_encoder=text_encoder, load_index=False)
    clips = _samples(data_root, split)
    text_emb = retriever.embed_text([c.captions[0].text for c in clips])
    motion_emb = retriever.embed_motion([c.features for c in clips], warn=False)
    if not (np.isfinite(text_emb).all() and np.isfinite(motion_emb).all()):
        raise EvalInputError(f"{retriever_run_dir}: the retriever returned NaN/inf embeddings")
    sim = text_emb @ motion_emb.T
    part_level = bool(retriever.config.motion.part_level)
    params = retriever.manifest.extra.get("parameters", {}).get("motion_encoder")
    return {
        "task": "retrieval",
        "protocol": "text–motion retrieval, TMR (Petrovich et al. 2023): all test samples, ties averaged; "
        "and small batches of 32",
        "retriever": str(retriever_run_dir),
        "fingerprint": retriever.fingerprint,
        "label": label or ("PL-TMR" if part_level else "whole-body"),
        "part_level": part_level,
        "motion_params": params,
        "data_root": str(data_root),
        "split": split,
        "samples": len(clips),
        "seed": seed,
        "metrics": _table1_metrics(sim, seed),
        "seconds": time.perf_counter() - started,
    }


def text_to_text_sim(encoder: Any, clips: Sequence[Any]) -> tuple[np.ndarray, dict[str, int]]:
    """sim[i, j] = max cosine between sample i's first caption and sample j's *other* captions.

    A motion is represented by the rest of its annotations (the query caption itself is never
    there). Timed sub-samples have a single caption; they are represented by their clip's
    whole-clip captions. This is retrieval through the database's captions with the frozen
    sentence model only, the paper's text-to-text row.
    """
    by_id = {c.id: c for c in clips}
    reps: list[list[str]] = []
    fallback = 0
    for c in clips:
        others = [cap.text for cap in c.captions[1:]]
        if not others and "#" in c.id and c.clip_id in by_id:
            others = [cap.text for cap in by_id[c.clip_id].captions if cap.text != c.captions[0].text]
            fallback += 1
        reps.append(others)
    queries = encoder.encode([c.captions[0].text for c in clips])
    flat = [t for r in reps for t in r]
    owner = np.array([j for j, r in enumerate(reps) for _ in r])
    emb = encoder.encode(flat) if flat else np.zeros((0, queries.shape[1]), np.float32)
    sims = queries @ emb.T  # (N, total other captions)
    sim = np.full((len(clips), len(clips)), -1.0, dtype=np.float64)
    for j in range(len(clips)):
        cols = np.flatnonzero(owner == j)
        if len(cols):
            sim[:, j] = sims[:, cols].max(axis=1)
    return sim, {"fallback_to_clip_captions": fallback, "without_other_captions": sum(1 for r in reps if not r)}


def eval_text_to_text(data_root: Path | str, seed: int = 0, split: str = "test", encoder: Any = None) -> dict[str, Any]:
    """Table 1's text-to-text row: retrieval through the other captions with the frozen sentence model."""
    from remogpt.retrieval import TextEncoder

    started = time.perf_counter()
    encoder = encoder or TextEncoder()
    clips = _samples(data_root, split)
    sim, notes = text_to_text_sim(encoder, clips)
    return {
        "task": "retrieval",
        "protocol": "text-to-text retrieval through the other captions (TMR protocol on the resulting matrix)",
        "label": "text-to-text (frozen MiniLM)",
        "part_level": None,
        "motion_params": None,
        "data_root": str(data_root),
        "split": split,
        "samples": len(clips),
        "seed": seed,
        "notes": notes,
        "metrics": _table1_metrics(sim, seed),
        "seconds": time.perf_counter() - started,
    }


# ----------------------------------------------------------------------------- rare motions (Table 8)


def eval_rare(
    run_dir: Path | str, data_root: Path | str, evaluator_dir: Path | str,
    baseline_run_dir: Path | str | None = None, repeats: int = 1, seed: int = 0, split: str = "test",
    num_ranges: int = 10, top_fraction: float = 0.05, diversity_times: int = 300, retrieval: Any = None,
    label: str = "ReMoGPT", baseline_label: str = "no retrieval", text_model: str = "", batch_size: int = 32,
    log: Log = _quiet,
) -> dict[str, Any]:  # fmt: skip
    """Rare motions (Table 8, ReMoDiffuse's protocol) for a run and optionally a baseline run.

    Rareness of a test sample = 1 − max cosine similarity between its first caption and every
    caption of the train split's caption files, both embedded with all-MiniLM-L6-v2 (the frozen sentence model of the
    retriever's text side, not the run's trained projection, so the numbers do not depend on the
    run; ReMoDiffuse used CLIP text features, which are not available offline; `text_model` names
    another local model folder). One motion per test sample and repeat (seed + r); metrics on the
    evaluator's embeddings: MMDist, MMDist and Diversity on the rarest `top_fraction` (5%), Balanced
    MMDist over `num_ranges` (10) equal-width rareness ranges, Diversity (min(300, n − 1) pairs).
    """
    from remogpt.retrieval import TextEncoder

    started = time.perf_counter()
    if repeats < 1:
        raise EvalInputError(f"repeats must be ≥ 1, got {repeats}")
    if num_ranges < 1:
        raise EvalInputError(f"num_ranges must be ≥ 1, got {num_ranges}")
    runs = _rare_runs(run_dir, label, baseline_run_dir, baseline_label)
    evaluator = _require_evaluator(evaluator_dir)
    clips = _samples(data_root, split)
    if len(clips) < 3:
        raise EvalInputError(f"rare-motion metrics need at least 3 samples; the {split} split has {len(clips)}")
    train_captions = _train_captions(data_root)
    encoder = TextEncoder(text_model)
    test_texts = [c.captions[0].text for c in clips]
    rare = rareness(encoder.encode(test_texts), encoder.encode(train_captions))
    text_emb = _finite(evaluator.embed_texts([list(c.captions[0].tokens) or c.captions[0].text for c in clips]),
                       "caption embeddings")  # fmt: skip
    real_emb = _finite(evaluator.embed_motions([c.features for c in clips]), "real motions")

    def row(emb: np.ndarray, r: int) -> dict[str, float | None]:
        return _rare_row(text_emb, emb, rare, top_fraction, num_ranges, diversity_times, seed + r)

    per_repeat: dict[str, list[dict[str, float | None]]] = {"Real": [row(real_emb, r) for r in range(repeats)]}
    distances: dict[str, list[np.ndarray]] = {"Real": [np.linalg.norm(text_emb - real_emb, axis=1)]}
    invalid: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for name, path in runs.items():
        embeddings, settings[name], invalid[name] = _rare_generations(
            path, data_root, evaluator, test_texts, repeats, seed, retrieval, batch_size, name
        )
        per_repeat[name] = [row(emb, r) for r, emb in enumerate(embeddings)]
        distances[name] = [np.linalg.norm(text_emb - emb, axis=1) for emb in embeddings]
        log(f"      {name}: MMDist {np.mean([x['MMDist'] for x in per_repeat[name]]):.3f}, "
            f"top-5% MMDist {np.mean([x['Top5%_MMDist'] for x in per_repeat[name]]):.3f}")  # fmt: skip
    top_count = max(2, int(round(top_fraction * len(clips))))  # as rare_motion_metrics counts them
    return {
        "task": "rare",
        "protocol": "rare motions, ReMoDiffuse (Zhang et al. 2023): rareness = 1 − max cosine to the training "
        "captions; MMDist and Diversity on the rarest 5%; Balanced MMDist over equal-width rareness ranges",
        "run_dir": str(run_dir),
        "baseline_run_dir": str(baseline_run_dir) if baseline_run_dir is not None else None,
        "data_root": str(data_root),
        "split": split,
        "evaluator": _evaluator_info(evaluator, evaluator_dir),
        "text_embedder": RARENESS_EMBEDDER if not text_model else f"{text_model} (sentence embeddings)",
        "caption": "first caption of each sample",
        "num_ranges": num_ranges, "top_fraction": top_fraction, "top_count": top_count,
        "diversity_times": diversity_times, "retrieval": settings, "seed": seed, "repeats": repeats,
        "samples": len(clips),
        "interval": "mean ± 1.96·σ/√repeats (σ: population std over repeats)",
        "rows": {name: summarize_repeats(rows) for name, rows in per_repeat.items()},
        "per_sample": {
            "ids": [c.id for c in clips],
            "rareness": [float(v) for v in rare],
            "distance": {name: [float(v) for v in np.mean(d, axis=0)] for name, d in distances.items()},
        },
        "invalid": invalid,
        "seconds": time.perf_counter() - started,
    }  # fmt: skip


def _rare_runs(run_dir: Path | str, label: str, baseline_run_dir: Path | str | None,
               baseline_label: str) -> dict[str, Path]:  # fmt: skip
    """The run and the optional baseline by label, each checked to hold a trained LM."""
    runs = {label: Path(run_dir)}
    if baseline_run_dir is not None:
        if baseline_label == label:
            raise EvalInputError(f"the run and the baseline need different labels, both are {label!r}")
        runs[baseline_label] = Path(baseline_run_dir)
    for path in runs.values():
        _require_run(path)
    return runs


def _rare_generations(
    run_dir: Path,
    data_root: Path | str,
    evaluator: Any,
    texts: list[str],
    repeats: int,
    seed: int,
    retrieval: Any,
    batch_size: int,
    name: str,
) -> tuple[list[np.ndarray], dict[str, Any], dict[str, Any]]:
    """One run's motion for every text in each repeat (seed + r), as evaluator embeddings; with the
    run's retrieval setting and its malformed-sequence statistics."""
    import torch

    from remogpt.lm import ReMoGPT

    model = ReMoGPT.from_pretrained(run_dir, data_root=data_root)
    before = Counter(model.stats)
    generated: list[Any] = []
    embeddings = []
    for r in range(repeats):
        torch.manual_seed(seed + r)
        gen = model.generate_motion(texts, num_samples=1, seed=seed + r, retrieval=retrieval, batch_size=batch_size)
        generated += gen
        embeddings.append(_finite(evaluator.embed_motions([g.features for g in gen]), f"{name}: generated motions"))
    return embeddings, _retrieval_setting(model, retrieval), _invalid_stats(before, model.stats, generated)


def _train_captions(data_root: Path | str) -> list[str]:
    """Every caption in the train split's caption files (distinct, sorted), read without the motions
    (the motions of a full training split would take gigabytes)."""
    from remogpt.data import caption_file, load_captions, read_split_ids

    root = Path(data_root)
    ids = read_split_ids(root, "train")
    texts = {cap.text for clip_id in ids for cap in load_captions(caption_file(root, clip_id))}
    if not texts:
        raise EvalInputError(f"{root}: the train split has no captions to measure rareness against")
    return sorted(texts)


def _rare_row(text_emb: np.ndarray, motion_emb: np.ndarray, rare: np.ndarray, top_fraction: float, num_ranges: int,
              diversity_times: int, seed: int) -> dict[str, float | None]:  # fmt: skip
    row = rare_motion_metrics(text_emb, motion_emb, rare, top_fraction, num_ranges, diversity_times, seed)
    return {k: float(row[k]) for k in RARE_METRICS}
