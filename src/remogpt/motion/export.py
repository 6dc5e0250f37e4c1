"""Motions out to animation tools: joint positions → a skeleton with per-joint rotations → BVH / glTF.

Animation tools play skeletons (fixed bone offsets, a rotation per joint per frame), while the
HumanML3D format holds joint positions. `solve_rotations` turns positions into such a skeleton:

- bone lengths are HumanML3D's reference lengths (`bones="reference"`, the default: every file has
  the same skeleton, which retargeting tools want) or the clip's own, the median over its frames
  (`bones="clip"`: mirrored clips, other bodies and generated motions, whose bones are not the
  reference's, keep their proportions); each bone keeps its measured direction, the root keeps its
  trajectory;
- the rest pose is a T-pose (legs and spine vertical, arms out along ±X, feet along +Z), Y up,
  facing +Z, in metres, except the bones that leave the pelvis (hips, spine) and the upper spine
  (neck, collars): those take the clip's own average layout, so the two joints that carry three
  bones each can reproduce all three (measured: the HumanML3D and embedded clips are rigid there to
  within 0.002 mm);
- a joint with one bone below it aims that bone, in its parent's frame, by the rotation whose twist
  about the bone changes least from frame to frame (`_tracked_swing`): the shortest rotation from
  the rest direction where that is well defined, carried along continuously where it is not (a
  bone opposite its rest direction), so the rotations are continuous in time wherever the positions
  are (no flips when the body turns around, an arm goes overhead or an elbow folds); a joint with several
  bones below it takes the best-fitting rotation of all of them (orthogonal Procrustes); a joint
  with none (hands, toes, head) keeps its parent's orientation.

The exported joints are those of the forward kinematics of this skeleton; `max_rotation_step`
measures the continuity the way the issue states it (largest frame-to-frame change of any local
rotation, degrees).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from remogpt.motion.features import features_to_joints, retarget_to_reference
from remogpt.motion.skeleton import HUMANML3D, SMPL22_SEGMENTS, MotionFormatError, segment_orientation

__all__ = [
    "BONE_CHOICES",
    "EXPORT_FORMATS",
    "JOINT_NAMES",
    "ExportError",
    "SolvedSkeleton",
    "export_motion",
    "max_rotation_step",
    "motion_joints",
    "parse_formats",
    "read_glb_joints",
    "solve_rotations",
    "write_bvh",
    "write_glb",
    "write_npz",
]

#: SMPL-22 joints under the names animation tools recognise (Mixamo's; Blender, Unity and Unreal
#: retargeters map them by name). `remogpt data import-bvh` reads them back with its `mixamo` rig.
JOINT_NAMES: tuple[str, ...] = (
    "Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot", "RightFoot",
    "Spine2", "LeftToeBase", "RightToeBase", "Neck", "LeftShoulder", "RightShoulder", "Head", "LeftArm",
    "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand",
)  # fmt: skip
EXPORT_FORMATS: tuple[str, ...] = ("bvh", "glb", "npz")

_PARENTS = HUMANML3D.parents
_CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(len(_PARENTS)) if _PARENTS[c] == j) for j in range(len(_PARENTS))
)
#: Rest direction of the bone from each joint's parent to the joint (T-pose). The pelvis's and
#: spine3's children are replaced by the clip's own layout (see the module docstring).
_REST_DIRECTIONS = np.array([
    (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0),
    (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (1, 0, 0), (-1, 0, 0),
    (1, 0, 0), (-1, 0, 0), (1, 0, 0), (-1, 0, 0),
], dtype=np.float64)  # fmt: skip
#: "End Site" of each leaf (BVH) / the end of its visible bone (glTF), metres in the leaf's rest frame.
_END_SITES: dict[int, tuple[float, float, float]] = {
    10: (0.0, 0.0, 0.05),
    11: (0.0, 0.0, 0.05),
    15: (0.0, 0.18, 0.0),
    20: (0.08, 0.0, 0.0),
    21: (-0.08, 0.0, 0.0),
}
#: Euler channel order of each joint's BVH rotation (intrinsic, as listed in CHANNELS). The middle
#: angle is the one whose ±90° is a gimbal lock; it is the bone's own axis, about which the solved
#: rotations (swings) barely turn. The root's heading (Y) comes first, so turning round is free.
_EULER_ORDER: dict[str, str] = {"x": "ZXY", "y": "ZYX", "z": "YZX"}
_ROOT_EULER = "YXZ"
_UNITS = {"m": 1.0, "cm": 100.0}
BONE_CHOICES: tuple[str, ...] = ("reference", "clip")


class ExportError(MotionFormatError):
    """A motion that cannot be exported, or an output that cannot be written; the message names it."""


def parse_formats(value: str | None, option: str) -> list[str]:
    """A comma-separated list of export formats ("bvh,glb"), checked; `option` names it in errors."""
    chosen = [f.strip().lower().lstrip(".") for f in (value or "").split(",") if f.strip()]
    unknown = [f for f in chosen if f not in EXPORT_FORMATS]
    if unknown:
        raise ExportError(f"{option}: unknown {', '.join(unknown)} (known: {', '.join(EXPORT_FORMATS)})")
    return chosen


@dataclass
class SolvedSkeleton:
    """A motion as animation tools want it: fixed offsets, root path, one rotation per joint per frame."""

    offsets: np.ndarray  # (22, 3) metres, offset of each joint from its parent in the rest pose
    root_positions: np.ndarray  # (T, 3) metres
    rotations: np.ndarray  # (T, 22, 4) local rotations, quaternions (x, y, z, w), sign-continuous in time
    fps: float

    @property
    def frames(self) -> int:
        return int(self.root_positions.shape[0])

    def joints(self) -> np.ndarray:
        """Forward kinematics: the (T, 22, 3) positions the exported files show."""
        world: list[Rotation] = []
        positions = np.zeros((self.frames, len(_PARENTS), 3))
        for j, p in enumerate(_PARENTS):
            local = Rotation.from_quat(self.rotations[:, j])
            if p < 0:
                world.append(local)
                positions[:, j] = self.root_positions
            else:
                positions[:, j] = positions[:, p] + world[p].apply(self.offsets[j])
                world.append(world[p] * local)
        return positions


# ------------------------------------------------------------------------------------------ solving
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)


def _swing(rest: np.ndarray, target: np.ndarray) -> Rotation:
    """The shortest rotation taking the unit vector `rest` (3,) onto each unit vector of `target` (T, 3)."""
    axis = np.cross(rest, target)
    sin = np.linalg.norm(axis, axis=-1)
    cos = (target * rest).sum(-1)
    angle = np.arctan2(sin, cos)
    # Antiparallel: any axis perpendicular to `rest` will do; take one fixed, so the result is stable.
    fallback = np.cross(rest, [0.0, 0.0, 1.0] if abs(rest[2]) < 0.9 else [1.0, 0.0, 0.0])
    axis = np.where(sin[:, None] > 1e-9, axis / sin.clip(1e-12)[:, None], _unit(fallback))
    return Rotation.from_rotvec(axis * angle[:, None])


def _qmul(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Hamilton product of two (x, y, z, w) quaternions, in plain floats (this runs per frame)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)  # fmt: skip


def _tracked_swing(rest: np.ndarray, target: np.ndarray, pull: float = 0.05) -> Rotation:
    """Rotations taking `rest` (3,) onto each `target` (T, 3) whose twist about the bone changes
    as little as possible from frame to frame.

    The shortest rotation from the rest direction (`_swing`) is undefined where the bone points
    opposite its rest direction (an elbow folded back, a shin under the thigh) and spins about the
    bone near there: a twist flip. Here each frame carries the previous frame's rotation along by
    the shortest rotation between consecutive bone directions (no twist is added), and is pulled
    a little towards the shortest rotation from rest, less the nearer the bone is to opposite, so
    the twist never drifts far from the canonical one and never jumps.
    """
    canonical = _swing(rest, target).as_quat()
    half_pull = 0.5 * pull * ((1.0 + target @ rest) / 2.0) ** 2  # (T,): 0 where the bone is opposite rest
    targets, canon, pulls = target.tolist(), canonical.tolist(), half_pull.tolist()  # floats: fast per frame
    out = [canon[0]]
    q = tuple(canon[0])
    for t in range(1, len(targets)):
        (ax, ay, az), (bx, by, bz) = targets[t - 1], targets[t]
        c = ax * bx + ay * by + az * bz
        if c > -0.99:  # the shortest rotation a → b; a bone that reverses in one frame restarts from rest
            step = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx, 1.0 + c)
            n = math.sqrt(sum(v * v for v in step))
            q = _qmul(tuple(v / n for v in step), q)
        else:
            q = tuple(canon[t])
        # canonical[t] = twist(φ about b) · q; turn q by a fraction of φ about b.
        dx, dy, dz, dw = _qmul(tuple(canon[t]), (-q[0], -q[1], -q[2], q[3]))
        if dw < 0:
            dx, dy, dz, dw = -dx, -dy, -dz, -dw
        turn = pulls[t] * 2.0 * math.atan2(dx * bx + dy * by + dz * bz, dw)
        sin_half = math.sin(turn)
        q = _qmul((bx * sin_half, by * sin_half, bz * sin_half, math.cos(turn)), q)
        n = math.sqrt(sum(v * v for v in q))
        q = tuple(v / n for v in q)
        out.append(q)
    return Rotation.from_quat(np.asarray(out))


def _procrustes(rest: np.ndarray, actual: np.ndarray) -> Rotation:
    """Best rotation R (per frame) with R·rest[k] ≈ actual[:, k]: rest (K, 3), actual (T, K, 3)."""
    h = np.einsum("tki,kj->tij", actual, rest)  # Σ actual ⊗ rest
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= d[:, None]
    return Rotation.from_matrix(u @ vt)


def _bone_lengths(joints: np.ndarray, bones: str) -> np.ndarray:
    """Length of the bone from each joint's parent to the joint (0 for the root), metres."""
    if bones == "reference":
        return np.asarray(HUMANML3D.bone_lengths, dtype=np.float64)
    if bones != "clip":
        raise ExportError(f"bones must be one of {', '.join(BONE_CHOICES)}, got {bones!r}")
    parents = np.asarray(_PARENTS)
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1)  # (T, 21)
    measured = np.median(lengths, axis=0)
    if (measured <= 1e-6).any():
        raise ExportError("the clip has a bone of zero length; use the reference bones")
    return np.concatenate([[0.0], measured])


def _rest_offsets(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    directions = _REST_DIRECTIONS.copy()
    for joint, children in SMPL22_SEGMENTS.items():  # the bones below them take the clip's layout
        frame = Rotation.from_matrix(segment_orientation(joints, joint, children))
        for c in _CHILDREN[joint]:
            local = frame.inv().apply(joints[:, c] - joints[:, joint])
            directions[c] = _unit(_unit(local).mean(0))
    return directions * lengths[:, None]


def solve_rotations(joints: np.ndarray, fps: float = HUMANML3D.fps, bones: str = "reference") -> SolvedSkeleton:
    """Joint positions (T, 22, 3), metres, Y up → offsets, root path and continuous local rotations."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (len(_PARENTS), 3) or joints.shape[0] < 1:
        raise ExportError(f"expected joints (T, 22, 3), got shape {joints.shape}")
    if not np.isfinite(joints).all():
        raise ExportError("the joints hold NaN or infinite values")
    lengths = _bone_lengths(joints, bones)
    target = np.asarray(HUMANML3D.raw_offsets, dtype=np.float64) * lengths[:, None]  # unit directions × lengths
    retargeted = retarget_to_reference(torch.from_numpy(joints), HUMANML3D, target).numpy()
    retargeted += joints[:, :1] - retargeted[:, :1]  # keep the root's own trajectory (no leg-ratio scaling)
    offsets = _rest_offsets(retargeted, lengths)
    frames = joints.shape[0]
    world: list[Rotation] = [Rotation.identity(frames)] * len(_PARENTS)
    local: list[Rotation] = [Rotation.identity(frames)] * len(_PARENTS)
    for j in HUMANML3D.topological_order:
        parent = world[_PARENTS[j]] if _PARENTS[j] >= 0 else Rotation.identity(frames)
        kids = _CHILDREN[j]
        if len(kids) == 1:
            bone = _unit(parent.inv().apply(retargeted[:, kids[0]] - retargeted[:, j]))
            local[j] = _tracked_swing(_unit(offsets[kids[0]]), bone)
            world[j] = parent * local[j]
        elif kids:
            world[j] = _procrustes(offsets[list(kids)], retargeted[:, list(kids)] - retargeted[:, j : j + 1])
            local[j] = parent.inv() * world[j]
        else:
            world[j] = parent
    quats = np.stack([r.as_quat() for r in local], axis=1)  # (T, 22, 4) x, y, z, w
    # One hemisphere over time, so that interpolating viewers take the short way between frames.
    for t in range(1, frames):
        flip = (quats[t] * quats[t - 1]).sum(-1) < 0
        quats[t, flip] *= -1
    return SolvedSkeleton(offsets, retargeted[:, 0].copy(), quats, float(fps))


def max_rotation_step(skeleton: SolvedSkeleton) -> float:
    """Largest change of any joint's local rotation between consecutive frames, in degrees."""
    if skeleton.frames < 2:
        return 0.0
    q = skeleton.rotations
    a = Rotation.from_quat(q[:-1].reshape(-1, 4))
    b = Rotation.from_quat(q[1:].reshape(-1, 4))
    return float(np.degrees((a.inv() * b).magnitude()).max())


# ------------------------------------------------------------------------------------------ inputs
def motion_joints(array: np.ndarray, where: str = "motion") -> np.ndarray:
    """Joints (T, 22, 3) of a motion given as features (T, 263) or joints (T, 22, 3)."""
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == HUMANML3D.feature_dim:
        if array.shape[0] < 2:
            raise ExportError(f"{where}: {array.shape[0]} frame(s); a motion needs at least 2")
        return np.asarray(features_to_joints(array.astype(np.float64)))
    if array.ndim == 3 and array.shape[1:] == (len(_PARENTS), 3):
        if array.shape[0] < 2:
            raise ExportError(f"{where}: {array.shape[0]} frame(s); a motion needs at least 2")
        return array.astype(np.float64)
    raise ExportError(f"{where}: expected features (T, {HUMANML3D.feature_dim}) or joints (T, 22, 3), "
                      f"got shape {array.shape}")  # fmt: skip


# ---------------------------------------------------------------------------------------------- BVH
def _euler_order(joint: int) -> str:
    if joint == 0:
        return _ROOT_EULER
    bone = _CHILDREN[joint][0] if _CHILDREN[joint] else joint  # the bone the joint turns (a leaf: its own)
    axis = int(np.argmax(np.abs(_REST_DIRECTIONS[bone])))
    return _EULER_ORDER["xyz"[axis]]


def _euler_degrees(rotations: np.ndarray, order: str) -> np.ndarray:
    """(T, 4) quaternions → (T, 3) Euler angles in `order`, unwrapped in time (no ±180° jumps)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's "Gimbal lock detected"
        angles = Rotation.from_quat(rotations).as_euler(order, degrees=True)
    return np.unwrap(angles, period=360.0, axis=0)


def bvh_text(skeleton: SolvedSkeleton, units: str = "m") -> str:
    """The BVH file of a solved skeleton (hierarchy with Mixamo names, one frame line per frame)."""
    if units not in _UNITS:
        raise ExportError(f"units must be one of {', '.join(_UNITS)}, got {units!r}")
    scale = _UNITS[units]
    lines = ["HIERARCHY"]
    axes = {"X": "Xrotation", "Y": "Yrotation", "Z": "Zrotation"}

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        off = skeleton.offsets[j] * scale
        order = _euler_order(j)
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        rot = " ".join(axes[a] for a in order)
        lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot}" if j == 0 else f"{pad}  CHANNELS 3 {rot}")
        for c in _CHILDREN[j]:
            emit(c, depth + 1)
        if not _CHILDREN[j]:
            end = np.asarray(_END_SITES.get(j, (0.0, 0.05, 0.0))) * scale
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}",
                          f"{pad}  }}"])  # fmt: skip
        lines.append(f"{pad}}}")

    emit(0, 0)
    order = [0] + [j for j in _depth_first() if j != 0]
    columns = [skeleton.root_positions * scale]
    for j in order:
        columns.append(_euler_degrees(skeleton.rotations[:, j], _euler_order(j)))
    values = np.concatenate(columns, axis=1)
    lines += ["MOTION", f"Frames: {skeleton.frames}", f"Frame Time: {1.0 / skeleton.fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def _depth_first() -> list[int]:
    """Joints in the order BVH lists them (depth first), which is also the order of the frame values."""
    out: list[int] = []

    def visit(j: int) -> None:
        out.append(j)
        for c in _CHILDREN[j]:
            visit(c)

    visit(0)
    return out


def write_bvh(skeleton: SolvedSkeleton, path: Path | str, units: str = "m") -> Path:
    from remogpt.artifacts import atomic_write_text

    path = Path(path)
    atomic_write_text(path, bvh_text(skeleton, units))
    return path


# --------------------------------------------------------------------------------------------- glTF
def _bone_mesh() -> tuple[np.ndarray, np.ndarray]:
    """A unit bone: an elongated octahedron from (0, 0, 0) to (0, 1, 0), 1 wide at its widest."""
    v = np.array([[0, 0, 0], [0.5, 0.15, 0], [0, 0.15, 0.5], [-0.5, 0.15, 0], [0, 0.15, -0.5], [0, 1, 0]], np.float32)
    f = np.array([[0, 2, 1], [0, 3, 2], [0, 4, 3], [0, 1, 4], [5, 1, 2], [5, 2, 3], [5, 3, 4], [5, 4, 1]], np.uint16)
    return v, f


def _bone_placement(offset: np.ndarray, width: float) -> tuple[list[float], list[float]]:
    """Rotation (x, y, z, w) and scale that lay the unit bone along `offset`."""
    length = float(np.linalg.norm(offset))
    rot = _swing(np.array([0.0, 1.0, 0.0]), _unit(offset)[None])[0]
    return rot.as_quat().tolist(), [width, length, width]


def write_glb(skeleton: SolvedSkeleton, path: Path | str, name: str = "motion") -> Path:
    """glTF 2.0 binary: one node per joint (Mixamo names) animated by rotation channels (and the
    root's translation), and a visible stick body (one bone mesh per bone, riding on its joint)."""
    import pygltflib as g

    from remogpt.artifacts import atomic_write_bytes

    frames = skeleton.frames
    blobs: list[bytes] = []
    views: list[g.BufferView] = []
    accessors: list[g.Accessor] = []

    def add(array: np.ndarray, kind: str, component: int, target: int | None = None, bounds: bool = False) -> int:
        offset = sum(len(b) for b in blobs)
        data = np.ascontiguousarray(array).tobytes()
        blobs.append(data + b"\x00" * (-len(data) % 4))
        views.append(g.BufferView(buffer=0, byteOffset=offset, byteLength=len(data), target=target))
        count = int(array.shape[0])
        acc = g.Accessor(bufferView=len(views) - 1, componentType=component, count=count, type=kind)
        if bounds:
            flat = array.reshape(count, -1)
            acc.min = [float(x) for x in flat.min(0)]
            acc.max = [float(x) for x in flat.max(0)]
        accessors.append(acc)
        return len(accessors) - 1

    vertices, faces = _bone_mesh()
    pos_acc = add(vertices, g.VEC3, g.FLOAT, g.ARRAY_BUFFER, bounds=True)
    idx_acc = add(faces.reshape(-1), g.SCALAR, g.UNSIGNED_SHORT, g.ELEMENT_ARRAY_BUFFER)
    material = g.Material(
        name="bone",
        pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorFactor=[0.25, 0.45, 0.85, 1.0], metallicFactor=0.0, roughnessFactor=0.8
        ),
        doubleSided=True,
    )
    mesh = g.Mesh(name="bone", primitives=[g.Primitive(attributes=g.Attributes(POSITION=pos_acc), indices=idx_acc,
                                                       material=0)])  # fmt: skip

    first = Rotation.from_quat(skeleton.rotations[0]).as_quat()
    rest = [skeleton.root_positions[0]] + list(skeleton.offsets[1:])
    nodes = [g.Node(name=JOINT_NAMES[j], translation=rest[j].tolist(), rotation=first[j].tolist(), children=[])
             for j in range(len(_PARENTS))]  # fmt: skip
    for j, p in enumerate(_PARENTS):
        if p >= 0:
            nodes[p].children.append(j)
    # Bone meshes: the bone from joint p to child j rides on p; leaves get a short end bone.
    bones = [(p, skeleton.offsets[j], f"{JOINT_NAMES[p]}_{JOINT_NAMES[j]}") for j, p in enumerate(_PARENTS) if p >= 0]
    bones += [(j, np.asarray(end), f"{JOINT_NAMES[j]}_end") for j, end in _END_SITES.items()]
    for joint, offset, bone_name in bones:
        rotation, scale = _bone_placement(offset, 0.12 if bone_name == "Head_end" else 0.05)
        nodes.append(g.Node(name=bone_name, mesh=0, rotation=rotation, scale=scale))
        nodes[joint].children.append(len(nodes) - 1)

    times = add((np.arange(frames, dtype=np.float32) / np.float32(skeleton.fps)), g.SCALAR, g.FLOAT, bounds=True)
    samplers, channels = [], []
    root_acc = add(skeleton.root_positions.astype(np.float32), g.VEC3, g.FLOAT)
    samplers.append(g.AnimationSampler(input=times, output=root_acc, interpolation="LINEAR"))
    channels.append(g.AnimationChannel(sampler=0, target=g.AnimationChannelTarget(node=0, path="translation")))
    for j in range(len(_PARENTS)):
        rot_acc = add(skeleton.rotations[:, j].astype(np.float32), g.VEC4, g.FLOAT)
        samplers.append(g.AnimationSampler(input=times, output=rot_acc, interpolation="LINEAR"))
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1,
                                           target=g.AnimationChannelTarget(node=j, path="rotation")))  # fmt: skip
    blob = b"".join(blobs)
    gltf = g.GLTF2(
        asset=g.Asset(version="2.0", generator="remogpt"),
        scene=0,
        scenes=[g.Scene(name=name, nodes=[0])],
        nodes=nodes,
        meshes=[mesh],
        materials=[material],
        animations=[g.Animation(name=name, samplers=samplers, channels=channels)],
        accessors=accessors,
        bufferViews=views,
        buffers=[g.Buffer(byteLength=len(blob))],
    )
    gltf.set_binary_blob(blob)
    path = Path(path)
    atomic_write_bytes(path, b"".join(gltf.save_to_bytes()))
    return path


def read_glb_joints(path: Path | str) -> np.ndarray:
    """The (T, 22, 3) joint positions a .glb written by `write_glb` shows at its keyframes
    (pygltflib reads the file; the forward kinematics over its joint nodes runs here)."""
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    if not gltf.animations or blob is None:
        raise ExportError(f"{path}: no animation or binary buffer (not a remogpt .glb?)")

    def data(index: int) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        return np.frombuffer(blob, np.float32, acc.count * width, start).reshape(acc.count, width).astype(np.float64)

    animation = gltf.animations[0]
    tracks = {(c.target.node, c.target.path): data(animation.samplers[c.sampler].output) for c in animation.channels}
    index = {n.name: i for i, n in enumerate(gltf.nodes)}
    missing = [name for name in JOINT_NAMES if name not in index]
    if missing:
        raise ExportError(f"{path}: joint nodes missing: {', '.join(missing)}")
    skeleton = SolvedSkeleton(
        offsets=np.array([gltf.nodes[index[n]].translation for n in JOINT_NAMES], dtype=np.float64),
        root_positions=tracks[(index[JOINT_NAMES[0]], "translation")],
        rotations=np.stack([tracks[(index[n], "rotation")] for n in JOINT_NAMES], axis=1),
        fps=HUMANML3D.fps,
    )
    return skeleton.joints()


# ---------------------------------------------------------------------------------------------- npz
def write_npz(skeleton: SolvedSkeleton, path: Path | str) -> Path:
    """Everything in plain arrays: the joints shown, the rotations (x, y, z, w), offsets and names."""
    from remogpt.artifacts import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, joints=skeleton.joints().astype(np.float32), root_positions=skeleton.root_positions,
             rotations_xyzw=skeleton.rotations, offsets=skeleton.offsets, parents=np.asarray(_PARENTS),
             joint_names=np.asarray(JOINT_NAMES), fps=np.float64(skeleton.fps))  # fmt: skip
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# ------------------------------------------------------------------------------------------ facade
def export_motion(
    joints: np.ndarray,
    path: Path | str,
    fps: float = HUMANML3D.fps,
    units: str = "m",
    source_fps: float = HUMANML3D.fps,
    bones: str = "reference",
) -> dict[str, Any]:
    """Write one motion (joints (T, 22, 3), metres, Y up) as .bvh, .glb or .npz, chosen by the
    suffix; resampled from `source_fps` to `fps` first; `bones` as in `solve_rotations`. Returns
    what was written (for reports)."""
    from remogpt.motion.bvh import resample

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"{path}: unknown format {path.suffix or '(none)'!r} (known: .bvh, .glb, .npz)")
    if not (np.isfinite(fps) and fps > 0):
        raise ExportError(f"fps must be a number > 0, got {fps}")
    if units not in _UNITS:
        raise ExportError(f"units must be one of {', '.join(_UNITS)}, got {units!r}")
    joints = resample(np.asarray(joints, dtype=np.float64), source_fps, fps)
    skeleton = solve_rotations(joints, fps, bones)
    try:
        if fmt == "bvh":
            write_bvh(skeleton, path, units)
        elif fmt == "glb":
            write_glb(skeleton, path, name=path.stem)
        else:
            write_npz(skeleton, path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None
    shown = skeleton.joints()
    return {"path": str(path), "format": fmt, "frames": skeleton.frames, "fps": fps,
            "max_rotation_step_deg": round(max_rotation_step(skeleton), 3),
            "max_joint_error_mm": round(float(np.linalg.norm(shown - joints, axis=-1).max()) * 1000, 3),
            "bytes": path.stat().st_size}  # fmt: skip
