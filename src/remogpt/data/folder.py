"""Reading a HumanML3D-layout folder (HumanML3D, KIT-ML, or the embedded data set).

The rules are those of the reference data loader (Guo et al. 2022), because every published
number depends on which samples they keep: split files name the clips; a caption with a time span
becomes its own sample cut from its clip; clips and spans are kept when min_frames ≤ T < 200.
Unlike the reference, which silently skips any clip that fails to load, a broken file here is an
error naming the file (`remogpt data check` lists them all at once).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.artifacts import InputFileError, load_npy
from remogpt.errors import RemogptError
from remogpt.motion.skeleton import MotionFormatError, SkeletonSpec, check_feature_values, skeleton_for_dim

__all__ = [
    "SPLITS",
    "Caption",
    "DataFormatError",
    "MotionClip",
    "SampleId",
    "caption_file",
    "check_id",
    "detect_skeleton",
    "load_captions",
    "load_features",
    "load_split",
    "motion_file",
    "parse_caption_line",
    "parse_sample_id",
    "read_split_ids",
]

SPLITS = ("train", "val", "test")


class DataFormatError(RemogptError, ValueError):
    """A file of a data folder that is missing, unreadable or malformed; the message names it."""


@dataclass(frozen=True)
class Caption:
    text: str
    tokens: tuple[str, ...]  # "word/POS" pairs as HumanML3D ships them
    start: float = 0.0  # seconds; 0.0 and 0.0 mean the whole clip
    end: float = 0.0

    @property
    def is_whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0


@dataclass
class MotionClip:
    """One training/evaluation sample: raw (unnormalised) features and their captions."""

    id: str  # sample id; a timed caption's sample is "<clip>#<start>-<end>"
    clip_id: str  # the file it comes from
    features: np.ndarray  # (T, D) float32
    captions: list[Caption] = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(self.features.shape[0])

    @property
    def mirror_id(self) -> str:
        """Id of the left/right mirrored clip (HumanML3D names it with an `M` prefix)."""
        return self.clip_id[1:] if self.clip_id.startswith("M") else "M" + self.clip_id


_ID_FORBIDDEN = frozenset('/\\:\0*?"<>|')


def check_id(clip_id: object, where: str) -> str:
    """A clip id read from a file, refused unless it is a plain file name (no folder, no `..`).

    Ids are data: they become file names (`new_joint_vecs/<id>.npy`, `<cache>/<id>.npy`), and an id
    like `../x` or `/etc/x` would otherwise read, write or delete outside the folder. The characters
    refused are those that are not portable in a file name on Linux, macOS or Windows."""
    if not isinstance(clip_id, str) or not clip_id or clip_id in (".", ".."):
        raise DataFormatError(f"{where}: clip id {clip_id!r} is not a file name")
    bad = sorted(set(clip_id) & _ID_FORBIDDEN) or [c for c in clip_id if ord(c) < 32]
    if bad or clip_id.startswith(".") or clip_id != clip_id.strip():
        why = f"contains {bad[0]!r}" if bad else "starts with '.' or has surrounding spaces"
        raise DataFormatError(f"{where}: clip id {clip_id!r} {why}; ids must be plain file names")
    return clip_id


def staging_folder(out: Path) -> Path:
    """An empty `<out>.partial` with the clip subfolders, where a build writes before `publish_folder`
    moves it into place (an interrupted build never leaves a half-written `out`)."""
    import shutil

    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("new_joint_vecs", "new_joints", "texts"):
        (tmp / sub).mkdir(parents=True)
    return tmp


def publish_folder(tmp: Path, out: Path) -> None:
    """Replace `out` by the finished staging folder `tmp`."""
    import os
    import shutil

    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def write_folder_index(root: Path, splits: dict[str, list[str]], moments: Any, labels: list[dict[str, Any]]) -> None:
    """The files beside a built folder's clips: `<split>.txt`, `Mean.npy`/`Std.npy` (the reference's
    block-averaged statistics of `moments`, a `FeatureMoments` of the train split) and `labels.jsonl`."""
    import json

    from remogpt.artifacts import atomic_save_npy

    for split, ids in splits.items():
        (root / f"{split}.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    mean, std = moments.grouped_mean_std()
    atomic_save_npy(root / "Mean.npy", mean)
    atomic_save_npy(root / "Std.npy", std)
    with (root / "labels.jsonl").open("w", encoding="utf-8") as fh:
        for row in labels:
            fh.write(json.dumps(row, sort_keys=True) + "\n")


def motion_file(root: Path | str, clip_id: str) -> Path:
    """`root/new_joint_vecs/<id>.npy`, the one place this path is made (the id checked)."""
    return Path(root) / "new_joint_vecs" / f"{check_id(clip_id, str(root))}.npy"


def caption_file(root: Path | str, clip_id: str) -> Path:
    """`root/texts/<id>.txt`, the one place this path is made (the id checked)."""
    return Path(root) / "texts" / f"{check_id(clip_id, str(root))}.txt"


@dataclass(frozen=True)
class SampleId:
    """A sample id taken apart: a whole clip ("000123") or a timed caption's segment of it
    ("000123#1.5-4"; seconds). The one place these strings are made and read."""

    clip_id: str
    start: float = 0.0
    end: float = 0.0
    span: str = ""  # the "1.5-4" text, kept so that make → parse → make is the identity

    @classmethod
    def segment(cls, clip_id: str, start: float, end: float) -> SampleId:
        return cls(clip_id, start, end, f"{start:g}-{end:g}")

    @property
    def is_segment(self) -> bool:
        return bool(self.span)

    @property
    def family(self) -> str:
        """The clip without its mirror prefix: "000123", "M000123" and "000123#1-4" → "000123"."""
        base = self.clip_id
        return base[1:] if base.startswith("M") and len(base) > 1 else base

    def frames(self, fps: float) -> slice:
        """The segment's frames in its clip (the reference loader's int(start·fps) : int(end·fps))."""
        if not self.is_segment:
            return slice(None)
        return slice(int(self.start * fps), int(self.end * fps))

    def __str__(self) -> str:
        return f"{self.clip_id}#{self.span}" if self.span else self.clip_id


def parse_sample_id(sample_id: str) -> SampleId:
    """`SampleId` of "clip" or "clip#start-end" (the format `load_split` writes)."""
    clip_id, _, span = sample_id.partition("#")
    if not span:
        return SampleId(clip_id)
    start, _, end = span.partition("-")
    try:
        return SampleId(clip_id, float(start), float(end), span)
    except ValueError:
        raise DataFormatError(f"sample id {sample_id!r}: expected <clip>#<start>-<end> (seconds)") from None


def read_split_ids(root: Path, split: str) -> list[str]:
    """The clip ids of `<split>.txt`, each checked to be a plain file name."""
    path = Path(root) / f"{split}.txt"
    if not path.is_file():
        raise DataFormatError(f"{path}: split file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None
    ids = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            ids.append(check_id(line.strip(), f"{path}:{number}"))
    return ids


def load_features(path: Path, skeleton: SkeletonSpec | None = None) -> np.ndarray:
    """Load one `new_joint_vecs/*.npy` as float32 (T, D), refusing pickles, bad shapes and NaN."""
    path = Path(path)
    try:
        arr = load_npy(path)  # the one .npy reader: says what a file that is not one really is
    except InputFileError as exc:
        raise DataFormatError(str(exc)) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise DataFormatError(f"{path}: expected a numeric array, got dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim != 2:
        raise DataFormatError(f"{path}: expected shape (T, D), got {arr.shape}")
    if skeleton is not None and arr.shape[1] != skeleton.feature_dim:
        other = _skeleton_name_for_dim(arr.shape[1])
        hint = f" (looks like a {other} file)" if other else ""
        raise DataFormatError(
            f"{path}: {arr.shape[1]} feature dims, but this is a {skeleton.name} folder ({skeleton.feature_dim}){hint}"
        )
    if arr.shape[0] < 1:
        raise DataFormatError(f"{path}: has no frames")
    try:
        check_feature_values(arr, str(path))
    except MotionFormatError as exc:
        raise DataFormatError(str(exc)) from None
    return arr.astype(np.float32, copy=False)


def _skeleton_name_for_dim(dim: int) -> str | None:
    try:
        return skeleton_for_dim(dim).name
    except ValueError:
        return None


def parse_caption_line(line: str, where: str = "") -> Caption:
    """`caption#word/POS word/POS ...#start#end` → Caption. NaN times mean 0, as in the reference."""
    parts = line.rstrip("\n").split("#")
    prefix = f"{where}: " if where else ""
    if len(parts) < 4:
        raise DataFormatError(
            f"{prefix}caption line needs 4 '#'-separated fields (caption#tokens#start#end), "
            f"got {len(parts)}: {line.strip()[:80]!r}"
        )
    text = parts[0].strip()
    if not text:
        raise DataFormatError(f"{prefix}empty caption")
    try:
        start, end = float(parts[2]), float(parts[3])
    except ValueError:
        raise DataFormatError(f"{prefix}start/end times are not numbers: {parts[2]!r}, {parts[3]!r}") from None
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    tokens = tuple(t for t in parts[1].split(" ") if t)
    return Caption(text=text, tokens=tokens, start=start, end=end)


def load_captions(path: Path) -> list[Caption]:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: caption file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None
    captions = [parse_caption_line(line, f"{path}:{i + 1}") for i, line in enumerate(lines) if line.strip()]
    if not captions:
        raise DataFormatError(f"{path}: no captions")
    return captions


def detect_skeleton(root: Path) -> SkeletonSpec:
    """The skeleton of a folder, from Mean.npy or else the first motion file's width."""
    root = Path(root)
    mean = root / "Mean.npy"
    if mean.is_file():
        try:
            arr = np.load(mean, allow_pickle=False)
            return skeleton_for_dim(int(arr.shape[-1]))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            pass
    vec_dir = root / "new_joint_vecs"
    if not vec_dir.is_dir():
        raise DataFormatError(f"{vec_dir}: directory not found (is {root} a HumanML3D-layout folder?)")
    for path in sorted(vec_dir.glob("*.npy"))[:20]:
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
            return skeleton_for_dim(int(arr.shape[-1]))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            continue
    raise DataFormatError(f"{vec_dir}: no readable motion file to tell the skeleton from")


def load_split(
    root: Path | str,
    split: str = "train",
    skeleton: SkeletonSpec | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
    limit: int | None = None,
) -> list[MotionClip]:
    """All samples of one split, following the reference's rules (see module docstring).

    A clip's whole-clip captions form one sample; each timed caption forms its own sample with
    the frames int(start·fps) : int(end·fps). Samples outside [min_frames, max_frames) are dropped.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: data folder not found")
    spec = skeleton or detect_skeleton(root)
    lo = spec.min_frames if min_frames is None else min_frames
    hi = spec.max_frames if max_frames is None else max_frames
    ids = read_split_ids(root, split)
    if limit is not None:
        ids = ids[:limit]
    clips: list[MotionClip] = []
    for clip_id in ids:
        features = load_features(motion_file(root, clip_id), spec)
        if not lo <= len(features) < hi:
            continue
        captions = load_captions(caption_file(root, clip_id))
        whole = [c for c in captions if c.is_whole_clip]
        for cap in captions:
            if cap.is_whole_clip:
                continue
            segment = features[int(cap.start * spec.fps) : int(cap.end * spec.fps)]
            if lo <= len(segment) < hi:
                sample_id = str(SampleId.segment(clip_id, cap.start, cap.end))
                clips.append(MotionClip(id=sample_id, clip_id=clip_id, features=segment, captions=[cap]))
        if whole:
            clips.append(MotionClip(id=clip_id, clip_id=clip_id, features=features, captions=whole))
    return clips
