"""The synthetic body: rest pose, pose tracks → local rotations → forward kinematics → grounded joints.

Poses are authored the way an animator thinks: angles for legs, spine, neck and pelvis, and
target directions for the upper arm and forearm in the torso's frame (so arms follow the torso
when it bends). Both become per-joint local rotations, which forward kinematics turns into joint
positions. The root is then placed so that the body does not skate or sink: the lowest joint
touches the floor, and the lowest foot or knee does not slide while the body is on the ground.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from remogpt.motion.quaternion import axis_angle_to_quaternion, qbetween, qinv, qmul, qrot
from remogpt.motion.skeleton import HUMANML3D, SMPL22_REST_DIRECTIONS, forward_kinematics

__all__ = ["J", "PoseTracks", "animate", "arm_direction", "rest_offsets"]

#: Joint indices by name (SMPL-22 as HumanML3D orders them).
J = {name: i for i, name in enumerate(HUMANML3D.joint_names)}

#: Unit directions of each bone (parent → joint) in SMPL's natural standing pose facing +Z, left = +X.
REST_DIRS = np.zeros((22, 3))
for _j, _d in enumerate(SMPL22_REST_DIRECTIONS[1:], start=1):
    REST_DIRS[_j] = np.asarray(_d) / np.linalg.norm(_d)

#: Arm segments: (side index 0 = left, 1 = right) → (collar, shoulder, elbow, wrist).
ARM_JOINTS = ((13, 16, 18, 20), (14, 17, 19, 21))
#: Joints the root may stand on (feet and knees): the body pivots about the lowest of them.
SUPPORT_JOINTS = (7, 8, 10, 11, 4, 5)


def rest_offsets(scale: float = 1.0, jitter: np.ndarray | None = None) -> np.ndarray:
    """(22, 3) bone offsets: rest directions × reference lengths × body scale (× per-bone jitter)."""
    lengths = np.asarray(HUMANML3D.bone_lengths) * scale
    if jitter is not None:
        lengths = lengths * jitter
    return REST_DIRS * lengths[:, None]


def arm_direction(flex_deg: np.ndarray | float, abd_deg: np.ndarray | float, side: int = 0) -> np.ndarray:
    """Direction of an arm segment in the torso frame (side 0 = left, 1 = right, mirrored).

    `flex` swings the hanging segment forward and up in the sagittal plane (0 down, 90 forward,
    180 up); `abd` then tilts it out to its own side (negative: across the body) along the great
    circle towards the side axis, so "out" means out whatever the flexion (90 = straight out).
    """
    flex = np.radians(np.asarray(flex_deg, dtype=np.float64))
    abd = np.radians(np.asarray(abd_deg, dtype=np.float64))
    x = np.sin(abd) * np.ones_like(flex)
    y = -np.cos(abd) * np.cos(flex)
    z = np.cos(abd) * np.sin(flex)
    d = np.stack(np.broadcast_arrays(x, y, z), axis=-1)
    if side == 1:
        d = d * np.array([-1.0, 1.0, 1.0])
    return d


@dataclass
class PoseTracks:
    """Everything that drives one clip, per frame (T frames at 20 fps)."""

    euler: np.ndarray  # (T, 22, 3) radians about X, Y, Z; local, applied as Rz·Rx·Ry
    arm_dirs: np.ndarray  # (T, 2, 2, 3) unit directions [side][upper arm, forearm] in the torso frame
    heading: np.ndarray  # (T,) yaw of the whole body, radians, +Y (turning left is positive)
    airborne: np.ndarray  # (T,) height of the root above its grounded height, metres
    flight_velocity: np.ndarray  # (T, 2) (x, z) m/frame in the heading frame while airborne; NaN = keep momentum

    @classmethod
    def standing(cls, frames: int) -> PoseTracks:
        arm = np.zeros((frames, 2, 2, 3))
        for side, (_, _, elbow, wrist) in enumerate(ARM_JOINTS):
            arm[:, side, 0] = REST_DIRS[elbow]
            arm[:, side, 1] = REST_DIRS[wrist]
        return cls(
            euler=np.zeros((frames, 22, 3)),
            arm_dirs=arm,
            heading=np.zeros(frames),
            airborne=np.zeros(frames),
            flight_velocity=np.full((frames, 2), np.nan),
        )

    @property
    def frames(self) -> int:
        return int(self.euler.shape[0])


def _euler_quat(euler: torch.Tensor) -> torch.Tensor:
    """Rz(z)·Rx(x)·Ry(y) as quaternions: twist about the bone first, then flexion, then abduction."""
    x, y, z = euler.unbind(-1)
    zeros = torch.zeros_like(x)
    qx = axis_angle_to_quaternion(torch.stack([x, zeros, zeros], -1))
    qy = axis_angle_to_quaternion(torch.stack([zeros, y, zeros], -1))
    qz = axis_angle_to_quaternion(torch.stack([zeros, zeros, z], -1))
    return qmul(qz, qmul(qx, qy))


def local_rotations(tracks: PoseTracks) -> torch.Tensor:
    """(T, 22, 4) local quaternions (SMPL convention) from the tracks."""
    euler = torch.from_numpy(tracks.euler)
    quats = _euler_quat(euler)
    heading = torch.from_numpy(tracks.heading)
    zeros = torch.zeros_like(heading)
    yaw = axis_angle_to_quaternion(torch.stack([zeros, heading, zeros], -1))
    quats[:, 0] = qmul(yaw, quats[:, 0])
    rest = torch.from_numpy(REST_DIRS)
    dirs = torch.from_numpy(tracks.arm_dirs)
    for side, (collar, shoulder, elbow, wrist) in enumerate(ARM_JOINTS):
        collar_q = quats[:, collar]
        upper_target = qrot(qinv(collar_q), dirs[:, side, 0])
        shoulder_q = qbetween(rest[elbow].expand_as(upper_target), upper_target)
        fore_target = qrot(qinv(qmul(collar_q, shoulder_q)), dirs[:, side, 1])
        elbow_q = qbetween(rest[wrist].expand_as(fore_target), fore_target)
        quats[:, shoulder] = shoulder_q
        quats[:, elbow] = elbow_q
    return quats


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def animate(tracks: PoseTracks, offsets: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) of the tracks on a skeleton with these bone offsets.

    Vertical: the lowest joint touches the floor on grounded frames; while airborne the root
    follows its `airborne` height above a ground level interpolated between take-off and landing.
    Horizontal: on grounded frames the lowest foot/knee joint is locked (no skating); while
    airborne the root moves at the given flight velocity, or keeps the stance momentum.
    """
    quats = local_rotations(tracks)
    T = tracks.frames
    body = forward_kinematics(
        quats, torch.zeros(T, 3, dtype=torch.float64), torch.from_numpy(offsets), HUMANML3D.parents
    ).numpy()
    ground = -body[..., 1].min(axis=1)  # root height that puts the lowest joint on the floor
    airborne = np.maximum(tracks.airborne, 0.0)
    flying = airborne > 1e-6
    root_y = ground.copy()
    for a, b in _runs(flying):
        before = ground[a - 1] if a > 0 else ground[a]
        after = ground[b] if b < T else ground[b - 1]
        s = (np.arange(a, b) - (a - 1)) / (b - a + 1)
        root_y[a:b] = np.maximum((1 - s) * before + s * after + airborne[a:b], ground[a:b])

    support = np.asarray(SUPPORT_JOINTS)[np.argmin(body[:, SUPPORT_JOINTS, 1], axis=1)]
    idx = np.arange(T - 1)
    stance_step = -(body[idx + 1, support[:-1]] - body[idx, support[:-1]])[:, [0, 2]]
    grounded_step = ~(flying[:-1] | flying[1:])
    step = np.where(grounded_step[:, None], stance_step, 0.0)
    if not grounded_step.all():
        # Momentum: mean stance velocity over a window around each airborne step.
        window = 9
        kernel = np.ones(2 * window + 1)
        num = np.stack([np.convolve(stance_step[:, k] * grounded_step, kernel, "same") for k in (0, 1)], -1)
        den = np.convolve(grounded_step.astype(float), kernel, "same")[:, None]
        momentum = np.where(den > 0, num / np.maximum(den, 1), 0.0)
        planned = tracks.flight_velocity[:-1]
        cos, sin = np.cos(tracks.heading[:-1]), np.sin(tracks.heading[:-1])
        # Heading-frame (x, z) → world: rotation about +Y by the heading.
        world = np.stack([cos * planned[:, 0] + sin * planned[:, 1], -sin * planned[:, 0] + cos * planned[:, 1]], -1)
        air = np.where(np.isnan(world), momentum, world)
        step = np.where(grounded_step[:, None], stance_step, air)
    root_xz = np.concatenate([np.zeros((1, 2)), np.cumsum(step, axis=0)])
    root = np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], axis=-1)
    return body + root[:, None, :]
