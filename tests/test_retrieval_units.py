"""PL-TMR building blocks without the sentence model: encoders, masking, the part split, InfoNCE and
its near-duplicate filter, configs, faiss search and the text-embedding cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from remogpt.config import ConfigError
from remogpt.motion import HUMANML3D, PART_NAMES, part_indices
from remogpt.retrieval import (
    IndexConfig,
    MotionEncoderConfig,
    PartLevelMotionEncoder,
    ProjectionHead,
    RetrievalInputError,
    RetrieverConfig,
    TextEmbeddingCache,
    VectorIndex,
    WholeBodyMotionEncoder,
    build_model,
    family_of,
    info_nce,
    near_duplicate_mask,
)

SMALL = MotionEncoderConfig(width=16, layers=1, heads=2, ff_mult=2.0, dropout=0.0)


def batch(lengths: list[int], t_max: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t_max = t_max or max(lengths)
    x = torch.randn(len(lengths), t_max, 263, generator=g)
    mask = torch.arange(t_max)[None] < torch.tensor(lengths)[:, None]
    return x * mask[..., None], mask


def test_shapes_of_both_encoders_and_the_model():
    x, mask = batch([8, 12, 20])
    part = PartLevelMotionEncoder.from_config(SMALL).eval()
    assert part(x, mask).shape == (3, 6 * 16) and part.out_dim == 96
    assert set(part.part_embeddings(x, mask)) == set(PART_NAMES)
    whole = WholeBodyMotionEncoder.from_config(SMALL).eval()
    assert whole(x, mask).shape == (3, 96)  # same total width as the concatenation (Eq. 2)
    assert whole.body.encoder.layers[0].self_attn.num_heads == 12  # per-part head size kept (16 / 2 = 8 = 96 / 12)
    narrow = WholeBodyMotionEncoder.from_config(SMALL.replace(whole_body_width=40))
    assert narrow.out_dim == 40
    model = build_model(RetrieverConfig(motion=SMALL, latent_dim=24), text_dim=10).eval()
    m = model.embed_motion(x, mask)
    t = model.embed_sentences(torch.randn(5, 10))
    assert m.shape == (3, 24) and t.shape == (5, 24)
    assert torch.allclose(m.norm(dim=-1), torch.ones(3)) and torch.allclose(t.norm(dim=-1), torch.ones(5))
    assert ProjectionHead(7, 3)(torch.randn(2, 7)).shape == (2, 3)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("part_level", [True, False])
def test_padding_never_changes_the_embedding(pooling: str, part_level: bool):
    cfg = SMALL.replace(pooling=pooling)
    enc = (PartLevelMotionEncoder if part_level else WholeBodyMotionEncoder).from_config(cfg).eval()
    x, mask = batch([8, 16, 24], t_max=32)
    with torch.no_grad():
        ref = enc(x, mask)
        noisy = x.clone()
        noisy[~mask] = torch.randn(int((~mask).sum()), 263) * 50  # garbage in every padded frame
        assert torch.allclose(enc(noisy, mask), ref, atol=1e-5)
        alone = enc(x[:1, :8], mask[:1, :8])  # the same motion without any padding
        assert torch.allclose(alone, ref[:1], atol=1e-5)
        changed = x.clone()
        changed[0, :8] += 1.0  # real frames do matter
        assert not torch.allclose(enc(changed, mask)[0], ref[0], atol=1e-3)


def test_each_part_encoder_sees_only_its_dims():
    enc = PartLevelMotionEncoder.from_config(SMALL).eval()
    seen: dict[str, torch.Tensor] = {}
    for name, module in enc.parts.items():
        module.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, args[0]))
    x, mask = batch([8, 12])
    with torch.no_grad():
        before = enc.part_embeddings(x, mask)
    idx = part_indices(HUMANML3D)
    for name in PART_NAMES:
        assert seen[name].shape[-1] == len(idx[name]) == {"root": 7, "backbone": 60}.get(name, seen[name].shape[-1])
        assert torch.equal(seen[name], x[..., list(idx[name])])
    # Changing only the left arm's dims changes only the left arm's embedding.
    outside = sorted(set(range(263)) - set(idx["left_arm"]))
    x2 = x.clone()
    x2[..., list(idx["left_arm"])] += 1.0
    with torch.no_grad():
        after = enc.part_embeddings(x2, mask)
    for name in PART_NAMES:
        same = torch.allclose(before[name], after[name])
        shared = set(idx[name]) & set(idx["left_arm"])  # spine3 belongs to the backbone and both arms
        assert same == (not shared), name
    assert outside  # the perturbation really left other dims alone
    # A dropped part contributes zeros to the concatenation.
    with torch.no_grad():
        dropped, full = enc(x, mask, drop=["root"]), enc(x, mask)
    assert torch.equal(dropped[:, :16], torch.zeros(2, 16)) and torch.allclose(dropped[:, 16:], full[:, 16:])
    with pytest.raises(RetrievalInputError, match="unknown parts"):
        enc(x, mask, drop=["tail"])


def test_encoder_refuses_bad_batches():
    enc = PartLevelMotionEncoder.from_config(SMALL.replace(frame_stride=4)).eval()
    x, mask = batch([8, 12])
    with pytest.raises(RetrievalInputError, match="263"):
        enc(x[..., :251], mask)
    with pytest.raises(RetrievalInputError, match="at least one real frame"):
        enc(x, torch.zeros_like(mask))
    x, mask = batch([8, 10])  # 10 is not a multiple of the stride: a token would mix real frames and padding
    with pytest.raises(RetrievalInputError, match="multiples of the encoder's stride"):
        enc(x, mask)


def hand_info_nce(t: np.ndarray, m: np.ndarray, tau: float, masked: set[tuple[int, int]]) -> float:
    """Cross-entropy both ways, written out with loops over a cosine matrix."""
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    n = len(t)
    s = [[float(t[i] @ m[j]) / tau for j in range(n)] for i in range(n)]
    rows = cols = 0.0
    for i in range(n):
        rows += -s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(n) if (i, j) not in masked))
        cols += -s[i][i] + math.log(sum(math.exp(s[j][i]) for j in range(n) if (j, i) not in masked))
    return (rows / n + cols / n) / 2


def test_info_nce_matches_a_hand_computation_and_filters_near_duplicates():
    rng = np.random.default_rng(0)
    t, m = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    loss = info_nce(torch.tensor(t), torch.tensor(m), 0.1)
    assert loss.item() == pytest.approx(hand_info_nce(t, m, 0.1, set()), rel=1e-9)
    # Captions 0 and 2 are near-identical (cosine 0.9 > 2·0.8 − 1), caption 3 is 0.5 from 0 (kept).
    sent = np.zeros((4, 4))
    sent[0, 0] = 1.0
    sent[1, 1] = 1.0
    sent[2, :] = [0.9, 0.0, math.sqrt(1 - 0.81), 0.0]
    sent[3, :] = [0.5, 0.0, 0.0, math.sqrt(0.75)]
    near = near_duplicate_mask(torch.tensor(sent), 0.8)
    assert near.tolist() == [[False, False, True, False], [False] * 4, [True, False, False, False], [False] * 4]
    filtered = info_nce(torch.tensor(t), torch.tensor(m), 0.1, torch.tensor(sent), 0.8)
    assert filtered.item() == pytest.approx(hand_info_nce(t, m, 0.1, {(0, 2), (2, 0)}), rel=1e-9)
    assert filtered.item() < loss.item()  # fewer negatives, a smaller loss
    # The threshold is TMR's: 0.8 → cosine 0.6; at 0.7 (cosine 0.4) caption 3 (cosine 0.5 to 0) is filtered too.
    assert near_duplicate_mask(torch.tensor(sent), 0.7)[0, 3]
    # A learnt temperature is a parameter and gets a gradient; a fixed one is a buffer.
    learnt = build_model(RetrieverConfig(motion=SMALL, learn_temperature=True, temperature=0.07), text_dim=4)
    assert isinstance(learnt.log_scale, torch.nn.Parameter) and learnt.temperature.item() == pytest.approx(0.07)
    fixed = build_model(RetrieverConfig(motion=SMALL), text_dim=4)
    assert "log_scale" not in dict(fixed.named_parameters()) and fixed.temperature.item() == pytest.approx(0.1)


def test_presets_and_config_checks():
    paper = RetrieverConfig.preset("paper")
    assert (paper.motion.width, paper.motion.layers, paper.motion.frame_stride) == (512, 4, 1)
    assert paper.text.finetune_layers == -1 and paper.learn_temperature and paper.filter_threshold == 0.8
    tiny = RetrieverConfig()
    assert tiny.text.frozen and tiny.motion.part_level and tiny.filter_threshold == 0.8
    assert RetrieverConfig.from_dict(tiny.to_dict()) == tiny
    n_paper = sum(p.numel() for p in PartLevelMotionEncoder.from_config(paper.motion).parameters())
    assert 45e6 < n_paper < 55e6  # + a 66M DistilBERT ≈ the paper's 118M
    with pytest.raises(ConfigError, match="divisible"):
        MotionEncoderConfig(width=30, heads=4)
    with pytest.raises(ConfigError, match="filter_threshold"):
        RetrieverConfig(filter_threshold=1.5)
    with pytest.raises(ConfigError, match="frame_stride 3 must divide"):
        RetrieverConfig.from_dict({"motion": {"frame_stride": 3}})
    with pytest.raises(ConfigError, match="unknown field"):
        RetrieverConfig.from_dict({"motion": {"widht": 3}})
    # configs written before `train` was renamed `trainer` (YAML files, trained retrievers' manifests)
    assert RetrieverConfig.from_dict({"train": {"max_steps": 7}}).trainer.max_steps == 7
    with pytest.raises(ConfigError, match="train is the old name of trainer"):
        RetrieverConfig.from_dict({"train": {}, "trainer": {}})


def test_learning_rate_warms_up_then_follows_a_cosine_to_ten_percent():
    from remogpt.retrieval.train import RetrieverModule

    cfg = RetrieverConfig.preset("tiny", warmup_steps=10, trainer={"max_steps": 50})
    opt = RetrieverModule(torch.nn.Linear(2, 2), cfg).configure_optimizers()  # any parameters do
    optimizer, schedule = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    for step in range(50):
        progress = (step - 10) / 40
        expected = step / 10 if step < 10 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.lr * expected, rel=1e-9), step
        optimizer.step()
        schedule.step()


def test_faiss_flat_equals_numpy_and_approximate_recall_is_measured():
    rng = np.random.default_rng(1)
    db = rng.normal(size=(2000, 32)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    q = db[:7] + 0.3 * rng.normal(size=(7, 32)).astype(np.float32)
    flat = VectorIndex.build(db)
    assert flat.kind == "flat" and flat.recall_at_10 == 1.0
    scores, rows = flat.search(q, 10)
    exact = q @ db.T
    assert np.array_equal(rows, np.argsort(-exact, axis=1, kind="stable")[:, :10])
    assert np.allclose(scores, np.take_along_axis(exact, rows, 1), atol=1e-5)
    hnsw = VectorIndex.build(db, IndexConfig(exact_max=1000, recall_queries=200))  # auto: above exact_max
    assert hnsw.kind == "hnsw" and 0.9 <= hnsw.recall_at_10 <= 1.0
    ivf = VectorIndex.build(db, IndexConfig(kind="ivf", recall_queries=200))
    assert ivf.kind == "ivf" and 0.5 <= ivf.recall_at_10 <= 1.0
    # Duplicates (identical captions) come back in any order among themselves: not counted as misses.
    dup = np.repeat(db[:200], 3, axis=0)
    assert VectorIndex.build(dup, IndexConfig(kind="hnsw", recall_queries=100)).recall_at_10 == pytest.approx(1.0)


def test_length_buckets_are_a_shuffled_permutation_of_similar_lengths():
    from remogpt.retrieval.train import LengthBucketSampler

    lengths = np.random.default_rng(0).integers(40, 197, 1000)
    sampler = LengthBucketSampler(lengths, batch_size=64, seed=3, pool_batches=5)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(1000)) and first != second  # every sample once; a new order each pass
    fresh = LengthBucketSampler(lengths, 64, seed=3, pool_batches=5)
    assert list(fresh) == first  # reproducible from the seed
    fresh.set_epoch(1)
    assert list(fresh) != second
    spread = [np.ptp(lengths[first[i : i + 64]]) for i in range(0, 960, 64)]
    assert np.mean(spread) < 0.5 * np.ptp(lengths)  # a batch's lengths are close (little padding)


def test_family_groups_a_clip_its_mirror_and_its_timed_parts():
    assert {family_of(i) for i in ("000123", "M000123", "000123#1-4", "M000123#0.5-3")} == {"000123"}
    assert family_of("000124") != family_of("000123") and family_of("M") == "M"


def test_text_embedding_cache_reuses_and_invalidates(tmp_path: Path):
    calls: list[list[str]] = []

    def compute(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)

    cache = TextEmbeddingCache(tmp_path, "model-a")
    first = cache.get(["a cat", "a dog", "a cat"], compute)
    assert calls == [["a cat", "a dog"]] and first.tolist() == [[5, 2], [5, 1], [5, 2]]
    again = TextEmbeddingCache(tmp_path, "model-a").get(["a dog", "bananas"], compute)  # read back from disk
    assert calls[-1] == ["bananas"] and again.tolist() == [[5, 1], [7, 3]]
    TextEmbeddingCache(tmp_path, "model-b").get(["a dog"], compute)  # another model: nothing reused
    assert calls[-1] == ["a dog"]
    stored = np.load(tmp_path / "model-a.npz", allow_pickle=False)  # plain arrays, no pickle
    assert stored["keys"].dtype.kind == "S" and stored["emb"].shape == (3, 2)
    (tmp_path / "model-a.npz").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        TextEmbeddingCache(tmp_path, "model-a").get(["a cat"], compute)
    assert calls[-1] == ["a cat"]
