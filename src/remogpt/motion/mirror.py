"""Left/right mirroring of joints, features and captions (HumanML3D's `M` clips).

Mirroring negates X (the body's left–right axis) and swaps left and right joints. On features it
is an exact linear map, derived from how each block transforms under the reflection M = diag(−1,1,1):
positions and velocities → M·v; a local rotation R → M·R·M, whose 6-D columns become
(c0x, −c0y, −c0z, −c1x, c1y, c1z); the heading's angular velocity changes sign.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
from torch import Tensor

from remogpt.motion.features import ArrayT, MotionFormatError
from remogpt.motion.skeleton import HUMANML3D, SkeletonSpec, skeleton_for_dim

__all__ = ["mirror", "mirror_caption", "mirror_features"]


def mirror(joints: ArrayT, skeleton: SkeletonSpec = HUMANML3D) -> ArrayT:
    """(..., J, 3) joint positions → the mirrored motion (X negated, left/right joints swapped)."""
    if joints.shape[-1] != 3 or joints.shape[-2] != skeleton.num_joints:
        raise MotionFormatError(f"mirror: expected (..., {skeleton.num_joints}, 3) joints, got {tuple(joints.shape)}")
    perm = list(skeleton.mirror_permutation)
    out = joints[..., perm, :]
    sign = [-1.0, 1.0, 1.0]
    if isinstance(out, Tensor):
        return out * out.new_tensor(sign)  # type: ignore[return-value]
    return (out * np.asarray(sign, dtype=out.dtype)).astype(out.dtype)  # type: ignore[return-value]


@cache
def _feature_map(spec: SkeletonSpec) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """out[..., i] = sign[i] · features[..., source[i]]."""
    J = spec.num_joints
    perm = spec.mirror_permutation
    source = list(range(spec.feature_dim))
    sign = [1.0] * spec.feature_dim
    sign[0] = -1.0  # angular velocity about Y
    sign[1] = -1.0  # root velocity X
    ric0, rot0 = 4, 4 + 3 * (J - 1)
    vel0 = rot0 + 6 * (J - 1)
    rot6_sign = (1.0, -1.0, -1.0, -1.0, 1.0, 1.0)
    for j in range(J):
        m = perm[j]
        if j > 0:
            for c in range(3):
                source[ric0 + 3 * (j - 1) + c] = ric0 + 3 * (m - 1) + c
                sign[ric0 + 3 * (j - 1) + c] = -1.0 if c == 0 else 1.0
            for c in range(6):
                source[rot0 + 6 * (j - 1) + c] = rot0 + 6 * (m - 1) + c
                sign[rot0 + 6 * (j - 1) + c] = rot6_sign[c]
        for c in range(3):
            source[vel0 + 3 * j + c] = vel0 + 3 * m + c
            sign[vel0 + 3 * j + c] = -1.0 if c == 0 else 1.0
    c0 = spec.feature_dim - 4
    source[c0 : c0 + 4] = [c0 + 2, c0 + 3, c0, c0 + 1]  # left contacts <-> right contacts
    return tuple(source), tuple(sign)


def mirror_features(features: ArrayT, skeleton: SkeletonSpec | None = None) -> ArrayT:
    """(..., D) features → the features of the mirrored motion (exact, no re-extraction)."""
    spec = skeleton or skeleton_for_dim(features.shape[-1])
    if features.shape[-1] != spec.feature_dim:
        raise MotionFormatError(f"mirror_features: {features.shape[-1]} dims, {spec.name} needs {spec.feature_dim}")
    source, sign = _feature_map(spec)
    out = features[..., list(source)]
    if isinstance(out, Tensor):
        return out * out.new_tensor(sign)  # type: ignore[return-value]
    return (out * np.asarray(sign, dtype=out.dtype)).astype(out.dtype)  # type: ignore[return-value]


_SWAPS = {
    "left": "right",
    "right": "left",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
    "anticlockwise": "clockwise",
    "counter-clockwise": "clockwise",
    "anti-clockwise": "clockwise",
}
# "left"/"right" also as the start of a word (leftward, rightmost); the direction words whole.
_PATTERN = re.compile(
    r"\b(counter-clockwise|anti-clockwise|counterclockwise|anticlockwise|clockwise|left|right)",
    re.IGNORECASE,
)


def _match_case(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like[0].isupper():
        return word[0].upper() + word[1:]
    return word


def mirror_caption(text: str) -> str:
    """Swap left↔right (and clockwise↔counterclockwise) in a caption, keeping capitalisation.

    HumanML3D's own mirrored captions only swap left/right; a mirrored circle also turns the other
    way, so the turning direction is swapped as well.
    """

    def repl(m: re.Match[str]) -> str:
        found = m.group(0)
        return _match_case(_SWAPS[found.lower()], found)

    return _PATTERN.sub(repl, text)
