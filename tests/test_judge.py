"""The attribute judge and the copy rate: what the words say, checked from the motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remogpt.eval.judge import (
    AttributeJudge,
    JudgeConfig,
    JudgedPhase,
    JudgeError,
    LabelBook,
    attribute_accuracy,
    attribute_hits,
    attribute_survival,
    frame_targets,
    judge_inputs,
    prompt_attributes,
    segment,
)
from remogpt.eval.metrics import EvalInputError, copy_rate

WALK_CLAP = {"start": 5, "frames": 40, "base": {"name": "walk", "speed": "slow"},
             "overlays": [{"name": "clap", "side": "both", "count": 3}]}  # fmt: skip
KICK_LEFT = {"start": 50, "frames": 30, "base": {"name": "kick", "side": "left", "count": 2, "height": "low"},
             "overlays": []}  # fmt: skip


def _phase(**tags: str) -> JudgedPhase:
    full = {"base.name": "none", "arm.name": "none", "backbone.name": "none"}
    full.update({k.replace("_", "."): v for k, v in tags.items()})
    return JudgedPhase(0, 10, full)


# ----------------------------------------------------------------------------- copy rate


def test_copy_rate_is_one_for_a_copy_and_chance_for_a_shuffle() -> None:
    rng = np.random.default_rng(0)
    contexts = [[rng.integers(0, 512, 30), rng.integers(0, 512, 25)] for _ in range(20)]
    copied = [ctx[1].copy() for ctx in contexts]
    assert copy_rate(copied, contexts) == {"identical": 1.0, "same_offset": 1.0}
    shuffled = [rng.permutation(ctx[1]) for ctx in contexts]
    shuffled = [s if not np.array_equal(s, c[1]) else s[::-1] for s, c in zip(shuffled, contexts, strict=True)]
    rate = copy_rate(shuffled, contexts)
    assert rate["identical"] == 0.0
    assert rate["same_offset"] < 0.1  # chance is about 1/512 per code


def test_copy_rate_counts_positions_and_lengths() -> None:
    ctx = [np.arange(10)]
    half = np.concatenate([np.arange(5), np.full(5, 99)])
    assert copy_rate([half], [ctx]) == {"identical": 0.0, "same_offset": 0.5}
    longer = np.arange(20)  # the first 10 agree, the 10 past the context's end do not
    assert copy_rate([longer], [ctx]) == {"identical": 0.0, "same_offset": 0.5}
    assert copy_rate([np.arange(10)], [[]])["identical"] == 0.0
    with pytest.raises(EvalInputError, match="2 sequences but 1"):
        copy_rate([half, half], [ctx])


# ----------------------------------------------------------------------------- attributes and alignment


def test_prompt_attributes_name_side_direction_count() -> None:
    attrs = prompt_attributes([WALK_CLAP, KICK_LEFT])
    assert attrs[0] == [("base", "name", "walk"), ("arm", "name", "clap"), ("arm", "count", "3")]  # clap: no side
    assert attrs[1] == [("base", "name", "kick"), ("base", "side", "left"), ("base", "count", "2")]


def test_attribute_accuracy_matches_phases_in_order() -> None:
    walk_clap = _phase(base_name="walk", arm_name="clap", arm_count="3")
    kick = _phase(base_name="kick", base_side="left", base_count="2")
    right = attribute_accuracy([[WALK_CLAP, KICK_LEFT]], [[walk_clap, kick]])
    assert right["attributes"] == 1.0 and right["all_correct"] == 1.0 and right["attribute_count"] == 6
    swapped = attribute_accuracy([[WALK_CLAP, KICK_LEFT]], [[kick, walk_clap]])
    assert swapped["attributes"] == 0.5  # order matters: only one phase can be matched
    wrong_count = _phase(base_name="walk", arm_name="clap", arm_count="2")
    r = attribute_accuracy([[WALK_CLAP]], [[wrong_count]])
    assert r["attributes"] == pytest.approx(2 / 3) and r["all_correct"] == 0.0
    assert r["per_key"]["clap.count"] == {"found": 0, "total": 1, "accuracy": 0.0}
    # a side read on another action does not count: kicking with the left leg ≠ lunging left
    lunge = _phase(base_name="lunge", base_side="left", base_count="2")
    assert attribute_accuracy([[KICK_LEFT]], [[lunge]])["attributes"] == 0.0
    # an extra judged phase does not hide a right one; nothing judged finds nothing
    assert attribute_accuracy([[KICK_LEFT]], [[walk_clap, kick]])["attributes"] == 1.0
    assert attribute_accuracy([[KICK_LEFT]], [[]])["attributes"] == 0.0
    # scored attributes only
    limited = attribute_accuracy([[WALK_CLAP]], [[wrong_count]], scored={"walk.name", "clap.name"})
    assert limited["attributes"] == 1.0 and limited["attribute_count"] == 2


def test_attribute_survival_counts_only_what_the_original_shows() -> None:
    right = _phase(base_name="walk", arm_name="clap", arm_count="3")
    two = _phase(base_name="walk", arm_name="clap", arm_count="2")
    nothing = _phase()
    assert attribute_hits([WALK_CLAP], [two]) == [("walk.name", True), ("clap.name", True), ("clap.count", False)]
    # clip 0: original right, round trip loses the count; clip 1: original already wrong on the
    # count (not counted), round trip keeps the names; clip 2: round trip loses everything
    survival = attribute_survival([[WALK_CLAP]] * 3, [[right], [two], [right]], [[two], [two], [nothing]])
    assert survival["clap.count"] == {"kept": 0, "total": 2, "share": 0.0}
    assert survival["walk.name"] == {"kept": 2, "total": 3, "share": pytest.approx(2 / 3)}
    with pytest.raises(JudgeError, match="3 prompts, 2 and 3"):
        attribute_survival([[WALK_CLAP]] * 3, [[right]] * 2, [[right]] * 3)


def test_wilson_lower_bound_is_the_one_sided_margin() -> None:
    """The margin that chooses the scored attributes, against the Wilson formula written out."""
    from remogpt.eval.train_judge import wilson_lower_bound

    z = 1.2815515655446004  # one-sided 90 %
    for found, total in ((90, 100), (164, 174), (10, 10), (0, 7), (1, 1)):
        p, n = found / total, total
        by_hand = (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
        assert wilson_lower_bound(found, total, z) == pytest.approx(by_hand, abs=1e-9)
    assert wilson_lower_bound(0, 0, z) == 0.0
    assert wilson_lower_bound(90, 100, z) == pytest.approx(0.854858, abs=1e-6)
    assert wilson_lower_bound(95, 100, z) < 0.95 < wilson_lower_bound(9500, 10000, z) + 0.01


def test_frame_targets_and_segmentation_round_trip() -> None:
    from remogpt.eval.judge import _heads

    heads = _heads()
    targets = frame_targets([WALK_CLAP, KICK_LEFT], frames=90)
    assert targets["base.name"][:5].tolist() == [0] * 5  # idle before the first phase
    assert heads["base.name"][targets["base.name"][10]] == "walk"
    assert heads["arm.count"][targets["arm.count"][10]] == "3"
    assert heads["base.side"][targets["base.side"][60]] == "left"
    assert targets["arm.name"][60] == 0
    # one wrong frame inside a phase is absorbed, and the idle runs are dropped
    noisy = {h: v.copy() for h, v in targets.items()}
    noisy["base.name"][20] = heads["base.name"].index("run")
    phases = segment(noisy, heads, min_frames=8)
    assert [(p.tags["base.name"], p.tags["arm.name"]) for p in phases] == [("walk", "clap"), ("kick", "none")]
    assert [(p.start, p.end) for p in phases] == [(0, 50), (50, 80)]  # short idle runs join a neighbour
    assert attribute_accuracy([[WALK_CLAP, KICK_LEFT]], [phases])["attributes"] == 1.0


def test_judge_inputs_and_bad_input() -> None:
    feats = np.random.default_rng(0).normal(size=(30, 263)).astype(np.float32)
    x = judge_inputs(feats)
    assert x.shape == (30, 130)
    assert np.allclose(x[1:, 67:130], np.diff(feats[:, 4:67], axis=0))  # velocities recomputed from positions
    with pytest.raises(JudgeError, match=r"\(T, 263\)"):
        judge_inputs(np.zeros((30, 10)))
    judge = AttributeJudge(JudgeConfig(hidden=8, dilations=(1,)), np.zeros(130), np.ones(130))
    bad = feats.copy()
    bad[3, 5] = np.nan
    with pytest.raises(JudgeError, match="non-finite"):
        judge.judge(bad)


def test_label_book_mirrors_and_segments(tmp_path: Path) -> None:
    row = {"id": "000007", "phases": [KICK_LEFT, WALK_CLAP], "timed": {"phase": 1, "start": 2.5, "end": 4.5}}
    book = LabelBook([row])
    assert book.phases("000007")[0]["base"]["side"] == "left"
    assert book.phases("M000007")[0]["base"]["side"] == "right"
    assert book.phases("000007#2.5-4.5") == [WALK_CLAP]
    assert book.phases("000999") is None
    with pytest.raises(JudgeError, match=r"labels\.jsonl"):
        LabelBook.of(tmp_path)


# ----------------------------------------------------------------------------- a trained judge


@pytest.mark.slow
def test_a_small_judge_reads_clips_it_never_saw(embedded_small: Path, tmp_path: Path, one_thread: None) -> None:
    """Trained on the small set's train split, it names the actions of test clips far above chance
    (1 in 16 base actions), and it survives its save / load round trip bit for bit."""
    from remogpt.eval.train_judge import judge_split_accuracy, train_judge
    from remogpt.training import TrainerConfig

    cfg = JudgeConfig(hidden=48, max_steps=300, lr=3e-3, min_support=1, supplement_clips=0, selection_clips=20)
    tcfg = TrainerConfig(max_steps=300, batch_size=16, progress_bar=False, checkpoint_every_n_steps=300)
    judge = train_judge(embedded_small, tmp_path / "judge", cfg, tcfg)
    test = judge_split_accuracy(judge, embedded_small, "test")
    assert test["per_kind"]["name"]["accuracy"] > 0.6, test["per_kind"]
    loaded = AttributeJudge.from_pretrained(tmp_path / "judge")
    assert loaded.scored == judge.scored
    assert judge_split_accuracy(loaded, embedded_small, "test") == test
    extra = loaded.manifest.extra
    assert extra["validation_per_key"] and extra["generated_per_key"]
    for key in judge.scored:  # scored: read well on the real validation clips and the fresh ones alike
        for table in ("validation_per_key", "generated_per_key"):
            row = extra[table].get(key)
            assert row is None or row["total"] < cfg.min_support or row["accuracy"] >= cfg.min_accuracy
    assert all(key not in judge.scored for key in extra["left_out"])


def test_input_statistics_match_the_stacked_frames() -> None:
    """The judge's normalisation, computed clip by clip, equals numpy's over all frames stacked."""
    from remogpt.eval.train_judge import _input_statistics

    rng = np.random.default_rng(0)
    scale = np.array([1, 10, 0.1, 1, 0])
    clips = [(rng.normal(3.0, 2.0, (int(n), 5)) * scale).astype(np.float32) for n in rng.integers(5, 60, 7)]
    mean, std = _input_statistics(clips)
    stacked = np.concatenate(clips).astype(np.float64)
    np.testing.assert_allclose(mean, stacked.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(std, np.maximum(stacked.std(0), 1e-4), rtol=1e-5)
    assert std[4] == np.float32(1e-4)  # a constant dimension gets the floor, not zero
