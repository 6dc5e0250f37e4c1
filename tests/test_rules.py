"""The fine-detail rule checks: right on generated clips, wrong on other clips and on edited joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remogpt.data.folder import load_split
from remogpt.eval.judge import LabelBook
from remogpt.eval.rules import RULES, rule_accuracy, rule_checks, rule_survival
from remogpt.motion.features import features_to_joints


@pytest.fixture(scope="module")
def labelled(embedded_small: Path) -> tuple[list[np.ndarray], list[list[dict]]]:
    book = LabelBook.of(embedded_small)
    joints, phases = [], []
    for split in ("train", "val", "test"):
        for clip in load_split(embedded_small, split):
            p = book.phases(clip.id)
            if p is not None:
                joints.append(features_to_joints(clip.features))
                phases.append(p)
    return joints, phases


def test_rules_read_generated_clips_right(labelled: tuple[list[np.ndarray], list[list[dict]]]) -> None:
    accuracy = rule_accuracy(*labelled)
    assert set(accuracy) <= set(RULES)
    assert {"clap.count", "walk.grounded", "sidestep.direction"} <= set(accuracy)
    for key, (share, n) in accuracy.items():
        assert n >= 2 and share >= 0.9, (key, share, n)


def test_rules_fail_on_other_joints(embedded_small: Path) -> None:
    """A rule that any motion passes measures nothing. Sides: a clip's mirror, read with the original's
    labels (same timing, other side), must read wrong. Counts: other clips' joints in this clip's frames."""
    book = LabelBook.of(embedded_small)
    clips = {c.id: c for c in load_split(embedded_small, "train")}
    mirrored = []
    for cid in clips:
        if cid.startswith("M") or f"M{cid}" not in clips:
            continue
        phases = book.phases(cid)
        if phases is None:
            continue
        mirror = features_to_joints(clips[f"M{cid}"].features)
        mirrored += [c.right for c in rule_checks(mirror, phases) if c.key in ("sidestep.direction", "wave.side")
                     and c.expected in ("left", "right")]  # fmt: skip
    assert len(mirrored) >= 4 and np.mean(mirrored) <= 0.1
    others = [features_to_joints(c.features) for cid, c in clips.items() if not cid.startswith("M")]
    wrong = []
    for cid, clip in clips.items():
        phases = book.phases(cid)
        joints = features_to_joints(clip.features)
        if phases and any(c.key == "clap.count" for c in rule_checks(joints, phases)):
            for other in others[:20]:
                if other.shape != joints.shape or not np.allclose(other, joints):
                    n = min(len(joints), len(other))
                    wrong += [not c.right for c in rule_checks(other[:n], phases) if c.key == "clap.count"]
    assert len(wrong) >= 20
    assert np.mean(wrong) >= 0.9


def test_edits_that_erase_detail_are_caught(labelled: tuple[list[np.ndarray], list[list[dict]]]) -> None:
    joints, phases = labelled
    clap = next(
        i for i, p in enumerate(phases) if any(c.key == "clap.count" and c.right for c in rule_checks(joints[i], p))
    )
    apart = joints[clap].copy()
    apart[:, 20, 0] += 0.5  # the left wrist half a metre to the side: the hands never meet
    assert [c.measured for c in rule_checks(apart, phases[clap]) if c.key == "clap.count"] == ["0"]
    walk = next(i for i, p in enumerate(phases) if any(c.key == "walk.grounded" for c in rule_checks(joints[i], p)))
    floating = joints[walk].copy()
    floating[len(floating) // 4 :, :, 1] += 0.1  # the body lifts off 10 cm for the last three quarters
    assert [c.measured for c in rule_checks(floating, phases[walk]) if c.key == "walk.grounded"] == ["no"]
    survival = rule_survival([joints[clap], joints[walk]], [apart, floating], [phases[clap], phases[walk]])
    assert survival["clap.count"] == (0.0, 1) and survival["walk.grounded"] == (0.0, 1)
    assert rule_survival([joints[clap]], [joints[clap]], [phases[clap]])["clap.count"] == (1.0, 1)


def test_rules_refuse_other_skeletons() -> None:
    with pytest.raises(ValueError, match="22, 3"):
        rule_checks(np.zeros((10, 21, 3)), [])
