"""The coverage set: smooth random motion within joint limits, deterministic, usable as a tokenizer mix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remogpt.config import ConfigError
from remogpt.data.folder import load_features, read_split_ids
from remogpt.data.synth.coverage import CoverageConfig, coverage_clip, synthesize_coverage
from remogpt.motion import features_to_joints
from remogpt.motion.skeleton import HUMANML3D


def test_clips_are_deterministic_varied_and_human():
    cfg = CoverageConfig(clips=12, seed=3)
    clips = [coverage_clip(cfg, i) for i in range(12)]
    assert np.array_equal(clips[4], coverage_clip(cfg, 4))  # a pure function of (seed, index)
    assert not np.array_equal(coverage_clip(cfg, 4), coverage_clip(CoverageConfig(seed=4), 4))
    parents = HUMANML3D.parents
    turns, heights = [], []
    for joints in clips:
        assert cfg.min_frames <= len(joints) <= cfg.max_frames and np.isfinite(joints).all()
        bones = np.linalg.norm(joints[:, 1:] - joints[:, list(parents[1:])], axis=-1)
        assert np.allclose(bones, bones[0], atol=1e-6)  # rigid bones: forward kinematics, no stretching
        assert joints[..., 1].min() > -1e-6  # nothing below the floor
        speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1) * 20.0  # m/s
        assert np.percentile(speed, 99) < 10.0  # within what a person's hands and feet reach
        forward = joints[:, 1] - joints[:, 2]  # left hip − right hip: the body's side axis, turning with it
        yaw = np.unwrap(np.arctan2(forward[:, 2], forward[:, 0]))
        turns.append(np.abs(yaw[-1] - yaw[0]))
        heights.append(joints[:, 0, 1].max() - joints[:, 0, 1].min())
    assert max(turns) > np.pi / 2 and min(turns) < np.pi / 4  # some clips turn far, some hardly
    assert max(heights) > 0.3  # crouches or jumps move the pelvis up and down


def test_folder_is_a_train_only_mix_with_statistics(tmp_path: Path):
    cfg = CoverageConfig(clips=6, seed=1, max_frames=80)
    info = synthesize_coverage(tmp_path / "cov", cfg, workers=1)
    root = tmp_path / "cov"
    ids = read_split_ids(root, "train")
    assert len(ids) == 6 and info["clips"] == 6 and not info["reused"]
    assert not list((root / "texts").iterdir())  # uncaptioned
    features = load_features(root / "new_joint_vecs" / f"{ids[0]}.npy")
    joints = np.load(root / "new_joints" / f"{ids[0]}.npy")
    assert features.shape[1] == 263 and np.allclose(features_to_joints(features), joints, atol=1e-4)
    assert np.load(root / "Std.npy").min() > 0
    again = synthesize_coverage(root, cfg, workers=2)
    assert again["reused"] and again["data_hash"] == info["data_hash"]
    rebuilt = synthesize_coverage(tmp_path / "cov2", cfg, workers=2)
    assert rebuilt["data_hash"] == info["data_hash"]  # same seed → same bytes, whatever the workers
    with pytest.raises(ConfigError, match="min_frames"):
        CoverageConfig(min_frames=100, max_frames=90)


def test_coverage_folder_joins_tokenizer_training_as_a_mix(embedded_small: Path, tmp_path: Path, run_cli):
    run_cli("data", "coverage", "--out", str(tmp_path / "cov"), "--clips", "4", "--workers", "1")
    from remogpt.tokenizer import train_tokenizer
    from test_tokenizer_training import micro_config

    cfg = micro_config(embedded_small, 2).replace(mix=[{"root": str(tmp_path / "cov"), "repeat": 2}])
    result = train_tokenizer(cfg, tmp_path / "run")
    assert result.train_clips == len(read_split_ids(embedded_small, "train")) + 4 * 2
