"""PL-TMR end to end on the small embedded data set, with the real (bundled) MiniLM sentence model:
training beats chance, the artifact round-trips, the four searches, exclusions, bad input, index
versions and the command line."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from remogpt.artifacts import load_weights, read_manifest, save_weights, write_manifest
from remogpt.data import load_split
from remogpt.eval import retrieval_metrics
from remogpt.retrieval import (
    IndexVersionError,
    RetrievalInputError,
    Retriever,
    RetrieverConfig,
    TextEncoder,
    TruncationWarning,
    family_of,
    train_retriever,
)
from remogpt.retrieval.index import INDEX_DIR
from remogpt.retrieval.text import model_identity, resolve_model_path

TEST_CFG = {
    "motion": {"width": 32, "layers": 1, "heads": 2},
    "latent_dim": 64,
    "lr": 2e-3,
    "warmup_steps": 10,
    "trainer": {
        "max_steps": 40,
        "batch_size": 32,
        "progress_bar": False,
        "accelerator": "cpu",
        "devices": "1",
        "log_every_n_steps": 10,
        "checkpoint_every_n_steps": 40,
    },
}


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    """The bundled all-MiniLM-L6-v2, loaded once per session."""
    return TextEncoder()


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session cache folder, laid out as $REMOGPT_CACHE_DIR/text-embeddings (the CLI tests point there)."""
    return tmp_path_factory.mktemp("cache") / "text-embeddings"


@pytest.fixture(scope="session")
def trained(embedded_small: Path, minilm: TextEncoder, text_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny PL-TMR trained briefly on the small embedded set, with its train-split index."""
    run = tmp_path_factory.mktemp("runs") / "small" / "retriever"
    cfg = RetrieverConfig.preset("tiny", data={"root": str(embedded_small)}, **TEST_CFG)
    result = train_retriever(cfg, run.parent, text_encoder=minilm, cache_dir=text_cache, progress=False)
    assert result.run_dir == run and (run / "manifest.json").is_file()  # train_<stage>(cfg, run) → run/<stage>/
    retriever = Retriever.from_pretrained(run.parent, text_encoder=minilm, load_index=False, cache_dir=text_cache)
    retriever.build_index()
    return result, retriever


def test_text_encoder_is_the_sentence_model_and_checks_its_input(minilm: TextEncoder):
    from sentence_transformers import SentenceTransformer

    texts = ["a person waves with the right hand.", "someone walks backwards slowly."]
    reference = SentenceTransformer(str(resolve_model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(texts, normalize_embeddings=True)
    assert minilm.dim == 384 and minilm.pooling == "mean" and minilm.max_length == 256
    assert np.allclose(minilm.encode(texts, cache_dir=False), expected, atol=1e-5)
    for bad in ("", "   \n\t"):
        with pytest.raises(RetrievalInputError, match="empty"):
            minilm.encode([bad], cache_dir=False)
    with pytest.raises(RetrievalInputError, match="not a string"):
        minilm.encode([3], cache_dir=False)  # type: ignore[list-item]
    long = "a person walks forward and then " * 80  # ≈ 480 tokens
    with pytest.warns(TruncationWarning, match="256 tokens"):
        emb = minilm.encode([long], cache_dir=False)
    assert emb.shape == (1, 384) and np.isfinite(emb).all()


def test_real_model_cache_is_reused_and_keyed_by_model_content(minilm: TextEncoder, tmp_path: Path, monkeypatch):
    first = minilm.encode(["a person kicks.", "a person jumps."], cache_dir=tmp_path)
    monkeypatch.setattr(minilm, "forward", lambda texts: pytest.fail("cache miss"))
    again = minilm.encode(["a person jumps.", "a person kicks."], cache_dir=tmp_path)
    assert np.array_equal(again, first[::-1])
    monkeypatch.undo()
    # A model folder whose config differs is another model: another cache key.
    src = resolve_model_path()
    other = tmp_path / "other-model"
    other.mkdir()
    for p in src.iterdir():
        if p.is_file() and p.name != "config.json":
            os.symlink(p, other / p.name)
    config = json.loads((src / "config.json").read_text())
    config["hidden_dropout_prob"] = 0.0
    (other / "config.json").write_text(json.dumps(config))
    assert model_identity(other) != model_identity("") == minilm.identity.split("-")[0]
    assert minilm.identity.endswith("-mean-256")


def test_an_embedding_does_not_depend_on_its_batch_mates(minilm: TextEncoder):
    """What the cache held decides which texts are encoded together; the rows must not change with it
    (padded batches changed them in the 7th digit, and a demo's training with them)."""
    texts = [
        "a person walks forward.", "someone waves the left hand while walking in a circle.", "a man jumps.",
        "the person kicks with the right leg, then turns around and sits down on the floor.",
        "a person runs.", "a woman bows.", "someone raises both arms above the head and stretches.",
    ]  # fmt: skip
    together = minilm.encode(texts, cache_dir=False)
    apart = np.stack([minilm.encode([t], cache_dir=False)[0] for t in texts])
    halves = np.zeros_like(together)
    halves[::2], halves[1::2] = minilm.encode(texts[::2], cache_dir=False), minilm.encode(texts[1::2], cache_dir=False)
    assert np.array_equal(together, apart) and np.array_equal(together, halves)  # bit for bit
    # And each is the text's own forward pass, unpadded (an independent computation): within float
    # rounding of it alone, and bit for bit of it in a batch of the encoder's fixed shape (32 rows).
    alone = minilm([texts[3]]).detach().numpy()[0]
    np.testing.assert_allclose(together[3], alone, atol=1e-6)
    assert np.array_equal(together[3], minilm([texts[3]] * 32).detach().numpy()[0])


def test_training_does_not_depend_on_what_the_text_cache_held(embedded_small: Path, minilm: TextEncoder,
                                                              tmp_path: Path):  # fmt: skip
    """The same seed trains the same weights whether the caption cache was empty or half full (a fresh
    clone's demo and a rerun on a used machine must agree)."""
    from safetensors.numpy import load_file

    from remogpt.data import load_split

    cfg = RetrieverConfig.preset("tiny", data={"root": str(embedded_small)}, **TEST_CFG)
    cfg = cfg.replace(trainer={**cfg.trainer.to_dict(), "max_steps": 4})
    half = tmp_path / "half-cache"
    captions = sorted({c.text for clip in load_split(embedded_small, "train") for c in clip.captions})
    minilm.encode(captions[::2], cache_dir=half)
    weights = []
    for cache in (tmp_path / "empty-cache", half):
        run = tmp_path / cache.name / "run"
        train_retriever(cfg, run, text_encoder=minilm, cache_dir=cache, progress=False)
        weights.append(load_file(run / "retriever" / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_trained_retriever_beats_chance_on_held_out_clips(trained):
    result, retriever = trained
    assert result.steps == 40 and result.final_loss is not None
    root = retriever.config.data.root
    clips = sorted(load_split(root, "test") + load_split(root, "val"), key=lambda c: c.id)  # never trained on
    text = retriever.embed_text([c.captions[0].text for c in clips])
    sim = text @ retriever.embed_motion([c.features for c in clips], warn=False).T
    metrics = retrieval_metrics(sim)
    chance_r5, chance_medr = 100 * 5 / len(clips), (len(clips) + 1) / 2
    assert len(clips) >= 40
    assert metrics["t2m/R05"] > 2 * chance_r5 and metrics["m2t/R05"] > 2 * chance_r5, (metrics, chance_r5)
    assert metrics["t2m/MedR"] < chance_medr / 3 and metrics["m2t/MedR"] < chance_medr / 3, metrics


def test_save_then_from_pretrained_gives_identical_embeddings(trained, minilm: TextEncoder):
    result, loaded = trained
    in_memory = Retriever(
        result.model, minilm, loaded.config, loaded.normalizer, loaded.manifest, cache_dir=loaded.cache_dir
    )  # the same sentence embeddings feed both heads
    clips = load_split(loaded.config.data.root, "test")[:6]
    texts = [c.captions[0].text for c in clips]
    assert np.array_equal(loaded.embed_text(texts), in_memory.embed_text(texts))
    assert np.array_equal(
        loaded.embed_motion([c.features for c in clips]), in_memory.embed_motion([c.features for c in clips])
    )
    manifest = read_manifest(loaded.run_dir, stage="retriever")
    assert manifest.extra["text_model"] == minilm.identity and manifest.extra["part_level"] is True
    stored = load_weights(loaded.run_dir)  # a frozen text model is not copied into the run
    assert stored and not any(k.startswith("text_encoder.") for k in stored)
    assert all(torch.equal(stored[k], v) for k, v in result.model.state_dict().items())
    assert (loaded.run_dir / "Mean.npy").is_file() and (loaded.run_dir / "config.yaml").is_file()


def test_fine_tuning_trains_only_the_top_text_layers_and_round_trips(embedded_small, text_cache, tmp_path):
    cfg = RetrieverConfig.preset(
        "tiny",
        data={"root": str(embedded_small)},
        motion={"width": 16, "layers": 1, "heads": 2},
        text={"finetune_layers": 1},
        text_lr=1e-3,
        trainer={"max_steps": 2, "batch_size": 16, "progress_bar": False, "accelerator": "cpu", "devices": "1"},
    )
    result = train_retriever(cfg, tmp_path, cache_dir=text_cache, progress=False)
    base = TextEncoder().model.state_dict()
    tuned = result.model.text_encoder.model.state_dict()
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(k.startswith("encoder.layer.5.") for k in changed)  # MiniLM has layers 0–5
    stored = load_weights(tmp_path / "retriever")
    assert any(k.startswith("text_encoder.model.encoder.layer.5.") for k in stored)  # fine-tuned weights travel
    loaded = Retriever.from_pretrained(tmp_path, load_index=False)
    in_memory = Retriever(result.model, result.model.text_encoder, loaded.config, loaded.normalizer, loaded.manifest)
    texts = ["a person waves the left arm.", "someone jumps twice."]
    assert np.allclose(loaded.embed_text(texts), in_memory.embed_text(texts), atol=1e-6)


def _per_sample(retriever: Retriever, query: np.ndarray, target: str) -> np.ndarray:
    """Brute-force numpy score of every sample (its best caption's for text targets)."""
    db = retriever.database
    if target == "motion":
        return db.motion_emb @ query
    scores = np.full(len(db), -np.inf)
    np.maximum.at(scores, db.caption_sample, db.text_emb @ query)
    return scores


def _check_ranking(retriever: Retriever, res, query: np.ndarray, target: str, k: int, exclude: frozenset = frozenset()):
    """`res` is a numpy top-k (ties — identical captions — may come in any order)."""
    db = retriever.database
    scores = _per_sample(retriever, query, target)
    allowed = np.array([family_of(i) not in exclude for i in db.sample_ids])
    expected = np.sort(scores[allowed])[::-1][:k]
    assert len(res.ids) == len(set(res.ids)) == k
    assert np.allclose(res.scores, expected, atol=1e-5)
    assert np.allclose([scores[db.row(i)] for i in res.ids], res.scores, atol=1e-5)  # each id has its score
    assert all(family_of(i) not in exclude for i in res.ids)


def test_the_four_searches_equal_a_numpy_ranking(trained):
    _, r = trained
    db = r.database
    probe = load_split(r.config.data.root, "test")[0]
    text_q, motion_q = probe.captions[0].text, probe.features
    for kwargs, target, direction in (
        ({"text": text_q}, "motion", "t2m"),
        ({"text": text_q}, "text", "t2t"),
        ({"motion": motion_q}, "text", "m2t"),
        ({"motion": motion_q}, "motion", "m2m"),
    ):
        res = r.search(**kwargs, k=5, target=target, with_motions=False)
        query = r.embed_text(text_q)[0] if "text" in kwargs else r.embed_motion(motion_q)[0]
        assert res.direction == direction
        _check_ranking(r, res, query, target, 5)
        if target == "text":  # the caption shown is the one that matched
            for i, c, score in zip(res.ids, res.captions, res.scores, strict=True):
                assert c in db.captions_of(db.row(i))
                assert float(r.embed_text(c)[0] @ query) == pytest.approx(float(score), abs=1e-5)
    with_motions = r.search(text=text_q, k=2)
    assert [m.shape[1] for m in with_motions.motions] == [263, 263]
    assert np.array_equal(with_motions.motions[0], r.motion(with_motions.ids[0]))


def test_exclude_ids_removes_self_mirror_and_timed_parts(trained):
    _, r = trained
    db = r.database
    timed = next(i for i in db.sample_ids if "#" in i)
    clip = timed.split("#")[0]
    family = {i for i in db.sample_ids if family_of(i) == family_of(clip)}
    assert {clip, "M" + clip if not clip.startswith("M") else clip[1:], timed} <= family
    motion = r.motion(clip)
    alone = r.search(motion=motion, k=3, target="motion", with_motions=False)
    assert alone.ids[0] == clip and alone.scores[0] == pytest.approx(1.0, abs=1e-4)  # it finds itself…
    for target in ("motion", "text"):
        res = r.search(motion=motion, k=10, target=target, exclude_ids=[clip], with_motions=False)
        assert not family & set(res.ids) and len(res) == 10
        _check_ranking(r, res, r.embed_motion(motion)[0], target, 10, frozenset({family_of(clip)}))
    # Batches take one exclusion list per query (what the language model's data loader does).
    caps = [db.captions_of(db.row(clip))[0], db.captions_of(db.row(db.sample_ids[0]))[0]]
    batch = r.search(text=caps, k=4, target="text", exclude_ids=[[clip], [db.sample_ids[0]]], with_motions=False)
    assert not family & set(batch[0].ids) and family_of(db.sample_ids[0]) not in {family_of(i) for i in batch[1].ids}


def test_precomputed_embeddings_search_like_raw_queries(trained):
    """The LM's retrieval table embeds each query once and searches both targets with it."""
    _, r = trained
    db = r.database
    ids = db.sample_ids[:5]
    stored = r.database_embeddings(ids)
    motions = [r.motion(i) for i in ids]
    assert np.allclose(stored, r.embed_motion(motions, warn=False), atol=1e-5)  # as the index built them
    assert r.database_embeddings([ids[0], "no-such-clip"]) is None
    texts = [db.captions_of(db.row(i))[0] for i in ids]
    for source, queries, raw in (
        ("motion", stored, {"motion": motions}),
        ("text", r.embed_text(texts), {"text": texts}),
    ):
        for target in ("motion", "text"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = r.search(**raw, k=4, target=target, exclude_ids=[[i] for i in ids], with_motions=False)
            got = r.search_embeddings(queries, source, k=4, target=target, exclude_ids=[[i] for i in ids],
                                      with_motions=False)  # fmt: skip
            assert [g.ids for g in got] == [e.ids for e in expected]
            assert [g.direction for g in got] == [e.direction for e in expected]
    with pytest.raises(RetrievalInputError, match="query embeddings"):
        r.search_embeddings(np.zeros((2, 3)), "text")
    with pytest.raises(RetrievalInputError, match="source and target"):
        r.search_embeddings(stored, "audio")


def test_bad_queries_raise_clear_errors(trained):
    _, r = trained
    n = len(r.database)
    motion = r.motion(r.database.sample_ids[0])
    cases = [
        ({"text": ""}, "empty"),
        ({"text": "  \t "}, "empty"),
        ({"text": "a person waves", "k": 0}, "positive integer"),
        ({"text": "a person waves", "k": -3}, "positive integer"),
        ({"text": "a person waves", "k": n + 1}, f"holds {n} samples"),
        ({"text": "a person waves", "k": n, "exclude_ids": [r.database.sample_ids[0]]}, "excluded"),
        ({"motion": motion[:, :251]}, "263"),
        ({"motion": np.zeros((40, 22, 3))}, "joints"),
        ({"motion": np.full((40, 263), np.nan)}, "NaN"),
        ({"motion": motion[:2]}, "at least 4"),
        ({"text": "a", "motion": motion}, "exactly one"),
        ({}, "exactly one"),
        ({"text": "a person waves", "target": "video"}, "target"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RetrievalInputError, match=message):
            r.search(**kwargs)
    with pytest.warns(TruncationWarning, match="cropped"):
        res = r.search(motion=np.concatenate([motion] * 3), k=1, with_motions=False)
    assert len(res) == 1
    with pytest.warns(TruncationWarning, match="truncated"):
        r.search(text="a person waves " * 200, k=1, with_motions=False)


def test_an_index_from_another_retriever_is_refused(trained, minilm: TextEncoder, tmp_path: Path):
    _, r = trained
    copy = tmp_path / "retriever"
    shutil.copytree(r.run_dir, copy, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    assert Retriever.from_pretrained(copy, text_encoder=minilm).database is not None  # the copy is consistent
    # "Retrain": other weights, hence another manifest fingerprint; the old index must not be served.
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in r.model.state_dict().items()}
    manifest = read_manifest(copy)
    manifest.extra["weights_sha256"] = save_weights(copy, state)
    write_manifest(copy, manifest)
    with pytest.raises(IndexVersionError, match="Rebuild it: remogpt index build"):
        Retriever.from_pretrained(copy, text_encoder=minilm)
    rebuilt = Retriever.from_pretrained(copy, text_encoder=minilm, load_index=False)
    rebuilt.build_index()
    assert Retriever.from_pretrained(copy, text_encoder=minilm).database.manifest.inputs["retriever"] == (
        manifest.fingerprint
    )


def test_cli_retrieve_prints_a_ranked_table_and_one_line_errors(trained, text_cache: Path, run_cli, monkeypatch):
    _, r = trained
    monkeypatch.setenv("REMOGPT_CACHE_DIR", str(text_cache.parent))
    code, out, err = run_cli("retrieve", "a person waves the right arm", "-k", "3", "--run", str(r.run_dir.parent))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "t2m: a person waves the right arm" and lines[1].split() == ["rank", "score", "id", "caption"]
    rows = [line.split(maxsplit=3) for line in lines[2:]]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    scores = [float(row[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    expected = r.search(text="a person waves the right arm", k=3, with_motions=False)
    assert [row[2] for row in rows] == expected.ids and [row[3] for row in rows] == expected.captions
    for args, message in (
        (("retrieve", "   ", "--run", str(r.run_dir)), "empty"),
        (("retrieve", "a person waves", "-k", "0", "--run", str(r.run_dir)), "'-k' / '--k'"),
        (("retrieve", "a person waves", "--run", str(r.run_dir.parent.parent / "nothing")), "no trained retriever"),
    ):
        code, out, err = run_cli(*args)
        assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_cli_trains_the_whole_body_baseline_and_builds_its_index(
    embedded_small, text_cache, tmp_path, run_cli, monkeypatch
):
    monkeypatch.setenv("REMOGPT_CACHE_DIR", str(text_cache.parent))
    out_dir = tmp_path / "wb"
    code, out, err = run_cli(
        "train",
        "retriever",
        "--whole-body",
        "--data",
        str(embedded_small),
        "--out",
        str(out_dir),
        "--max-steps",
        "3",
        "--batch-size",
        "16",
        "--accelerator",
        "cpu",
    )
    assert code == 0, err
    manifest = read_manifest(out_dir / "retriever", stage="retriever")
    assert manifest.extra["part_level"] is False and manifest.extra["train"]["steps"] == 3
    assert (out_dir / "retriever" / INDEX_DIR / "motion.faiss").is_file() and "indexed" in out
    code, out, err = run_cli("index", "build", str(out_dir), "--kind", "hnsw")
    assert code == 0 and "hnsw, recall@10" in out, err


def test_split_captions_can_be_encoded_before_the_training(embedded_small, tmp_path):
    """The demo encodes the captions on every thread first; the training then finds them all cached."""
    from remogpt.retrieval import encode_split_captions

    cfg = RetrieverConfig.preset("tiny", data={"root": str(embedded_small)})
    cache = tmp_path / "text-embeddings"
    new = encode_split_captions(cfg, cache_dir=cache)
    texts = {c.text for split in ("train", "val") for clip in load_split(embedded_small, split) for c in clip.captions}
    assert new >= len(texts) and encode_split_captions(cfg, cache_dir=cache) == 0
    assert TextEncoder().cache(cache).missing(sorted(texts)) == []
