"""HumanML3D motion features: joints ↔ 263-d vectors, and canonicalisation of raw joints.

This reproduces the reference `motion_representation` processing, quirks included, because every
published number in the field is computed on features made that way (see the format spec). Inputs
may be numpy arrays or torch tensors with any leading batch dimensions; the computation runs in
float64 and the result comes back as the input's type and floating dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remogpt.motion.quaternion import qbetween, qinv, qmul, qrot, quaternion_to_cont6d
from remogpt.motion.skeleton import HUMANML3D, MotionFormatError, SkeletonSpec, skeleton_for_dim

__all__ = [
    "MotionFormatError",
    "canonicalize",
    "features_to_joints",
    "gaussian_smooth",
    "heading_angle",
    "joints_to_features",
    "process_joints",
    "retarget_to_reference",
]

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

#: Smoothing of the heading for the rotation features, in frames (reference: sigma 20, 'nearest').
HEADING_SMOOTH_SIGMA = 20.0


def _to_tensor(x: np.ndarray | Tensor, name: str) -> tuple[Tensor, Callable[[Tensor], np.ndarray | Tensor]]:
    """float64 tensor view of x, and a function that turns a result back into x's kind."""
    if isinstance(x, Tensor):
        dtype = x.dtype if x.is_floating_point() else torch.float32
        device = x.device

        def back_t(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype)

        return x.to(dtype=torch.float64), back_t
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise MotionFormatError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    np_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float32)

    def back_np(t: Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np_dtype, copy=False)

    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)), back_np


def _check_finite(t: Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        bad = (~torch.isfinite(t)).nonzero()
        first = tuple(int(i) for i in bad[0])
        raise MotionFormatError(f"{name} contains {len(bad)} NaN/inf values (first at index {first})")


def _check_joints(joints: Tensor, spec: SkeletonSpec, name: str, min_frames: int) -> None:
    if joints.ndim < 3 or joints.shape[-1] != 3 or joints.shape[-2] != spec.num_joints:
        raise MotionFormatError(
            f"{name}: expected shape (..., T, {spec.num_joints}, 3) for the {spec.name} skeleton, "
            f"got {tuple(joints.shape)}"
        )
    if joints.shape[-3] < min_frames:
        raise MotionFormatError(f"{name}: needs at least {min_frames} frames, got {joints.shape[-3]}")
    _check_finite(joints, name)


def gaussian_smooth(x: Tensor, sigma: float, dim: int = -2) -> Tensor:
    """scipy.ndimage.gaussian_filter1d(x, sigma, axis=dim, mode='nearest') in torch (truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * offsets.square() / sigma**2)
    kernel = kernel / kernel.sum()
    moved = x.movedim(dim, -1)
    flat = moved.reshape(-1, 1, moved.shape[-1])
    # 'nearest' = repeat the edge value; pad by hand since replicate padding needs a batch layout.
    left = flat[..., :1].expand(-1, -1, radius)
    right = flat[..., -1:].expand(-1, -1, radius)
    padded = torch.cat([left, flat, right], dim=-1)
    out = F.conv1d(padded, kernel.view(1, 1, -1))
    return out.reshape(moved.shape).movedim(-1, dim)


def _normalize(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _heading(joints: Tensor, spec: SkeletonSpec, smooth: bool) -> Tensor:
    """Per-frame root quaternion of the reference IK: turns the facing direction onto +Z.

    The across vector is (p[l_hip] − p[r_hip]) + (p[r_sdr] − p[l_sdr]) — the reference unpacks its
    face-joint list in a different order here than in the canonicalisation; kept for compatibility.
    Frame 0 is forced to the identity.
    """
    r_hip, l_hip, r_sdr, l_sdr = spec.face_joints
    across = (joints[..., l_hip, :] - joints[..., r_hip, :]) + (joints[..., r_sdr, :] - joints[..., l_sdr, :])
    across = _normalize(across)
    up = across.new_tensor([0.0, 1.0, 0.0]).expand(across.shape)
    forward = torch.linalg.cross(up, across, dim=-1)
    if smooth:
        forward = gaussian_smooth(forward, HEADING_SMOOTH_SIGMA, dim=-2)
    forward = _normalize(forward)
    target = forward.new_tensor([0.0, 0.0, 1.0]).expand(forward.shape)
    root_quat = qbetween(forward, target)
    identity = root_quat.new_tensor([1.0, 0.0, 0.0, 0.0])
    root_quat = torch.cat([identity.expand_as(root_quat[..., :1, :]), root_quat[..., 1:, :]], dim=-2)
    return root_quat


def _local_rotations(joints: Tensor, root_quat: Tensor, spec: SkeletonSpec) -> Tensor:
    """Reference IK: local quaternion of every joint (root = heading), (..., T, J, 4).

    Each bone's rotation takes its raw offset direction to the measured bone direction; a joint's
    local rotation is that rotation expressed relative to the previous bone of its chain (or the
    heading, for a chain's first bone).
    """
    raw = spec.raw_offsets_tensor(joints.dtype)
    parents = spec.parents
    child = list(range(1, spec.num_joints))
    parent_idx = [parents[j] for j in child]
    bones = _normalize(joints[..., child, :] - joints[..., parent_idx, :])
    bone_rot = qbetween(raw[child].expand(bones.shape), bones)  # (..., T, J-1, 4)
    by_joint = {j: bone_rot[..., k, :] for k, j in enumerate(child)}
    local = [root_quat]
    for j in child:
        pred = spec.chain_predecessor[j]
        reference = root_quat if pred < 0 else by_joint[pred]
        local.append(qmul(qinv(reference), by_joint[j]))
    return torch.stack(local, dim=-2)


def _foot_contacts(joints: Tensor, feet: tuple[int, int], threshold: float) -> Tensor:
    step = joints[..., 1:, list(feet), :] - joints[..., :-1, list(feet), :]
    return (step.square().sum(-1) < threshold).to(joints.dtype)


def joints_to_features(
    joints: ArrayT, feet_threshold: float | None = None, skeleton: SkeletonSpec = HUMANML3D
) -> ArrayT:
    """Canonical joint positions (..., T, J, 3) → HumanML3D features (..., T−1, 12J−1).

    `joints` must already be canonical (see `canonicalize`): on the floor, starting at the origin,
    facing +Z. The layout is that of the format spec: root (4), ric (3(J−1)), rot (6(J−1)),
    velocity (3J), contacts (4).
    """
    positions, back = _to_tensor(joints, "joints")
    _check_joints(positions, skeleton, "joints", min_frames=2)
    threshold = skeleton.feet_threshold if feet_threshold is None else feet_threshold

    feet_l = _foot_contacts(positions, skeleton.left_foot, threshold)
    feet_r = _foot_contacts(positions, skeleton.right_foot, threshold)

    r_rot = _heading(positions, skeleton, smooth=True)  # (..., T, 4)
    local = _local_rotations(positions, r_rot, skeleton)
    cont6d = quaternion_to_cont6d(local[..., 1:, :])  # (..., T, J-1, 6)

    root = positions[..., 0, :]
    root_vel = qrot(r_rot[..., 1:, :], root[..., 1:, :] - root[..., :-1, :])
    r_velocity = qmul(r_rot[..., 1:, :], qinv(r_rot[..., :-1, :]))
    angular = torch.arcsin(r_velocity[..., 2:3].clamp(-1.0, 1.0))

    centred = positions.clone()
    centred[..., 0] = centred[..., 0] - positions[..., 0:1, 0]
    centred[..., 2] = centred[..., 2] - positions[..., 0:1, 2]
    ric = qrot(r_rot.unsqueeze(-2), centred)  # (..., T, J, 3)
    root_y = ric[..., :-1, 0, 1:2]

    velocity = qrot(r_rot[..., :-1, :].unsqueeze(-2), positions[..., 1:, :, :] - positions[..., :-1, :, :])

    lead = positions.shape[:-3]
    frames = positions.shape[-3] - 1
    features = torch.cat(
        [
            angular,
            root_vel[..., [0, 2]],
            root_y,
            ric[..., :-1, 1:, :].reshape(*lead, frames, -1),
            cont6d[..., :-1, :, :].reshape(*lead, frames, -1),
            velocity.reshape(*lead, frames, -1),
            feet_l,
            feet_r,
        ],
        dim=-1,
    )
    return back(features)  # type: ignore[return-value]


def _root_rotation_and_position(features: Tensor) -> tuple[Tensor, Tensor]:
    rot_vel = features[..., 0]
    angle = torch.zeros_like(rot_vel)
    angle[..., 1:] = rot_vel[..., :-1]
    angle = torch.cumsum(angle, dim=-1)
    zeros = torch.zeros_like(angle)
    r_quat = torch.stack([torch.cos(angle), zeros, torch.sin(angle), zeros], dim=-1)
    r_pos = torch.zeros(features.shape[:-1] + (3,), dtype=features.dtype, device=features.device)
    r_pos[..., 1:, 0] = features[..., :-1, 1]
    r_pos[..., 1:, 2] = features[..., :-1, 2]
    r_pos = qrot(qinv(r_quat), r_pos)
    r_pos = torch.cumsum(r_pos, dim=-2)
    r_pos[..., 1] = features[..., 3]
    return r_quat, r_pos


def features_to_joints(features: ArrayT, skeleton: SkeletonSpec | None = None) -> ArrayT:
    """HumanML3D features (..., T, D) → joint positions (..., T, J, 3), the reference recovery.

    Uses the root (dims 0:4) and the ric positions only, as the reference `recover_from_ric` does;
    the skeleton is inferred from D (263 → 22 joints, 251 → 21) unless given.
    """
    data, back = _to_tensor(features, "features")
    if data.ndim < 2:
        raise MotionFormatError(f"features: expected shape (..., T, D), got {tuple(data.shape)}")
    spec = skeleton or skeleton_for_dim(data.shape[-1])
    if data.shape[-1] != spec.feature_dim:
        raise MotionFormatError(
            f"features: last dimension {data.shape[-1]} does not match the {spec.name} skeleton ({spec.feature_dim})"
        )
    _check_finite(data, "features")
    r_quat, r_pos = _root_rotation_and_position(data)
    ric = data[..., 4 : 4 + 3 * (spec.num_joints - 1)].reshape(data.shape[:-1] + (spec.num_joints - 1, 3))
    joints = qrot(qinv(r_quat).unsqueeze(-2), ric)
    joints = joints + torch.stack([r_pos[..., 0], torch.zeros_like(r_pos[..., 0]), r_pos[..., 2]], -1).unsqueeze(-2)
    joints = torch.cat([r_pos.unsqueeze(-2), joints], dim=-2)
    return back(joints)  # type: ignore[return-value]


def retarget_to_reference(joints: Tensor, spec: SkeletonSpec, target_offsets: np.ndarray | None = None) -> Tensor:
    """Same bone directions, reference bone lengths; root translation scaled by the leg ratio.

    Equal to the reference's IK→FK round trip (which reproduces every bone direction exactly) but
    computed directly, so it is exact where the reference's quaternions degenerate.
    """
    target = spec.offsets() if target_offsets is None else np.asarray(target_offsets, dtype=np.float64)
    if target.shape != (spec.num_joints, 3):
        raise MotionFormatError(f"target offsets must have shape ({spec.num_joints}, 3), got {target.shape}")
    target_len = torch.from_numpy(np.linalg.norm(target, axis=-1)).to(joints)
    parents = spec.parents
    first = joints[..., 0, :, :]
    a, b = spec.leg_joints
    src_leg = (first[..., a, :] - first[..., parents[a], :]).norm(dim=-1) + (
        first[..., b, :] - first[..., parents[b], :]
    ).norm(dim=-1)
    if bool((src_leg <= 1e-8).any()):
        raise MotionFormatError("cannot retarget: the lower-leg bones have zero length in frame 0")
    scale = (target_len[a] + target_len[b]) / src_leg  # (...,)
    raw = spec.raw_offsets_tensor(joints.dtype)
    out: list[Tensor | None] = [None] * spec.num_joints
    out[0] = joints[..., 0, :] * scale[..., None, None]
    for j in spec.topological_order[1:]:
        bone = joints[..., j, :] - joints[..., parents[j], :]
        length = bone.norm(dim=-1, keepdim=True)
        direction = torch.where(length > 1e-12, bone / length.clamp_min(1e-12), raw[j].expand_as(bone))
        out[j] = out[parents[j]] + direction * target_len[j]  # type: ignore[operator]
    return torch.stack(out, dim=-2)  # type: ignore[arg-type]


def canonicalize(
    joints: ArrayT,
    retarget: bool = True,
    skeleton: SkeletonSpec = HUMANML3D,
    target_offsets: np.ndarray | None = None,
) -> ArrayT:
    """Raw joint positions (..., T, J, 3), Y up, metres → the canonical pose the features expect.

    Steps of the reference: retarget to the reference skeleton, lowest joint of the clip on the
    floor, frame 0's root over the origin, frame 0 facing +Z.
    """
    positions, back = _to_tensor(joints, "joints")
    _check_joints(positions, skeleton, "joints", min_frames=1)
    if retarget:
        positions = retarget_to_reference(positions, skeleton, target_offsets)
    floor = positions[..., 1].amin(dim=(-1, -2), keepdim=True)
    positions = positions.clone()
    positions[..., 1] = positions[..., 1] - floor
    origin = positions[..., 0:1, 0:1, :] * positions.new_tensor([1.0, 0.0, 1.0])
    positions = positions - origin
    r_hip, l_hip, r_sdr, l_sdr = skeleton.face_joints
    first = positions[..., 0, :, :]
    across = (first[..., r_hip, :] - first[..., l_hip, :]) + (first[..., r_sdr, :] - first[..., l_sdr, :])
    across = _normalize(across)
    up = across.new_tensor([0.0, 1.0, 0.0]).expand(across.shape)
    forward = _normalize(torch.linalg.cross(up, across, dim=-1))
    quat = qbetween(forward, forward.new_tensor([0.0, 0.0, 1.0]).expand(forward.shape))
    positions = qrot(quat[..., None, None, :], positions)
    return back(positions)  # type: ignore[return-value]


def process_joints(
    joints: ArrayT, skeleton: SkeletonSpec = HUMANML3D, feet_threshold: float | None = None
) -> tuple[ArrayT, ArrayT]:
    """Raw joints → (features (T−1, D), joints recovered from them (T−1, J, 3)).

    This is what a HumanML3D folder stores in `new_joint_vecs/` and `new_joints/`: the shipped
    joints are the recovery of the features, not the canonical input.
    """
    canonical = canonicalize(joints, skeleton=skeleton)
    features = joints_to_features(canonical, feet_threshold=feet_threshold, skeleton=skeleton)
    return features, features_to_joints(features, skeleton=skeleton)


def heading_angle(features: ArrayT) -> ArrayT:
    """Yaw of every frame (radians about +Y) as the recovery integrates it from dim 0."""
    data, back = _to_tensor(features, "features")
    half = torch.cumsum(torch.nn.functional.pad(data[..., :-1, 0], (1, 0)), dim=-1)
    return back(2.0 * half)  # type: ignore[return-value]
