"""Foot skating (GMD's ratio) and seam smoothness, against motions whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from remogpt.eval.motion_quality import foot_skating_ratio, frame_statistics, seam_statistics


def _body(frames: int, foot_height: float, speed: float, fps: float = 20.0) -> np.ndarray:
    """22 joints at 1 m, the four foot joints at `foot_height`, all moving along x at `speed` m/s."""
    joints = np.zeros((frames, 22, 3))
    joints[:, :, 1] = 1.0
    joints[:, [7, 8, 10, 11], 1] = foot_height
    joints[:, :, 0] = np.arange(frames)[:, None] * speed / fps
    return joints


def test_a_foot_sliding_on_the_floor_skates_and_one_standing_or_in_the_air_does_not() -> None:
    assert foot_skating_ratio(_body(40, 0.02, 1.0)) > 0.9  # edge frames of the moving average aside
    assert foot_skating_ratio(_body(40, 0.02, 0.0)) == 0.0
    assert foot_skating_ratio(_body(40, 0.02, 0.4)) == 0.0  # under 0.5 m/s: walking pace of a planted foot
    assert foot_skating_ratio(_body(40, 0.20, 1.0)) == 0.0  # swinging through the air is not skating
    half = _body(40, 0.02, 1.0)
    half[20:, [7, 8, 10, 11], 1] = 0.3  # lifted for the second half
    assert 0.4 < foot_skating_ratio(half) < 0.55


def test_a_steady_motion_has_no_jump_and_a_step_shows_at_its_frame() -> None:
    steady = _body(30, 0.5, 1.2)
    stats = frame_statistics(steady)
    assert len(stats["jerk"]) == 27 and np.allclose(stats["velocity_jump"], 0) and np.allclose(stats["jerk"], 0)
    stepped = steady.copy()
    stepped[15:, :, 0] += 0.1  # every joint jumps 10 cm forward between frames 14 and 15
    jumps = frame_statistics(stepped)["velocity_jump"]
    assert np.argmax(jumps) + 2 == 15 and jumps.max() == pytest.approx(0.1 * 20)
    at = seam_statistics(stepped, [15, 20, 99])  # 99 is outside: skipped
    assert at["velocity_jump"][0] == pytest.approx(2.0) and at["velocity_jump"][1] == pytest.approx(0.0, abs=1e-9)
    # p[s+1] − 3p[s] + 3p[s−1] − p[s−2] of the step alone: 0.1 · (1 − 3) m
    assert len(at["jerk"]) == 2 and at["jerk"][0] == pytest.approx(0.2 * 20**3)


def test_a_window_takes_the_largest_of_the_frames_after() -> None:
    stepped = _body(30, 0.5, 1.2)
    stepped[15:, :, 0] += 0.1
    assert seam_statistics(stepped, [13])["velocity_jump"][0] == pytest.approx(0.0, abs=1e-9)
    assert seam_statistics(stepped, [13], window=3)["velocity_jump"][0] == pytest.approx(2.0)  # frames 13, 14, 15
    assert seam_statistics(stepped, [12], window=3)["velocity_jump"][0] == pytest.approx(0.0, abs=1e-9)
