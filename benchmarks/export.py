"""Export to animation tools: time and size per motion, round trips, and rotation continuity.

Usage: python benchmarks/export.py [--data data/embedded] [--bandai data/bandai] [--run runs/demo]
Writes benchmarks/results/export.json and prints a table.

- Time: `export_motion` (solve the rotations, write the file) for a 196-frame motion, median of
  20 repeats in this process, per format; file sizes.
- Round trips: the real HumanML3D clip in ../shared/data (when present) and the embedded test clips,
  BVH re-read by `remogpt data import-bvh`'s importer (bvhio parses it), GLB re-read by pygltflib;
  the largest joint distance to the input, mm.
- Continuity: the largest frame-to-frame change of any local rotation on every embedded test clip
  and (when imported) every Bandai-Namco test clip. A flip is a jump that does not shrink when the
  same motion is sampled more densely, so each clip is also solved at 60 fps: a continuous
  rotation's largest step shrinks about 3×.
- Generated motions (when a trained run is given): their bones change length a little from frame
  to frame, which a skeleton with fixed bones cannot show; the distance between the generated joints
  and the exported skeleton is reported.
- The Khronos glTF validator's verdict on one written .glb, when npm's `gltf-validator` is installed
  (.ci/run installs it into .ci/node).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from remogpt.data.folder import read_split_ids
from remogpt.motion.bvh import import_bvh, resample
from remogpt.motion.export import export_motion, max_rotation_step, read_glb_joints, solve_rotations
from results_io import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SHARED_CLIP = ROOT.parent / "shared" / "data" / "humanml3d_012314_new_joints.npy"
PROMPTS = (
    "a person walks forward", "a person turns around in a full circle", "someone raises both arms over the head",
    "a person jumps twice then waves", "a man kicks with his right leg", "a person lies down on the floor",
)  # fmt: skip


def _clips(folder: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    ids = read_split_ids(folder, "test")[:limit]
    return {i: np.load(folder / "new_joints" / f"{i}.npy").astype(np.float64) for i in ids}


def _round_trip(joints: np.ndarray, work: Path, bones: str = "reference") -> dict[str, float]:
    export_motion(joints, work / "m.bvh", bones=bones)
    export_motion(joints, work / "m.glb", bones=bones)
    bvh = np.linalg.norm(import_bvh(work / "m.bvh").raw_joints - joints, axis=-1).max()
    glb = np.linalg.norm(read_glb_joints(work / "m.glb") - joints, axis=-1).max()
    return {"bvh_mm": float(bvh) * 1000, "glb_mm": float(glb) * 1000}


def _continuity(clips: dict[str, np.ndarray]) -> dict[str, object]:
    steps, dense, ratios = [], [], []
    for joints in clips.values():
        s20 = max_rotation_step(solve_rotations(joints))
        s60 = max_rotation_step(solve_rotations(resample(joints, 20.0, 60.0), 60.0))
        steps.append(s20)
        dense.append(s60)
        ratios.append(s20 / max(s60, 1e-9))
    steps_a, ratios_a = np.array(steps), np.array(ratios)
    worst = int(np.argmax(steps_a))
    return {
        "clips": len(steps),
        "max_step_deg_20fps": {
            "median": float(np.median(steps_a)),
            "p99": float(np.percentile(steps_a, 99)),
            "max": float(steps_a.max()),
        },
        "clips_over_30deg": int((steps_a > 30).sum()),
        "worst_clip": {"id": list(clips)[worst], "step_20fps": steps[worst], "step_60fps": dense[worst]},
        "ratio_20_to_60fps": {"min": float(ratios_a.min()), "median": float(np.median(ratios_a))},
        # A flip keeps its size at 60 fps: ratio ≈ 1. A continuous rotation: ratio ≈ 3.
        "clips_with_ratio_below_1.5": int((ratios_a < 1.5).sum()),
    }


def _timing(joints: np.ndarray, work: Path, repeats: int = 20) -> dict[str, dict[str, float]]:
    out = {}
    for fmt in ("bvh", "glb", "npz"):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            export_motion(joints, work / f"t.{fmt}")
            times.append(time.perf_counter() - t0)
        out[fmt] = {"ms_median": statistics.median(times) * 1000, "ms_min": min(times) * 1000,
                    "kib": (work / f"t.{fmt}").stat().st_size / 1024}  # fmt: skip
    return out


def _generated(run: Path, work: Path) -> dict[str, object]:
    from remogpt.lm.remogpt import ReMoGPT

    model = ReMoGPT.from_pretrained(run)
    results = model.generate_motion(list(PROMPTS), num_samples=2, seed=0)
    deviations, own_bones, rounds, steps = [], [], [], []
    for res in results:
        skeleton = solve_rotations(res.joints)
        shown = skeleton.joints()
        deviations.append(float(np.linalg.norm(shown - res.joints, axis=-1).max()) * 1000)
        own = solve_rotations(res.joints, bones="clip").joints()
        own_bones.append(float(np.linalg.norm(own - res.joints, axis=-1).max()) * 1000)
        export_motion(res.joints, work / "g.bvh")
        export_motion(res.joints, work / "g.glb")
        rounds.append(
            1000
            * max(
                float(np.linalg.norm(import_bvh(work / "g.bvh").raw_joints - shown, axis=-1).max()),
                float(np.linalg.norm(read_glb_joints(work / "g.glb") - shown, axis=-1).max()),
            )
        )
        steps.append(max_rotation_step(skeleton))
    return {"run": str(run), "motions": len(results),
            "generated_vs_exported_skeleton_mm": {"median": statistics.median(deviations), "max": max(deviations)},
            "generated_vs_clip_bones_skeleton_mm": {"median": statistics.median(own_bones), "max": max(own_bones)},
            "file_vs_exported_skeleton_mm_max": max(rounds), "max_step_deg": max(steps)}  # fmt: skip


def _validate(path: Path) -> dict[str, object] | None:
    root = Path(os.environ.get("REMOGPT_GLTF_VALIDATOR", ROOT / ".ci" / "node"))
    if not (root / "node_modules" / "gltf-validator").is_dir() or shutil.which("node") is None:
        return None
    script = ("const v = require('gltf-validator'); const fs = require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))"
              ".then(r => console.log(JSON.stringify({validator: r.validatorVersion, issues: r.issues})));"
              )  # fmt: skip
    env = {**os.environ, "NODE_PATH": str(root / "node_modules")}
    out = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True, env=env, check=True)
    report = json.loads(out.stdout)
    issues = report["issues"]
    return {"validator": report["validator"], "errors": issues["numErrors"], "warnings": issues["numWarnings"],
            "infos": issues["numInfos"], "hints": issues["numHints"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--bandai", type=Path, default=Path("data/bandai"))
    parser.add_argument("--run", type=Path, default=None, help="A trained run (tokenizer/, retriever/, lm/).")
    args = parser.parse_args()
    result: dict[str, object] = {
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        embedded = _clips(args.data)
        long = next(j for j in embedded.values() if len(j) >= 196)[:196]
        result["time_per_196_frame_motion"] = _timing(long, work)
        # Mirrored clips (M…) carry the left bones' lengths on the right: the reference skeleton moves
        # their hands and toes; the clip's own bones (--bones clip) keep them.
        sample = dict(list(embedded.items())[:50])
        for bones in ("reference", "clip"):
            for mirrored in (False, True):
                trips = [_round_trip(j, work, bones) for i, j in sample.items() if i.startswith("M") == mirrored]
                key = f"{bones}_bones_{'mirrored' if mirrored else 'original'}"
                result.setdefault("round_trip_embedded_test_mm", {})[key] = {
                    "clips": len(trips), "bvh_max": max(t["bvh_mm"] for t in trips),
                    "glb_max": max(t["glb_mm"] for t in trips)}  # fmt: skip
        if SHARED_CLIP.is_file():
            result["round_trip_humanml3d_clip_mm"] = _round_trip(np.load(SHARED_CLIP).astype(np.float64), work)
        result["continuity_embedded_test"] = _continuity(embedded)
        if (args.bandai / "test.txt").is_file():
            result["continuity_bandai_test"] = _continuity(_clips(args.bandai))
        if args.run is not None:
            result["generated"] = _generated(args.run, work)
        export_motion(long, work / "v.glb")
        result["gltf_validator"] = _validate(work / "v.glb")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    timing = result["time_per_196_frame_motion"]
    print("| format | ms per 196-frame motion (median) | KiB |\n|---|---:|---:|")
    for fmt, row in timing.items():  # type: ignore[union-attr]
        print(f"| {fmt} | {row['ms_median']:.1f} | {row['kib']:.0f} |")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "time_per_196_frame_motion")}, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
