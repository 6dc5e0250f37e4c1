"""The field's metrics as pure numpy functions, each matching its reference implementation.

Retrieval follows the TMR protocol (Petrovich et al. 2023): a text×motion similarity matrix, the
rank of the ground truth on the diagonal with ties averaged, R@1/2/3/5/10 in percent and the
median rank (1-based), in both directions; and its "small batches" variant (batches of 32 from a
seeded shuffle of the sorted ids, averaged).
"""

from __future__ import annotations

import numpy as np

from remogpt.errors import RemogptError

__all__ = ["EvalInputError", "retrieval_metrics", "retrieval_metrics_small_batches"]

RECALL_AT = (1, 2, 3, 5, 10)


class EvalInputError(RemogptError, ValueError):
    """Inputs a metric cannot be computed from (shapes, sizes, NaN); the message says what is needed."""


def _check_matrix(sim: np.ndarray, name: str = "sim") -> np.ndarray:
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise EvalInputError(f"{name} must be a square (texts × motions) matrix, got shape {sim.shape}")
    if sim.shape[0] == 0:
        raise EvalInputError(f"{name} is empty")
    if not np.isfinite(sim).all():
        raise EvalInputError(f"{name} contains {int((~np.isfinite(sim)).sum())} NaN/inf values")
    return sim


def _gt_ranks(sim: np.ndarray, text_selfsim: np.ndarray | None = None, threshold: float | None = None) -> np.ndarray:
    """0-based rank of the ground truth in each row, ties between it and others averaged.

    With `threshold`, any item whose text is at least that similar to the query's text (cosine of
    sentence embeddings; TMR compares the selfsim with 2·threshold − 1) counts as a ground truth,
    and the best of them is ranked.
    """
    dists = -sim
    gt = np.diag(dists).copy()
    if text_selfsim is not None and threshold is not None:
        similar = text_selfsim > 2 * threshold - 1
        gt = np.where(similar, dists, np.inf).min(axis=1)
    better = (dists < gt[:, None]).sum(axis=1)
    tied = (dists == gt[:, None]).sum(axis=1)  # includes the ground truth itself
    # The tied entries occupy positions better … better+tied−1; their average is the rank.
    return better + (tied - 1) / 2.0


def _ranks_to_metrics(ranks: np.ndarray, rounding: int | None) -> dict[str, float]:
    n = len(ranks)
    out = {f"R{k:02d}": 100.0 * float(np.sum(ranks < k)) / n for k in RECALL_AT}
    out["MedR"] = float(np.median(ranks) + 1)
    if rounding is not None:
        out = {k: round(v, rounding) for k, v in out.items()}
    return out


def retrieval_metrics(
    sim: np.ndarray,
    text_embeddings: np.ndarray | None = None,
    threshold: float | None = None,
    rounding: int | None = 2,
) -> dict[str, float]:
    """TMR retrieval metrics of a text×motion similarity matrix (row i's ground truth is column i).

    Returns `t2m/R01 … t2m/R10, t2m/MedR, m2t/…` and `t2m/len`, `m2t/len`. `text_embeddings`
    (unit-norm sentence embeddings of the texts) with `threshold` gives TMR's threshold protocol.
    """
    sim = _check_matrix(sim)
    selfsim = None
    if threshold is not None:
        if text_embeddings is None:
            raise EvalInputError("threshold needs text_embeddings (one unit-norm sentence embedding per text)")
        emb = np.asarray(text_embeddings, dtype=np.float64)
        if emb.shape[0] != sim.shape[0]:
            raise EvalInputError(f"text_embeddings has {emb.shape[0]} rows, sim has {sim.shape[0]}")
        selfsim = emb @ emb.T
    out: dict[str, float] = {}
    for direction, matrix in (("t2m", sim), ("m2t", sim.T)):
        ranks = _gt_ranks(matrix, selfsim, threshold)
        for key, value in _ranks_to_metrics(ranks, rounding).items():
            out[f"{direction}/{key}"] = value
        out[f"{direction}/len"] = float(len(matrix))
    return out


def retrieval_metrics_small_batches(
    sim: np.ndarray, batch_size: int = 32, seed: int = 0, rounding: int | None = 2
) -> dict[str, float]:
    """TMR's "small batches" protocol (as Guo et al.): shuffle with `seed`, cut into batches of 32
    (the last partial batch dropped), compute the metrics per batch without rounding, average.

    `sim` must be ordered by sorted sample id, as the reference sorts its key ids before shuffling.
    """
    sim = _check_matrix(sim)
    n = sim.shape[0]
    if n < batch_size:
        raise EvalInputError(f"small-batch retrieval needs at least {batch_size} samples, got {n}")
    idx = np.arange(n)
    np.random.RandomState(seed).shuffle(idx)  # the reference's np.random.seed(seed); np.random.shuffle
    batches = [idx[batch_size * i : batch_size * (i + 1)] for i in range(n // batch_size)]
    per_batch = [retrieval_metrics(sim[np.ix_(b, b)], rounding=None) for b in batches]
    out = {key: float(np.mean([m[key] for m in per_batch])) for key in per_batch[0]}
    if rounding is not None:
        out = {k: round(v, rounding) for k, v in out.items()}
    return out
