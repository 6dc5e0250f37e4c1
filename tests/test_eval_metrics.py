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


# ---------------------------------------------------------------- text-to-motion metrics

from remogpt.eval.captions import caption_metrics, normalize_caption  # noqa: E402
from remogpt.eval.metrics import (  # noqa: E402
    balanced_mm_dist,
    diversity,
    frechet_distance,
    mm_dist,
    multimodality,
    r_precision,
    r_precision_per_text,
    rare_motion_metrics,
    rareness,
)


def test_frechet_distance_against_eigendecomposition():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(loc=0.5, size=(300, 6)) @ rng.normal(size=(6, 6))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner.clip(0)))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_r_precision_against_brute_force():
    rng = np.random.default_rng(1)
    text = rng.normal(size=(100, 16))
    motion = text + rng.normal(scale=1.2, size=(100, 16))
    ours = r_precision(text, motion, top_k=3, seed=4)
    perm = np.random.RandomState(4).permutation(100)
    hits = np.zeros(3)
    for start in range(0, 96, 32):
        b = perm[start : start + 32]
        for i in range(32):
            d = np.linalg.norm(text[b[i]] - motion[b], axis=1)
            rank = int(np.sum(d < d[i]))  # no exact ties with continuous data
            hits += np.arange(3) >= rank
    assert ours == pytest.approx(hits / 96)
    assert ours[0] <= ours[1] <= ours[2]
    with pytest.raises(EvalInputError, match="at least 32 pairs"):
        r_precision(text[:20], motion[:20])


def test_r_precision_per_text_is_the_expected_hit_of_random_batches():
    rng = np.random.default_rng(5)
    text = rng.normal(size=(64, 8))
    motion = text + rng.normal(scale=1.5, size=(64, 8))
    exact = {k: r_precision_per_text(text, motion, top_k=k) for k in (1, 3)}
    assert exact[1].shape == (64,) and np.all((exact[1] >= 0) & (exact[1] <= exact[3]) & (exact[3] <= 1))
    # Independently: the hit frequency of each text over many random draws of its 31 batch-mates.
    dist = np.linalg.norm(text[:, None] - motion[None], axis=-1)
    draws = np.random.default_rng(6)
    hits = {1: np.zeros(64), 3: np.zeros(64)}
    for _ in range(3000):
        for i in range(64):
            mates = draws.choice(np.delete(np.arange(64), i), 31, replace=False)
            nearer = int(np.sum(dist[i, mates] < dist[i, i]))
            hits[1][i] += nearer < 1
            hits[3][i] += nearer < 3
    for k in (1, 3):
        np.testing.assert_allclose(exact[k], hits[k] / 3000, atol=0.04)
    # Its mean is what R-Precision gives on average over shuffles (64 pairs: two full batches).
    shuffles = np.mean([r_precision(text, motion, top_k=1, seed=s)[0] for s in range(400)])
    assert exact[1].mean() == pytest.approx(shuffles, abs=0.01)
    perfect = r_precision_per_text(text, text)  # every text's own motion is the nearest
    np.testing.assert_allclose(perfect, 1.0)
    with pytest.raises(EvalInputError, match="top_k"):
        r_precision_per_text(text, motion, top_k=0)


def test_mm_dist_diversity_multimodality_follow_reference_draws():
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(500, 8))
    assert mm_dist(emb, emb + 3.0) == pytest.approx(np.sqrt(8 * 9.0))
    np.random.seed(7)
    first = np.random.choice(500, 300, replace=False)
    second = np.random.choice(500, 300, replace=False)
    assert diversity(emb, 300, seed=7) == pytest.approx(np.linalg.norm(emb[first] - emb[second], axis=1).mean())
    per_text = rng.normal(size=(100, 30, 8))
    np.random.seed(3)
    f = np.random.choice(30, 10, replace=False)
    s = np.random.choice(30, 10, replace=False)
    expected = np.linalg.norm(per_text[:, f] - per_text[:, s], axis=2).mean()
    assert multimodality(per_text, 10, seed=3) == pytest.approx(expected)
    with pytest.raises(EvalInputError, match="more than 300 embeddings"):
        diversity(emb[:300], 300)
    with pytest.raises(EvalInputError, match="more than 10 generations"):
        multimodality(per_text[:, :10], 10)
    with pytest.raises(EvalInputError, match="NaN"):
        mm_dist(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_rareness_and_rare_motion_metrics():
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    test = np.array([[2.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    assert rareness(test, train) == pytest.approx([0.0, 1 - 1 / np.sqrt(2), 1.0])
    d = np.array([1.0, 1.0, 1.0, 5.0])
    r = np.array([0.0, 0.01, 0.02, 1.0])
    # Two non-empty ranges (the three common ones, the rare one): (1 + 5) / 2, not the plain mean 2.
    assert balanced_mm_dist(d, r, num_ranges=10) == pytest.approx(3.0)
    rng = np.random.default_rng(0)
    text = rng.normal(size=(200, 4))
    motion = text + rng.normal(size=(200, 4)) * np.linspace(0.1, 2.0, 200)[:, None]
    rare = np.linspace(0, 1, 200)
    m = rare_motion_metrics(text, motion, rare)
    assert m["top_count"] == 10 and m["Top5%_MMDist"] > m["MMDist"]  # the rarest are the worst matched here


# ---------------------------------------------------------------- captioning metrics


def test_normalisation():
    assert normalize_caption("A person, WALKS forward!  It's 2x.") == "a person walks forward it's 2x"


def test_caption_metrics_hand_cases():
    perfect = caption_metrics(
        ["a person walks forward"], [["a person walks forward", "someone walks"]], bertscore=False
    )
    assert perfect["BLEU@1"] == pytest.approx(100.0, abs=1e-3) and perfect["ROUGE_L"] == pytest.approx(100.0)
    # BLEU-1 by hand: "a man walks" vs reference "a person walks forward": 2 of 3 unigrams match;
    # brevity penalty exp(1 − 4/3).
    half = caption_metrics(["a man walks"], [["a person walks forward"]], bertscore=False)
    assert half["BLEU@1"] == pytest.approx(100 * (2 / 3) * np.exp(1 - 4 / 3), rel=1e-3)
    # ROUGE-L by hand (beta 1.2): LCS "a walks" = 2, precision 2/3, recall 2/4.
    p, r, beta = 2 / 3, 2 / 4, 1.2
    assert half["ROUGE_L"] == pytest.approx(100 * (1 + beta**2) * p * r / (r + beta**2 * p), rel=1e-6)
    punctuation = caption_metrics(["A person, walks forward."], [["a person walks forward"]], bertscore=False)
    assert punctuation["BLEU@1"] == pytest.approx(100.0, abs=1e-3)


def test_caption_metrics_bertscore_named_and_ordered():
    preds = ["a person walks forward", "a person jumps twice"]
    refs = [["someone walks ahead", "a person walks forward slowly"], ["the man jumps two times"]]
    good = caption_metrics(preds, refs)
    bad = caption_metrics(["a person jumps twice", "a person walks forward"], refs)
    assert "MiniLM" in str(good["BERTScore_model"])
    assert good["BERTScore"] > bad["BERTScore"] and good["CIDEr"] > bad["CIDEr"]


@pytest.mark.parametrize(
    ("preds", "refs", "match"),
    [
        (["a"], [["a"], ["b"]], "1 predictions but 2 reference lists"),
        ([], [], "no predictions"),
        (["a"], ["a person"], "non-empty list of strings"),
        (["a"], [[]], "non-empty list of strings"),
    ],
)
def test_caption_metrics_bad_input(preds, refs, match):
    with pytest.raises(EvalInputError, match=match):
        caption_metrics(preds, refs, bertscore=False)
