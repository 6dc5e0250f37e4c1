"""The paper's six body parts as slices of the feature vector (split for PL-TMR, merge back).

Each joint owns its ric (3), rot (6) and velocity (3) dims; the root owns dims 0:4 and its
velocity; each leg owns its foot contacts. A part's vector keeps the feature order of its dims.
Spine3 belongs to the backbone and to both arms, so merging averages its copies.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import Tensor

from remogpt.motion.features import ArrayT, MotionFormatError
from remogpt.motion.skeleton import PART_NAMES, SkeletonSpec, skeleton_for_dim

__all__ = [
    "graft_arms",
    "joint_dims_by_kind",
    "joint_feature_indices",
    "merge_parts",
    "part_dims",
    "part_indices",
    "split_parts",
]


def joint_feature_indices(joint: int, num_joints: int) -> list[int]:
    """Feature dims of one joint: ric and rot (not for the root), then velocity."""
    ric0 = 4
    rot0 = ric0 + 3 * (num_joints - 1)
    vel0 = rot0 + 6 * (num_joints - 1)
    idx: list[int] = []
    if joint == 0:
        idx += [0, 1, 2, 3]
    else:
        idx += list(range(ric0 + 3 * (joint - 1), ric0 + 3 * joint))
        idx += list(range(rot0 + 6 * (joint - 1), rot0 + 6 * joint))
    idx += list(range(vel0 + 3 * joint, vel0 + 3 * joint + 3))
    return idx


def joint_dims_by_kind(joint: int, num_joints: int) -> tuple[list[int], list[int], list[int]]:
    """(ric, rot, velocity) feature dims of a non-root joint: `joint_feature_indices`, split by kind."""
    dims = joint_feature_indices(joint, num_joints)
    return dims[:3], dims[3:9], dims[9:12]


@cache
def _indices(spec: SkeletonSpec) -> dict[str, tuple[int, ...]]:
    contacts0 = spec.feature_dim - 4
    out: dict[str, tuple[int, ...]] = {}
    for name in PART_NAMES:
        idx: list[int] = []
        for joint in spec.parts[name]:
            idx += joint_feature_indices(joint, spec.num_joints)
        if name == "left_leg":
            idx += [contacts0, contacts0 + 1]
        elif name == "right_leg":
            idx += [contacts0 + 2, contacts0 + 3]
        out[name] = tuple(sorted(idx))
    covered = sorted({i for v in out.values() for i in v})
    if covered != list(range(spec.feature_dim)):
        raise AssertionError(f"parts of {spec.name} do not cover the feature vector")  # pragma: no cover
    return out


def part_indices(skeleton: SkeletonSpec) -> dict[str, tuple[int, ...]]:
    """Feature dims of each part, in the paper's part order."""
    return dict(_indices(skeleton))


def part_dims(skeleton: SkeletonSpec) -> dict[str, int]:
    return {k: len(v) for k, v in _indices(skeleton).items()}


def split_parts(features: ArrayT, skeleton: SkeletonSpec | None = None) -> dict[str, ArrayT]:
    """(..., D) features → {part: (..., D_part)}: root 7, arms 60, legs 50, backbone 60 for HumanML3D."""
    dim = features.shape[-1]
    spec = skeleton or skeleton_for_dim(dim)
    if dim != spec.feature_dim:
        raise MotionFormatError(f"features have {dim} dims, the {spec.name} skeleton needs {spec.feature_dim}")
    return {name: features[..., list(idx)] for name, idx in _indices(spec).items()}


def merge_parts(parts: dict[str, ArrayT], skeleton: SkeletonSpec | None = None) -> ArrayT:
    """Inverse of `split_parts`; dims shared by several parts (spine3) are averaged."""
    missing = [p for p in PART_NAMES if p not in parts]
    if missing:
        raise MotionFormatError(f"merge_parts: missing parts {missing}")
    if skeleton is None:
        total = sum(parts[p].shape[-1] for p in PART_NAMES)
        candidates = [s for s in (skeleton_for_dim(263), skeleton_for_dim(251)) if sum(part_dims(s).values()) == total]
        if not candidates:
            raise MotionFormatError(f"merge_parts: part sizes add up to {total}, which fits no known skeleton")
        skeleton = candidates[0]
    idx = _indices(skeleton)
    for name in PART_NAMES:
        if parts[name].shape[-1] != len(idx[name]):
            raise MotionFormatError(
                f"merge_parts: part {name!r} has {parts[name].shape[-1]} dims, expected {len(idx[name])}"
            )
    first = parts[PART_NAMES[0]]
    lead = tuple(first.shape[:-1])
    if isinstance(first, Tensor):
        total_t = first.new_zeros(lead + (skeleton.feature_dim,))
        count_t = first.new_zeros(skeleton.feature_dim)
        for name in PART_NAMES:
            cols = torch.tensor(idx[name], device=first.device)
            total_t = total_t.index_add(-1, cols, parts[name])  # type: ignore[arg-type]
            count_t = count_t.index_add(0, cols, torch.ones_like(cols, dtype=first.dtype))
        return total_t / count_t  # type: ignore[return-value]
    total_np = np.zeros(lead + (skeleton.feature_dim,), dtype=np.result_type(first.dtype, np.float32))
    count_np = np.zeros(skeleton.feature_dim)
    for name in PART_NAMES:
        cols_np = np.asarray(idx[name])
        total_np[..., cols_np] += parts[name]
        count_np[cols_np] += 1
    return (total_np / count_np).astype(total_np.dtype)  # type: ignore[return-value]


#: Where the arms hang (HumanML3D numbering): Spine3, kept with the backbone when arms are grafted.
ARM_ANCHOR = 9


def graft_arms(body: np.ndarray, arms_from: np.ndarray) -> np.ndarray:
    """`body` (T, D) raw features with the arms of `arms_from` (T, D): their rotations, and their
    positions and velocities relative to the upper spine (Spine3), re-hung from `body`'s.

    Root, legs and backbone stay `body`'s bit for bit. Features are local to the root, so one clip's
    arms on another's body is a valid motion of the same format (the body-part edit, and a part-level
    composite of two retrieved motions)."""
    body, arms_from = np.asarray(body, dtype=np.float32), np.asarray(arms_from, dtype=np.float32)
    if body.shape != arms_from.shape or body.ndim != 2:
        raise MotionFormatError(f"graft_arms needs two (T, D) arrays of one shape, got {body.shape} "
                                f"and {arms_from.shape}")
    spec = skeleton_for_dim(body.shape[1])
    n = spec.num_joints
    parts = spec.parts
    joints = sorted((set(parts["right_arm"]) | set(parts["left_arm"])) - set(parts["backbone"]))

    anchor_ric, _, anchor_vel = joint_dims_by_kind(ARM_ANCHOR, n)
    out = body.copy()
    for j in joints:
        ric, rot, vel = joint_dims_by_kind(j, n)
        out[:, ric] = arms_from[:, ric] - arms_from[:, anchor_ric] + body[:, anchor_ric]
        out[:, rot] = arms_from[:, rot]
        out[:, vel] = arms_from[:, vel] - arms_from[:, anchor_vel] + body[:, anchor_vel]
    return out
