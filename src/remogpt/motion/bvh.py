"""BVH motion capture → HumanML3D motions (SMPL-22 joints, 20 fps, canonical, 263-d features).

The file is parsed by `bvhio` (channels, rotation orders, Euler → quaternion); forward kinematics
over all of the file's joints runs here, vectorised over frames. The file's joints are then mapped
to the 22 SMPL joints by name: built-in maps cover LAFAN1/Ubisoft, Mixamo, CMU-style and the
Bandai-Namco rigs (a joint a rig lacks can be made from two of its joints: `RIG_BLENDS`), a
user map (YAML/JSON `smpl_joint: bvh_joint`) covers others; joints of the file that have no SMPL
counterpart (fingers, extra spine or hip joints) are ignored. Then: units to metres, up axis to +Y,
linear resampling to 20 fps, the hips and collars moved to SMPL's places in the pelvis and chest when
the rig has them elsewhere (`conform_segments`), optional cutting into clips, and the reference
processing (`process_joints`: retarget to the reference skeleton, floor, origin, facing +Z, features).

Because the reference processing retargets to fixed bone lengths and scales the trajectory by the
leg-length ratio, the features do not depend on the file's units; the conversion still matters for
`raw_joints` and is checked for plausibility.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remogpt.motion.features import process_joints
from remogpt.motion.quaternion import qmul, qrot
from remogpt.motion.skeleton import (
    HUMANML3D,
    SMPL22_REST_DIRECTIONS,
    SMPL22_SEGMENTS,
    MotionFormatError,
    segment_orientation,
)

__all__ = [
    "RIGS",
    "RIG_BLENDS",
    "BvhImport",
    "BvhImportError",
    "BvhMotion",
    "ImportedClip",
    "conform_segments",
    "import_bvh",
    "import_bvh_files",
    "load_joint_map",
    "map_joints",
    "read_bvh",
]

SMPL22: tuple[str, ...] = HUMANML3D.joint_names


def _sides(common: dict[str, tuple[str, ...]], sided: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Expand `{side}` templates ('{Side}UpLeg' → LeftUpLeg/RightUpLeg, '{s}femur' → lfemur/rfemur)."""
    out = dict(common)
    for smpl, names in sided.items():
        for side, Side, s in (("left", "Left", "l"), ("right", "Right", "r")):
            out[smpl.format(side=side)] = tuple(n.format(Side=Side, s=s, S=s.upper()) for n in names)
    return out


#: SMPL-22 joint → candidate joint names of each known rig (matched case-insensitively, namespace
#: prefixes such as `mixamorig:` ignored). A BVH joint sits at the start of its bone, so e.g. the
#: SMPL knee is the joint that starts the shin (LeftLeg).
RIGS: dict[str, dict[str, tuple[str, ...]]] = {
    "lafan1": _sides(
        {"pelvis": ("Hips",), "spine1": ("Spine",), "spine2": ("Spine1",), "spine3": ("Spine2",),
         "neck": ("Neck",), "head": ("Head",)},
        {"{side}_hip": ("{Side}UpLeg",), "{side}_knee": ("{Side}Leg",), "{side}_ankle": ("{Side}Foot",),
         "{side}_foot": ("{Side}Toe",), "{side}_collar": ("{Side}Shoulder",), "{side}_shoulder": ("{Side}Arm",),
         "{side}_elbow": ("{Side}ForeArm",), "{side}_wrist": ("{Side}Hand",)},
    ),
    "mixamo": _sides(
        {"pelvis": ("Hips",), "spine1": ("Spine",), "spine2": ("Spine1",), "spine3": ("Spine2",),
         "neck": ("Neck",), "head": ("Head",)},
        {"{side}_hip": ("{Side}UpLeg",), "{side}_knee": ("{Side}Leg",), "{side}_ankle": ("{Side}Foot",),
         "{side}_foot": ("{Side}ToeBase",), "{side}_collar": ("{Side}Shoulder",), "{side}_shoulder": ("{Side}Arm",),
         "{side}_elbow": ("{Side}ForeArm",), "{side}_wrist": ("{Side}Hand",)},
    ),
    # The CMU conversions with readable names (Hips, LowerBack, Spine, Spine1, LeftUpLeg …) and those
    # keeping the ASF bone names (root, lowerback, upperback, thorax, lfemur, ltibia …).
    "cmu": _sides(
        {"pelvis": ("Hips", "root"), "spine1": ("LowerBack", "lowerback"), "spine2": ("Spine", "upperback"),
         "spine3": ("Spine1", "thorax"), "neck": ("Neck", "lowerneck"), "head": ("Head", "head")},
        {"{side}_hip": ("{Side}UpLeg", "{s}femur"), "{side}_knee": ("{Side}Leg", "{s}tibia"),
         "{side}_ankle": ("{Side}Foot", "{s}foot"), "{side}_foot": ("{Side}ToeBase", "{s}toes"),
         "{side}_collar": ("{Side}Shoulder", "{s}clavicle"), "{side}_shoulder": ("{Side}Arm", "{s}humerus"),
         "{side}_elbow": ("{Side}ForeArm", "{s}radius"), "{side}_wrist": ("{Side}Hand", "{s}wrist")},
    ),
    # Bandai-Namco-Research motion datasets 1 and 2: joint_Root (at the origin), Hips, Spine, Chest,
    # Neck, Head and per side Shoulder/UpperArm/LowerArm/Hand, UpperLeg/LowerLeg/Foot/Toes (_L, _R).
    # The collars hang from Chest, as SMPL's from spine3; spine2 is made (RIG_BLENDS).
    "bandai": _sides(
        {"pelvis": ("Hips",), "spine1": ("Spine",), "spine3": ("Chest",), "neck": ("Neck",), "head": ("Head",)},
        {"{side}_hip": ("UpperLeg_{S}",), "{side}_knee": ("LowerLeg_{S}",), "{side}_ankle": ("Foot_{S}",),
         "{side}_foot": ("Toes_{S}",), "{side}_collar": ("Shoulder_{S}",), "{side}_shoulder": ("UpperArm_{S}",),
         "{side}_elbow": ("LowerArm_{S}",), "{side}_wrist": ("Hand_{S}",)},
    ),
}  # fmt: skip
#: SMPL joints a rig lacks, placed between two of its joints: SMPL joint → (joint a, joint b, w) at
#: a + w·(b − a). The Bandai rig has two spine joints where SMPL has three: spine2 goes halfway
#: between Spine and Chest (the retargeting keeps only bone directions, so "halfway" only sets how
#: the spine's bend is shared between SMPL's spine2 and spine3).
RIG_BLENDS: dict[str, dict[str, tuple[str, str, float]]] = {"bandai": {"spine2": ("Spine", "Chest", 0.5)}}

_UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}
#: Pelvis → head plus pelvis → ankle bone lengths of the reference skeleton, metres (≈ 1.5).
_REFERENCE_SPAN = float(sum(HUMANML3D.bone_lengths[j] for j in (3, 6, 9, 12, 15, 2, 5, 8)))  # type: ignore[index]


class BvhImportError(MotionFormatError):
    """A BVH file that cannot be read or mapped; the message names the file and what is missing."""


@dataclass
class BvhMotion:
    """All joints of a BVH file as world positions (file units and axes)."""

    names: list[str]
    parents: list[int]
    positions: np.ndarray  # (T, J, 3) float64
    fps: float
    source: str = ""


@dataclass
class ImportedClip:
    name: str
    features: np.ndarray  # (T, 263) float32
    joints: np.ndarray  # (T, 22, 3) float32, recovered from the features (as new_joints/ stores)
    start: int  # first frame in the 20 fps sequence


@dataclass
class BvhImport:
    source: str
    rig: str
    mapping: dict[str, str]  # SMPL joint → BVH joint
    source_fps: float
    unit_scale: float
    up_axis: str
    raw_joints: np.ndarray  # (T, 22, 3) metres, Y up, 20 fps, before canonicalisation
    clips: list[ImportedClip] = field(default_factory=list)
    dropped_frames: int = 0  # frames of a last segment too short to keep
    conformed: list[str] = field(default_factory=list)  # segments given SMPL's layout (conform_segments)


# ------------------------------------------------------------------------------------------ reading
def _precheck(path: Path, text: str) -> None:
    """Catch what would make the parser loop forever or fail obscurely: missing sections, truncation."""
    if "HIERARCHY" not in text or "MOTION" not in text:
        raise BvhImportError(f"{path}: not a BVH file (no HIERARCHY/MOTION sections)")
    motion = text[text.index("MOTION") :].splitlines()[1:]
    lines = [ln for ln in motion if ln.strip()]
    m = re.match(r"\s*Frames:\s*(\d+)\s*$", lines[0]) if lines else None
    if m is None:
        raise BvhImportError(f"{path}: the MOTION section lacks a 'Frames: N' line")
    if len(lines) < 2 or not re.match(r"\s*Frame Time:\s*\S+\s*$", lines[1]):
        raise BvhImportError(f"{path}: the MOTION section lacks a 'Frame Time: s' line")
    declared, present = int(m.group(1)), len(lines) - 2
    if present < declared:
        raise BvhImportError(f"{path}: truncated: 'Frames: {declared}' but {present} frame lines")
    if declared < 2:
        raise BvhImportError(f"{path}: {declared} frame(s); a motion needs at least 2")


def read_bvh(path: Path | str) -> BvhMotion:
    """Parse a BVH file with bvhio and run forward kinematics over every frame."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BvhImportError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BvhImportError(f"{path}: is a directory, not a BVH file") from None
    _precheck(path, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # bvhio's "import glm" (PyGLM renaming)
        import bvhio
    try:
        container = bvhio.readAsBvh(str(path))
    except (SyntaxError, ValueError, IndexError, TypeError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise BvhImportError(f"{path}: malformed BVH ({detail})") from None
    if not container.FrameTime or container.FrameTime <= 0:
        raise BvhImportError(f"{path}: frame time must be positive, got {container.FrameTime}")
    layout = container.Root.layout()
    joints = [entry[0] for entry in layout]
    index = {id(j): i for i, j in enumerate(joints)}
    parents = [-1] * len(joints)
    for i, joint in enumerate(joints):
        for child in joint.Children:
            parents[index[id(child)]] = i
    frames = container.FrameCount
    translation = np.empty((frames, len(joints), 3))
    rotation = np.empty((frames, len(joints), 4))
    for j, joint in enumerate(joints):
        keys = joint.Keyframes
        translation[:, j] = [(k.Position.x, k.Position.y, k.Position.z) for k in keys]
        rotation[:, j] = [(k.Rotation.w, k.Rotation.x, k.Rotation.y, k.Rotation.z) for k in keys]
    positions = _forward_kinematics(torch.from_numpy(translation), torch.from_numpy(rotation), parents).numpy()
    return BvhMotion([j.Name for j in joints], parents, positions, 1.0 / container.FrameTime, str(path))


def _forward_kinematics(translation: torch.Tensor, rotation: torch.Tensor, parents: Sequence[int]) -> torch.Tensor:
    """World positions: p[j] = p[parent] + R[parent]·t[j], R[j] = R[parent]·r[j] (BVH convention)."""
    world_rot: list[torch.Tensor] = []
    world_pos: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        if p < 0:
            world_rot.append(rotation[:, j])
            world_pos.append(translation[:, j])
        else:
            world_pos.append(world_pos[p] + qrot(world_rot[p], translation[:, j]))
            world_rot.append(qmul(world_rot[p], rotation[:, j]))
    return torch.stack(world_pos, dim=1)


# ------------------------------------------------------------------------------- rig → SMPL layout
#: A rig whose hips or collars sit within this angle of SMPL's (clip average, in the segment's own
#: frame) already has SMPL's layout and is left as it is: our own BVH exports, SMPL-based rigs.
LAYOUT_TOLERANCE_DEG = 15.0


def conform_segments(joints: np.ndarray, tolerance_deg: float = LAYOUT_TOLERANCE_DEG) -> tuple[np.ndarray, list[str]]:
    """Move the hips and collars to where SMPL puts them relative to the pelvis and chest.

    Rigs disagree on where those joints sit inside their segment: LAFAN1's hip joints are level
    with the pelvis joint, SMPL's are 8 cm below it (the angle between the two hip bones is 160°
    against SMPL's 68°), and the collars differ as much. Copying bone directions keeps the rig's
    layout, so every frame of such a file lies off the motion HumanML3D's features describe, in
    poses a tokenizer trained on SMPL motion has never seen. This takes each segment's orientation
    from its children (`segment_orientation`: hips for the pelvis, with spine1 as up; collars for
    spine3, with the neck as up) and puts the hip and collar bones at SMPL's directions in that
    frame, for each segment whose layout is more than `tolerance_deg` from SMPL's. Every other bone
    direction, every bone length and the spine1 and neck directions are kept, so the pose itself is
    unchanged. (T, 22, 3) → ((T, 22, 3), names of the joints whose segment was conformed).
    """
    joints = np.asarray(joints, dtype=np.float64)
    parents = HUMANML3D.parents
    bones = joints[:, 1:] - joints[:, list(parents[1:])]
    lengths = np.linalg.norm(bones, axis=-1, keepdims=True)
    directions = np.concatenate([np.zeros_like(bones[:, :1]), bones / lengths.clip(1e-12)], axis=1)
    rest = np.asarray(SMPL22_REST_DIRECTIONS, dtype=np.float64)
    rest = rest / np.linalg.norm(rest, axis=-1, keepdims=True).clip(1e-12)
    conformed = []
    for joint, (left, right, up) in SMPL22_SEGMENTS.items():
        # Frames from unit bones (the joint at 0, each child one unit away), so bone lengths and
        # left/right asymmetries of a rig do not tilt them.
        frame = segment_orientation(_unit_children(directions, joint), joint, (left, right, up))  # (T, 3, 3)
        rest_frame = segment_orientation(_unit_children(rest, joint), joint, (left, right, up))  # (3, 3)
        smpl_local = {child: rest_frame.T @ rest[child] for child in (left, right)}  # SMPL's, in the segment's axes
        rig_local = {child: np.einsum("tji,tj->ti", frame, directions[:, child]).mean(0) for child in (left, right)}
        deviation = max(_angle_deg(rig_local[c], smpl_local[c]) for c in (left, right))
        if deviation <= tolerance_deg:
            continue
        conformed.append(HUMANML3D.joint_names[joint])
        for child in (left, right):
            directions[:, child] = frame @ smpl_local[child]
    out = np.empty_like(joints)
    out[:, 0] = joints[:, 0]
    lengths = np.concatenate([np.zeros_like(lengths[:, :1]), lengths], axis=1)
    for j in HUMANML3D.topological_order[1:]:
        out[:, j] = out[:, parents[j]] + directions[:, j] * lengths[:, j]
    return out, conformed


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _unit_children(directions: np.ndarray, joint: int) -> np.ndarray:
    """(..., 22, 3) positions with `joint` at the origin and each of its children one unit away."""
    out = np.zeros_like(directions)
    for child in (c for c, p in enumerate(HUMANML3D.parents) if p == joint):
        out[..., child, :] = directions[..., child, :]
    return out


# ------------------------------------------------------------------------------------------ mapping
def _key(name: str) -> str:
    name = name.rsplit(":", 1)[-1]
    name = re.sub(r"^mixamorig\d*_", "", name, flags=re.IGNORECASE)
    return re.sub(r"[\s_\-]", "", name).lower()


def load_joint_map(path: Path | str) -> dict[str, str]:
    """A user's joint map: YAML or JSON mapping SMPL joint names to the file's joint names."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    except FileNotFoundError:
        raise BvhImportError(f"{path}: joint map not found") from None
    except yaml.YAMLError as exc:
        raise BvhImportError(f"{path}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise BvhImportError(f"{path}: expected lines 'smpl_joint: bvh_joint_name'")
    unknown = sorted(set(data) - set(SMPL22))
    if unknown:
        raise BvhImportError(f"{path}: unknown SMPL joints {unknown} (known: {', '.join(SMPL22)})")
    return dict(data)


def _resolve(names: Sequence[str], candidates: Mapping[str, Sequence[str]]) -> tuple[dict[str, int], list[str]]:
    by_key: dict[str, int] = {}
    for i, name in enumerate(names):
        by_key.setdefault(_key(name), i)
    found, missing = {}, []
    for smpl in SMPL22:
        hit = next((by_key[_key(c)] for c in candidates.get(smpl, ()) if _key(c) in by_key), None)
        if hit is None:
            missing.append(smpl)
        else:
            found[smpl] = hit
    return found, missing


def map_joints(
    motion: BvhMotion, rig: str = "auto", joint_map: Mapping[str, str] | None = None
) -> tuple[np.ndarray, dict[str, str], str]:
    """(T, 22, 3) positions in SMPL order, the mapping used (SMPL → file joint) and the rig's name.

    `rig="auto"` tries the built-in maps and takes the first that finds all 22 joints. A user
    `joint_map` takes precedence joint by joint; joints it leaves out come from the rig's map.
    """
    where = motion.source or "BVH"
    if rig != "auto" and rig not in RIGS:
        raise BvhImportError(f"unknown rig {rig!r} (known: auto, {', '.join(RIGS)})")
    user = {k: (v,) for k, v in (joint_map or {}).items()}
    if joint_map:
        absent = sorted(v for v in joint_map.values() if _key(v) not in {_key(n) for n in motion.names})
        if absent:
            raise BvhImportError(f"{where}: the joint map names joints the file does not have: {absent}")
    rigs = list(RIGS) if rig == "auto" else [rig]
    best: tuple[str, dict[str, int], list[str], list[str], np.ndarray] | None = None
    for name in rigs:
        names, positions = _with_blends(motion, name)
        candidates = {s: user.get(s, ()) + tuple(RIGS[name].get(s, ())) for s in SMPL22}
        for smpl, (a, b, w) in RIG_BLENDS.get(name, {}).items():
            candidates[smpl] = user.get(smpl, ()) + (_blend_name(a, b, w),)
        found, missing = _resolve(names, candidates)
        if best is None or len(missing) < len(best[2]):
            best = (name, found, missing, names, positions)
        if not missing:
            break
    assert best is not None
    name, found, missing, names, positions = best
    if missing:
        tried = ""
        if len(missing) <= 4:
            tried = (
                " (tried "
                + "; ".join(
                    f"{s}: {', '.join(user.get(s, ()) + tuple(RIGS[name].get(s, ()))) or 'nothing'}" for s in missing
                )
                + ")"
            )
        raise BvhImportError(
            f"{where}: cannot map the rig to SMPL-22 (closest built-in map: {name}, {22 - len(missing)} of 22 "
            f"joints found): missing {', '.join(missing)}{tried}. The file's joints: {', '.join(motion.names)}. "
            "Give a map file (--map) with 'smpl_joint: file_joint' lines."
        )
    index = [found[s] for s in SMPL22]
    if len(set(index)) < len(index):
        dup = sorted({names[i] for i in index if index.count(i) > 1})
        raise BvhImportError(f"{where}: several SMPL joints map to the same file joint(s) {dup}")
    mapping = {s: names[found[s]] for s in SMPL22}
    label = f"{name}+map" if joint_map else name
    return positions[:, index], mapping, label


def _blend_name(a: str, b: str, w: float) -> str:
    return f"{a}~{b}@{w:g}"


def _with_blends(motion: BvhMotion, rig: str) -> tuple[list[str], np.ndarray]:
    """The file's joints plus the rig's made ones (when the file has both of their joints)."""
    blends = RIG_BLENDS.get(rig, {})
    by_key = {_key(n): i for i, n in enumerate(motion.names)}
    extra = [(a, b, w) for a, b, w in blends.values() if _key(a) in by_key and _key(b) in by_key]
    if not extra:
        return motion.names, motion.positions
    made = [motion.positions[:, by_key[_key(a)]] * (1 - w) + motion.positions[:, by_key[_key(b)]] * w
            for a, b, w in extra]  # fmt: skip
    names = motion.names + [_blend_name(a, b, w) for a, b, w in extra]
    return names, np.concatenate([motion.positions, np.stack(made, axis=1)], axis=1)


# ------------------------------------------------------------------------------- units, axes, time
def _up_rotation(joints: np.ndarray, up: str, where: str) -> tuple[np.ndarray, str]:
    """Rotate so that the body's up direction is +Y (right-handed, no mirroring)."""
    if up == "auto":
        body = joints[:, SMPL22.index("head")] - joints[
            :, [SMPL22.index("left_ankle"), SMPL22.index("right_ankle")]
        ].mean(1)
        direction = body.mean(0)
        axis = int(np.argmax(np.abs(direction)))
        sign = "+" if direction[axis] > 0 else "-"
        up = sign + "xyz"[axis]
    elif up in ("y", "z", "x"):
        up = "+" + up
    matrices = {
        "+y": np.eye(3),
        "-y": np.diag([1.0, -1.0, -1.0]),
        "+z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),  # (x, y, z) → (x, z, −y)
        "-z": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
        "+x": np.array([[0, 1.0, 0], [-1, 0, 0], [0, 0, 1]]),
        "-x": np.array([[0, -1.0, 0], [1, 0, 0], [0, 0, 1]]),
    }
    if up not in matrices:
        raise BvhImportError(f"{where}: up must be auto, x, y or z, got {up!r}")
    return joints @ matrices[up].T, up


def _unit_scale(joints: np.ndarray, units: str, where: str) -> float:
    parents = HUMANML3D.parents
    first = joints[0]
    span = sum(float(np.linalg.norm(first[j] - first[parents[j]])) for j in (3, 6, 9, 12, 15, 2, 5, 8))
    if span <= 0:
        raise BvhImportError(f"{where}: the mapped joints coincide in the first frame (zero-length bones)")
    if units == "auto":
        return min(_UNITS.values(), key=lambda f: abs(np.log(span * f / _REFERENCE_SPAN)))
    if units not in _UNITS:
        raise BvhImportError(f"units must be auto, {', '.join(_UNITS)}; got {units!r}")
    return _UNITS[units]


def resample(joints: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Linear interpolation of positions at times k / target_fps within the clip."""
    frames = joints.shape[0]
    if abs(source_fps - target_fps) < 1e-6:
        return joints
    duration = (frames - 1) / source_fps
    # Frame times in files are rounded (0.033333 s for 30 fps): allow 1/1000 of a frame of slack at the end.
    times = np.arange(int(np.floor(duration * target_fps + 1e-3)) + 1) / target_fps
    pos = times * source_fps
    lo = np.minimum(np.floor(pos).astype(int), frames - 1)
    hi = np.minimum(lo + 1, frames - 1)
    w = (pos - lo)[:, None, None]
    return joints[lo] * (1 - w) + joints[hi] * w


# -------------------------------------------------------------------------------------------- import
def import_bvh(
    path: Path | str,
    rig: str = "auto",
    joint_map: Mapping[str, str] | Path | str | None = None,
    units: str = "auto",
    up: str = "auto",
    segment_frames: int | None = None,
    min_frames: int = HUMANML3D.min_frames,
    conform: bool = True,
) -> BvhImport:
    """One BVH file → HumanML3D clips (whole, or cut into `segment_frames`-frame pieces at 20 fps).

    Each clip is canonicalised on its own (starts at the origin facing +Z), as HumanML3D's clips
    are. A last piece shorter than `min_frames` is dropped (counted in `dropped_frames`).
    `conform` puts the rig's hips and collars where SMPL has them when the rig puts them elsewhere
    (`conform_segments`); `raw_joints` stay as the file has them.
    """
    path = Path(path)
    if joint_map is not None and not isinstance(joint_map, Mapping):
        joint_map = load_joint_map(joint_map)
    motion = read_bvh(path)
    joints, mapping, rig_name = map_joints(motion, rig, joint_map)
    joints, up_axis = _up_rotation(joints, up, str(path))
    scale = _unit_scale(joints, units, str(path))
    joints = resample(joints * scale, motion.fps, HUMANML3D.fps)
    if joints.shape[0] < 2:
        raise BvhImportError(f"{path}: {joints.shape[0]} frame(s) at {HUMANML3D.fps:g} fps; a motion needs at least 2")
    if segment_frames is not None and segment_frames < 1:
        raise BvhImportError(f"segment_frames must be ≥ 1, got {segment_frames}")
    result = BvhImport(str(path), rig_name, mapping, motion.fps, scale, up_axis, joints.astype(np.float32))
    if conform:
        joints, result.conformed = conform_segments(joints)
    total = joints.shape[0] - 1  # feature frames
    step = segment_frames or total
    for k, start in enumerate(range(0, total, step)):
        piece = joints[start : min(start + step, total) + 1]
        if segment_frames is not None and piece.shape[0] - 1 < min_frames:
            result.dropped_frames += piece.shape[0] - 1
            continue
        features, recovered = process_joints(piece)
        name = path.stem if segment_frames is None else f"{path.stem}_{k:03d}"
        result.clips.append(ImportedClip(name, features.astype(np.float32), recovered.astype(np.float32), start))
    return result


def import_bvh_files(
    files: Sequence[Path | str],
    out: Path | str,
    rig: str = "auto",
    joint_map: Mapping[str, str] | Path | str | None = None,
    units: str = "auto",
    up: str = "auto",
    segment_frames: int | None = None,
    conform: bool = True,
) -> list[dict[str, Any]]:
    """Import files into `out/` (new_joint_vecs/, new_joints/, import.json) and return the report."""
    from remogpt.artifacts import atomic_save_npy, atomic_write_text

    files = [Path(f) for f in files]
    if not files:
        raise BvhImportError("no BVH files given")
    stems = [f.stem for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise BvhImportError(f"several input files share the name(s) {dup}; clip ids would collide")
    if joint_map is not None and not isinstance(joint_map, Mapping):
        joint_map = load_joint_map(joint_map)
    # every file is read and checked before anything is written
    imports = [import_bvh(f, rig, joint_map, units, up, segment_frames, conform=conform) for f in files]
    out = Path(out)
    report_path = out / "import.json"
    report: dict[str, Any] = {}
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            report = {}
    items = []
    for imp in imports:
        for clip in imp.clips:
            atomic_save_npy(out / "new_joint_vecs" / f"{clip.name}.npy", clip.features)
            atomic_save_npy(out / "new_joints" / f"{clip.name}.npy", clip.joints)
        item = {
            "source": imp.source,
            "rig": imp.rig,
            "mapping": imp.mapping,
            "source_fps": imp.source_fps,
            "unit_scale": imp.unit_scale,
            "up_axis": imp.up_axis,
            "dropped_frames": imp.dropped_frames,
            "conformed_segments": imp.conformed,
            "clips": [{"id": c.name, "start": c.start, "frames": int(c.features.shape[0])} for c in imp.clips],
        }
        report[Path(imp.source).stem] = item
        items.append(item)
    atomic_write_text(report_path, json.dumps(report, indent=1) + "\n")
    return items
