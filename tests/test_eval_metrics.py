"""Metric functions against independent computations and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from remogpt.eval import EvalInputError, retrieval_metrics, retrieval_metrics_small_batches


def independent_retrieval(sim: np.ndarray) -> dict[str, float]:
    """Ranks with scipy's average tie-breaking, straight from the definition."""
    out = {}
    for name, matrix in (("t2m", sim), ("m2t", sim.T)):
        ranks = np.array([rankdata(-row, method="average")[i] - 1 for i, row in enumerate(matrix)])
        for k in (1, 2, 3, 5, 10):
            out[f"{name}/R{k:02d}"] = 100 * np.mean(ranks < k)
        out[f"{name}/MedR"] = np.median(ranks) + 1
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_metrics_match_rank_definition(seed: int):
    rng = np.random.default_rng(seed)
    n = 60
    sim = rng.normal(size=(n, n)) + 1.5 * np.eye(n)
    sim = np.round(sim, 1)  # many ties
    ours = retrieval_metrics(sim, rounding=None)
    ref = independent_retrieval(sim)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value), key
    assert ours["t2m/len"] == n


def test_ties_are_averaged():
    # Row 0: ground truth tied with two others at the top → rank (0+1+2)/3 = 1 → not in R@1, in R@2.
    sim = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    m = retrieval_metrics(sim)
    assert m["t2m/R01"] == 75.0 and m["t2m/R02"] == 100.0
    # Motion→text: column 0 has only its own text at 1.0 → all four ranked first.
    assert m["m2t/R01"] == 100.0
    perfect = retrieval_metrics(np.eye(20))
    assert perfect["t2m/R01"] == 100.0 and perfect["t2m/MedR"] == 1.0
    worst = retrieval_metrics(-np.eye(20))
    assert worst["t2m/MedR"] == 20.0 and worst["t2m/R10"] == 0.0


def test_threshold_protocol_counts_similar_texts():
    sim = np.array([[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # texts 0 and 1 identical
    plain = retrieval_metrics(sim)
    relaxed = retrieval_metrics(sim, text_embeddings=emb, threshold=0.95)
    assert plain["t2m/R01"] == pytest.approx(66.67)
    assert relaxed["t2m/R01"] == 100.0
    with pytest.raises(EvalInputError, match="threshold needs text_embeddings"):
        retrieval_metrics(sim, threshold=0.9)


def test_small_batches_follow_the_reference_shuffle():
    rng = np.random.default_rng(5)
    n = 100
    sim = rng.normal(size=(n, n)) + np.eye(n)
    ours = retrieval_metrics_small_batches(sim, rounding=None)
    idx = np.arange(n)
    np.random.seed(0)
    np.random.shuffle(idx)
    batches = [idx[32 * i : 32 * (i + 1)] for i in range(n // 32)]
    assert len(batches) == 3  # 4 leftover items dropped
    per = [independent_retrieval(sim[np.ix_(b, b)]) for b in batches]
    for key in per[0]:
        assert ours[key] == pytest.approx(np.mean([p[key] for p in per])), key
    with pytest.raises(EvalInputError, match="at least 32 samples"):
        retrieval_metrics_small_batches(sim[:20, :20])


@pytest.mark.parametrize(
    ("sim", "match"),
    [
        (np.zeros((3, 4)), "square"),
        (np.zeros((0, 0)), "empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    ],
)
def test_retrieval_bad_input(sim: np.ndarray, match: str):
    with pytest.raises(EvalInputError, match=match):
        retrieval_metrics(sim)
