"""Export to animation tools: rotations solved from positions are continuous, and the files written
(BVH, glTF binary, npz) give back the same joints when read by independent parsers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from remogpt.motion import HUMANML3D
from remogpt.motion.bvh import import_bvh
from remogpt.motion.export import JOINT_NAMES, export_motion, max_rotation_step, solve_rotations

PARENTS = HUMANML3D.parents
FRAMES = 80


def _fk(root: np.ndarray, local: list[Rotation]) -> np.ndarray:
    """Positions of the reference skeleton (HumanML3D offsets, arms down) under local rotations."""
    offsets = HUMANML3D.offsets()
    world: list[Rotation] = []
    out = np.zeros((root.shape[0], 22, 3))
    for j, p in enumerate(PARENTS):
        if p < 0:
            out[:, j], rot = root, local[j]
        else:
            out[:, j] = out[:, p] + world[p].apply(offsets[j])
            rot = world[p] * local[j]
        world.append(rot)
    return out


def _turn(axis: str, degrees: np.ndarray | float) -> Rotation:
    return Rotation.from_euler(axis, np.broadcast_to(np.asarray(degrees, float), (FRAMES,))[:, None], degrees=True)


def _motion(kind: str) -> tuple[np.ndarray, float]:
    """A synthetic motion and the most any of its joints turns between two frames (degrees)."""
    t = np.linspace(0.0, 1.0, FRAMES)
    ident = [Rotation.identity(FRAMES) for _ in range(22)]
    root = np.stack([np.zeros(FRAMES), np.full(FRAMES, 0.95), np.zeros(FRAMES)], axis=1)
    swing = 25.0 * np.sin(2 * np.pi * 3 * t)  # walking legs, ±25° at 3 strides
    ident[1] = _turn("X", swing)
    ident[2] = _turn("X", -swing)
    ident[4] = ident[5] = _turn("X", 20.0 + 15.0 * np.sin(2 * np.pi * 3 * t))
    if kind == "turn":  # a full turn on the spot while walking, 4.5° a frame
        ident[0] = _turn("Y", 360.0 * t)
        root[:, 0], root[:, 2] = 0.5 * np.sin(2 * np.pi * t), 0.5 * (1 - np.cos(2 * np.pi * t))
    elif kind == "overhead":  # both arms from hanging down to straight overhead and back
        lift = 180.0 * np.sin(np.pi * t)
        ident[16] = _turn("Z", lift)
        ident[17] = _turn("Z", -lift)
        ident[18] = _turn("X", -40.0 * np.sin(2 * np.pi * t) ** 2)
    elif kind == "fold":  # the left forearm folds back along the upper arm and sweeps past the fold:
        # where the shortest rotation from rest is undefined (it spins about the bone: 92° in one frame)
        bend = 179.5 * np.clip(1.6 * np.sin(np.pi * t), 0, 1)
        tilt = 10.0 * np.cos(np.pi * t)  # +10° → -10°: the forearm passes 0.5° beside pointing back
        ident[18] = _turn("X", tilt) * _turn("Z", bend)
    else:  # "lie": fall forward onto the front, roll onto the back
        pitch = np.clip(t * 2, 0, 1) * 90.0
        roll = np.clip(t * 2 - 1, 0, 1) * 180.0
        ident[0] = _turn("X", pitch) * _turn("Y", roll)
        root[:, 1] = 0.95 - 0.8 * np.clip(t * 2, 0, 1)
    steps = [np.degrees((r[:-1].inv() * r[1:]).magnitude()).max() for r in ident]
    return _fk(root, ident), float(max(steps))


@pytest.mark.parametrize("kind", ["turn", "overhead", "lie", "fold"])
def test_solved_rotations_are_continuous_and_reproduce_the_joints(kind: str) -> None:
    joints, fastest = _motion(kind)
    skeleton = solve_rotations(joints)
    assert np.abs(np.linalg.norm(skeleton.rotations, axis=-1) - 1).max() < 1e-9
    assert np.linalg.norm(skeleton.joints() - joints, axis=-1).max() < 1e-6  # the reference lengths: exact
    step = max_rotation_step(skeleton)
    # No flips: no joint turns between two frames by more than the motion itself turns (a flip is ~180°).
    assert step < 30.0
    assert step <= 1.25 * fastest, (step, fastest)
    # Sign-continuous quaternions (what interpolating viewers need).
    assert ((skeleton.rotations[1:] * skeleton.rotations[:-1]).sum(-1) >= 0).all()


def test_the_rest_pose_is_a_t_pose_facing_forward() -> None:
    joints, _ = _motion("turn")
    skeleton = solve_rotations(joints)
    off = skeleton.offsets
    lengths = np.linalg.norm(off, axis=-1)
    assert np.allclose(lengths, HUMANML3D.bone_lengths, atol=1e-9)
    names = HUMANML3D.joint_names
    for joint, axis in (("left_shoulder", 0), ("left_elbow", 0), ("left_wrist", 0), ("left_knee", 1),
                        ("left_foot", 2), ("head", 1)):  # fmt: skip
        j = names.index(joint)
        assert abs(off[j, axis]) == pytest.approx(lengths[j])
    assert off[names.index("left_wrist"), 0] > 0 > off[names.index("right_wrist"), 0]  # left is +X
    assert off[names.index("spine1"), 1] > 0 and off[names.index("left_hip"), 0] > 0


def test_bvh_round_trip_through_the_importer_and_bvhio(tmp_path: Path) -> None:
    import bvhio

    joints, _ = _motion("overhead")
    joints[:, :, 0] += 1.5  # somewhere else than the origin
    for units in ("m", "cm"):
        path = tmp_path / f"overhead_{units}.bvh"
        export_motion(joints, path, units=units)
        imported = import_bvh(path)
        assert imported.rig == "mixamo" and imported.unit_scale == (1.0 if units == "m" else 0.01)
        assert np.linalg.norm(imported.raw_joints - joints, axis=-1).max() < 1e-3  # 1 mm
        container = bvhio.readAsBvh(str(path))
        assert container.FrameCount == FRAMES and container.FrameTime == pytest.approx(0.05)
        layout = [j.Name for j, *_ in container.Root.layout()]
        assert sorted(n for n in layout if n in JOINT_NAMES) == sorted(JOINT_NAMES)


def test_bvh_resampled_to_another_frame_rate(tmp_path: Path) -> None:
    joints, _ = _motion("turn")
    report = export_motion(joints, tmp_path / "turn30.bvh", fps=30.0)
    assert report["frames"] == 1 + (FRAMES - 1) * 3 // 2
    back = import_bvh(tmp_path / "turn30.bvh")  # the importer resamples to 20 fps again
    assert back.source_fps == pytest.approx(30.0)
    assert len(back.raw_joints) == FRAMES - 1  # 3.95 s at 30 fps ends at 3.933 s: one 20 fps frame fewer
    assert np.linalg.norm(back.raw_joints - joints[: FRAMES - 1], axis=-1).max() < 0.02  # two linear resamplings


def _read_glb(path: Path) -> tuple[list[str], np.ndarray]:
    """Joint names and positions of every keyframe, by pygltflib and a forward kinematics of our own."""
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()

    def data(index: int) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        return np.frombuffer(blob, np.float32, acc.count * width, start).reshape(acc.count, width).astype(np.float64)

    animation = gltf.animations[0]
    tracks = {(c.target.node, c.target.path): data(animation.samplers[c.sampler].output) for c in animation.channels}
    frames = len(data(animation.samplers[0].input))
    names = [n.name for n in gltf.nodes]
    parent = {c: i for i, n in enumerate(gltf.nodes) for c in n.children}
    joints = [i for i in range(len(gltf.nodes)) if (i, "rotation") in tracks]
    world_r: dict[int, Rotation] = {}
    world_p: dict[int, np.ndarray] = {}
    for i in joints:  # nodes are written parents first
        node = gltf.nodes[i]
        trans = tracks.get((i, "translation"), np.tile(node.translation, (frames, 1)))
        rot = Rotation.from_quat(tracks[(i, "rotation")])
        if i in parent:
            world_p[i] = world_p[parent[i]] + world_r[parent[i]].apply(trans)
            world_r[i] = world_r[parent[i]] * rot
        else:
            world_p[i], world_r[i] = trans, rot
    return [names[i] for i in joints], np.stack([world_p[i] for i in joints], axis=1)


def test_glb_round_trip_and_structure(tmp_path: Path) -> None:
    import pygltflib

    joints, _ = _motion("lie")
    path = tmp_path / "lie.glb"
    export_motion(joints, path)
    assert path.read_bytes()[:4] == b"glTF"
    names, positions = _read_glb(path)
    assert names == list(JOINT_NAMES)
    assert positions.shape == joints.shape
    assert np.linalg.norm(positions - joints, axis=-1).max() < 1e-3
    gltf = pygltflib.GLTF2().load(str(path))
    assert gltf.asset.version == "2.0" and len(gltf.meshes) == 1
    assert sum(1 for n in gltf.nodes if n.mesh is not None) == 21 + 5  # every bone, and the five ends
    times = gltf.accessors[gltf.animations[0].samplers[0].input]
    assert times.min == [0.0] and times.max == [pytest.approx((FRAMES - 1) / 20.0)]


def _validator() -> Path | None:
    for root in (os.environ.get("REMOGPT_GLTF_VALIDATOR"), Path(__file__).resolve().parents[1] / ".ci" / "node"):
        if root and (Path(root) / "node_modules" / "gltf-validator").is_dir() and shutil.which("node"):
            return Path(root)
    return None


def test_glb_passes_the_khronos_validator(tmp_path: Path) -> None:
    root = _validator()
    if root is None:
        pytest.skip("the Khronos glTF validator (npm gltf-validator, installed by .ci/run) is not installed")
    joints, _ = _motion("turn")
    path = tmp_path / "turn.glb"
    export_motion(joints, path)
    script = ("const v = require('gltf-validator'); const fs = require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))"
              ".then(r => console.log(JSON.stringify(r.issues)));")  # fmt: skip
    env = {**os.environ, "NODE_PATH": str(root / "node_modules")}
    out = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True, env=env, timeout=60)
    issues = json.loads(out.stdout)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]


def test_npz_holds_joints_and_rotations(tmp_path: Path) -> None:
    joints, _ = _motion("turn")
    export_motion(joints, tmp_path / "turn.npz")
    with np.load(tmp_path / "turn.npz", allow_pickle=False) as z:
        assert np.linalg.norm(z["joints"] - joints, axis=-1).max() < 1e-3
        assert z["rotations_xyzw"].shape == (FRAMES, 22, 4) and list(z["joint_names"]) == list(JOINT_NAMES)


def test_real_clip_round_trips(tmp_path: Path, real_clip: tuple[np.ndarray, np.ndarray]) -> None:
    """HumanML3D's clip 012314 (joints as the dataset ships them) through BVH and GLB, within 1 mm."""
    _, joints = real_clip
    export_motion(joints, tmp_path / "clip.bvh")
    export_motion(joints, tmp_path / "clip.glb")
    assert np.linalg.norm(import_bvh(tmp_path / "clip.bvh").raw_joints - joints, axis=-1).max() < 1e-3
    assert np.linalg.norm(_read_glb(tmp_path / "clip.glb")[1] - joints, axis=-1).max() < 1e-3


def test_clip_bones_keep_a_mirrored_clip(tmp_path: Path, real_clip: tuple[np.ndarray, np.ndarray]) -> None:
    """A mirrored clip (HumanML3D's M… files) has the left bones' lengths on the right: the reference
    skeleton moves its hands and toes by centimetres, the clip's own bones keep every joint."""
    _, joints = real_clip
    mirrored = joints[:, list(HUMANML3D.mirror_permutation)] * np.array([-1.0, 1.0, 1.0])
    reference = np.linalg.norm(solve_rotations(mirrored).joints() - mirrored, axis=-1).max()
    own = solve_rotations(mirrored, bones="clip")
    assert reference > 5e-3  # the asymmetry of the reference body, ~7 mm per bone
    assert np.linalg.norm(own.joints() - mirrored, axis=-1).max() < 1e-5
    export_motion(mirrored, tmp_path / "m.bvh", bones="clip")
    assert np.linalg.norm(import_bvh(tmp_path / "m.bvh").raw_joints - mirrored, axis=-1).max() < 1e-3
    lengths = np.linalg.norm(own.offsets, axis=-1)
    left, right = HUMANML3D.joint_names.index("left_knee"), HUMANML3D.joint_names.index("right_knee")
    assert lengths[left] == pytest.approx(HUMANML3D.bone_lengths[right], abs=1e-6)


def test_export_command(tmp_path: Path, run_cli, real_clip: tuple[np.ndarray, np.ndarray]) -> None:
    features, joints = real_clip
    np.save(tmp_path / "feats.npy", features)
    np.save(tmp_path / "joints.npy", joints)
    result = run_cli("export", tmp_path / "joints.npy", "--to", tmp_path / "one.bvh", "--units", "cm")
    assert result.returncode == 0 and "wrote" in result.stdout
    assert np.linalg.norm(import_bvh(tmp_path / "one.bvh").raw_joints - joints, axis=-1).max() < 1e-3
    result = run_cli("export", tmp_path / "joints.npy", tmp_path / "feats.npy", "--to", tmp_path / "out",
                     "--format", "bvh,glb,npz")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{s}.{e}" for s in ("joints", "feats") for e in ("bvh", "glb", "npz"))  # fmt: skip


def test_export_bad_input_gets_one_line(tmp_path: Path, run_cli) -> None:
    joints, _ = _motion("turn")
    good = tmp_path / "good.npy"
    np.save(good, joints)
    nan = joints.copy()
    nan[3, 4, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "shape.npy", np.zeros((30, 22, 2)))
    (tmp_path / "a_file").write_text("x")
    cases = {
        "NaN": [tmp_path / "nan.npy", "--to", tmp_path / "x.bvh"],
        "expected": [tmp_path / "shape.npy", "--to", tmp_path / "x.bvh"],
        "unknown format": [good, "--to", tmp_path / "x.fbx"],
        "is a file": [good, "--to", tmp_path / "a_file" / "x.bvh"],
        "--format": [good, "--to", tmp_path / "folder/"],
        "need a folder": [good, good, "--to", tmp_path / "x.glb"],
        "--units": [good, "--to", tmp_path / "x.bvh", "--units", "inch"],
        "--bones": [good, "--to", tmp_path / "x.bvh", "--bones", "long"],
        "--fps": [good, "--to", tmp_path / "x.bvh", "--fps", "0"],
    }
    for needle, args in cases.items():
        result = run_cli("export", *args)
        assert result.returncode == 2, (needle, result)
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, (needle, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.bvh").exists()


def test_generate_a_prompt_file_with_exports(micro_run: Path, tmp_path: Path, run_cli, one_thread) -> None:
    """Batch generation: a folder per prompt, a summary, exports that read back, and per-text seeds
    (a prompt's motion does not depend on the other prompts of the batch)."""
    import csv

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# walking\na person walks forward\n\nA PERSON WAVES!\nsomeone jumps\n", encoding="utf-8")
    out = tmp_path / "batch"
    result = run_cli("generate", "--prompts", prompts, "--run", micro_run, "--out", out, "--no-video",
                     "--export", "bvh,glb", "--seed", "3", "--batch-size", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [r["text"] for r in summary["prompts"]] == ["a person walks forward", "A PERSON WAVES!", "someone jumps"]
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [r["folder"] for r in table] == [r["folder"] for r in summary["prompts"]]
    for row in summary["prompts"]:
        folder = out / row["folder"]
        # A generated motion's bones change length a little from frame to frame; the files hold it on
        # the reference skeleton (same bone directions), which they must give back within 1 mm.
        shown = solve_rotations(np.load(folder / "motion_0_joints.npy")).joints()
        assert np.linalg.norm(import_bvh(folder / "motion_0.bvh").raw_joints - shown, axis=-1).max() < 1e-3
        assert np.linalg.norm(_read_glb(folder / "motion_0.glb")[1] - shown, axis=-1).max() < 1e-3
    alone = tmp_path / "alone"
    result = run_cli("generate", "A PERSON WAVES!", "--run", micro_run, "--out", alone, "--no-video", "--seed", "3")
    assert result.returncode == 0, result.stderr
    in_batch = np.load(out / summary["prompts"][1]["folder"] / "motion_0_features.npy")
    assert np.array_equal(np.load(alone / "motion_0_features.npy"), in_batch)
    for args, needle in ((["--prompts", tmp_path / "none.txt"], "not found"), (["x", "--prompts", prompts], "not both"),
                         ([], "give a text"), (["x", "--export", "fbx"], "--export")):  # fmt: skip
        result = run_cli("generate", *args, "--run", micro_run, "--out", tmp_path / "o")
        assert result.returncode == 2 and needle in result.stderr, (args, result.stderr)
