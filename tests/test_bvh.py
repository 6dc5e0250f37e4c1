"""BVH import: a hand-written rig with known joints and motion, checked against an independent FK."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from remogpt.cli import main
from remogpt.motion import HUMANML3D, process_joints
from remogpt.motion.bvh import RIGS, BvhImportError, conform_segments, import_bvh, read_bvh
from remogpt.motion.skeleton import SMPL22_REST_DIRECTIONS
from remogpt.tokenizer.cache import folder_clip_ids

SMPL = HUMANML3D.joint_names
LAFAN = [RIGS["lafan1"][s][0] for s in SMPL]
OFFSETS_CM = HUMANML3D.offsets() * 100.0  # the reference skeleton, centimetres


def rig(names: list[str] | None = None, extra: bool = True) -> tuple[list[str], list[int], np.ndarray]:
    """SMPL-22 with LAFAN1 names (plus a finger joint that maps to nothing)."""
    names = list(names or LAFAN)
    parents = list(HUMANML3D.parents)
    offsets = OFFSETS_CM.copy()
    if extra:
        names.append("LeftHandIndex1")
        parents.append(SMPL.index("left_wrist"))
        offsets = np.vstack([offsets, [[8.0, -3.0, 0.0]]])
    return names, parents, offsets


def write_bvh(path: Path, names, parents, offsets, root_pos, euler, fps=30.0, order="ZYX") -> Path:
    """BVH text: root with position + rotation channels, joints with rotation channels in `order`."""
    children = {i: [j for j, p in enumerate(parents) if p == i] for i in range(len(names))}
    lines, dfs = ["HIERARCHY"], []

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {offsets[j][0]:.6f} {offsets[j][1]:.6f} {offsets[j][2]:.6f}")
        chans = (["Xposition", "Yposition", "Zposition"] if parents[j] < 0 else []) + [f"{a}rotation" for a in order]
        lines.append(f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}")
        dfs.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0.0 3.0 0.0", f"{pad}  }}"])
        lines.append(pad + "}")

    emit(parents.index(-1), 0)
    frames = root_pos.shape[0]
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / fps:.8f}"]
    for t in range(frames):
        values: list[float] = []
        for j in dfs:
            if parents[j] < 0:
                values += list(root_pos[t])
            values += list(euler[t, j])
        lines.append(" ".join(f"{v:.6f}" for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path


def reference_fk(parents, offsets, root_pos, euler, order="ZYX") -> np.ndarray:
    """Independent FK with scipy (intrinsic rotations in channel order): (T, J, 3)."""
    frames, joints = euler.shape[:2]
    out = np.zeros((frames, joints, 3))
    for t in range(frames):
        glob: list[Rotation] = []
        for j, p in enumerate(parents):
            local = Rotation.from_euler(order.upper(), euler[t, j], degrees=True)
            if p < 0:
                out[t, j] = root_pos[t]
                glob.append(local)
            else:
                out[t, j] = out[t, p] + glob[p].apply(offsets[j])
                glob.append(glob[p] * local)
    return out


def walk(frames: int = 31, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """1 m/s forward (+Z, centimetres), the left knee bending from 0 to 60 degrees."""
    t = np.arange(frames) / fps
    root = np.stack([np.zeros(frames), np.full(frames, 95.0), 100.0 * t], -1)
    euler = np.zeros((frames, 23, 3))
    euler[:, SMPL.index("left_knee"), 2] = np.linspace(0, 60, frames)  # ZYX order: the last is X
    return root, euler


@pytest.mark.parametrize("order", ["ZYX", "XYZ", "YXZ"])
def test_forward_kinematics_matches_scipy_for_every_rotation_order(tmp_path: Path, order: str):
    names, parents, offsets = rig()
    rng = np.random.default_rng(0)
    root = rng.normal(0, 50, (3, 3))
    euler = rng.uniform(-90, 90, (3, len(names), 3))
    motion = read_bvh(write_bvh(tmp_path / "r.bvh", names, parents, offsets, root, euler, order=order))
    assert motion.names[:2] == ["Hips", "LeftUpLeg"] and motion.fps == pytest.approx(30.0)
    expected = reference_fk(parents, offsets, root, euler, order)
    order_in_file = [names.index(n) for n in motion.names]
    np.testing.assert_allclose(motion.positions, expected[:, order_in_file], atol=1e-3)


def test_import_gives_the_expected_joints_and_features(tmp_path: Path):
    names, parents, offsets = rig()
    root, euler = walk()
    path = write_bvh(tmp_path / "walk.bvh", names, parents, offsets, root, euler)
    imp = import_bvh(path)
    assert (imp.rig, imp.unit_scale, imp.up_axis, imp.source_fps) == ("lafan1", 0.01, "+y", pytest.approx(30.0))
    assert imp.mapping["left_knee"] == "LeftLeg" and "LeftHandIndex1" not in imp.mapping.values()
    # 1 s at 30 fps → 21 frames at 20 fps, positions interpolated linearly in time
    truth = reference_fk(parents, offsets, root, euler)[:, :22] / 100.0
    src = np.arange(21) * 1.5
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, 30)
    w = (src - lo)[:, None, None]
    expected = truth[lo] * (1 - w) + truth[hi] * w
    np.testing.assert_allclose(imp.raw_joints, expected, atol=1e-5)
    (clip,) = imp.clips
    assert imp.conformed == ["pelvis", "spine3"]  # this rig's hips are level with the pelvis, collars too
    features, joints = process_joints(conform_segments(expected)[0])
    np.testing.assert_allclose(clip.features, features, atol=1e-4)
    as_in_file = import_bvh(path, conform=False).clips[0].features
    np.testing.assert_allclose(as_in_file, process_joints(expected)[0], atol=1e-4)
    assert np.abs(as_in_file - clip.features).max() > 0.05
    assert clip.features.shape == (20, 263) and clip.joints.shape == (20, 22, 3)
    # canonical: starts at the origin facing +Z, walks 0.95 m forward in 19 frames, feet on the floor
    assert abs(clip.joints[0, 0, 0]) < 1e-4 and abs(clip.joints[0, 0, 2]) < 1e-4
    assert clip.joints[-1, 0, 2] == pytest.approx(0.95, abs=0.01) and abs(clip.joints[-1, 0, 0]) < 0.01
    assert clip.joints[..., 1].min() == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_allclose(clip.joints, joints, atol=1e-4)


def test_mixamo_names_z_up_and_millimetres_give_the_same_features(tmp_path: Path):
    names, parents, offsets = rig()
    root, euler = walk()
    euler[:] = 0  # rotations stay in the file's frame; only positions are converted here
    base = import_bvh(write_bvh(tmp_path / "a.bvh", names, parents, offsets, root, euler)).clips[0].features
    mixamo = ["mixamorig:" + n.replace("Toe", "ToeBase") for n in names]
    z_up = lambda v: np.stack([v[..., 0], -v[..., 2], v[..., 1]], -1) * 10.0  # noqa: E731  (Y-up cm → Z-up mm)
    imp = import_bvh(write_bvh(tmp_path / "b.bvh", mixamo, parents, z_up(offsets), z_up(root), euler))
    assert (imp.rig, imp.up_axis, imp.unit_scale) == ("mixamo", "+z", 0.001)
    np.testing.assert_allclose(imp.clips[0].features, base, atol=1e-4)


def test_unmappable_rigs_name_the_missing_joints_and_a_map_file_fixes_them(tmp_path: Path):
    names, parents, offsets = rig()
    names[SMPL.index("left_wrist")] = "Hand_L_custom"
    names[SMPL.index("right_wrist")] = "HandR"
    root, euler = walk()
    path = write_bvh(tmp_path / "odd.bvh", names, parents, offsets, root, euler)
    with pytest.raises(BvhImportError, match=r"missing left_wrist, right_wrist \(tried left_wrist: LeftHand") as err:
        import_bvh(path)
    assert "Hand_L_custom" in str(err.value) and "--map" in str(err.value)
    with pytest.raises(BvhImportError, match="unknown rig 'maya'"):
        import_bvh(path, rig="maya")
    good = tmp_path / "map.yaml"
    good.write_text("left_wrist: Hand_L_custom\nright_wrist: HandR\n")
    imp = import_bvh(path, joint_map=good)
    assert imp.rig == "lafan1+map" and imp.mapping["left_wrist"] == "Hand_L_custom"
    reference = import_bvh(write_bvh(tmp_path / "std.bvh", *rig(), root, euler))
    np.testing.assert_allclose(imp.clips[0].features, reference.clips[0].features, atol=1e-5)
    (tmp_path / "bad.json").write_text(json.dumps({"left_wrist": "Hand_L_custom", "left_pinky": "X"}))
    with pytest.raises(BvhImportError, match=r"unknown SMPL joints \['left_pinky'\]"):
        import_bvh(path, joint_map=tmp_path / "bad.json")
    with pytest.raises(BvhImportError, match=r"names joints the file does not have: \['NoSuchJoint'\]"):
        import_bvh(path, joint_map={"left_wrist": "NoSuchJoint"})


def test_broken_files_are_clear_errors_not_hangs(tmp_path: Path):
    names, parents, offsets = rig()
    root, euler = walk()
    text = write_bvh(tmp_path / "w.bvh", names, parents, offsets, root, euler).read_text().splitlines()
    (tmp_path / "cut.bvh").write_text("\n".join(text[:-5]) + "\n")  # the parser itself would wait forever at EOF
    with pytest.raises(BvhImportError, match="truncated: 'Frames: 31' but 26 frame lines"):
        read_bvh(tmp_path / "cut.bvh")
    (tmp_path / "empty.bvh").write_text("")
    with pytest.raises(BvhImportError, match="not a BVH file"):
        read_bvh(tmp_path / "empty.bvh")
    short = "\n".join(line if i != len(text) - 1 else "1 2 3" for i, line in enumerate(text))
    (tmp_path / "short.bvh").write_text(short + "\n")
    with pytest.raises(BvhImportError, match=r"short\.bvh: malformed BVH"):
        read_bvh(tmp_path / "short.bvh")


def test_cli_imports_segments_into_a_folder_the_tokenizer_can_read(tmp_path: Path, capsys):
    names, parents, offsets = rig()
    root, euler = walk(frames=91)  # 3 s at 30 fps → 60 feature frames at 20 fps
    path = write_bvh(tmp_path / "take1.bvh", names, parents, offsets, root, euler)
    out = tmp_path / "imported"
    with pytest.raises(SystemExit) as code:
        main(["data", "import-bvh", str(path), "--out", str(out), "--segment", "40"])
    assert code.value.code in (0, None), capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "rig lafan1" in printed and "hips and collars moved to SMPL's places" in printed
    assert folder_clip_ids(out) == ["take1_000"]  # the 20-frame tail is shorter than 40 and dropped
    assert np.load(out / "new_joint_vecs" / "take1_000.npy").shape == (40, 263)
    report = json.loads((out / "import.json").read_text())
    assert report["take1"]["dropped_frames"] == 20 and report["take1"]["mapping"]["pelvis"] == "Hips"
    assert report["take1"]["conformed_segments"] == ["pelvis", "spine3"]
    kept = tmp_path / "kept"
    with pytest.raises(SystemExit) as code:
        main(["data", "import-bvh", str(path), "--out", str(kept), "--segment", "40", "--keep-rig-layout"])
    assert code.value.code in (0, None), capsys.readouterr().err
    assert json.loads((kept / "import.json").read_text())["take1"]["conformed_segments"] == []
    assert "moved" not in capsys.readouterr().out


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a / np.linalg.norm(a, axis=-1, keepdims=True), b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def test_conform_segments_puts_hips_and_collars_where_smpl_has_them_and_keeps_the_pose(tmp_path: Path):
    names, parents, offsets = rig()
    rng = np.random.default_rng(3)
    root = np.stack([np.zeros(9), np.full(9, 95.0), np.linspace(0, 40, 9)], -1)
    euler = rng.uniform(-40, 40, (9, len(names), 3))  # the whole body, pelvis and chest included, turns
    motion = read_bvh(write_bvh(tmp_path / "r.bvh", names, parents, offsets, root, euler))
    joints = motion.positions[:, [motion.names.index(n) for n in LAFAN]] / 100  # SMPL order, metres
    out, conformed = conform_segments(joints)
    assert conformed == ["pelvis", "spine3"]
    p = HUMANML3D.parents
    bone = lambda j, x: x[:, j] - x[:, p[j]]  # noqa: E731
    rest = np.asarray(SMPL22_REST_DIRECTIONS)
    # The rig's hips lie along the pelvis's x axis (90° from spine1, 180° apart); SMPL's below it.
    assert _angle(bone(1, joints), bone(3, joints)) == pytest.approx(np.full(9, 90.0), abs=1e-3)
    for a, b in ((1, 3), (1, 2), (13, 12), (13, 14)):
        np.testing.assert_allclose(_angle(bone(a, out), bone(b, out)), _angle(rest[a], rest[b]), atol=1e-3)
    # Every bone keeps its length; every bone but the hips' and collars' keeps its direction.
    np.testing.assert_allclose(np.linalg.norm(out[:, 1:] - out[:, list(p[1:])], axis=-1),
                               np.linalg.norm(joints[:, 1:] - joints[:, list(p[1:])], axis=-1), atol=1e-9)  # fmt: skip
    for j in set(range(1, 22)) - {1, 2, 13, 14}:
        np.testing.assert_allclose(_angle(bone(j, out), bone(j, joints)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out[:, 0], joints[:, 0])
    # Motion already in SMPL's layout (the embedded generator's rest pose) comes back unchanged.
    from remogpt.data.synth.body import REST_DIRS

    smpl = np.zeros((22, 3))
    for j in HUMANML3D.topological_order[1:]:
        smpl[j] = smpl[p[j]] + REST_DIRS[j] * HUMANML3D.bone_lengths[j]
    turned = smpl @ Rotation.from_euler("YXZ", [70, 20, -10], degrees=True).as_matrix().T
    for tolerance in (-1.0, 15.0):  # always moved (to where it already is), or (the default) left alone
        out, conformed = conform_segments(turned[None], tolerance_deg=tolerance)
        np.testing.assert_allclose(out, turned[None], atol=1e-9)
        assert conformed == (["pelvis", "spine3"] if tolerance < 0 else [])
