"""`remogpt data check`: validate a HumanML3D-layout folder and report every problem at once.

A corrupt `.npy` or a malformed caption line found here costs a minute; found by a training run
it costs the run, or worse, surfaces as a NaN metric. So the check reads everything, names each
broken file, and also reports the physical plausibility of the motions (bone lengths, floor
contact, foot skating), which is how a generated data set shows it is fit to learn from.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from remogpt.artifacts import InputFileError, load_npy
from remogpt.data.folder import SPLITS, DataFormatError, load_captions, load_features, read_split_ids
from remogpt.data.normalize import Normalizer
from remogpt.motion.features import features_to_joints
from remogpt.motion.skeleton import HUMANML3D, KIT, SkeletonSpec, skeleton_for_dim

__all__ = ["CheckReport", "Problem", "check_folder", "composition_keys", "motion_quality", "split_overlap"]

#: The embedded data's compositional test split: no composition or caption of it may occur in train.
COMPOSITIONAL_SPLIT = "test_compositional"
#: Splits checked when their file is there.
OPTIONAL_SPLITS = (COMPOSITIONAL_SPLIT,)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    severity: Severity
    path: str  # relative to the folder
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():7s} {self.path}: {self.message}"


@dataclass
class CheckReport:
    root: Path
    skeleton: SkeletonSpec | None
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, severity: Severity, path: str, message: str) -> None:
        self.problems.append(Problem(severity, path, message))

    def format(self, max_problems: int = 200) -> str:
        s = self.stats
        skel = (
            f"{self.skeleton.name} skeleton, {self.skeleton.feature_dim} dims" if self.skeleton else "unknown skeleton"
        )
        lines = [f"data check: {self.root} ({skel})"]
        if "split_ids" in s:
            lines.append("  split ids: " + ", ".join(f"{k} {v}" for k, v in s["split_ids"].items()))
        for split, o in s.get("overlap_with_train", {}).items():
            comp = (f"{o['compositions_in_train']} of {o['clips']} compositions "
                    f"({100 * o['compositions_in_train_share']:.0f} %)"
                    if "compositions_in_train" in o else "compositions unknown (no labels.jsonl)")  # fmt: skip
            caps = (
                f"{o['captions_in_train']} of {o['captions']} captions "
                f"({100 * (o['captions_in_train_share'] or 0):.0f} %)"
            )
            lines.append(f"  {split}: {comp} and {caps} occur verbatim in train")
        if "samples" in s:
            lo, hi = s.get("length_range", ("?", "?"))
            lines.append(
                f"  samples kept by the loader ({lo} ≤ frames < {hi}, timed captions split out): "
                + ", ".join(f"{k} {v}" for k, v in s["samples"].items())
            )
        if "clips" in s:
            lines.append(
                f"  clips {s['clips']} (mirrored {s.get('mirrored', 0)}), frames {s.get('frames', 0)} "
                f"({s.get('hours', 0):.2f} h), length min/mean/max {s.get('length_min')}/"
                f"{s.get('length_mean', 0):.1f}/{s.get('length_max')}"
            )
        if "captions" in s:
            lines.append(
                f"  captions {s['captions']} ({s.get('timed_captions', 0)} timed), "
                f"distinct {s.get('distinct_captions')}, vocabulary {s.get('vocabulary')} words"
            )
        if "quality" in s:
            q = s["quality"]
            lines.append(
                f"  physical: bone-length spread max {q['bone_length_spread_max']:.2e} m, "
                f"lowest point {q['lowest_point_min']:+.4f} m, foot skating in contact "
                f"mean {q['foot_skating_mean']:.4f} / p95 {q['foot_skating_p95']:.4f} m/frame, "
                f"contact frames {100 * q['contact_fraction']:.0f}%"
            )
        if self.problems:
            lines.append(f"problems ({len(self.errors)} errors, {len(self.warnings)} warnings):")
            ordered = self.errors + self.warnings
            lines += [f"  {p}" for p in ordered[:max_problems]]
            if len(ordered) > max_problems:
                lines.append(f"  … and {len(ordered) - max_problems} more")
        lines.append("result: OK" if self.ok else f"result: FAILED ({len(self.errors)} errors)")
        return "\n".join(lines)


def motion_quality(
    joints: np.ndarray, skeleton: SkeletonSpec = HUMANML3D, fps: float | None = None
) -> dict[str, float]:
    """Physical plausibility of one motion's joints (T, J, 3), metres.

    bone_length_spread: max over bones of (max − min) length over time; lowest_point: lowest joint
    height (negative = below the floor); foot_skating: horizontal speed (m/frame) of foot joints on
    frames where the reference contact rule marks them in contact; contact_fraction.
    """
    j = np.asarray(joints, dtype=np.float64)
    parents = skeleton.parents
    child = list(range(1, skeleton.num_joints))
    lengths = np.linalg.norm(j[:, child] - j[:, [parents[k] for k in child]], axis=-1)
    spread = float((lengths.max(0) - lengths.min(0)).max()) if len(j) else 0.0
    feet = list(skeleton.left_foot + skeleton.right_foot)
    step = j[1:, feet] - j[:-1, feet]
    in_contact = np.square(step).sum(-1) < skeleton.feet_threshold
    horizontal = np.linalg.norm(step[..., [0, 2]], axis=-1)
    skating = horizontal[in_contact]
    return {
        "bone_length_spread": spread,
        "lowest_point": float(j[..., 1].min()),
        "foot_skating": float(skating.mean()) if skating.size else 0.0,
        "foot_skating_values": skating,  # type: ignore[dict-item]
        "contact_fraction": float(in_contact.mean()) if in_contact.size else 0.0,
    }


def _read_shape(path: Path) -> tuple[int, ...] | None:
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
        return tuple(arr.shape)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return None


def _majority_skeleton(shapes: Iterable[tuple[int, ...] | None]) -> SkeletonSpec | None:
    dims = Counter(s[-1] for s in shapes if s and len(s) == 2)
    for dim, _ in dims.most_common():
        try:
            return skeleton_for_dim(dim)
        except ValueError:
            continue
    return None


def check_folder(
    root: Path | str, skeleton: SkeletonSpec | None = None, progress: bool = False, workers: int = 1
) -> CheckReport:
    """Validate a data folder; never raises for problems of the data, reports them.

    `workers` > 1 checks the clips of a large folder in that many processes (same report)."""
    root = Path(root)
    report = CheckReport(root=root, skeleton=skeleton)
    if not root.is_dir():
        report.add("error", str(root), "folder not found")
        return report
    vec_dir, joint_dir, text_dir = root / "new_joint_vecs", root / "new_joints", root / "texts"
    for d in (vec_dir, text_dir):
        if not d.is_dir():
            report.add("error", d.name + "/", "directory not found")
    if not joint_dir.is_dir():
        report.add("warning", "new_joints/", "directory not found (joints can be recovered from the features)")

    # Splits.
    split_ids: dict[str, list[str]] = {}
    for split in SPLITS + tuple(s for s in OPTIONAL_SPLITS if (root / f"{s}.txt").is_file()):
        try:
            split_ids[split] = read_split_ids(root, split)
        except DataFormatError as exc:
            report.add("error" if split in ("train", "test") else "warning", f"{split}.txt", _strip(exc, root))
    report.stats["split_ids"] = {k: len(v) for k, v in split_ids.items()}
    seen: dict[str, str] = {}
    for split, ids in split_ids.items():
        for clip_id, n in Counter(ids).items():
            if n > 1:
                report.add("warning", f"{split}.txt", f"id {clip_id!r} listed {n} times")
            if clip_id in seen and seen[clip_id] != split:
                report.add("error", f"{split}.txt", f"id {clip_id!r} is also in {seen[clip_id]}.txt (split leak)")
            seen.setdefault(clip_id, split)
    all_ids = list(dict.fromkeys(i for ids in split_ids.values() for i in ids))

    # Skeleton: the folder's statistics, else the majority of file widths.
    vec_files = {p.stem: p for p in vec_dir.glob("*.npy")} if vec_dir.is_dir() else {}
    text_files = {p.stem: p for p in text_dir.glob("*.txt")} if text_dir.is_dir() else {}
    if report.skeleton is None:
        report.skeleton = _majority_skeleton(_read_shape(vec_files[i]) for i in all_ids[:2000] if i in vec_files)
    if report.skeleton is None:
        report.skeleton = _majority_skeleton(_read_shape(p) for p in list(vec_files.values())[:2000])
    spec = report.skeleton
    if spec is None:
        report.add("error", "new_joint_vecs/", "no readable motion file with a known feature width (263 or 251)")
        return report
    report.stats["length_range"] = (spec.min_frames, spec.max_frames)

    _check_statistics(root, spec, report)

    for stem in sorted(set(text_files) - set(vec_files)):
        report.add("warning", f"texts/{stem}.txt", "captions without a motion file")
    unlisted = set(vec_files) - set(all_ids)
    if unlisted:
        report.stats["unlisted_motions"] = len(unlisted)

    split_of = {i: s for s, ids in split_ids.items() for i in ids}
    tasks = [
        _ClipTask(clip_id, split_of[clip_id], clip_id in vec_files, clip_id in text_files, joint_dir.is_dir())
        for clip_id in all_ids
    ]
    summary = _ClipSummary(dict.fromkeys(split_ids, 0))
    for result in _run_clip_checks(root, spec, tasks, workers, progress):
        report.problems += result.problems
        summary.add(result)
    if summary.lengths:
        report.stats.update(
            mirrored=sum(1 for i in all_ids if i.startswith("M") and i in vec_files), **summary.stats(spec.fps)
        )
        report.stats["quality"] = summary.quality()
    if "train" in split_ids and text_dir.is_dir():
        report.stats["overlap_with_train"] = split_overlap(root, split_ids)
        leaked = report.stats["overlap_with_train"].get(COMPOSITIONAL_SPLIT, {})
        if leaked.get("compositions_in_train") or leaked.get("captions_in_train"):
            report.add("error", f"{COMPOSITIONAL_SPLIT}.txt",
                       f"{leaked.get('compositions_in_train', 0)} compositions and {leaked['captions_in_train']} "
                       "captions "
                       "also occur in train (the split must have none)")  # fmt: skip
    return report


def composition_keys(root: Path | str) -> dict[str, str]:
    """Clip id → what it composes (`compose.composition_key`: phases, actions, counts, sides,
    directions), for every clip of labels.jsonl and its mirror; {} for a folder without the embedded
    generator's labels (HumanML3D, KIT-ML, Bandai). Two clips with equal keys show the same thing, so
    one is the other's answer: the split check and the LM's training context use this."""
    import json

    from remogpt.data.synth.compose import composition_key, mirror_labels

    labels = Path(root) / "labels.jsonl"
    keys: dict[str, str] = {}
    if not labels.is_file():
        return keys
    for number, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{labels}:{number}: not a JSON line ({exc.msg})") from None
        if "phases" not in row:  # another data set's labels (Bandai's content/style): no composition
            continue
        keys[row["id"]] = composition_key(row)
        keys["M" + row["id"]] = composition_key(mirror_labels(row))
    return keys


def split_overlap(root: Path | str, split_ids: dict[str, list[str]] | None = None) -> dict[str, dict[str, Any]]:
    """Per split other than train: how many of its captions, and (with labels.jsonl) how many of its
    clips' compositions, occur verbatim in train. A split that shares most of them rewards copying."""

    root = Path(root)
    if split_ids is None:
        split_ids = {s: read_split_ids(root, s) for s in SPLITS + OPTIONAL_SPLITS if (root / f"{s}.txt").is_file()}

    def captions(clip_id: str) -> list[str]:
        path = root / "texts" / f"{clip_id}.txt"
        if not path.is_file():
            return []
        try:
            return [c.text for c in load_captions(path)]
        except (DataFormatError, UnicodeDecodeError):
            return []

    keys = composition_keys(root)
    train_caps = {t for i in split_ids.get("train", []) for t in captions(i)}
    train_keys = {keys[i] for i in split_ids.get("train", []) if i in keys}
    out: dict[str, dict[str, Any]] = {}
    for split, ids in split_ids.items():
        if split == "train":
            continue
        caps = [t for i in ids for t in captions(i)]
        in_train = sum(t in train_caps for t in caps)
        row: dict[str, Any] = {"clips": len(ids), "captions": len(caps), "captions_in_train": in_train,
                               "captions_in_train_share": in_train / len(caps) if caps else None}  # fmt: skip
        labelled = [keys[i] for i in ids if i in keys]
        if labelled:
            shared = sum(k in train_keys for k in labelled)
            row.update(compositions_in_train=shared, compositions_in_train_share=shared / len(labelled))
        out[split] = row
    return out


@dataclass(frozen=True)
class _ClipTask:
    clip_id: str
    split: str
    has_motion: bool
    has_captions: bool
    joints_folder: bool


@dataclass
class _ClipResult:
    """What one clip contributes to the report (computed in a worker process when there are several)."""

    split: str
    problems: list[Problem] = field(default_factory=list)
    frames: int | None = None  # None: the motion is missing or unreadable
    captions: list[str] = field(default_factory=list)
    timed: int = 0
    samples: int = 0  # samples the loader keeps: the whole clip and each timed span in range
    quality: dict[str, Any] | None = None


@dataclass
class _ClipSummary:
    samples: dict[str, int]
    lengths: list[int] = field(default_factory=list)
    captions: int = 0
    timed: int = 0
    distinct: set[str] = field(default_factory=set)
    vocab: set[str] = field(default_factory=set)
    qualities: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: _ClipResult) -> None:
        if result.frames is None:
            return
        self.lengths.append(result.frames)
        self.captions += len(result.captions)
        self.timed += result.timed
        for text in result.captions:
            self.distinct.add(text.lower())
            self.vocab.update(w.lower() for w in text.replace(".", " ").replace(",", " ").split())
        self.samples[result.split] += result.samples
        if result.quality is not None:
            self.qualities.append(result.quality)

    def stats(self, fps: float) -> dict[str, Any]:
        arr = np.asarray(self.lengths)
        return dict(
            clips=len(arr), frames=int(arr.sum()), hours=float(arr.sum() / fps / 3600), length_min=int(arr.min()),
            length_mean=float(arr.mean()), length_max=int(arr.max()), captions=self.captions,
            timed_captions=self.timed, distinct_captions=len(self.distinct), vocabulary=len(self.vocab),
            samples=self.samples,
        )  # fmt: skip

    def quality(self) -> dict[str, float]:
        qs = self.qualities
        skate = np.concatenate([q["foot_skating_values"] for q in qs]) if qs else np.zeros(0)
        return {
            "bone_length_spread_max": float(max(q["bone_length_spread"] for q in qs)),
            "lowest_point_min": float(min(q["lowest_point"] for q in qs)),
            "foot_skating_mean": float(skate.mean()) if skate.size else 0.0,
            "foot_skating_p95": float(np.percentile(skate, 95)) if skate.size else 0.0,
            "contact_fraction": float(np.mean([q["contact_fraction"] for q in qs])),
        }


def _run_clip_checks(
    root: Path, spec: SkeletonSpec, tasks: list[_ClipTask], workers: int, progress: bool
) -> Iterable[_ClipResult]:
    """Per-clip results in the order of `tasks`, from `workers` processes for large folders."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="checking clips", unit="clip", disable=not progress)
    try:
        if workers <= 1 or len(tasks) < _PARALLEL_MIN_CLIPS:
            for task in tasks:
                yield _check_clip(root, spec, task)
                bar.update()
            return
        from remogpt.workers import worker_pool

        chunk = max(1, min(256, len(tasks) // (8 * workers)))
        with worker_pool(workers) as pool:
            for result in pool.map(_check_clip, [root] * len(tasks), [spec] * len(tasks), tasks, chunksize=chunk):
                yield result
                bar.update()
    finally:
        bar.close()


_PARALLEL_MIN_CLIPS = 1000  # below this, starting worker processes costs more than it saves


def _check_clip(root: Path, spec: SkeletonSpec, task: _ClipTask) -> _ClipResult:
    """Every check of one clip: its motion, captions, joints file and physical plausibility."""
    clip_id, result = task.clip_id, _ClipResult(task.split)
    rel_vec = f"new_joint_vecs/{clip_id}.npy"
    if not task.has_motion:
        result.problems.append(Problem("error", rel_vec, f"listed in {task.split}.txt but missing"))
        return result
    vec_path = root / rel_vec
    try:
        feats = load_features(vec_path, spec)
    except DataFormatError as exc:
        result.problems.append(Problem("error", rel_vec, _strip(exc, root, vec_path)))
        return result
    result.frames = len(feats)
    _check_captions(root, spec, task, result)
    rel_j = f"new_joints/{clip_id}.npy"
    joints = None
    if task.joints_folder:
        if not (root / rel_j).is_file():
            result.problems.append(Problem("warning", rel_j, "missing"))
        else:
            joints = _check_joints_file(root / rel_j, rel_j, feats, spec, result.problems)
    recovered = features_to_joints(feats.astype(np.float64), skeleton=spec)
    if joints is not None and joints.shape == recovered.shape:
        err = float(np.abs(joints - recovered).max())
        if err > 1e-3:
            message = f"differs from the joints recovered from {rel_vec} by up to {err:.3g} m"
            result.problems.append(Problem("warning", rel_j, message))
    result.quality = motion_quality(recovered, spec)
    return result


def _check_captions(root: Path, spec: SkeletonSpec, task: _ClipTask, result: _ClipResult) -> None:
    """The clip's caption lines: readable, tagged tokens, timed spans inside the clip."""
    rel_txt, frames = f"texts/{task.clip_id}.txt", result.frames or 0
    captions = []
    if not task.has_captions:
        result.problems.append(Problem("error", rel_txt, "missing: the motion has no captions"))
    else:
        try:
            captions = load_captions(root / rel_txt)
        except DataFormatError as exc:
            result.problems.append(Problem("error", rel_txt, _strip(exc, root, root / rel_txt)))

    def warn(line: int, message: str) -> None:
        result.problems.append(Problem("warning", rel_txt, f"line {line + 1}: {message}"))

    has_whole = False
    for k, cap in enumerate(captions):
        result.captions.append(cap.text)
        bad_tokens = [t for t in cap.tokens if "/" not in t]
        if bad_tokens:
            warn(k, f"tokens without '/POS': {bad_tokens[:3]}")
        if cap.is_whole_clip:
            has_whole = True
            continue
        result.timed += 1
        a, b = int(cap.start * spec.fps), int(cap.end * spec.fps)
        if b <= a:
            warn(k, f"span {cap.start}–{cap.end} s is empty")
        elif a >= frames:
            warn(k, f"span starts after the clip ({frames} frames)")
        elif spec.min_frames <= min(b, frames) - a < spec.max_frames:
            result.samples += 1
    if has_whole and spec.min_frames <= frames < spec.max_frames:
        result.samples += 1


def _check_joints_file(
    path: Path, rel: str, feats: np.ndarray, spec: SkeletonSpec, problems: list[Problem]
) -> np.ndarray | None:
    try:
        joints = load_npy(path)
    except InputFileError as exc:
        problems.append(Problem("error", rel, str(exc).removeprefix(f"{path}: ")))
        return None
    if joints.ndim != 3 or joints.shape[1:] != (spec.num_joints, 3):
        other = KIT if spec is HUMANML3D else HUMANML3D
        hint = f" (looks like a {other.name} file)" if joints.ndim == 3 and joints.shape[1] == other.num_joints else ""
        problems.append(Problem("error", rel, f"expected shape (T, {spec.num_joints}, 3), got {joints.shape}{hint}"))
        return None
    if not np.isfinite(joints).all():
        problems.append(Problem("error", rel, f"contains {int((~np.isfinite(joints)).sum())} NaN/inf values"))
        return None
    if len(joints) != len(feats):
        problems.append(Problem("warning", rel, f"{len(joints)} frames but the features have {len(feats)}"))
        return None
    return joints.astype(np.float64)


def _check_statistics(root: Path, spec: SkeletonSpec, report: CheckReport) -> None:
    have = [(root / n).exists() for n in ("Mean.npy", "Std.npy")]
    if not any(have):
        report.add(
            "warning",
            "Mean.npy",
            "no Mean.npy/Std.npy: they will be computed from the train split on first use",
        )
        return
    try:
        norm = Normalizer.load(root)
    except DataFormatError as exc:
        report.add("error", "Mean.npy/Std.npy", _strip(exc, root))
        return
    if norm.dim != spec.feature_dim:
        report.add("error", "Mean.npy", f"{norm.dim} dims, the motions have {spec.feature_dim}")


def _strip(exc: Exception, root: Path, path: Path | None = None) -> str:
    """The message without the path prefix (the report prints the relative path already)."""
    text = str(exc)
    for prefix in filter(None, (str(path) if path else None, str(root))):
        if text.startswith(prefix):
            text = text[len(prefix) :].lstrip(":/ ")
    return text
