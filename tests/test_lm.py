"""The motion–language model stage: vocabulary, prompts, retrieved context, training on a micro run,
inference (valid and malformed output), artifact checks and the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from factory import MICRO_LM
from remogpt.artifacts import ArtifactError, read_manifest, write_manifest
from remogpt.data import load_split
from remogpt.errors import RemogptError
from remogpt.lm import LMConfig, MotionVocabulary, PromptBuilder, ReMoGPT, train_lm
from remogpt.lm.data import LMDataset, RetrievalTable, samples_from_split
from remogpt.lm.prompts import ContextPair
from remogpt.retrieval import family_of
from remogpt.tokenizer import MotionTokenizer, load_codes

CAPTIONS = ["a person walks forward.", "someone waves with the left hand.", "the man jumps twice then sits."]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vocab() -> MotionVocabulary:
    return MotionVocabulary.build(CAPTIONS * 5, PromptBuilder.from_file().all_texts(), codebook_size=16,
                                  text_vocab_size=300)  # fmt: skip


# ---------------------------------------------------------------------------------------- vocabulary


def test_motion_tokens_follow_the_codebook_and_round_trip(vocab: MotionVocabulary):
    ids = vocab.tokenizer.convert_tokens_to_ids([f"<motion_id_{i}>" for i in range(16)])
    assert ids == [vocab.motion_offset + i for i in range(16)]
    assert vocab.eom_id not in ids and vocab.som_id not in ids and len(vocab) == vocab.eom_id + 1
    codes = np.array([3, 0, 15, 15, 7])
    encoded = vocab.tokenizer(vocab.motion_string(codes)).input_ids
    assert encoded == [vocab.som_id, *(vocab.motion_offset + codes).tolist(), vocab.eom_id, vocab.eos_id]
    decoded = vocab.decode_motion(encoded)
    assert decoded.valid and decoded.ended and np.array_equal(decoded.codes, codes)
    with pytest.raises(RemogptError, match=r"\[0, 16\)"):
        vocab.motion_string([0, 16])


def test_text_round_trips_including_unicode(vocab: MotionVocabulary):
    for text in ("a person walks forward.", "une personne saute 2× — très haut ✓"):
        ids = vocab.tokenizer(text).input_ids
        assert vocab.tokenizer.unk_token_id not in ids  # byte-level: nothing is unknown
        assert vocab.decode_text(ids) == text
    mixed = vocab.tokenizer("a caption " + vocab.motion_string([1, 2])).input_ids
    assert vocab.decode_text(mixed) == "a caption"  # motion tokens never leak into captions


def test_malformed_generations_are_reported_not_raised(vocab: MotionVocabulary):
    m = vocab.motion_offset
    no_end = vocab.decode_motion([vocab.som_id, m + 1, m + 2, m + 3])
    assert not no_end.valid and "no <eom>" in no_end.problem and no_end.codes.tolist() == [1, 2, 3]
    short = vocab.decode_motion([vocab.som_id, m + 4, vocab.eom_id], min_codes=2)
    assert "only 1 motion codes" in short.problem
    text_id = vocab.tokenizer("walk", add_special_tokens=False).input_ids[0]
    junk = vocab.decode_motion([vocab.som_id, m, text_id, m + 5, vocab.eom_id])
    assert junk.dropped == 1 and junk.codes.tolist() == [0, 5] and "non-motion" in junk.problem
    nothing = vocab.decode_motion([vocab.eos_id])
    assert nothing.codes.size == 0 and not nothing.valid


def test_saved_vocabulary_loads_and_checks_the_codebook(vocab: MotionVocabulary, tmp_path: Path):
    vocab.save_pretrained(tmp_path / "v")
    again = MotionVocabulary.from_pretrained(tmp_path / "v", 16)
    assert again.motion_offset == vocab.motion_offset and len(again) == len(vocab)
    with pytest.raises(RemogptError, match="motion tokens"):
        MotionVocabulary.from_pretrained(tmp_path / "v", 32)
    with pytest.raises(RemogptError, match="no usable tokenizer"):
        MotionVocabulary.from_pretrained(tmp_path / "missing", 16)


# ---------------------------------------------------------------------------------------- prompts


def test_prompts_have_the_paper_format(tmp_path: Path):
    prompts = PromptBuilder.from_file()
    assert len(prompts.templates["t2m"]) >= 3 and len(prompts.templates["m2t"]) >= 3
    ctx = [ContextPair("a man runs.", "<som><motion_id_1><eom>"), ContextPair("a man jogs.", "<som><eom>")]
    p = prompts.text_to_motion("  a person jumps. ", ctx)
    assert p == ("### Input: Generate motion: a person jumps.\n"
                 "### Context: Text: a man runs. Motion: <som><motion_id_1><eom> Text: a man jogs. Motion: <som><eom>\n"
                 "### Output:")  # fmt: skip
    assert prompts.motion_to_text("<som><eom>") == "### Input: Generate text: <som><eom>\n### Output:"
    drawn = {prompts.text_to_motion("x", (), np.random.default_rng(s)) for s in range(40)}
    assert len(drawn) == len(prompts.templates["t2m"])  # training draws every template
    assert (prompts.continuation("<som><motion_id_1><eom>", "a person jumps.", ctx[:1])
            == "### Input: Continue the motion <som><motion_id_1><eom> so that a person jumps.\n"
               "### Context: Text: a man runs. Motion: <som><motion_id_1><eom>\n### Output:")  # fmt: skip
    own = tmp_path / "own.json"  # a user's file from before the continuation task: the packaged ones fill in
    own.write_text(json.dumps({"t2m": ["Make: {caption}"], "m2t": ["Say: {motion}"]}))
    assert PromptBuilder.from_file(own).templates["continue"] == prompts.templates["continue"]
    own.write_text(json.dumps({"t2m": ["{caption}"], "m2t": ["{motion}"], "continue": ["Go on from {motion}"]}))
    with pytest.raises(RemogptError, match=r"continue template without \{caption\}"):
        PromptBuilder.from_file(own)
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"t2m": ["no slot here"], "m2t": ["{motion}"]}))
    with pytest.raises(RemogptError, match=r"without \{caption\}"):
        PromptBuilder.from_file(bad)
    bad.write_text("{")
    with pytest.raises(RemogptError, match="invalid JSON"):
        PromptBuilder.from_file(bad)


def test_config_presets_and_bad_values():
    paper = LMConfig.preset("paper")
    assert (paper.num_layers, paper.num_decoder_layers, paper.d_model) == (12, 12, 768)
    assert (paper.stage2_lr, paper.trainer.batch_size) == (1e-4, 16)
    assert (paper.retrieval.k, paper.retrieval.modality) == (1, "both")
    assert paper.continue_rate == 0.0 and LMConfig.preset("tiny").continue_rate == 0.3  # no such task in the paper
    with pytest.raises(RemogptError, match="num_heads"):
        LMConfig(num_heads=0)
    with pytest.raises(RemogptError, match="modality"):
        LMConfig.from_dict({"retrieval": {"modality": "sideways"}})
    # manifests written before the batch size moved into the trainer settings still load
    assert LMConfig.from_dict({"batch_size": 8}).trainer.batch_size == 8
    # the demo's LM recipes: tiny and tiny_compose, which differ in what the training context holds
    from remogpt.artifacts import fingerprint_config
    from remogpt.config import ConfigError
    from remogpt.demo import LM_CPU_PRESETS, DemoConfig

    compose, tiny = LMConfig.preset("tiny_compose"), LMConfig.preset("tiny")
    assert set(LM_CPU_PRESETS) - {"tiny"} <= set(LMConfig.PRESETS) and DemoConfig().lm_preset == "tiny"
    assert (compose.train_context_exclude, compose.retrieval.gold_rate) == ("composition", 0.0)
    assert compose.replace(train_context_exclude="self", retrieval={"gold_rate": 1.0}) == tiny
    assert fingerprint_config("lm", tiny.to_dict()).keys() == fingerprint_config("lm", LMConfig().to_dict()).keys()
    assert "train_context_exclude" not in fingerprint_config("lm", tiny.to_dict())  # old artifacts keep theirs
    with pytest.raises(ConfigError, match="lm_preset"):
        DemoConfig(lm_preset="paper")


# ---------------------------------------------------------------------------------------- a micro run


@pytest.fixture(scope="module")
def run(micro_run: Path) -> Path:
    """The session's micro tokenizer, retriever and LM (see conftest.py); tests never change it."""
    return micro_run


def _training_items(run: Path, data: Path, context: bool) -> tuple[LMDataset, MotionVocabulary, Any]:
    """The micro run's training items (prompts with or without retrieved context), vocabulary and collate."""
    from remogpt.lm.config import RetrievalPromptConfig
    from remogpt.lm.data import lm_collate

    codes = load_codes(run / "codes")
    samples, _ = samples_from_split(data, "train", codes)
    vocab = MotionVocabulary.from_pretrained(run / "lm" / "vocabulary", 64)
    table_data = json.loads((run / "lm" / "retrievals.json").read_text())
    retrieval = RetrievalPromptConfig("both", 1) if context else RetrievalPromptConfig("none")
    items = LMDataset(samples, codes, vocab, PromptBuilder.from_file(), retrieval,
                      RetrievalTable(table_data["key"], table_data["entries"]))  # fmt: skip
    return items, vocab, lm_collate(vocab, 512, 64)


def _run_without_stage2(run: Path, tmp_path: Path) -> Path:
    """A copy of the micro run whose stage 1 is finished and whose stage 2 is still to train; its stage 1
    has no settings record (as one trained before they were recorded), so stage 2 may use other settings."""
    target = tmp_path / "run"
    shutil.copytree(run, target)
    shutil.rmtree(target / "lm" / "stage2")
    (target / "lm" / "stage1" / "train_settings.json").unlink()
    for name in ("model.safetensors", "manifest.json", "config.json"):
        (target / "lm" / name).unlink()
    return target


def _fixed_batch_loss(model: torch.nn.Module, run: Path, data: Path, context: bool) -> float:
    """Mean loss on the same 64 training items (prompts with or without retrieved context)."""
    items, _, collate = _training_items(run, data, context)
    picks = np.random.default_rng(0).choice(len(items), 64, replace=False)
    model.eval()
    with torch.no_grad():
        losses = [float(model(**collate([items[int(i)] for i in picks[a : a + 16]])).loss) for a in range(0, 64, 16)]
    return float(np.mean(losses))


def test_training_lowers_the_loss_and_writes_a_checked_artifact(run: Path, embedded_small: Path):
    from remogpt.lm.model import build_t5
    from remogpt.lm.model import load_t5 as load

    vocab = MotionVocabulary.from_pretrained(run / "lm" / "vocabulary", 64)
    torch.manual_seed(0)
    codebook = MotionTokenizer.from_pretrained(run).codebook_vectors()
    untrained = build_t5(MICRO_LM.replace(codebook_size=64), vocab, codebook)
    stage1, stage2 = load(run / "lm" / "stage1" / "model"), load(run / "lm")
    # Stage 1 (no context) learns from random weights; stage 2 learns to read the retrieved context.
    before = _fixed_batch_loss(untrained, run, embedded_small, context=False)
    after = _fixed_batch_loss(stage1, run, embedded_small, context=False)
    assert after < 0.7 * before, (before, after)
    with_context = (_fixed_batch_loss(stage1, run, embedded_small, context=True),
                    _fixed_batch_loss(stage2, run, embedded_small, context=True))  # fmt: skip
    assert with_context[1] < 0.9 * with_context[0], with_context
    manifest = read_manifest(run / "lm", stage="lm")
    tok = MotionTokenizer.from_pretrained(run)
    assert manifest.inputs["tokenizer"] == tok.fingerprint
    assert manifest.config["codebook_size"] == 64  # taken from the tokenizer, not the default 512
    assert (run / "lm" / "model.safetensors").is_file() and not list((run / "lm").glob("*.bin"))
    assert manifest.extra["samples_per_second"]["stage1"] > 0


def test_ddp_two_processes_on_cpu_through_the_cli(run: Path, embedded_small: Path, tmp_path: Path):
    """`train lm --devices 2 --strategy ddp`: both stages in two processes; rank 0 alone logs and
    writes the weights (a second writer once raced it and the command failed on its own artifact)."""
    import os
    import subprocess
    import sys

    ddp = tmp_path / "run"
    ddp.mkdir()
    for stage in ("tokenizer", "retriever", "codes"):
        shutil.copytree(run / stage, ddp / stage)
    config = tmp_path / "micro.yaml"
    MICRO_LM.to_yaml(config)
    command = [sys.executable, "-m", "remogpt", "train", "lm", "--run", str(ddp), "--data", str(embedded_small),
               "--config", str(config), "--stage1-steps", "2", "--stage2-steps", "2", "--batch-size", "8",
               "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1 and done.stdout.count("training samples with motion codes") == 1
    assert "error" not in (done.stdout + done.stderr).lower()
    manifest = read_manifest(ddp / "lm", stage="lm")
    assert set(manifest.extra["stage_seconds"]) == {"stage1", "stage2"}
    from remogpt.artifacts import sha256_file

    assert manifest.extra["weights_sha256"] == sha256_file(ddp / "lm" / "model.safetensors")  # one writer
    assert ReMoGPT.from_pretrained(ddp).vocab.tokenizer.get_vocab()  # loads: weights, vocabulary, stages


def test_training_context_never_comes_from_the_sample_itself(run: Path, embedded_small: Path):
    table_data = json.loads((run / "lm" / "retrievals.json").read_text())
    table = RetrievalTable(table_data["key"], table_data["entries"])
    codes = load_codes(run / "codes")
    samples, _ = samples_from_split(embedded_small, "train", codes)
    assert len(table.entries) > 2 * len(samples)
    for s in samples:
        for direction in ("m2t", "m2m"):
            got = table.pairs(direction, s, None, 2)
            assert len(got) == 2 and all(family_of(i) != family_of(s.id) for i, _ in got)
        for j in range(len(s.captions)):
            for direction in ("t2m", "t2t"):
                assert all(family_of(i) != family_of(s.id) for i, _ in table.pairs(direction, s, j, 2))
    vocab = MotionVocabulary.from_pretrained(run / "lm" / "vocabulary", 64)
    from remogpt.lm.config import RetrievalPromptConfig

    both = LMDataset(samples, codes, vocab, PromptBuilder.from_file(), RetrievalPromptConfig("both", 2), table)
    none = LMDataset(samples, codes, vocab, PromptBuilder.from_file(), RetrievalPromptConfig("none"), None)
    prompt, target = both[0]
    assert prompt.count("Text: ") == 4 and "### Context:" in prompt and target.startswith("<som>")
    assert "### Context:" not in none[0][0] and none[0][1] == target
    assert len(both) == sum(len(s.captions) + 1 for s in samples)  # every caption (t2m) + one m2t per sample
    # The gold-context option (training only): with gold_slot "cross" the first cross-modal pair becomes
    # the sample's own.
    gold = LMDataset(samples, codes, vocab, PromptBuilder.from_file(),
                     RetrievalPromptConfig("both", 1, gold_slot="cross"), table, gold_rate=1.0)  # fmt: skip
    s = next(x for x in samples if len(x.captions) > 1)
    rng = np.random.default_rng(0)
    t2m_pairs = gold.context("t2m", s, 0, rng)
    cut = gold.retrieval.max_context_codes
    assert t2m_pairs[0].motion == vocab.motion_string(s.codes[:cut]) and t2m_pairs[0].caption in s.captions[1:]
    assert t2m_pairs[1] == both.context("t2m", s, 0)[2]  # the text→text pair stays retrieved
    assert gold.context("m2t", s, None, rng)[0].motion == vocab.motion_string(s.codes[:cut])
    assert gold.context("t2m", s, 0) == both.context("t2m", s, 0)[::2]  # no rng (inference): retrieved only
    # gold_slot "any": the sample's own pair lands in either slot, the other pair stays retrieved.
    anywhere = LMDataset(samples, codes, vocab, PromptBuilder.from_file(),
                         RetrievalPromptConfig("both", 1, gold_slot="any"), table, gold_rate=1.0)  # fmt: skip
    retrieved, own = both.context("t2m", s, 0)[::2], vocab.motion_string(s.codes[:cut])
    slots = []
    for seed in range(40):
        pairs = anywhere.context("t2m", s, 0, np.random.default_rng(seed))
        at = [n for n, p in enumerate(pairs) if p.motion == own and p.caption in s.captions]
        assert len(at) == 1 and all(pairs[n] == retrieved[n] for n in range(2) if n != at[0])
        slots.append(at[0])
    assert 8 <= sum(slots) <= 32  # both slots used (binomial(40, 0.5): outside this range p < 1e-4)
    # gold_slot "same": the same-modality pair (text→text, motion→motion) becomes the sample's own.
    same = LMDataset(samples, codes, vocab, PromptBuilder.from_file(),
                     RetrievalPromptConfig("both", 1, gold_slot="same"), table, gold_rate=1.0)  # fmt: skip
    for task, caption_index in (("t2m", 0), ("m2t", None)):
        pairs, plain = same.context(task, s, caption_index, rng), both.context(task, s, caption_index)[::2]
        assert pairs[1].motion == own and pairs[1].caption in s.captions and pairs[0] == plain[0], task
    # Single-modality settings: "cross" leaves a text→text-only prompt retrieved (no copy signal), and
    # "same" falls back to the only pair of a text→motion-only one.
    for modality, slot, expected in (("t2t", "cross", None), ("t2t", "same", own), ("t2m", "same", own)):
        single = LMDataset(samples, codes, vocab, PromptBuilder.from_file(),
                           RetrievalPromptConfig(modality, 1, gold_slot=slot), table, gold_rate=1.0)  # fmt: skip
        got, retrieved_only = single.context("t2m", s, 0, rng), single.context("t2m", s, 0)
        assert len(got) == 1 and retrieved_only == both.context("t2m", s, 0)[(2 if modality == "t2t" else 0) :: 4]
        assert got == retrieved_only if expected is None else got[0].motion == expected, (modality, slot)


def test_answer_exclusions_leave_out_the_same_caption_and_the_same_composition():
    """Hand-made samples: clip b shares a caption with a (case and full stop aside), c shares a's
    composition, d shares nothing; a's timed part gets the caption rule only."""
    from remogpt.lm.data import LMSample, answer_exclusions

    def sample(id_: str, *caps: str) -> LMSample:
        return LMSample(id_, id_.split("#")[0], list(caps), np.zeros(3, dtype=np.int64))

    samples = [sample("a", "A man walks.", "he strolls"), sample("b", "a man walks"), sample("c", "someone walks"),
               sample("d", "a person jumps"), sample("a#0.0-2.0", "someone walks")]  # fmt: skip
    keys = {"a": "walk", "b": "walk(count=1)", "c": "walk", "d": "jump"}
    assert answer_exclusions(samples, "self", keys) == {}
    assert answer_exclusions(samples, "caption", keys) == {"a": ["b"], "b": ["a"], "c": ["a"], "a#0.0-2.0": ["c"]}
    assert answer_exclusions(samples, "composition", keys) == {"a": ["b", "c"], "b": ["a"], "c": ["a"],
                                                               "a#0.0-2.0": ["c"]}  # fmt: skip
    assert answer_exclusions(samples, "composition", None) == answer_exclusions(samples, "caption", keys)
    with pytest.raises(ValueError, match="self, caption or composition"):
        answer_exclusions(samples, "nearest", keys)


def test_training_context_leaves_out_every_answer_under_another_name(run: Path, embedded_small: Path):
    """With "composition" no training item's context (any direction) holds a clip that has one of its
    captions or, for a whole clip, its composition; the retriever still fills k = 2 of each."""
    from remogpt.data import composition_keys
    from remogpt.lm.data import _normal_caption, answer_exclusions
    from remogpt.retrieval import Retriever

    codes = load_codes(run / "codes")
    samples, features = samples_from_split(embedded_small, "train", codes, with_features=True)
    keys = composition_keys(embedded_small)
    assert keys and all(k.startswith("M") or "M" + k in keys for k in keys)
    exclusions = answer_exclusions(samples, "composition", keys)
    assert sum(map(len, exclusions.values())) > len(samples) // 4  # the small set repeats compositions
    retriever = Retriever.from_pretrained(run / "retriever", data_root=embedded_small)
    retriever.build_index(embedded_small, "train")
    key = RetrievalTable.make_key(retriever.fingerprint, "h", 2, [s.id for s in samples], "composition")
    assert key["exclude"] == "composition" and "exclude" not in RetrievalTable.make_key("f", "h", 2, ["a"])
    table = RetrievalTable.compute(retriever, samples, features, 2, key, exclusions=exclusions)
    captions = {s.clip_id: {_normal_caption(c) for c in s.captions} for s in samples}
    checked = 0
    for s in samples:
        own = {_normal_caption(c) for c in s.captions}
        queries = [(d, None) for d in ("m2t", "m2m")] + [(d, j) for d in ("t2m", "t2t") for j in range(len(s.captions))]
        for direction, j in queries:
            got = table.pairs(direction, s, j, 2)
            assert len(got) == 2
            for other, _ in got:
                clip = other.split("#")[0]
                assert family_of(other) != family_of(s.id) and clip not in exclusions.get(s.id, [])
                assert not own & captions.get(clip, set()), (s.id, other)
                if s.id == s.clip_id and other == clip and clip in keys:
                    assert keys[clip] != keys[s.clip_id]
                checked += 1
    assert checked > 4 * len(samples)


def _items_without_gold(run: Path, data: Path) -> tuple:
    """The micro run's training samples, codes, vocabulary, retrieval table, prompts and the LMDataset
    arguments for both directions, k 1, no gold pair (the item-recipe tests' common start)."""
    from remogpt.lm.config import RetrievalPromptConfig

    codes = load_codes(run / "codes")
    samples, _ = samples_from_split(data, "train", codes)
    vocab = MotionVocabulary.from_pretrained(run / "lm" / "vocabulary", 64)
    table_data = json.loads((run / "lm" / "retrievals.json").read_text())
    table = RetrievalTable(table_data["key"], table_data["entries"])
    build = PromptBuilder.from_file()
    args = (samples, codes, vocab, build, RetrievalPromptConfig("both", 1, gold_rate=0.0), table)
    return samples, codes, vocab, table, build, args


def test_context_dropout_trains_a_share_of_items_without_context_or_with_fewer_pairs(run: Path,
                                                                                   embedded_small: Path):  # fmt: skip
    """Off, the items are those of before; `context_dropout` 0.5 gives about half the items the prompt
    without context (the same template), `pair_dropout` 0.5 leaves out pairs one by one; the targets stay."""
    from remogpt.lm.config import RetrievalPromptConfig

    samples, codes, vocab, _table, build, args = _items_without_gold(run, embedded_small)
    plain, off = LMDataset(*args), LMDataset(*args, context_dropout=0.0, pair_dropout=0.0)
    bare = LMDataset(samples, codes, vocab, build, RetrievalPromptConfig("none"), None)
    whole, pairs = LMDataset(*args, context_dropout=0.5), LMDataset(*args, pair_dropout=0.5)
    n = len(plain)
    assert [plain[i] for i in range(n)] == [off[i] for i in range(n)]
    without, counts = 0, []
    for i in range(n):
        prompt, target = whole[i]
        assert target == plain[i][1] and pairs[i][1] == plain[i][1]
        if prompt != plain[i][0]:
            assert prompt == bare[i][0] and "### Context:" not in prompt
            without += 1
        counts.append(pairs[i][0].count("Text: "))
    assert 0.35 * n < without < 0.65 * n, (without, n)
    full = plain[0][0].count("Text: ")
    assert full == 2 and {0, 1, 2} <= set(counts)
    assert 0.35 * full * n < sum(counts) < 0.65 * full * n
    with pytest.raises(Exception, match="context_dropout"):
        LMConfig(context_dropout=1.5)
    with pytest.raises(Exception, match="train_context_exclude"):
        LMConfig(train_context_exclude="nearest")  # type: ignore[arg-type]


def test_text_dropout_empties_a_share_of_the_text_to_motion_captions_only(run: Path, embedded_small: Path):
    """Guidance needs a model that knows motion without its text: with `text_dropout` a share of the
    t2m items lose their caption (context and target kept); off, the items are those of before."""
    from remogpt.lm.config import RetrievalPromptConfig

    codes = load_codes(run / "codes")
    samples, _ = samples_from_split(embedded_small, "train", codes)
    vocab = MotionVocabulary.from_pretrained(run / "lm" / "vocabulary", 64)
    build = PromptBuilder.from_file()
    args = (samples, codes, vocab, build, RetrievalPromptConfig("none"), None)
    plain, off, half = LMDataset(*args), LMDataset(*args, text_dropout=0.0), LMDataset(*args, text_dropout=0.5)
    assert [plain[i] for i in range(len(plain))] == [off[i] for i in range(len(off))]
    empty = [build.text_to_motion("", rng=np.random.default_rng((0, 0, i)))
             for i in range(len(half))]  # fmt: skip
    dropped = 0
    for i, (task, n, j) in enumerate(half.items):
        prompt, target = half[i]
        assert target == plain[i][1]
        if task == "m2t":
            assert prompt == plain[i][0]
        elif prompt != plain[i][0]:
            assert samples[n].captions[j].strip() not in prompt and prompt == empty[i]
            dropped += 1
    t2m = sum(task == "t2m" for task, _, _ in half.items)
    assert 0.3 * t2m < dropped < 0.7 * t2m, (dropped, t2m)


def test_continuation_items_show_the_motion_so_far_and_train_the_rest(run: Path, embedded_small: Path):
    """With `continue_rate` a share of the t2m items becomes a continuation: the instruction holds the
    last `continue_prompt_codes` codes before a cut and the whole caption, the target is the motion
    from `CONTINUATION_OVERLAP` codes before the cut on, and each retrieved motion is shown from that
    same code on. Off, the items are those of before; m2t items never change."""
    from remogpt.lm.data import CONTINUATION_OVERLAP, codes_for

    samples, codes, vocab, table, build, args = _items_without_gold(run, embedded_small)
    plain, off = LMDataset(*args), LMDataset(*args, continue_rate=0.0)
    half = LMDataset(*args, continue_rate=0.5, continue_prompt_codes=5)
    assert [plain[i] for i in range(len(plain))] == [off[i] for i in range(len(off))]
    openings = [t.split("{motion}")[0] for t in build.templates["continue"]]
    continued, later_cuts = 0, 0
    for i, (task, n, j) in enumerate(half.items):
        prompt, target = half[i]
        if task == "m2t" or prompt == plain[i][0]:
            assert (prompt, target) == plain[i]
            continue
        continued += 1
        sample = samples[n]
        instruction, context = prompt.split("\n### Context: ")
        assert any(instruction.startswith("### Input: " + o) for o in openings), instruction
        assert sample.captions[j].strip() in instruction
        rest = np.asarray(vocab.decode_motion(vocab.tokenizer(target).input_ids).codes)
        start = len(sample.codes) - len(rest)
        assert len(rest) >= 1 and np.array_equal(rest, sample.codes[start:])
        shown = np.asarray(vocab.decode_motion(vocab.tokenizer(_first_motion(instruction)).input_ids).codes)
        cut = start + CONTINUATION_OVERLAP if start > 0 else len(shown)  # a cut under the overlap: start 0
        assert 1 <= cut < len(sample.codes) and np.array_equal(shown, sample.codes[max(0, cut - 5) : cut])
        later_cuts += start > 0
        retrieved = codes_for(table.pairs("t2m", sample, j, 1)[0][0], codes)
        in_context = np.asarray(vocab.decode_motion(vocab.tokenizer(_first_motion(context)).input_ids).codes)
        assert np.array_equal(in_context, retrieved[min(start, len(retrieved) - 1) :][: len(in_context)])
    t2m = sum(task == "t2m" for task, _, _ in half.items)
    assert 0.3 * t2m < continued < 0.7 * t2m, (continued, t2m)
    assert later_cuts > continued // 4
    with pytest.raises(Exception, match="continue_rate"):
        LMConfig(continue_rate=1.5)


def test_transition_items_continue_another_clip_with_this_one_from_its_start(run: Path, embedded_small: Path):
    """With `transition_rate` a continuation's motion so far is another training clip's: the instruction
    shows its last codes, the target is its last `CONTINUATION_OVERLAP` codes and then this sample's
    whole motion, and the retrieved context is the plain text→motion one (from the start)."""
    from remogpt.lm.config import RetrievalPromptConfig
    from remogpt.lm.data import CONTINUATION_OVERLAP

    codes = load_codes(run / "codes")
    samples, _ = samples_from_split(embedded_small, "train", codes)
    vocab = MotionVocabulary.from_pretrained(run / "lm" / "vocabulary", 64)
    table_data = json.loads((run / "lm" / "retrievals.json").read_text())
    table = RetrievalTable(table_data["key"], table_data["entries"])
    args = (samples, codes, vocab, PromptBuilder.from_file(), RetrievalPromptConfig("both", 1, gold_rate=0.0), table)
    plain = LMDataset(*args)
    every = LMDataset(*args, continue_rate=1.0, transition_rate=1.0, continue_prompt_codes=5)
    by_codes = {vocab.motion_string(x.codes[-5:]): x for x in samples}
    checked = 0
    for i, (task, n, _j) in enumerate(every.items[:200]):
        if task != "t2m" or len(samples[n].codes) < 2:
            continue
        prompt, target = every[i]
        instruction, context = prompt.split("\n### Context: ")
        before = by_codes.get(_first_motion(instruction))
        assert before is not None and before.clip_id != samples[n].clip_id
        overlap = before.codes[len(before.codes) - min(CONTINUATION_OVERLAP, len(before.codes)) :]
        assert target == vocab.motion_string(np.concatenate([overlap, samples[n].codes]))
        assert context == plain[i][0].split("\n### Context: ")[1]  # retrieved motions from their start
        checked += 1
    assert checked > 20
    with pytest.raises(Exception, match="transition_rate"):
        LMConfig(transition_rate=-0.1)


def _first_motion(text: str) -> str:
    a = text.index("<som>")
    return text[a : text.index("<eom>", a) + len("<eom>")]


def test_generation_and_captioning(run: Path, embedded_small: Path):
    model = ReMoGPT.from_pretrained(run)
    texts = ["a person walks forward.", "ein Mensch springt — très haut"]
    outs = model.generate_motion(texts, num_samples=2, seed=0)
    assert len(outs) == 4 and [o.text for o in outs][::2] == texts
    for o in outs:
        assert o.features.shape == (4 * len(o.codes), 263) and o.joints.shape == (len(o.features), 22, 3)
        assert np.isfinite(o.joints).all() and len(o.references) == 2
        assert {r["direction"] for r in o.references} == {"t2m", "t2t"}
    assert model.stats["sequences"] >= 4
    again = model.generate_motion(texts, num_samples=2, seed=0)  # same call, same seed: same motions
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(again, outs, strict=True))
    test = [c.features for c in load_split(embedded_small, "test")[:3]]
    captions = model.caption(test)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert all("<motion_id" not in c for c in captions)
    with pytest.raises(RemogptError, match="empty"):
        model.generate_motion(["  "])
    with pytest.raises(RemogptError, match=r"expected \(T, 263\)"):
        model.caption([np.zeros((40, 251), np.float32)])
    with pytest.raises(RemogptError, match="NaN"):
        model.caption([np.full((40, 263), np.nan, np.float32)])
    with pytest.warns(UserWarning, match="truncated"):
        model.generate_motion(["a person walks " * 300], num_samples=1)


def test_a_texts_motion_depends_on_its_seed_not_its_batch_mates(run: Path):
    model = ReMoGPT.from_pretrained(run)
    texts = ["a person walks forward.", "someone waves with the left hand.", "the man jumps twice then sits."]
    together = model.generate_motion(texts, num_samples=2, seed=3)
    alone = model.generate_motion([texts[1]], num_samples=2, seed=3)
    small_batches = model.generate_motion(texts, num_samples=2, seed=3, batch_size=1)
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(together[2:4], alone, strict=True))
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(together, small_batches, strict=True))
    other_seed = model.generate_motion([texts[1]], num_samples=2, seed=4)
    assert not all(np.array_equal(a.codes, b.codes) for a, b in zip(alone, other_seed, strict=True))
    odd = [
        "A PERSON WALKS FORWARD!!!",
        "¿una persona salta dos veces?",
        "一个人向前走",
        "walk... then -- jump?!",
        "🙂 waves 🙂",
        "x",
        "the the the the",
        "a person " * 40,
    ]
    for g in model.generate_motion(odd, seed=0):  # prompts outside the grammar: always a valid motion
        assert 2 <= len(g.codes) <= model.cfg.max_motion_codes and np.isfinite(g.joints).all()
    # The grammar: a micro model trained for seconds still writes only well-formed motions.
    assert not [k for k in model.stats if k.startswith(("invalid", "failed"))], dict(model.stats)
    assert all(2 <= len(g.codes) <= model.cfg.max_motion_codes for g in together)
    for bad in ({"temperature": 0.0}, {"temperature": float("nan")}, {"top_k": 0}, {"num_samples": 0}):
        with pytest.raises(RemogptError, match=next(iter(bad)).replace("_", ".")):
            model.generate_motion(texts[:1], **bad)


def test_guided_generation_is_seeded_per_text_and_follows_the_prompt_without_text(run: Path):
    """Guidance doubles the batch (each prompt, then the same without its text); a text's motion still
    depends on its seed only, scale 1 is plain sampling, and a bad scale is one clear error."""
    model = ReMoGPT.from_pretrained(run)
    texts = ["a person walks forward.", "someone waves with the left hand.", "the man jumps twice then sits."]
    together = model.generate_motion(texts, seed=3, guidance_scale=3.0)
    alone = model.generate_motion(texts[1:2], seed=3, guidance_scale=3.0)
    assert np.array_equal(together[1].codes, alone[0].codes)
    assert all(2 <= len(g.codes) <= model.cfg.max_motion_codes and np.isfinite(g.joints).all() for g in together)
    plain = model.generate_motion(texts, seed=3)
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(plain, model.generate_motion(texts, seed=3,
               guidance_scale=1.0), strict=True))  # fmt: skip
    # The doubled batch: each prompt, then the same prompt without its text (its context kept). Whether
    # the samples differ depends on how much the micro model reads its text, so the rows are checked.
    seen: list[list[str]] = []
    tokenize = model._tokenize
    model._tokenize = lambda rows: seen.append(list(rows)) or tokenize(rows)  # type: ignore[method-assign]
    model.generate_motion(texts, seed=3, guidance_scale=3.0)
    del model._tokenize
    contexts, _ = model._contexts("t2m", texts, model.retrieval, None)
    asked = [model.prompts.text_to_motion(t, c) for t, c in zip(texts, contexts, strict=True)]
    assert seen[0] == asked + [model.prompts.text_to_motion("", c) for c in contexts]
    # An independent check of the first code: two plain forward passes (the prompt, and the same
    # without its text), combined by hand, then the grammar and the text's own sampler.
    from remogpt.lm.decoding import MotionGrammar, SeededSampler, row_seed

    pairs, _ = model._contexts("t2m", texts[:1], model.retrieval, None)
    rows = [model.prompts.text_to_motion(texts[0], pairs[0]), model.prompts.text_to_motion("", pairs[0])]
    enc = model.vocab.tokenizer(rows, padding=True, return_tensors="pt")
    start = model.model.config.decoder_start_token_id
    decoder = torch.tensor([[start, model.vocab.som_id]] * 2)
    with torch.no_grad():
        logits = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                             decoder_input_ids=decoder).logits[:, -1]  # fmt: skip
    logp = torch.log_softmax(logits, dim=-1)
    guided = (logp[1] + 2.0 * (logp[0] - logp[1]))[None]
    guided = MotionGrammar(model.vocab, 2, model.cfg.max_motion_codes)(decoder[:1], guided)
    sampler = SeededSampler([row_seed(3, texts[0], 0, 1)], model.cfg.temperature, model.cfg.top_k)
    sampler(decoder[:1, :1], torch.zeros_like(guided))  # the draw that chose <som>
    first = int(sampler(decoder[:1], guided).argmax()) - model.vocab.motion_offset
    assert model.generate_motion(texts[:1], seed=3, guidance_scale=2.0)[0].codes[0] == first
    for bad in (0.5, float("nan"), "2"):
        with pytest.raises(RemogptError, match="guidance_scale must be a number"):
            model.generate_motion(texts[:1], guidance_scale=bad)


def test_best_of_n_keeps_the_candidate_the_retriever_matches_best(run: Path):
    model = ReMoGPT.from_pretrained(run)
    texts = ["a person walks forward.", "someone waves with the left hand."]
    candidates = model.generate_motion(texts, num_samples=6, seed=5)  # sample s·3 + c is candidate c of sample s
    best = model.generate_motion(texts, num_samples=2, seed=5, rerank=3, rerank_score="retriever")
    assert len(best) == 4 and "rerank_s" in model.timings
    # An independent computation: cosine of the retriever's text and motion embeddings, highest wins.
    t = model.retriever.embed_text(texts)
    m = model.retriever.embed_motion([c.features for c in candidates], warn=False)
    t, m = t / np.linalg.norm(t, axis=1, keepdims=True), m / np.linalg.norm(m, axis=1, keepdims=True)
    for i in range(2):
        for s in range(2):
            group = list(range(i * 6 + s * 3, i * 6 + s * 3 + 3))
            winner = group[int(np.argmax([m[j] @ t[i] for j in group]))]
            assert np.array_equal(best[i * 2 + s].codes, candidates[winner].codes)
            assert best[i * 2 + s].text == texts[i]
    plain = model.generate_motion(texts, seed=5)  # N = 1 is plain sampling, the same draws as before
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(plain, model.generate_motion(texts, seed=5, rerank=1),
                                                                 strict=True))  # fmt: skip
    for bad in (0, -2, 1.5):
        with pytest.raises(RemogptError, match="rerank must be an integer"):
            model.generate_motion(texts[:1], rerank=bad)
    with pytest.raises(RemogptError, match="rerank_score must be one of"):
        model.generate_motion(texts[:1], rerank=2, rerank_score="evaluator")


def test_best_of_n_by_both_judges_adds_their_standardised_scores(run: Path):
    model = ReMoGPT.from_pretrained(run)
    texts = ["a person walks forward.", "someone waves with the left hand."]
    candidates = model.generate_motion(texts, num_samples=4, seed=2)  # candidate c of text i: sample c
    likelihood = model.caption_log_likelihood([c.text for c in candidates], [c.codes for c in candidates],
                                              [c.features for c in candidates])  # fmt: skip
    # An independent computation, one motion at a time: teacher-forced logits of the caption, softmax
    # over the text tokens only (selected, not masked), mean log-probability of the caption's tokens.
    text_ids = torch.as_tensor(sorted(set(range(len(model.vocab.tokenizer))) - set(model._motion_token_ids)))
    for c, value in zip(candidates, likelihood, strict=True):
        contexts, _ = model._contexts("m2t", [c.features], model.retrieval, None)
        prompt = model.prompts.motion_to_text(model.vocab.motion_string(c.codes), contexts[0])
        enc = model.vocab.tokenizer([prompt], return_tensors="pt")
        labels = model.vocab.tokenizer([c.text], return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=labels).logits
        log_probs = torch.log_softmax(logits[0][:, text_ids], dim=-1)
        position = {int(t): k for k, t in enumerate(text_ids)}
        expected = np.mean([float(log_probs[j, position[int(t)]]) for j, t in enumerate(labels[0])])
        assert value == pytest.approx(expected, abs=1e-4) and value < 0
    t = model.retriever.embed_text(texts)
    m = model.retriever.embed_motion([c.features for c in candidates], warn=False)
    cosine = np.array([[m[i * 4 + c] @ t[i] / np.linalg.norm(m[i * 4 + c]) / np.linalg.norm(t[i]) for c in range(4)]
                       for i in range(2)])  # fmt: skip
    z = lambda x: (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)  # noqa: E731
    for by, total in (("both", z(cosine) + z(likelihood.reshape(2, 4))), ("captioner", likelihood.reshape(2, 4))):
        best = model.generate_motion(texts, seed=2, rerank=4, rerank_score=by)
        for i in range(2):
            assert np.array_equal(best[i].codes, candidates[i * 4 + int(np.argmax(total[i]))].codes), by


def test_queries_are_embedded_once_for_both_retrieval_directions_and_the_judges(run: Path):
    from remogpt.lm.config import RetrievalPromptConfig

    model = ReMoGPT.from_pretrained(run)
    both = RetrievalPromptConfig("both", 1)
    calls = {"text": 0, "motion": 0}
    embed_text, embed_motion = model.retriever.embed_text, model.retriever.embed_motion

    def count(kind, fn):
        def wrapped(*args, **kwargs):
            calls[kind] += 1
            return fn(*args, **kwargs)

        return wrapped

    model.retriever.embed_text = count("text", embed_text)  # type: ignore[method-assign]
    model.retriever.embed_motion = count("motion", embed_motion)  # type: ignore[method-assign]
    motion = model.generate_motion("a person walks forward.", seed=1, retrieval=both)[0]
    assert calls == {"text": 1, "motion": 0}  # t→m and t→t context from one text embedding
    caption = model.caption([motion.features], retrieval=both)[0]
    assert calls == {"text": 1, "motion": 1} and caption  # m→t and m→m from one motion embedding
    model.generate_motion("a person walks forward.", seed=1, retrieval=both, rerank=4, rerank_score="both")
    # the prompt once, the judge's text once; the candidates once, for the judge and their m→t context
    assert calls == {"text": 3, "motion": 2}


def test_invalid_sequences_are_retried_then_fall_back(run: Path, monkeypatch: pytest.MonkeyPatch):
    model = ReMoGPT.from_pretrained(run)

    def broken(**kwargs):  # a model that only ever says "</s>"
        n = kwargs["input_ids"].shape[0]
        return torch.tensor([[model.vocab.pad_id, model.vocab.eos_id]] * n)

    monkeypatch.setattr(model.model, "generate_from_ids", broken)
    out = model.generate_motion(["a person walks forward."], max_attempts=2)[0]
    assert out.problem == "no valid motion generated" and out.attempts == 2
    assert model.stats["failed (a retrieved motion used instead)"] == 1
    assert len(out.codes) > 0 and out.joints.shape[1:] == (22, 3)  # the retrieved motion stands in


def test_mismatched_or_missing_stages_are_refused(run: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(run, broken, ignore=shutil.ignore_patterns("codes", "checkpoints", "stage1", "stage2"))
    manifest = read_manifest(broken / "lm", stage="lm")
    manifest.inputs["tokenizer"] = "0" * 16
    write_manifest(broken / "lm", manifest)
    with pytest.raises(ArtifactError, match="trained with tokenizer"):
        ReMoGPT.from_pretrained(broken)
    shutil.rmtree(broken / "retriever")
    with pytest.raises(ArtifactError, match=r"retriever/ is missing.*remogpt train retriever"):
        ReMoGPT.from_pretrained(broken)


def test_command_line_generate_and_caption(run: Path, tmp_path: Path, run_cli):
    out = tmp_path / "gen"
    code, stdout, _ = run_cli("generate", "a person jumps twice then waves", "--run", str(run), "--out", str(out),
                           "--num-samples", "2", "--rerank", "2", "--no-video")  # fmt: skip
    assert code == 0 and "retrieved (t2m" in stdout
    report = json.loads((out / "generation.json").read_text())
    assert len(report["samples"]) == 2 and len(report["retrieved"]) == 2
    joints = np.load(out / "motion_0_joints.npy")
    assert joints.ndim == 3 and joints.shape[1:] == (22, 3)
    code, stdout, _ = run_cli("caption", str(out / "motion_0_features.npy"), str(out / "motion_1_joints.npy"),
                           "--run", str(run))  # fmt: skip
    lines = stdout.strip().splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith(str(out / "motion_0_features.npy"))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 7), np.float32))
    code, _, err = run_cli("caption", str(bad), "--run", str(run))
    assert code != 0 and "bad.npy" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("generate", "x", "--run", str(tmp_path / "nowhere"))
    assert code != 0 and "is missing" in err and len(err.strip().splitlines()) == 1


def test_a_bvh_imported_motion_is_captioned(run: Path, tmp_path: Path, run_cli):
    from test_bvh import rig, walk, write_bvh

    names, parents, offsets = rig()
    root, euler = walk(frames=91)
    bvh = write_bvh(tmp_path / "take.bvh", names, parents, offsets, root, euler)
    code, _, err = run_cli("data", "import-bvh", str(bvh), "--out", str(tmp_path / "imported"))
    assert code == 0, err
    (features,) = sorted((tmp_path / "imported" / "new_joint_vecs").glob("*.npy"))
    code, stdout, err = run_cli("caption", str(features), "--run", str(run))
    assert code == 0, err
    path, _, caption = stdout.strip().partition(": ")
    assert path == str(features) and caption.strip() and "<motion_id" not in caption


def test_a_local_t5_is_extended_with_the_motion_vocabulary(run: Path, embedded_small: Path, tmp_path: Path):
    """--lm-init: a user's local T5 folder (model + text tokenizer) gets the motion tokens added and its
    embeddings resized; the text tokens it had keep their ids and weights."""
    from transformers import T5Config, T5ForConditionalGeneration

    from remogpt.lm.vocab import train_text_tokenizer

    local = tmp_path / "my-t5"
    text_tok = train_text_tokenizer(CAPTIONS * 5, vocab_size=300)
    text_tok.save_pretrained(str(local))
    t5_cfg = T5Config(vocab_size=len(text_tok), d_model=32, d_ff=64, num_layers=1, num_decoder_layers=1,
                      num_heads=2, d_kv=16, decoder_start_token_id=0)  # fmt: skip
    t5 = T5ForConditionalGeneration(t5_cfg)
    t5.save_pretrained(str(local))
    before = t5.get_input_embeddings().weight.detach().clone()
    target = tmp_path / "run"
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("lm"))
    cfg = MICRO_LM.replace(lm_init=str(local), stage1_steps=2, stage2_steps=2)
    train_lm(cfg.replace(data={"root": str(embedded_small)}), target)
    model = ReMoGPT.from_pretrained(target)
    vocab = model.vocab
    assert vocab.motion_offset == len(text_tok) and len(vocab) == len(text_tok) + 64 + 2
    emb = model.model.get_input_embeddings().weight
    assert emb.shape == (len(vocab), 32)
    walk = text_tok("walks", add_special_tokens=False).input_ids
    assert vocab.tokenizer("walks", add_special_tokens=False).input_ids == walk
    assert not torch.equal(emb[: len(text_tok)], before)  # it trained (2 + 2 steps) from the local weights …
    assert torch.allclose(emb[: len(text_tok)], before, atol=0.05)  # … and started from them
    assert len(model.generate_motion(["a person walks forward."])[0].codes) > 0
    assert t5_cfg.dropout_rate == 0.1 and model.model.config.dropout_rate == cfg.dropout_rate  # the run's, not the T5's


def test_the_configured_dropout_trains_a_loaded_model(run: Path, embedded_small: Path, tmp_path: Path):
    """A T5 makes its dropout layers from its own config once: a finished stage 1 (or a local T5) loaded
    for the next stage used to keep the rate it was saved with, whatever the run's `dropout_rate`."""
    from remogpt.lm.model import load_t5, set_dropout

    model = load_t5(run / "lm" / "stage1" / "model").train()
    batch = {"input_ids": torch.arange(5, 25)[None], "decoder_input_ids": torch.tensor([[0, 9, 10]])}
    torch.manual_seed(0)
    assert torch.equal(model(**batch).logits, model(**batch).logits)  # trained without dropout
    set_dropout(model, 0.3)
    assert model.config.dropout_rate == 0.3
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}
    assert not torch.equal(model(**batch).logits, model(**batch).logits)  # now it drops
    model.eval()
    assert torch.equal(model(**batch).logits, model(**batch).logits)

    # Stage 2 resumed from the finished stage 1 trains (and saves) with the run's rate.
    target = _run_without_stage2(run, tmp_path)
    saved_rate = json.loads((run / "lm" / "stage1" / "model" / "config.json").read_text())["dropout_rate"]
    cfg = MICRO_LM.replace(dropout_rate=0.3, stage2_steps=2, data={"root": str(embedded_small)})
    assert saved_rate != 0.3
    train_lm(cfg, target, resume=True)
    assert json.loads((target / "lm" / "config.json").read_text())["dropout_rate"] == 0.3


def _context_batch(run: Path, data: Path, size: int = 16) -> tuple[dict, MotionVocabulary]:
    items, vocab, collate = _training_items(run, data, context=True)
    picks = np.random.default_rng(1).choice(len(items), size, replace=False)
    return collate([items[int(i)] for i in picks]), vocab


def test_scheduled_sampling_feeds_the_models_own_codes_to_the_decoder(run: Path, embedded_small: Path):
    """Share 0 is teacher forcing; share 1 at a near-zero temperature puts the model's argmax (given the
    true prefix, computed here by an independent forward pass) at every motion position and leaves text
    and markers alone; share 0.5 replaces about half."""
    from remogpt.lm.model import load_t5
    from remogpt.lm.train import self_fed_decoder_inputs

    batch, vocab = _context_batch(run, embedded_small)
    model = load_t5(run / "lm").eval()
    motion_ids = (vocab.motion_offset, vocab.motion_offset + vocab.codebook_size)
    labels, truth = batch["labels"], model._shift_right(batch["labels"])

    def fed(share: float) -> torch.Tensor:
        return self_fed_decoder_inputs(model, batch, share, 1e-4, motion_ids, torch.Generator().manual_seed(0))

    assert torch.equal(fed(0.0), truth)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=truth).logits  # fmt: skip
    argmax = logits[..., motion_ids[0] : motion_ids[1]].argmax(-1) + motion_ids[0]
    is_motion = (labels >= motion_ids[0]) & (labels < motion_ids[1])
    expected = model._shift_right(torch.where(is_motion, argmax, labels))
    assert torch.equal(fed(1.0), expected)
    differ = expected != truth
    assert 20 < int(differ.sum()) < int(is_motion.sum())  # the micro model gets some codes right, not all
    half = (fed(0.5) != truth).sum() / differ.sum()
    assert 0.3 < float(half) < 0.7, float(half)
    assert torch.equal(fed(0.5), fed(0.5))  # the generator decides, nothing else


def test_scheduled_sampling_rises_over_the_stage(run: Path, embedded_small: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    """Training with `scheduled_sampling` calls the self-feeding at every step, its share rising
    linearly from 0 to the configured rate at the stage's last step; the rate is saved with the run."""
    import remogpt.lm.train as lm_train

    shares: list[float] = []
    original = lm_train.self_fed_decoder_inputs

    def recording(model, batch, share, *args):  # type: ignore[no-untyped-def]
        shares.append(share)
        return original(model, batch, share, *args)

    monkeypatch.setattr(lm_train, "self_fed_decoder_inputs", recording)
    target = _run_without_stage2(run, tmp_path)
    cfg = MICRO_LM.replace(scheduled_sampling=0.5, stage2_steps=3, data={"root": str(embedded_small)})
    train_lm(cfg, target, resume=True)
    assert shares == pytest.approx([0.0, 0.25, 0.5])
    manifest = read_manifest(target / "lm", stage="lm")
    assert manifest.config["scheduled_sampling"] == 0.5
    with pytest.raises(Exception, match="scheduled_sampling"):
        LMConfig(scheduled_sampling=1.5)


def test_save_pretrained_round_trips_the_whole_run(run: Path, tmp_path: Path):
    """A loaded run saved elsewhere loads again with the same stage fingerprints and generates the
    same motion for the same text and seed (and the copy refuses to be written over a full folder)."""
    model = ReMoGPT.from_pretrained(run)
    model.save_pretrained(tmp_path / "copy")
    again = ReMoGPT.from_pretrained(tmp_path / "copy")
    assert again.tokenizer.fingerprint == model.tokenizer.fingerprint
    assert again.retriever.fingerprint == model.retriever.fingerprint
    text = "a person walks forward"
    first, second = model.generate_motion(text, seed=3)[0], again.generate_motion(text, seed=3)[0]
    assert np.array_equal(first.codes, second.codes) and first.references == second.references
    with pytest.raises(ArtifactError, match="not empty"):
        model.save_pretrained(tmp_path / "copy")
