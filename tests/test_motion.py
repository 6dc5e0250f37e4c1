"""The motion core against the real HumanML3D clip, round trips, symmetries and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from remogpt.motion import (
    HUMANML3D,
    KIT,
    MotionFormatError,
    canonicalize,
    features_to_joints,
    forward_kinematics,
    graft_arms,
    joints_to_features,
    merge_parts,
    mirror,
    mirror_caption,
    mirror_features,
    part_dims,
    part_indices,
    process_joints,
    split_parts,
)
from remogpt.motion.features import gaussian_smooth
from remogpt.motion.quaternion import axis_angle_to_quaternion, qbetween, qmul, qrot, quaternion_to_matrix

# ---------------------------------------------------------------- helpers


def rest_pose(scale: float = 1.0) -> np.ndarray:
    """Reference skeleton in its raw-offset pose, feet on the floor, (22, 3)."""
    offsets = torch.from_numpy(HUMANML3D.offsets() * scale)
    rot = torch.zeros(22, 4, dtype=torch.float64)
    rot[:, 0] = 1
    joints = forward_kinematics(rot, torch.zeros(3, dtype=torch.float64), offsets, HUMANML3D.parents).numpy()
    joints[:, 1] -= joints[:, 1].min()
    return joints


def wiggly_motion(frames: int = 90, seed: int = 0) -> np.ndarray:
    """A smooth random motion through FK: every joint bends, the root walks and turns."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, frames)[:, None, None]
    freq = rng.uniform(0.5, 2.0, size=(1, 22, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 22, 3))
    amp = rng.uniform(0.05, 0.5, size=(1, 22, 3))
    axis_angle = amp * np.sin(2 * np.pi * freq * t + phase)
    axis_angle[:, 0] = 0
    axis_angle[:, 0, 1] = 1.5 * t[:, 0, 0]  # turn 1.5 rad over the clip
    quats = axis_angle_to_quaternion(torch.from_numpy(axis_angle))
    root = torch.from_numpy(np.stack([0.3 * t[:, 0, 0], 0.9 + 0.02 * np.sin(9 * t[:, 0, 0]), 1.2 * t[:, 0, 0]], -1))
    joints = forward_kinematics(quats, root, torch.from_numpy(HUMANML3D.offsets()), HUMANML3D.parents).numpy()
    joints[..., 1] -= joints[..., 1].min()
    return joints


# ---------------------------------------------------------------- against the reference data


def test_features_to_joints_reproduces_shipped_joints(real_clip):
    vecs, joints = real_clip
    recovered = features_to_joints(vecs)
    assert recovered.shape == (170, 22, 3) and recovered.dtype == np.float32
    assert np.abs(recovered - joints).max() < 1e-5


def test_joints_to_features_matches_reference_extraction(real_clip):
    """The spec's measurement of the reference on this clip: per-block max |difference|."""
    vecs, joints = real_clip
    feats = joints_to_features(joints)
    assert feats.shape == (169, 263)
    diff = np.abs(feats - vecs[:-1])
    reference = {(0, 4): 3.0e-4, (4, 67): 6.8e-3, (67, 193): 1.3e-2, (193, 259): 4.1e-4}
    for (a, b), expected in reference.items():
        assert diff[:, a:b].max() == pytest.approx(expected, rel=0.05), (a, b)
    assert diff[:, 259:].max() == 0.0


def test_frame_zero_quirk_is_kept(real_clip):
    """The reference forces frame 0's heading to identity, visible as a jump in dim 0 at frame 0."""
    vecs, joints = real_clip
    feats = joints_to_features(joints)
    assert feats[0, 0] == pytest.approx(vecs[0, 0], abs=1e-4)
    assert abs(feats[0, 0]) > 10 * abs(feats[1:10, 0]).max()


def test_canonicalize_real_clip_keeps_it(real_clip):
    _, joints = real_clip
    canon = canonicalize(joints)
    assert np.abs(canon - joints).max() < 1e-4


# ---------------------------------------------------------------- round trips and invariants


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_joints_features_joints(seed):
    joints = canonicalize(wiggly_motion(seed=seed))
    recovered = features_to_joints(joints_to_features(joints))
    assert np.abs(recovered - joints[:-1]).max() < 1e-9


def test_canonicalize_is_invariant_to_yaw_and_translation():
    joints = wiggly_motion()
    rot = Rotation.from_euler("y", 1.234).as_matrix()
    moved = joints @ rot.T + np.array([3.0, 0.5, -2.0])
    assert np.abs(canonicalize(moved) - canonicalize(joints)).max() < 1e-9


def test_canonical_pose_properties():
    rng = np.random.default_rng(3)
    joints = wiggly_motion() * 1.1 + rng.normal(0, 0.001, size=(90, 22, 3))
    canon = canonicalize(joints)
    assert canon[..., 1].min() == pytest.approx(0.0, abs=1e-12)
    assert np.abs(canon[0, 0, [0, 2]]).max() < 1e-12
    across = (canon[0, 2] - canon[0, 1]) + (canon[0, 17] - canon[0, 16])
    forward = np.cross([0, 1, 0], across)
    forward /= np.linalg.norm(forward)
    assert forward @ np.array([0, 0, 1.0]) == pytest.approx(1.0, abs=1e-9)
    parents = HUMANML3D.parents
    lengths = np.linalg.norm(canon[:, 1:] - canon[:, [parents[j] for j in range(1, 22)]], axis=-1)
    assert np.abs(lengths - np.asarray(HUMANML3D.bone_lengths[1:])).max() < 1e-12


def test_batch_dims_and_torch_inputs():
    a, b = canonicalize(wiggly_motion(seed=0)), canonicalize(wiggly_motion(seed=1))
    batch = np.stack([a, b]).astype(np.float32)
    feats = joints_to_features(batch)
    assert feats.shape == (2, 89, 263) and feats.dtype == np.float32
    assert np.abs(feats[1] - joints_to_features(b.astype(np.float32))).max() < 1e-6
    t = torch.from_numpy(feats[0]).requires_grad_(True)
    rec = features_to_joints(t)
    assert isinstance(rec, torch.Tensor) and rec.dtype == torch.float32
    rec.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()
    assert torch.allclose(
        torch.as_tensor(joints_to_features(torch.from_numpy(a))), torch.from_numpy(joints_to_features(a))
    )


def test_gaussian_smooth_equals_scipy():
    rng = np.random.default_rng(0)
    for frames in (30, 300):  # shorter and longer than the kernel radius (80)
        x = rng.normal(size=(frames, 3))
        ours = gaussian_smooth(torch.from_numpy(x), 20.0, dim=0).numpy()
        assert np.abs(ours - gaussian_filter1d(x, 20, axis=0, mode="nearest")).max() < 1e-12


# ---------------------------------------------------------------- hand-made cases


def test_standing_still_has_zero_velocity_and_full_contact():
    joints = np.repeat(rest_pose()[None], 50, axis=0)
    feats = joints_to_features(canonicalize(joints))
    assert np.abs(feats[:, :3]).max() < 1e-12
    assert np.abs(feats[:, 193:259]).max() < 1e-12
    assert (feats[:, 259:] == 1.0).all()
    assert feats[:, 3] == pytest.approx(rest_pose()[0, 1])


@pytest.mark.parametrize(("speed", "contact"), [(0.02, 1.0), (0.06, 0.0)])
def test_gliding_forward(speed, contact):
    """A rigid pose moving along +Z at `speed` m/frame: velocity in dim 2, contact iff speed² < 0.002."""
    frames = 60
    joints = rest_pose()[None] + np.arange(frames)[:, None, None] * np.array([0, 0, speed])
    feats = joints_to_features(canonicalize(joints))
    assert feats[:, 2] == pytest.approx(speed, abs=1e-9)
    assert np.abs(feats[:, 1]).max() < 1e-9
    assert (feats[:, 259:] == contact).all()
    vel_z = feats[:, 193:259].reshape(-1, 22, 3)[..., 2]
    assert vel_z == pytest.approx(speed, abs=1e-9)


def test_turning_in_place_angular_velocity():
    """Constant left turn of ω rad/frame: dim 0 is −ω/2 (the half-angle of the inverse heading).

    Reference quirk kept: the heading quaternions are not sign-fixed, so on the one frame where the
    heading passes 180° from frame 0 the delta quaternion flips sign and dim 0 reads +ω/2.
    """
    frames, omega = 240, 0.03
    rest = rest_pose()
    centre = rest[0] * np.array([1, 0, 1])
    joints = np.stack(
        [(rest - centre) @ Rotation.from_euler("y", omega * t).as_matrix().T + centre for t in range(frames)]
    )
    feats = joints_to_features(canonicalize(joints))
    interior = feats[85:100, 0]  # the smoothing kernel reaches 80 frames from the edge
    assert interior == pytest.approx(-omega / 2, abs=1e-6)
    flips = np.nonzero(feats[30:200, 0] > 0)[0] + 30
    assert len(flips) == 1 and abs(flips[0] - math.pi / omega) < 2
    # Recovery integrates dim 0 back into the turn, ω per frame, before the flip.
    rec = features_to_joints(feats)
    across = rec[:, 1] - rec[:, 2]
    angle = np.unwrap(np.arctan2(-across[:, 2], across[:, 0]))
    assert np.diff(angle)[60:100] == pytest.approx(omega, abs=2e-3)


# ---------------------------------------------------------------- mirror


def test_mirror_twice_is_identity_and_commutes(real_clip):
    vecs, joints = real_clip
    assert np.array_equal(mirror(mirror(joints)), joints)
    assert np.array_equal(mirror_features(mirror_features(vecs)), vecs)
    commute = np.abs(joints_to_features(mirror(joints)) - mirror_features(joints_to_features(joints))).max()
    assert commute < 1e-6
    assert np.abs(features_to_joints(mirror_features(vecs)) - mirror(features_to_joints(vecs))).max() < 1e-5


def test_mirror_swaps_sides_geometrically():
    joints = wiggly_motion()
    m = mirror(joints)
    assert np.allclose(m[:, 1, 0], -joints[:, 2, 0]) and np.allclose(m[:, 20], joints[:, 21] * [-1, 1, 1])
    canon = canonicalize(joints)
    feats = joints_to_features(canon)
    assert np.abs(joints_to_features(mirror(canon)) - mirror_features(feats)).max() < 1e-9
    # The 6-D rotation rule: M·R·M of every local rotation.
    torch_feats = mirror_features(torch.from_numpy(feats))
    assert torch.allclose(torch_feats, torch.from_numpy(mirror_features(feats)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a person waves with the left hand", "a person waves with the right hand"),
        ("Right foot kicks, then LEFT arm rises", "Left foot kicks, then RIGHT arm rises"),
        ("walks in a clockwise circle", "walks in a counterclockwise circle"),
        ("turns counter-clockwise and steps leftward", "turns clockwise and steps rightward"),
        ("the man walks forward", "the man walks forward"),
    ],
)
def test_mirror_caption(text, expected):
    assert mirror_caption(text) == expected


# ---------------------------------------------------------------- parts


def test_part_dims_match_spec():
    assert part_dims(HUMANML3D) == {
        "root": 7,
        "right_arm": 60,
        "left_arm": 60,
        "right_leg": 50,
        "left_leg": 50,
        "backbone": 60,
    }
    idx = part_indices(HUMANML3D)
    assert idx["root"] == (0, 1, 2, 3, 193, 194, 195)
    assert idx["right_leg"][-2:] == (261, 262) and idx["left_leg"][-2:] == (259, 260)
    # right hip (joint 2): ric 7:10, rot 73:79, velocity 199:202
    assert {7, 8, 9, 73, 78, 199, 201} <= set(idx["right_leg"])
    spine3 = {4 + 3 * 8, 67 + 6 * 8, 193 + 27}
    for part in ("backbone", "right_arm", "left_arm"):
        assert spine3 <= set(idx[part])
    assert sum(part_dims(KIT).values()) == 251 + 2 * 12  # spine joint shared by three parts


def test_split_merge_round_trip_and_averaging(real_clip):
    vecs, _ = real_clip
    parts = split_parts(vecs)
    assert np.abs(merge_parts(parts) - vecs).max() < 1e-6
    shared = list(part_indices(HUMANML3D)["right_arm"]).index(4 + 3 * 8)  # spine3 ric x in the right arm
    parts["right_arm"] = parts["right_arm"].copy()
    parts["right_arm"][:, shared] += 3.0
    merged = merge_parts(parts)
    assert merged[:, 4 + 3 * 8] == pytest.approx(vecs[:, 4 + 3 * 8] + 1.0, abs=1e-5)
    t_parts = split_parts(torch.from_numpy(vecs))
    assert torch.allclose(merge_parts(t_parts), torch.from_numpy(vecs), atol=1e-6)


def test_graft_arms_keeps_the_body_and_rehangs_the_other_arms(real_clip) -> None:
    """One clip's arms on another's body (its mirror): root, legs and backbone are the body's bit for
    bit, and so are their joints; every arm joint sits where the donor has it relative to Spine3."""
    vecs, _ = real_clip
    vecs = vecs.astype(np.float32)
    donor = mirror_features(vecs).astype(np.float32)
    out = graft_arms(vecs, donor)
    np.testing.assert_allclose(graft_arms(vecs, vecs), vecs, atol=1e-6)  # its own arms: itself
    idx = part_indices(HUMANML3D)
    arm_dims = (set(idx["right_arm"]) | set(idx["left_arm"])) - set(idx["backbone"])
    kept = sorted(set(range(vecs.shape[1])) - arm_dims)
    assert np.array_equal(out[:, kept], vecs[:, kept])
    joints, body_joints = features_to_joints(out), features_to_joints(vecs)
    parts = HUMANML3D.parts
    arms = sorted((set(parts["right_arm"]) | set(parts["left_arm"])) - set(parts["backbone"]))
    others = [j for j in range(22) if j not in arms]
    np.testing.assert_allclose(joints[:, others], body_joints[:, others], atol=1e-5)
    ric = lambda f, j: f[:, 4 + 3 * (j - 1) : 4 + 3 * j]  # noqa: E731 - root-local position of joint j
    for j in arms:
        np.testing.assert_allclose(ric(out, j) - ric(out, 9), ric(donor, j) - ric(donor, 9), atol=1e-5)
    with pytest.raises(MotionFormatError, match="one shape"):
        graft_arms(vecs, donor[:-1])


# ---------------------------------------------------------------- quaternions and FK


def test_quaternions_against_scipy():
    rng = np.random.default_rng(0)
    rv = rng.normal(size=(50, 3))
    q = axis_angle_to_quaternion(torch.from_numpy(rv))
    ref = Rotation.from_rotvec(rv)
    assert np.allclose(quaternion_to_matrix(q).numpy(), ref.as_matrix(), atol=1e-12)
    v = rng.normal(size=(50, 3))
    assert np.allclose(qrot(q, torch.from_numpy(v)).numpy(), ref.apply(v), atol=1e-12)
    q2 = axis_angle_to_quaternion(torch.from_numpy(rng.normal(size=(50, 3))))
    composed = quaternion_to_matrix(qmul(q, q2)).numpy()
    assert np.allclose(composed, quaternion_to_matrix(q).numpy() @ quaternion_to_matrix(q2).numpy(), atol=1e-12)


def test_qbetween_including_opposite_vectors():
    u = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.3, 0.2, -0.9]], dtype=torch.float64)
    v = torch.tensor([[0.0, 1.0, 0.0], [-2.0, 0.0, 0.0], [0.1, 0.9, 0.1]], dtype=torch.float64)
    q = qbetween(u, v)
    assert torch.isfinite(q).all()
    rotated = qrot(q, u)
    assert torch.allclose(rotated / rotated.norm(dim=-1, keepdim=True), v / v.norm(dim=-1, keepdim=True), atol=1e-9)


def test_forward_kinematics_quaternion_matrix_and_subtree():
    rng = np.random.default_rng(1)
    rv = torch.from_numpy(rng.normal(scale=0.4, size=(5, 22, 3)))
    q = axis_angle_to_quaternion(rv)
    offsets = torch.from_numpy(HUMANML3D.offsets())
    root = torch.zeros(5, 3, dtype=torch.float64)
    a = forward_kinematics(q, root, offsets, HUMANML3D.parents)
    b = forward_kinematics(quaternion_to_matrix(q), root, offsets, HUMANML3D.parents)
    assert torch.allclose(a, b, atol=1e-12)
    # Bending the left knee (4) moves only its descendants (7, 10).
    q2 = q.clone()
    q2[:, 4] = axis_angle_to_quaternion(torch.tensor([0.9, 0.0, 0.0], dtype=torch.float64))
    c = forward_kinematics(q2, root, offsets, HUMANML3D.parents)
    moved = (c - a).norm(dim=-1).amax(0) > 1e-9
    assert set(torch.nonzero(moved).flatten().tolist()) == {7, 10}
    # Bone lengths are the offsets' lengths.
    lengths = (a[:, 1:] - a[:, list(HUMANML3D.parents[1:])]).norm(dim=-1)
    assert torch.allclose(lengths, offsets[1:].norm(dim=-1).expand_as(lengths))


def test_knee_flexion_sign_convention():
    """Rotation about +X bends the shin backwards (toward −Z): the convention the generator uses."""
    q = torch.zeros(22, 4, dtype=torch.float64)
    q[:, 0] = 1
    q[4] = axis_angle_to_quaternion(torch.tensor([math.radians(60), 0.0, 0.0], dtype=torch.float64))
    j = forward_kinematics(
        q, torch.zeros(3, dtype=torch.float64), torch.from_numpy(HUMANML3D.offsets()), HUMANML3D.parents
    )
    assert j[7, 2] < j[4, 2] - 0.3


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fn", "arg", "match"),
    [
        (joints_to_features, np.zeros((10, 21, 3)), r"\(\.\.\., T, 22, 3\)"),
        (joints_to_features, np.zeros((1, 22, 3)), "at least 2 frames"),
        (joints_to_features, np.full((5, 22, 3), np.nan), "NaN"),
        (features_to_joints, np.zeros((10, 200)), "matches no known skeleton"),
        (features_to_joints, np.zeros(263), r"\(\.\.\., T, D\)"),
        (canonicalize, np.zeros((10, 22)), "22, 3"),
        (split_parts, np.zeros((4, 100)), "no known skeleton"),
        (mirror, np.zeros((4, 21, 3)), "22, 3"),
    ],
)
def test_bad_input_raises_clear_error(fn, arg, match):
    with pytest.raises(MotionFormatError, match=match):
        fn(arg)


def test_kit_skeleton_round_trip():
    """KIT-ML (21 joints, 251 dims): extraction and recovery work with the parametrised skeleton."""
    rng = np.random.default_rng(0)
    offsets = np.asarray(KIT.raw_offsets, dtype=np.float64) * rng.uniform(0.1, 0.4, size=(21, 1))
    rv = torch.from_numpy(rng.normal(scale=0.2, size=(40, 21, 3)))
    root = torch.from_numpy(np.stack([np.linspace(0, 1, 40), np.full(40, 1.0), np.zeros(40)], -1))
    joints = forward_kinematics(axis_angle_to_quaternion(rv), root, torch.from_numpy(offsets), KIT.parents).numpy()
    canon = canonicalize(joints, retarget=False, skeleton=KIT)
    feats = joints_to_features(canon, skeleton=KIT)
    assert feats.shape == (39, 251)
    assert np.abs(features_to_joints(feats) - canon[:-1]).max() < 1e-9
    assert np.abs(mirror_features(joints_to_features(mirror(canon, KIT), skeleton=KIT)) - feats).max() < 1e-9
    with pytest.raises(ValueError, match="no reference bone lengths"):
        canonicalize(joints, skeleton=KIT)


def test_process_joints_matches_dataset_layout():
    feats, joints = process_joints(wiggly_motion())
    assert feats.shape == (89, 263) and joints.shape == (89, 22, 3)
    assert np.abs(features_to_joints(feats) - joints).max() == 0
