"""The HumanML3D motion format: skeletons, joints ↔ 263-d features, body parts, mirroring, rendering."""

from remogpt.motion.features import (
    MotionFormatError,
    canonicalize,
    features_to_joints,
    heading_angle,
    joints_to_features,
    process_joints,
)
from remogpt.motion.mirror import mirror, mirror_caption, mirror_features
from remogpt.motion.parts import (
    graft_arms,
    joint_dims_by_kind,
    joint_feature_indices,
    merge_parts,
    part_dims,
    part_indices,
    split_parts,
)
from remogpt.motion.quaternion import axis_angle_to_quaternion, qmul, qrot, quaternion_to_matrix
from remogpt.motion.skeleton import (
    FEATURE_LIMIT,
    HUMANML3D,
    KIT,
    PART_NAMES,
    SkeletonSpec,
    check_feature_values,
    forward_kinematics,
    skeleton_for_dim,
)

__all__ = [
    "FEATURE_LIMIT",
    "HUMANML3D",
    "KIT",
    "PART_NAMES",
    "MotionFormatError",
    "SkeletonSpec",
    "axis_angle_to_quaternion",
    "canonicalize",
    "check_feature_values",
    "features_to_joints",
    "forward_kinematics",
    "graft_arms",
    "heading_angle",
    "joint_dims_by_kind",
    "joint_feature_indices",
    "joints_to_features",
    "merge_parts",
    "mirror",
    "mirror_caption",
    "mirror_features",
    "part_dims",
    "part_indices",
    "process_joints",
    "qmul",
    "qrot",
    "quaternion_to_matrix",
    "skeleton_for_dim",
    "split_parts",
]
