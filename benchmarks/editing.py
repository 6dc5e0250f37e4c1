"""Editing and extending motion (issue 49), against simple baselines, on held-out test clips.

Usage: python benchmarks/editing.py [--run runs/demo] [--data data/embedded] [--evaluator runs/editing/evaluator]
           [--seeds 0 1 2] [--clips 100] [--frames 40] [--timelines 32]
Writes benchmarks/results/editing.json and editing.md and prints the tables. Without --evaluator's
folder it trains one there first (`remogpt train evaluator`, tiny preset).

- In-between: a test clip of T ≥ frames + 2·16 frames is cut into A (its first (T − N)/2 frames), the
  real middle (N frames) and B (the rest). Each method fills the middle; scored against the real
  middle: mean joint error (world frame, A is identical) and FID of the whole filled clips against
  the real clips (matching evaluator). Methods: ReMoGPT with the clip's caption; ReMoGPT without a
  text (its own caption of B); linear interpolation of the features from A's last frame to B's first;
  the top-1 text→motion retrieved training motion for the caption, its frames resampled to N, joined
  with the same offset blends; and ReMoGPT best of 8 (the sampled middle that arrives nearest to B).
- Continue: the clip's first half, then its caption, for the rest of its length; ADE / FDE against the
  real rest, FID of the whole against the real clips; baselines: the copy (the retrieved motion's
  frames after the same point) and the last pose held (`continuations`).
- Seams (every method, every seam): velocity jump and jerk, the largest over the seam's frame and the
  3 after, against the same statistic at every frame inside the real clips (median and 95th
  percentile), and the share of seams above Real's 95th.
- Foot skating ratio (GMD's definition) of every output and of the Real clips.
- Timeline: `timelines` × 3 test captions with their clips' durations as one timeline; each segment
  scored with the evaluator (R-Top1 among 32, MM-Dist) against generating each caption alone at the
  same length; the root height's spread and the lowest point per 10 s over a 60 s timeline; the time
  per second of motion. A run trained on continuation makes the same timelines twice: later segments
  by the decoder prefix (the default, `editing.SEGMENTS_BY`) and by the continuation task.
Seeds are sampling seeds of the one trained model in --run (the demo's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from results_io import machine, write_results

CONTEXT = 16  # frames: A and B are at least this long (the decoder's context is 4 codes)
WINDOW = 4  # a seam's statistic: the largest over its frame and the 3 after (the blend's start); Real's too


def _evaluator(path: Path, data: Path) -> Any:
    from remogpt.eval.evaluator import Evaluator

    if not (path / "manifest.json").is_file():
        exe = Path(sys.executable).with_name("remogpt")
        subprocess.run([str(exe), "train", "evaluator", "--data", str(data), "--out", str(path)], check=True)
    return Evaluator.from_pretrained(path)


def _resample(features: np.ndarray, frames: int) -> np.ndarray:
    src = np.linspace(0, len(features) - 1, frames)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, len(features) - 1)
    w = (src - lo)[:, None]
    return ((1 - w) * features[lo] + w * features[hi]).astype(np.float32)


def _linear_middle(a_last: np.ndarray, b_first: np.ndarray, frames: int) -> np.ndarray:
    w = (np.arange(1, frames + 1) / (frames + 1))[:, None]
    middle = ((1 - w) * a_last + w * b_first).astype(np.float32)
    middle[:, -4:] = np.where(w < 0.5, a_last[-4:], b_first[-4:])  # contacts stay binary
    return middle


def _blended_copy(copy: np.ndarray, a: np.ndarray, b: np.ndarray, frames: int) -> np.ndarray:
    """The retrieved motion resampled to the gap, joined to both ends exactly as ReMoGPT's frames are."""
    from remogpt.lm import editing

    middle = editing.join(a, _resample(copy, frames), editing.BLEND_FRAMES)
    return editing.join_end(middle, b, min(editing.BLEND_FRAMES, frames))


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": float("nan"), "p95": float("nan"), "n": 0}
    arr = np.asarray(values)
    return {"median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)), "n": len(arr)}


def _seam_row(joint_sets: list[np.ndarray], seams: list[list[int]], real_p95: dict[str, float]) -> dict[str, Any]:
    from remogpt.eval.motion_quality import seam_statistics

    jumps, jerks = [], []
    for joints, at in zip(joint_sets, seams, strict=True):
        stats = seam_statistics(joints, at, window=WINDOW)
        jumps += stats["velocity_jump"]
        jerks += stats["jerk"]
    above = float(np.mean([j > real_p95["velocity_jump"] for j in jumps])) if jumps else None
    return {"velocity_jump": _quantiles(jumps), "jerk": _quantiles(jerks), "above_real_p95": above}


def _fid(evaluator: Any, motions: list[np.ndarray], real_emb: np.ndarray) -> float:
    from remogpt.eval.metrics import frechet_distance

    return float(frechet_distance(evaluator.embed_motions(motions), real_emb))


def _inbetween_and_continue(model: Any, clips: list[Any], frames: int, seed: int, evaluator: Any,
                            real_emb: np.ndarray, real_p95: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    from remogpt.eval.motion_quality import foot_skating_ratio
    from remogpt.lm import editing
    from remogpt.motion import features_to_joints

    methods = ("remogpt", "remogpt_best_of_8", "remogpt_no_text", "linear", "retrieved_copy")
    filled: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    errors: dict[str, list[float]] = {m: [] for m in methods}
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    seams: list[list[int]] = []
    for i, clip in enumerate(clips):
        f = clip.features
        text = clip.captions[0].text
        a_len = (len(f) - frames) // 2
        a, b = f[:a_len], f[a_len + frames :]
        real_joints = features_to_joints(f)
        hit = model.retriever.search(text=text, k=1, target="motion")
        copy = model.retriever.motion(hit.ids[0])
        for method in methods:
            t0 = time.perf_counter()
            if method == "remogpt":
                out = editing.inbetween(model, a, b, frames, text, seed=seed + i).features
            elif method == "remogpt_best_of_8":  # the middle that arrives nearest to B
                out = editing.inbetween(model, a, b, frames, text, seed=seed + i, candidates=8).features
            elif method == "remogpt_no_text":
                out = editing.inbetween(model, a, b, frames, None, seed=seed + i).features
            elif method == "linear":
                out = np.concatenate([a, _linear_middle(a[-1], b[0], frames), b])
            else:
                out = np.concatenate([a, _blended_copy(copy, a, b, frames), b])
            seconds[method] += time.perf_counter() - t0
            filled[method].append(out)
            joints = features_to_joints(out)
            gap = joints[a_len : a_len + frames] - real_joints[a_len : a_len + frames]
            errors[method].append(float(np.linalg.norm(gap, axis=-1).mean()))
        seams.append([a_len, a_len + frames])
    rows: dict[str, Any] = {"inbetween": {}, "continue": continuations(model, clips, seed, evaluator, real_emb,
                                                                        real_p95)}  # fmt: skip
    for method in methods:
        joints = [features_to_joints(m) for m in filled[method]]
        rows["inbetween"][method] = {
            "middle_mpjpe_mm": 1000 * float(np.mean(errors[method])),
            "fid": _fid(evaluator, filled[method], real_emb),
            "seams": _seam_row(joints, seams, real_p95),
            "foot_skating": float(np.mean([foot_skating_ratio(j) for j in joints])),
            "seconds_per_clip": seconds[method] / len(clips),
        }
    return rows


def continuations(model: Any, clips: list[Any], seed: int, evaluator: Any, real_emb: np.ndarray,
                  real_p95: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """Each clip's first half kept, then its caption for the rest of its length: ReMoGPT, the copy of
    the top-1 text→motion retrieved motion after the same point (joined as ReMoGPT's frames are), and
    the last pose held (zero velocity, motion prediction's simplest baseline). Scored against the real
    rest (ADE: mean joint error over its frames, FDE: at its last frame; world frame, the prefix is
    the same), FID of the whole against the real clips, seams, foot skating."""
    from remogpt.eval.motion_quality import foot_skating_ratio
    from remogpt.lm import editing
    from remogpt.motion import features_to_joints, joint_feature_indices, skeleton_for_dim

    n_joints = skeleton_for_dim(model.tokenizer.feature_dim).num_joints
    velocity = [d for j in range(n_joints) for d in joint_feature_indices(j, n_joints)[-3:]]
    outputs: dict[str, list[np.ndarray]] = {"remogpt": [], "retrieved_copy": [], "hold_last_pose": []}
    seams = []
    for i, clip in enumerate(clips):
        f = clip.features
        text = clip.captions[0].text
        half = len(f) // 2
        rest = len(f) - half
        outputs["remogpt"].append(editing.continue_motion(model, text, f[:half], rest, seed=seed + i).features)
        copy = model.retriever.motion(model.retriever.search(text=text, k=1, target="motion").ids[0])
        tail = copy[min(half, len(copy) - 1) :] if len(copy) > half + 4 else copy
        joined = editing.join(f[:half], _resample(tail, rest), editing.BLEND_FRAMES)
        outputs["retrieved_copy"].append(np.concatenate([f[:half], joined]))
        held = np.repeat(f[half - 1 : half], rest, axis=0)
        held[:, :3] = 0.0  # no root rotation or horizontal velocity: standing where the prefix ended
        held[:, velocity] = 0.0  # nor joint velocities
        outputs["hold_last_pose"].append(np.concatenate([f[:half], held]))
        seams.append([half])
    real = [features_to_joints(c.features) for c in clips]
    rows = {}
    for method, motions in outputs.items():
        joints = [features_to_joints(m) for m in motions]
        gaps = [np.linalg.norm(j[s[0] :] - r[s[0] :], axis=-1) for j, r, s in zip(joints, real, seams, strict=True)]
        rows[method] = {"ade_mm": 1000 * float(np.mean([g.mean() for g in gaps])),
                        "fde_mm": 1000 * float(np.mean([g[-1].mean() for g in gaps])),
                        "fid": _fid(evaluator, motions, real_emb), "seams": _seam_row(joints, seams, real_p95),
                        "foot_skating": float(np.mean([foot_skating_ratio(j) for j in joints]))}  # fmt: skip
    return rows


def _timelines(model: Any, clips: list[Any], count: int, seed: int, evaluator: Any,
               real_p95: dict[str, float], segments_by: str | None = None) -> dict[str, Any]:  # fmt: skip
    from remogpt.eval.metrics import mm_dist, r_precision_per_text
    from remogpt.eval.motion_quality import foot_skating_ratio
    from remogpt.lm import editing

    how = {} if segments_by is None else {"segments_by": segments_by}
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(clips), size=min(3 * count, len(clips) - len(clips) % 3), replace=False)
    texts, seg_motions, alone, seam_sets, joint_sets = [], [], [], [], []
    t0 = time.perf_counter()
    total_frames = 0
    for n in range(0, len(picks) - 2, 3):
        group = [clips[p] for p in picks[n : n + 3]]
        entries = [editing.TimelineEntry(c.captions[0].text, (len(c.features) // 4 * 4) / 20) for c in group]
        result = editing.timeline(model, entries, seed=seed + n, **how)
        total_frames += len(result.features)
        seam_sets.append(result.seams)
        joint_sets.append(result.joints)
        for seg in result.segments:
            texts.append(seg["text"])
            seg_motions.append(result.features[seg["start"] : seg["start"] + seg["frames"]])
    seconds = time.perf_counter() - t0
    for text, motion in zip(texts, seg_motions, strict=True):
        codes = min(len(motion) // 4, model.cfg.max_motion_codes)
        alone.append(model.generate_motion([text], seed=seed, num_codes=codes)[0].features)
    text_emb = evaluator.embed_texts(texts)
    row: dict[str, Any] = {"segments": len(texts), "seconds_per_second_of_motion": seconds / (total_frames / 20)}
    for name, motions in (("timeline_segments", seg_motions), ("each_alone", alone)):
        emb = evaluator.embed_motions(motions)
        hits = r_precision_per_text(text_emb, emb, top_k=1) if len(texts) >= 32 else None  # expected, batches of 32
        row[name] = {"r_top1": float(np.mean(hits)) if hits is not None else None,
                     "mm_dist": float(mm_dist(text_emb, emb))}  # fmt: skip
    row["seams"] = _seam_row(joint_sets, seam_sets, real_p95)
    row["foot_skating"] = float(np.mean([foot_skating_ratio(j) for j in joint_sets]))
    # 60 s: six test captions, 10 s each.
    sixty = editing.timeline(model, [editing.TimelineEntry(clips[p].captions[0].text, 10.0) for p in picks[:6]],
                             seed=seed, **how)  # fmt: skip
    floors = sixty.joints[..., 1].min(axis=1).reshape(6, -1).min(axis=1)
    row["sixty_seconds"] = {"frames": len(sixty.features), "root_height_min": float(sixty.features[:, 3].min()),
                            "root_height_max": float(sixty.features[:, 3].max()),
                            "lowest_point_per_10s_m": [round(float(x), 4) for x in floors]}  # fmt: skip
    return row


def _summary(per_seed: list[dict[str, Any]], path: list[str]) -> dict[str, float]:
    values = []
    for run in per_seed:
        v: Any = run
        for key in path:
            v = v[key]
        if v is not None:
            values.append(float(v))
    if not values:  # too few items for the statistic (e.g. R-Top1 needs 32)
        return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/editing/evaluator"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--timelines", type=int, default=32)
    args = parser.parse_args()

    import torch

    from remogpt.data import load_split
    from remogpt.eval.motion_quality import foot_skating_ratio, frame_statistics
    from remogpt.lm import ReMoGPT
    from remogpt.lm import editing as lm_editing
    from remogpt.motion import features_to_joints

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model = ReMoGPT.from_pretrained(args.run)
    evaluator = _evaluator(args.evaluator, args.data)
    test = [c for c in load_split(args.data, "test") if "#" not in c.id and c.captions]
    long_enough = [c for c in test if len(c.features) >= args.frames + 2 * CONTEXT]
    clips = [long_enough[i] for i in np.random.default_rng(0).permutation(len(long_enough))[: args.clips]]
    real_emb = evaluator.embed_motions([c.features for c in clips])
    real_joints = [features_to_joints(c.features) for c in clips]
    per_clip = [frame_statistics(j, window=WINDOW) for j in real_joints]
    inside = {k: np.concatenate([stats[k] for stats in per_clip]) for k in ("velocity_jump", "jerk")}
    real = {k: _quantiles(list(v)) for k, v in inside.items()}
    real_p95 = {k: v["p95"] for k, v in real.items()}
    real["foot_skating"] = float(np.mean([foot_skating_ratio(j) for j in real_joints]))
    real["fid_real_vs_itself"] = 0.0
    per_seed = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        print(f"seed {seed}: in-between and continue on {len(clips)} clips, {args.timelines} timelines …", flush=True)
        row = _inbetween_and_continue(model, clips, args.frames, seed, evaluator, real_emb, real_p95)
        row["timeline"] = _timelines(model, test, args.timelines, seed, evaluator, real_p95)
        if model.continuation_trained:  # the same timelines with later segments by the trained task
            row["timeline_task"] = _timelines(model, test, args.timelines, seed, evaluator, real_p95,
                                              segments_by=lm_editing.TASK)  # fmt: skip
        row["seed"], row["seconds"] = seed, time.perf_counter() - t0
        per_seed.append(row)
    summary: dict[str, Any] = {"inbetween": {}, "continue": {}, "timeline": {}, "timeline_task": {}}
    for method in per_seed[0]["inbetween"]:
        summary["inbetween"][method] = {
            key: _summary(per_seed, ["inbetween", method, *path])
            for key, path in (("middle_mpjpe_mm", ["middle_mpjpe_mm"]), ("fid", ["fid"]),
                              ("seam_jump_median", ["seams", "velocity_jump", "median"]),
                              ("seams_above_real_p95", ["seams", "above_real_p95"]), ("foot_skating", ["foot_skating"]))
        }  # fmt: skip
    for method in per_seed[0]["continue"]:
        summary["continue"][method] = {
            key: _summary(per_seed, ["continue", method, *path])
            for key, path in (("ade_mm", ["ade_mm"]), ("fde_mm", ["fde_mm"]), ("fid", ["fid"]),
                              ("seam_jump_median", ["seams", "velocity_jump", "median"]),
                              ("seams_above_real_p95", ["seams", "above_real_p95"]), ("foot_skating", ["foot_skating"]))
        }  # fmt: skip
    for key, path in (("segments_r_top1", ["timeline_segments", "r_top1"]),
                      ("alone_r_top1", ["each_alone", "r_top1"]),
                      ("segments_mm_dist", ["timeline_segments", "mm_dist"]),
                      ("alone_mm_dist", ["each_alone", "mm_dist"]),
                      ("seam_jump_median", ["seams", "velocity_jump", "median"]),
                      ("seams_above_real_p95", ["seams", "above_real_p95"]), ("foot_skating", ["foot_skating"]),
                      ("seconds_per_second_of_motion", ["seconds_per_second_of_motion"])):  # fmt: skip
        for name in ("timeline", "timeline_task"):
            if name in per_seed[0]:
                summary[name][key] = _summary(per_seed, [name, *path])
    result = {
        "benchmark": "editing", "date": time.strftime("%Y-%m-%d"), "run": str(args.run), "data": str(args.data),
        "clips": len(clips), "frames": args.frames, "seeds": args.seeds,
        "machine": machine(),
        "real": real, "summary": summary, "per_seed": per_seed,
    }  # fmt: skip
    write_results("editing", result, _markdown(result))


def _cell(s: dict[str, float], digits: int = 3) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _markdown(result: dict[str, Any]) -> str:
    real, s = result["real"], result["summary"]
    lines = [f"# Editing and extending motion ({result['date']}, {result['clips']} test clips, seeds "
             f"{', '.join(map(str, result['seeds']))}; median (min–max) over seeds)", "",
             f"Real clips inside: velocity jump median {real['velocity_jump']['median']:.3f} m/s, p95 "
             f"{real['velocity_jump']['p95']:.3f}; jerk median {real['jerk']['median']:.1f} m/s³, p95 "
             f"{real['jerk']['p95']:.1f}; foot skating {real['foot_skating']:.3f}.", "",
             f"## In-between ({result['frames']} frames)", "",
             "| method | middle MPJPE mm | FID | seam jump m/s | seams > Real p95 | foot skating |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for method, row in s["inbetween"].items():
        lines.append(f"| {method} | {_cell(row['middle_mpjpe_mm'], 1)} | {_cell(row['fid'])} | "
                     f"{_cell(row['seam_jump_median'])} | {_cell(row['seams_above_real_p95'], 2)} | "
                     f"{_cell(row['foot_skating'])} |")  # fmt: skip
    lines += ["", "## Continue (first half kept, the caption for the rest)", "",
              "| method | ADE mm | FDE mm | FID | seam jump m/s | seams > Real p95 | foot skating |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method, row in s["continue"].items():
        lines.append(f"| {method} | {_cell(row['ade_mm'], 1)} | {_cell(row['fde_mm'], 1)} | {_cell(row['fid'])} | "
                     f"{_cell(row['seam_jump_median'])} | "
                     f"{_cell(row['seams_above_real_p95'], 2)} | {_cell(row['foot_skating'])} |")  # fmt: skip
    t, task = s["timeline"], s.get("timeline_task") or {}
    head = "| | timeline segments (later ones by the decoder prefix) |"
    head += " by the continuation task |" if task else ""
    lines += ["", "## Timelines (3 test captions each, their clips' durations)", "",
              head + " each caption alone |", "|---|---|---|" + ("---|" if task else "")]  # fmt: skip
    for label, key in (("evaluator R-Top1 (32)", "r_top1"), ("MM-Dist", "mm_dist")):
        middle = f" {_cell(task['segments_' + key])} |" if task else ""
        lines.append(f"| {label} | {_cell(t['segments_' + key])} |{middle} {_cell(t['alone_' + key])} |")
    for name, row in (("decoder prefix", t), ("continuation task", task)):
        if row:
            lines += ["", f"By the {name}: seam jump {_cell(row['seam_jump_median'])} m/s, seams above Real's p95 "
                      f"{_cell(row['seams_above_real_p95'], 2)}, foot skating {_cell(row['foot_skating'])}, "
                      f"{_cell(row['seconds_per_second_of_motion'])} s of compute per second of motion."]  # fmt: skip
    lines.append("")
    sixty = result["per_seed"][0]["timeline"]["sixty_seconds"]
    lines += [f"60 s timeline (seed {result['seeds'][0]}): root height {sixty['root_height_min']:.3f}–"
              f"{sixty['root_height_max']:.3f} m, lowest point per 10 s {sixty['lowest_point_per_10s_m']} m.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
