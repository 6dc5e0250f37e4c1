"""Physical plausibility read from joints: foot skating (GMD's ratio) and how smooth a join is.

Edited and extended motions are judged where they join (a seam): the joint velocity jump and the
jerk across it, set against the same statistics at every frame inside real clips, so that "smooth"
means "as smooth as real motion here", not a number with no scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["FEET", "foot_skating_ratio", "frame_statistics", "seam_statistics"]

#: HumanML3D's foot joints: (left ankle, left toe), (right ankle, right toe).
FEET = ((7, 10), (8, 11))
CONTACT_HEIGHT = 0.05  # m: a foot joint below this in two adjacent frames is on the ground
SKATE_SPEED = 0.5  # m/s horizontally (2.5 cm a frame at 20 fps), in the frame and its 5-frame average


def _check(joints: np.ndarray) -> np.ndarray:
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3:
        raise ValueError(f"expected joints (T, J, 3), got shape {j.shape}")
    return j


def foot_skating_ratio(joints: np.ndarray, fps: float = 20.0, feet: Sequence[Sequence[int]] = FEET) -> float:
    """The share of frames in which either foot skates (GMD's definition): a foot joint is in contact
    when it is below 5 cm in two adjacent frames, and it skates when its horizontal speed is over
    0.5 m/s in that frame and in the 5-frame moving average of its speed."""
    j = _check(joints)
    if len(j) < 2:
        return 0.0
    skating = np.zeros(len(j) - 1, dtype=bool)
    for foot in feet:
        for joint in foot:
            height = j[:, joint, 1]
            contact = (height[:-1] < CONTACT_HEIGHT) & (height[1:] < CONTACT_HEIGHT)
            speed = np.linalg.norm(np.diff(j[:, joint, [0, 2]], axis=0), axis=-1) * fps
            average = np.convolve(speed, np.ones(5) / 5, mode="same")
            skating |= contact & (speed > SKATE_SPEED) & (average > SKATE_SPEED)
    return float(skating.mean())


def frame_statistics(joints: np.ndarray, fps: float = 20.0, window: int = 1) -> dict[str, np.ndarray]:
    """Per frame s in 2 … T−2, index s − 2: the velocity jump ‖(p[s] − p[s−1]) − (p[s−1] − p[s−2])‖·fps
    in m/s and the jerk ‖p[s+1] − 3p[s] + 3p[s−1] − p[s−2]‖·fps³ in m/s³, each the mean over joints;
    with `window` w > 1, the largest of frames s … s+w−1 (a join's blend spreads over a few frames)."""
    j = _check(joints)
    if len(j) < 4:
        return {"velocity_jump": np.zeros(0), "jerk": np.zeros(0)}
    n = len(j) - 3  # frames s = 2 … T−2
    jump = np.linalg.norm(np.diff(j, n=2, axis=0), axis=-1).mean(-1)[:n] * fps  # index s − 2: p[s−2 … s]
    third = np.linalg.norm(np.diff(j, n=3, axis=0), axis=-1).mean(-1)[:n] * fps**3  # index s − 2: p[s−2 … s+1]
    if window > 1:
        jump = np.array([jump[i : i + window].max() for i in range(n)])
        third = np.array([third[i : i + window].max() for i in range(n)])
    return {"velocity_jump": jump, "jerk": third}


def seam_statistics(joints: np.ndarray, seams: Iterable[int], fps: float = 20.0,
                    window: int = 1) -> dict[str, list[float]]:  # fmt: skip
    """The velocity jump and jerk at each seam (the first frame after a join), as `frame_statistics`."""
    stats = frame_statistics(joints, fps, window)
    out: dict[str, list[float]] = {"velocity_jump": [], "jerk": []}
    for s in seams:
        i = int(s) - 2  # frame s sits at index s − 2
        if 0 <= i < len(stats["jerk"]):
            out["velocity_jump"].append(float(stats["velocity_jump"][i]))
            out["jerk"].append(float(stats["jerk"][i]))
    return out
