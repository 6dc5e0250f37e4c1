"""Skeleton definitions (HumanML3D's SMPL-22 and KIT-ML's 21 joints) and forward kinematics.

The numbers are those of the HumanML3D reference processing (`paramUtil` and the
`motion_representation` step); they decide the 263-d (or 251-d) feature layout, so a skeleton is
a value passed around rather than a set of globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from remogpt.errors import RemogptError
from remogpt.motion.quaternion import qmul, qrot

__all__ = [
    "FEATURE_LIMIT",
    "HUMANML3D",
    "KIT",
    "PART_NAMES",
    "SMPL22_REST_DIRECTIONS",
    "SMPL22_SEGMENTS",
    "MotionFormatError",
    "SkeletonSpec",
    "check_feature_values",
    "forward_kinematics",
    "segment_orientation",
    "skeleton_for_dim",
]


class MotionFormatError(RemogptError, ValueError):
    """A motion array or value that does not have the shape or content the format requires."""


#: No motion's features come near this: they are metres (KIT: millimetres), radians, per-frame
#: velocities and 0/1 contacts. Larger values overflow the encoders into NaN far from the input.
FEATURE_LIMIT = 1e5


def check_feature_values(array: np.ndarray, where: str) -> None:
    """Refuse NaN/inf and values no motion has, naming `where` (a file, a sample)."""
    if not np.isfinite(array).all():
        raise MotionFormatError(f"{where}: contains {int((~np.isfinite(array)).sum())} NaN/inf values")
    peak = float(np.abs(array).max()) if array.size else 0.0
    if peak > FEATURE_LIMIT:
        raise MotionFormatError(
            f"{where}: values up to {peak:.3g}, beyond any motion's (features stay below {FEATURE_LIMIT:g}: "
            "metres, radians, velocities); wrong units or not a motion"
        )


#: The six body parts of the paper (Method, "Body Part-Level Text-Motion Retrieval").
PART_NAMES: tuple[str, ...] = ("root", "right_arm", "left_arm", "right_leg", "left_leg", "backbone")


@dataclass(frozen=True)
class SkeletonSpec:
    """Everything the feature extraction needs to know about a skeleton.

    `face_joints` is (right_hip, left_hip, right_shoulder, left_shoulder) as the reference lists
    them; `bone_lengths[j]` is the target length of the bone from j's parent to j (metres), used
    when retargeting; `parts` maps each of the six parts to its joints.
    """

    name: str
    joint_names: tuple[str, ...]
    kinematic_chains: tuple[tuple[int, ...], ...]
    raw_offsets: tuple[tuple[float, float, float], ...]
    face_joints: tuple[int, int, int, int]
    left_foot: tuple[int, int]
    right_foot: tuple[int, int]
    leg_joints: tuple[int, int]
    mirror_pairs: tuple[tuple[int, int], ...]
    parts: dict[str, tuple[int, ...]] = field(hash=False)
    fps: float
    feet_threshold: float
    min_frames: int
    max_frames: int
    bone_lengths: tuple[float, ...] | None = None

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def feature_dim(self) -> int:
        """4 root + 3(J−1) ric + 6(J−1) rot + 3J velocity + 4 contacts = 12J − 1."""
        return 12 * self.num_joints - 1

    @cached_property
    def parents(self) -> tuple[int, ...]:
        parents = [-1] * self.num_joints
        for chain in self.kinematic_chains:
            for a, b in zip(chain[:-1], chain[1:], strict=True):
                parents[b] = a
        return tuple(parents)

    @cached_property
    def chain_predecessor(self) -> tuple[int, ...]:
        """For joint j, the joint whose bone rotation the reference IK composes j's local rotation
        onto: the previous joint in j's chain, or -1 (the root heading) for a chain's first bone.
        Note that a chain starting at spine3 (the arms) starts again from the root heading."""
        pred = [-1] * self.num_joints
        for chain in self.kinematic_chains:
            for k in range(1, len(chain)):
                pred[chain[k]] = -1 if k == 1 else chain[k - 1]
        return tuple(pred)

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        order: list[int] = [0]
        for chain in self.kinematic_chains:
            for j in chain[1:]:
                if j not in order:
                    order.append(j)
        return tuple(order)

    def raw_offsets_tensor(self, dtype: torch.dtype = torch.float64) -> Tensor:
        return torch.tensor(self.raw_offsets, dtype=dtype)

    def offsets(self) -> np.ndarray:
        """Reference skeleton offsets: raw direction × bone length, (J, 3) metres."""
        if self.bone_lengths is None:
            raise ValueError(f"skeleton {self.name!r} has no reference bone lengths; pass target offsets")
        return np.asarray(self.raw_offsets, dtype=np.float64) * np.asarray(self.bone_lengths)[:, None]

    @cached_property
    def mirror_permutation(self) -> tuple[int, ...]:
        perm = list(range(self.num_joints))
        for a, b in self.mirror_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)


_SMPL22_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)  # fmt: skip

#: Direction of the bone from each SMPL-22 joint's parent to the joint in a natural standing pose
#: facing +Z, left = +X (not unit length; the root's is zero). Symmetrised from the reference
#: skeleton's pose: unlike `raw_offsets` (the reference code's axis-aligned directions), these keep
#: where SMPL puts its joints, e.g. the hips 8 cm below the pelvis and the collars above spine3.
SMPL22_REST_DIRECTIONS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0), (0.56, -0.825, -0.07), (-0.56, -0.825, -0.07), (0.0, 0.94, -0.33),
    (0.09, -0.995, 0.0), (-0.09, -0.995, 0.0), (0.0, 0.98, 0.19),
    (-0.04, -0.99, -0.13), (0.04, -0.99, -0.13), (0.0, 0.997, 0.07),
    (0.2, -0.39, 0.9), (-0.2, -0.39, 0.9), (0.0, 0.996, -0.08),
    (0.55, 0.83, -0.09), (-0.55, 0.83, -0.09), (0.0, 0.7, 0.71),
    (0.99, -0.07, -0.115), (-0.99, -0.07, -0.115), (0.08, -0.985, -0.15),
    (-0.08, -0.985, -0.15), (0.08, -0.95, 0.3), (-0.08, -0.95, 0.3),
)  # fmt: skip
#: The SMPL-22 joints with three children, which fix the joint's orientation from positions alone:
#: joint → (left child, right child, up child). The pelvis (hips, spine1) and spine3 (collars, neck).
SMPL22_SEGMENTS: dict[int, tuple[int, int, int]] = {0: (1, 2, 3), 9: (13, 14, 12)}

HUMANML3D = SkeletonSpec(
    name="humanml3d",
    joint_names=_SMPL22_NAMES,
    kinematic_chains=(
        (0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20),
    ),
    raw_offsets=(
        (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0), (0, 1, 0), (0, -1, 0),
        (0, -1, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1),
        (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0),
    ),
    face_joints=(2, 1, 17, 16),
    left_foot=(7, 10),
    right_foot=(8, 11),
    leg_joints=(5, 8),
    mirror_pairs=((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)),
    parts={
        "root": (0,),
        "right_arm": (9, 14, 17, 19, 21),
        "left_arm": (9, 13, 16, 18, 20),
        "right_leg": (2, 5, 8, 11),
        "left_leg": (1, 4, 7, 10),
        "backbone": (3, 6, 9, 12, 15),
    },
    fps=20.0,
    feet_threshold=0.002,
    min_frames=40,
    max_frames=200,
    bone_lengths=(
        0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.143190, 0.432433, 0.425643,
        0.057365, 0.143382, 0.149419, 0.219360, 0.137487, 0.143383, 0.103039, 0.131614,
        0.122984, 0.256840, 0.263092, 0.266012, 0.269876,
    ),
)  # fmt: skip

KIT = SkeletonSpec(
    name="kit",
    joint_names=(
        "root", "spine1", "spine2", "neck", "head", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
        "right_heel", "right_toe", "left_hip", "left_knee", "left_ankle", "left_heel", "left_toe",
    ),
    kinematic_chains=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10)),
    raw_offsets=(
        (0, 0, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (1, 0, 0), (0, -1, 0), (0, -1, 0),
        (-1, 0, 0), (0, -1, 0), (0, -1, 0), (1, 0, 0), (0, -1, 0), (0, -1, 0), (0, 0, 1), (0, 0, 1),
        (-1, 0, 0), (0, -1, 0), (0, -1, 0), (0, 0, 1), (0, 0, 1),
    ),
    face_joints=(11, 16, 5, 8),
    left_foot=(19, 20),
    right_foot=(14, 15),
    leg_joints=(17, 18),
    mirror_pairs=((5, 8), (6, 9), (7, 10), (11, 16), (12, 17), (13, 18), (14, 19), (15, 20)),
    parts={
        "root": (0,),
        "right_arm": (3, 5, 6, 7),
        "left_arm": (3, 8, 9, 10),
        "right_leg": (11, 12, 13, 14, 15),
        "left_leg": (16, 17, 18, 19, 20),
        "backbone": (1, 2, 3, 4),
    },
    fps=12.5,
    feet_threshold=0.05,
    min_frames=24,
    max_frames=200,
    bone_lengths=None,
)  # fmt: skip

_BY_DIM = {HUMANML3D.feature_dim: HUMANML3D, KIT.feature_dim: KIT}


def skeleton_for_dim(dim: int) -> SkeletonSpec:
    """The skeleton whose feature vector has `dim` entries (263 → HumanML3D, 251 → KIT-ML)."""
    try:
        return _BY_DIM[dim]
    except KeyError:
        known = ", ".join(f"{d} ({s.name})" for d, s in _BY_DIM.items())
        raise MotionFormatError(f"feature dimension {dim} matches no known skeleton (known: {known})") from None


def segment_orientation(joints: np.ndarray, joint: int, children: tuple[int, int, int]) -> np.ndarray:
    """(..., 3, 3) orientation of `joint` from positions (..., J, 3) of three of its children.

    Columns: x from the right to the left child, y towards the up child (made orthogonal to x),
    z = x × y. Used to compare where different rigs put the children of the pelvis and chest.
    """
    left, right, up = children
    x = joints[..., left, :] - joints[..., right, :]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)
    y = joints[..., up, :] - joints[..., joint, :]
    y = y - (y * x).sum(-1, keepdims=True) * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True).clip(1e-12)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def forward_kinematics(
    local_rotations: Tensor,
    root_positions: Tensor,
    offsets: Tensor,
    parents: tuple[int, ...] | list[int],
) -> Tensor:
    """Joint positions from per-joint local rotations (SMPL convention).

    A joint's rotation turns everything below it: global[j] = global[parent]·local[j] and
    p[j] = p[parent] + global[parent]·offset[j]. Rotations are quaternions (..., J, 4) or
    matrices (..., J, 3, 3); root_positions (..., 3); offsets (J, 3) or (..., J, 3).
    Returns (..., J, 3).
    """
    if local_rotations.shape[-1] == 4:
        quats = local_rotations
        use_quat = True
    elif local_rotations.shape[-2:] == (3, 3):
        use_quat = False
    else:
        raise ValueError(
            f"local_rotations must be (..., J, 4) quaternions or (..., J, 3, 3) matrices, "
            f"got {tuple(local_rotations.shape)}"
        )
    num_joints = len(parents)
    joint_axis = -2 if use_quat else -3
    if local_rotations.shape[joint_axis] != num_joints:
        raise ValueError(f"local_rotations has {local_rotations.shape[joint_axis]} joints, parents {num_joints}")
    globals_: list[Tensor | None] = [None] * num_joints
    positions: list[Tensor | None] = [None] * num_joints
    for j in range(num_joints):
        local = quats[..., j, :] if use_quat else local_rotations[..., j, :, :]
        p = parents[j]
        if p < 0:
            globals_[j] = local
            positions[j] = root_positions
            continue
        parent_rot = globals_[p]
        parent_pos = positions[p]
        if parent_rot is None or parent_pos is None:
            raise ValueError(f"joint {j} comes before its parent {p}; parents must be topologically ordered")
        offset = offsets[..., j, :]
        if use_quat:
            positions[j] = parent_pos + qrot(parent_rot, offset.expand(parent_pos.shape))
            globals_[j] = qmul(parent_rot, local)
        else:
            positions[j] = parent_pos + (parent_rot @ offset.unsqueeze(-1)).squeeze(-1)
            globals_[j] = parent_rot @ local
    return torch.stack(positions, dim=-2)  # type: ignore[arg-type]
