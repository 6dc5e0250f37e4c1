"""The field's metrics as pure numpy functions, each matching its reference implementation.

Text-to-motion (Guo et al. 2022): FID, R-Precision in shuffled batches of 32, MMDist, Diversity,
MModality, all on evaluator embeddings. Randomness uses `np.random.RandomState(seed)`, the same
stream as the reference's `np.random.seed(seed)` + `np.random.choice`.
Retrieval follows the TMR protocol (Petrovich et al. 2023): a text×motion similarity matrix, the
rank of the ground truth on the diagonal with ties averaged, R@1/2/3/5/10 in percent and the
median rank (1-based), in both directions; and its "small batches" variant (batches of 32 from a
seeded shuffle of the sorted ids, averaged).
Rare motions (ReMoDiffuse): rareness of a caption = 1 − its highest cosine similarity to any
training caption; MMDist and Diversity on the rarest 5%; balanced MMDist over equal-width
rareness ranges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from remogpt.errors import RemogptError

__all__ = [
    "EvalInputError",
    "balanced_mm_dist",
    "copy_rate",
    "diversity",
    "euclidean_distance_matrix",
    "frechet_distance",
    "mm_dist",
    "multimodality",
    "r_precision",
    "r_precision_per_text",
    "rare_motion_metrics",
    "rareness",
    "retrieval_metrics",
    "retrieval_metrics_small_batches",
]

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


# ----------------------------------------------------------------------------- text-to-motion


def _embeddings(x: np.ndarray, name: str, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise EvalInputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise EvalInputError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/inf values")
    return arr


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances (N, M), computed as the reference does (|a|² − 2ab + |b|²)."""
    d1 = -2 * a @ b.T
    d2 = np.sum(np.square(a), axis=1, keepdims=True)
    d3 = np.sum(np.square(b), axis=1)
    return np.sqrt(np.maximum(d1 + d2 + d3, 0.0))


def frechet_distance(gen_emb: np.ndarray, real_emb: np.ndarray, eps: float = 1e-6) -> float:
    """FID between Gaussians (mean, full covariance) fitted to two sets of embeddings."""
    from scipy import linalg

    gen = _embeddings(gen_emb, "gen_emb")
    real = _embeddings(real_emb, "real_emb")
    if gen.shape[1] != real.shape[1]:
        raise EvalInputError(f"embedding sizes differ: {gen.shape[1]} vs {real.shape[1]}")
    if min(len(gen), len(real)) < 2:
        raise EvalInputError("FID needs at least 2 embeddings on each side")
    mu1, mu2 = gen.mean(0), real.mean(0)
    sigma1, sigma2 = np.atleast_2d(np.cov(gen, rowvar=False)), np.atleast_2d(np.cov(real, rowvar=False))
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise EvalInputError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in the covariance root")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _pairs_for_batches(text_emb: np.ndarray, motion_emb: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked (text, motion) embeddings for R-Precision: paired one to one, at least one batch."""
    text = _embeddings(text_emb, "text_emb")
    motion = _embeddings(motion_emb, "motion_emb")
    if text.shape != motion.shape:
        raise EvalInputError(f"text_emb {text.shape} and motion_emb {motion.shape} must pair up one to one")
    if len(text) < batch_size:
        raise EvalInputError(f"R-Precision needs at least {batch_size} pairs (one batch), got {len(text)}")
    return text, motion


def r_precision(
    text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = 3, batch_size: int = 32, seed: int = 0
) -> np.ndarray:
    """R-Precision top-1..k: in shuffled batches of 32 (last partial batch dropped), rank the batch's
    motions for each text by Euclidean distance; a hit at k when the paired motion is among the
    k nearest. Returns an array of k fractions."""
    text, motion = _pairs_for_batches(text_emb, motion_emb, batch_size)
    idx = np.random.RandomState(seed).permutation(len(text))
    hits = np.zeros(top_k)
    total = 0
    for start in range(0, len(idx) - batch_size + 1, batch_size):
        b = idx[start : start + batch_size]
        dist = euclidean_distance_matrix(text[b], motion[b])
        order = np.argsort(dist, axis=1)
        correct = order == np.arange(batch_size)[:, None]
        hits += np.cumsum(correct[:, :top_k], axis=1).astype(bool).sum(axis=0)
        total += batch_size
    return hits / total


def r_precision_per_text(text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = 1,
                         batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """Each text's chance of a hit at `top_k` in R-Precision's random batches: the exact expectation
    over the batch-mates, instead of one shuffle's 0 or 1.

    In a shuffled batch, a text's 31 batch-mates are a uniform draw without replacement from the
    other N − 1 pairs; it misses when `top_k` or more of their motions are nearer than its own
    (a tie counts as nearer: the pessimistic reading; real-valued embeddings have none). So the
    hit chance is the hypergeometric P(X < top_k) with the count of nearer motions as the
    successes. Its mean is the expected R-Precision at `top_k`; per text, it says *which* texts a
    model fails, which one shuffle's score cannot."""
    from scipy.stats import hypergeom

    text, motion = _pairs_for_batches(text_emb, motion_emb, batch_size)
    if not 1 <= top_k <= batch_size:
        raise EvalInputError(f"top_k must be in 1 … {batch_size}, got {top_k}")
    dist = euclidean_distance_matrix(text, motion)
    own = np.diag(dist)
    nearer = (dist <= own[:, None]).sum(axis=1) - 1  # other motions at most as far as the text's own
    return hypergeom.cdf(top_k - 1, len(text) - 1, nearer, batch_size - 1)


def mm_dist(text_emb: np.ndarray, motion_emb: np.ndarray) -> float:
    """Mean Euclidean distance between each text embedding and its paired motion embedding."""
    text = _embeddings(text_emb, "text_emb")
    motion = _embeddings(motion_emb, "motion_emb")
    if text.shape != motion.shape:
        raise EvalInputError(f"text_emb {text.shape} and motion_emb {motion.shape} must pair up one to one")
    return float(np.linalg.norm(text - motion, axis=1).mean())


def diversity(emb: np.ndarray, times: int = 300, seed: int = 0) -> float:
    """Mean distance over `times` random pairs (two index draws without replacement, as the reference)."""
    arr = _embeddings(emb, "emb")
    if len(arr) <= times:
        raise EvalInputError(f"diversity with times={times} needs more than {times} embeddings, got {len(arr)}")
    rng = np.random.RandomState(seed)
    first = rng.choice(len(arr), times, replace=False)
    second = rng.choice(len(arr), times, replace=False)
    return float(np.linalg.norm(arr[first] - arr[second], axis=1).mean())


def multimodality(emb_per_text: np.ndarray, times: int = 10, seed: int = 0) -> float:
    """(texts, generations per text, dim): mean distance over `times` random pairs of generations per text."""
    arr = _embeddings(emb_per_text, "emb_per_text", ndim=3)
    if arr.shape[1] <= times:
        raise EvalInputError(
            f"multimodality with times={times} needs more than {times} generations per text, got {arr.shape[1]}"
        )
    rng = np.random.RandomState(seed)
    first = rng.choice(arr.shape[1], times, replace=False)
    second = rng.choice(arr.shape[1], times, replace=False)
    return float(np.linalg.norm(arr[:, first] - arr[:, second], axis=2).mean())


# ----------------------------------------------------------------------------- rare motions


def rareness(test_text_emb: np.ndarray, train_text_emb: np.ndarray) -> np.ndarray:
    """1 − max cosine similarity of each test caption's embedding to all training captions'."""
    test = _embeddings(test_text_emb, "test_text_emb")
    train = _embeddings(train_text_emb, "train_text_emb")
    if test.shape[1] != train.shape[1]:
        raise EvalInputError(f"embedding sizes differ: {test.shape[1]} vs {train.shape[1]}")
    test = test / np.linalg.norm(test, axis=1, keepdims=True).clip(1e-12)
    train = train / np.linalg.norm(train, axis=1, keepdims=True).clip(1e-12)
    best = np.full(len(test), -np.inf)
    for start in range(0, len(train), 8192):  # chunks keep memory flat for large training sets
        best = np.maximum(best, (test @ train[start : start + 8192].T).max(axis=1))
    return 1.0 - best


def balanced_mm_dist(distances: np.ndarray, rareness_values: np.ndarray, num_ranges: int = 10) -> float:
    """Average over equal-width rareness ranges (non-empty ones) of the mean text–motion distance."""
    d = np.asarray(distances, dtype=np.float64)
    r = np.asarray(rareness_values, dtype=np.float64)
    if d.shape != r.shape or d.ndim != 1:
        raise EvalInputError(f"distances {d.shape} and rareness {r.shape} must be 1-D and of equal length")
    if len(d) == 0:
        raise EvalInputError("balanced MMDist of zero samples")
    edges = np.linspace(r.min(), r.max(), num_ranges + 1)
    which = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, num_ranges - 1)
    means = [d[which == k].mean() for k in range(num_ranges) if np.any(which == k)]
    return float(np.mean(means))


def rare_motion_metrics(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    rareness_values: np.ndarray,
    top_fraction: float = 0.05,
    num_ranges: int = 10,
    diversity_times: int = 300,
    seed: int = 0,
) -> dict[str, float]:
    """Table 8's numbers: MMDist, top-5% MMDist, balanced MMDist, Diversity, top-5% Diversity.

    Diversity on the rarest 5% draws min(diversity_times, n − 1) pairs, since that subset is small.
    """
    text = _embeddings(text_emb, "text_emb")
    motion = _embeddings(motion_emb, "motion_emb")
    r = np.asarray(rareness_values, dtype=np.float64)
    if not (len(text) == len(motion) == len(r)):
        raise EvalInputError(f"lengths differ: texts {len(text)}, motions {len(motion)}, rareness {len(r)}")
    n_top = max(2, int(round(top_fraction * len(r))))
    if n_top > len(r):
        raise EvalInputError(f"need at least 2 samples for the rarest {100 * top_fraction:g}%")
    top = np.argsort(-r, kind="stable")[:n_top]
    dist = np.linalg.norm(text - motion, axis=1)
    return {
        "MMDist": float(dist.mean()),
        "Top5%_MMDist": float(dist[top].mean()),
        "Balanced_MMDist": balanced_mm_dist(dist, r, num_ranges),
        "Diversity": diversity(motion, min(diversity_times, len(motion) - 1), seed),
        "Top5%_Diversity": diversity(motion[top], min(diversity_times, n_top - 1), seed),
        "num_ranges": float(num_ranges),
        "top_count": float(n_top),
    }


def copy_rate(generated: Sequence[np.ndarray], contexts: Sequence[Sequence[np.ndarray]]) -> dict[str, float]:
    """How much generated code sequences copy the motions retrieved into their prompts.

    `generated[i]` is sequence i's codes, `contexts[i]` the codes of every motion in its prompt.
    `identical`: the share of sequences equal, code for code, to one of their context motions.
    `same_offset`: the mean over sequences of the largest share of its codes equal to a context
    motion's code at the same position (positions past that motion's end count as different).
    A model that writes its neighbour's motion scores 1 / 1; one that ignores it scores near chance."""
    if len(generated) != len(contexts):
        raise EvalInputError(f"copy rate: {len(generated)} sequences but {len(contexts)} context lists")
    if not generated:
        raise EvalInputError("copy rate: no sequences")
    identical, overlap = 0, []
    for gen, ctxs in zip(generated, contexts, strict=True):
        g = np.asarray(gen).ravel()
        best, same = 0.0, False
        for ctx in ctxs:
            c = np.asarray(ctx).ravel()
            same = same or (len(c) == len(g) and bool(np.array_equal(c, g)))
            n = min(len(c), len(g))
            if len(g):
                best = max(best, float(np.sum(c[:n] == g[:n])) / len(g))
        identical += int(same)
        overlap.append(best)
    return {"identical": identical / len(generated), "same_offset": float(np.mean(overlap))}
