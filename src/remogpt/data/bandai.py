"""The Bandai-Namco-Research motion datasets 1 and 2 as a HumanML3D-layout folder (real motion capture).

Kobayashi et al., "Motion Capture Dataset for Practical Use of AI-based Motion Editing and
Stylization" (2023): 3,076 BVH takes of three professional actors at 30 fps, each labelled with a
content (walk, wave-left-hand, kick, …) and a style (normal, happy, elderly, …). Licence CC BY-NC 4.0:
the project never ships any of it; `remogpt data import-bandai` reads a user's copy of the
published folders.

What the import does, take by take: the BVH importer with the `bandai` rig (22 joints; SMPL's
spine2 made halfway between Spine and Chest), centimetres → metres, 30 → 20 fps, the reference
processing (`process_joints`: retarget, floor, origin, facing +Z, 263-d features), takes longer than
HumanML3D's longest clip cut into 196-frame pieces; a mirrored copy of every clip (`M` + id, as
HumanML3D), with left and right swapped in its captions too. Captions are written from the labels
(at least three per clip, paraphrased, with the side where the content has one). Splits are drawn per
take (a take, its pieces and their mirrors are always in the same split), 80 / 5 / 15 %.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.artifacts import atomic_write_text, hash_folder
from remogpt.errors import RemogptError

__all__ = ["BandaiError", "BandaiImport", "BandaiTake", "bandai_captions", "find_takes", "import_bandai"]

SET_PATTERN = re.compile(r"Bandai-Namco-Research-Motiondataset-(\d+)$")
SPLIT_FRACTIONS = {"train": 0.80, "val": 0.05, "test": 0.15}  # HumanML3D's proportions
SEGMENT_FRAMES = 196  # HumanML3D's longest clip at 20 fps; longer takes are cut into pieces
CAPTIONS_PER_CLIP = 3
LICENCE = "CC BY-NC 4.0 (Bandai Namco Research Inc.; non-commercial use, attribution required)"
IMPORTER_VERSION = 2  # 2: hips and collars in SMPL's layout (motion.bvh.conform_segments)


class BandaiError(RemogptError, ValueError):
    """A folder that is not (a copy of) the published sets, a label file missing, a take that cannot be read."""


@dataclass(frozen=True)
class BandaiTake:
    """One published BVH file and its labels."""

    path: Path
    dataset: int  # 1 or 2
    content: str  # without the "dataset-N_" prefix: "walk", "wave-left-hand", …
    style: str  # "normal", "elderly", …
    take: str  # "001"

    @property
    def clip_id(self) -> str:
        return f"bn{self.dataset}_{self.content}_{self.style}_{self.take}"

    @property
    def split(self) -> str:
        """Drawn from the take's name alone: the same take always lands in the same split."""
        digest = hashlib.sha256(f"bandai:{self.dataset}:{self.content}:{self.style}:{self.take}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u < SPLIT_FRACTIONS["train"]:
            return "train"
        return "val" if u < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"] else "test"


# ----------------------------------------------------------------------------- finding the takes


def _set_folders(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        raise BandaiError(f"{root}: not a folder")
    own = SET_PATTERN.search(root.name)
    candidates = [root] if own else sorted(p for p in root.iterdir() if p.is_dir() and SET_PATTERN.search(p.name))
    sets = [(int(SET_PATTERN.search(p.name).group(1)), p) for p in candidates]  # type: ignore[union-attr]
    if not sets:
        raise BandaiError(
            f"{root}: no Bandai-Namco-Research-Motiondataset-1 or -2 folder here (give the folder that holds "
            "them, or one of them, as published: cfg/ and data/ inside)"
        )
    return sets


def _labels(folder: Path, dataset: int, kind: str) -> list[str]:
    path = folder / "cfg" / f"{kind}_label.txt"
    if not path.is_file():
        raise BandaiError(f"{path}: label file missing (every published set has cfg/content_label.txt and "
                          "cfg/style_label.txt)")  # fmt: skip
    prefix = f"dataset-{dataset}_"
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    bad = [n for n in names if not n.startswith(prefix)]
    if bad or not names:
        raise BandaiError(f"{path}: expected lines like '{prefix}walk', got {bad[:1] or 'an empty file'}")
    return [n[len(prefix) :] for n in names]


def find_takes(root: Path | str) -> list[BandaiTake]:
    """Every take of the published set folders under `root` (or `root` itself), labels checked."""
    takes: list[BandaiTake] = []
    for dataset, folder in _set_folders(Path(root)):
        contents, styles = _labels(folder, dataset, "content"), _labels(folder, dataset, "style")
        data = folder / "data"
        files = sorted(data.glob("*.bvh")) if data.is_dir() else []
        if not files:
            raise BandaiError(f"{data}: no .bvh files (is this a published set folder?)")
        for bvh in files:
            takes.append(_take(bvh, dataset, contents, styles))
    return takes


def _take(bvh: Path, dataset: int, contents: list[str], styles: list[str]) -> BandaiTake:
    label_file = bvh.with_suffix(".json")
    if not label_file.is_file():
        raise BandaiError(f"{label_file}: label file missing (each take's .bvh has a .json beside it)")
    try:
        labels = json.loads(label_file.read_text(encoding="utf-8"))
        content, style = contents[int(labels["content"])], styles[int(labels["style"])]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise BandaiError(f"{label_file}: expected {{\"content\": i, \"style\": j}} with indices into the "
                          f"set's label files ({type(exc).__name__}: {exc})") from None  # fmt: skip
    match = re.fullmatch(rf"dataset-{dataset}_(.+)_([^_]+)_(\d+)", bvh.stem)
    if match is None or match.group(1) != content or match.group(2) != style:
        raise BandaiError(f"{bvh}: the file name does not match its labels ({content}, {style})")
    return BandaiTake(bvh, dataset, content, style, match.group(3))


# ----------------------------------------------------------------------------- captions

#: content → verb phrases of the caption grammar (`^verb` inflects; see data.synth.captions), with
#: {side} where the content names one ("left"/"right"; mirrored captions swap it).
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("^walk forward", "^walk straight ahead", "^take several steps forward"),
    "run": ("^run forward", "^run straight ahead", "^jog forward at a fast pace"),
    "dash": ("^dash forward", "^sprint forward", "^run forward as fast as possible"),
    "walk-back": ("^walk backward", "^walk backwards", "^take several steps back"),
    "walk-left": ("^walk to the left", "^walk sideways to the left", "^step sideways to the left"),
    "walk-right": ("^walk to the right", "^walk sideways to the right", "^step sideways to the right"),
    "walk-turn-left": ("^walk forward and ^turn left", "^walk in a curve to the left", "^walk while +turn left"),
    "walk-turn-right": ("^walk forward and ^turn right", "^walk in a curve to the right", "^walk while +turn right"),
    "wave-left-hand": ("^wave the left hand", "^wave with the left hand", "^wave {poss} left hand"),
    "wave-right-hand": ("^wave the right hand", "^wave with the right hand", "^wave {poss} right hand"),
    "wave-both-hands": ("^wave both hands", "^wave with both hands", "^wave both arms above the head"),
    "raise-up-left-hand": ("^raise the left hand", "^raise the left hand up high", "^lift {poss} left arm up"),
    "raise-up-right-hand": ("^raise the right hand", "^raise the right hand up high", "^lift {poss} right arm up"),
    "raise-up-both-hands": ("^raise both hands", "^raise both hands up high", "^lift both arms above the head"),
    "bow": ("^bow", "^bow forward", "^bend forward in a bow"),
    "bye": ("^wave goodbye", "^wave a hand to ~say goodbye", "^say goodbye with a wave"),
    "byebye": ("^wave goodbye over and over", "^keep +wave goodbye", "^say goodbye with a long wave"),
    "guide": ("^gesture to ~show the way", "^point the way with a hand", "^guide someone with a hand gesture"),
    "respond": ("^respond to someone", "^answer someone with a gesture", "^make a gesture in reply"),
    "call": ("^call someone over", "^beckon someone to ~come", "^wave someone over"),
    "punch": ("^punch forward", "^throw a punch", "^punch with a fist"),
    "kick": ("^kick forward", "^kick with one leg", "^do a kick"),
    "slash": ("^slash with a sword", "^make a slashing motion", "^swing an arm as if +slash"),
    "dance-long": ("^dance", "^dance in place", "^perform a dance"),
    "dance-short": ("^dance", "^dance in place", "^perform a short dance"),
}

#: style → (manners after the verb phrase, people who do it); "" for the normal style.
STYLE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": (("",), ()),
    "happy": (("happily", "cheerfully", "in a happy way"), ("a happy person", "a cheerful person")),
    "sad": (("sadly", "in a sad way"), ("a sad person", "an unhappy person")),
    "angry": (("angrily", "in an angry way"), ("an angry person", "an annoyed person")),
    "proud": (("proudly", "in a proud way"), ("a proud person", "a confident person")),
    "not-confident": (("timidly", "hesitantly", "in an unsure way"), ("a timid person", "an unsure person")),
    "masculinity": (("in a masculine way", "in a manly way"), ("a masculine person",)),
    "masculine": (("in a masculine way", "in a manly way"), ("a masculine person",)),
    "feminine": (("in a feminine way", "gracefully"), ("a feminine person",)),
    "childish": (("like a child", "in a childish way"), ("a child", "a childish person")),
    "old": (("like an old person", "in an elderly way", "stiffly"), ("an old person", "an elderly person")),
    "elderly": (("like an old person", "in an elderly way", "stiffly"), ("an elderly person", "an old person")),
    "tired": (("wearily", "in a tired way"), ("a tired person", "a weary person")),
    "exhausted": (("wearily", "in an exhausted way"), ("an exhausted person", "a tired person")),
    "active": (("energetically", "in a lively way"), ("an energetic person", "a lively person")),
    "youthful": (("energetically", "in a youthful way"), ("a young person", "a youthful person")),
    "musical": (("rhythmically", "in a musical way"), ("a musical person", "a rhythmic person")),
    "giant": (("like a giant", "with heavy steps"), ("a giant", "a huge person")),
    "chimpira": (("like a thug", "in a swaggering way"), ("a thug", "a swaggering person")),
}

_SUBJECTS_PLAIN = ("a person", "someone", "the person")


def bandai_captions(content: str, style: str, seed: int | str, count: int = CAPTIONS_PER_CLIP) -> list[str]:
    """`count` distinct caption lines (HumanML3D's `text#word/POS …#0.0#0.0`) for a take's labels.

    Three ways of saying the style take turns: a plain subject with a manner ("a person waves the
    left hand happily"), a styled subject ("a happy person waves with the left hand"), and the manner
    alone for the normal style. Deterministic in `seed`."""
    from remogpt.data.synth.captions import caption_line, realize

    if content not in CONTENT_PHRASES:
        raise BandaiError(f"no caption phrases for the content {content!r} (known: {', '.join(CONTENT_PHRASES)})")
    if style not in STYLE_WORDS:
        raise BandaiError(f"no caption words for the style {style!r} (known: {', '.join(STYLE_WORDS)})")
    manners, people = STYLE_WORDS[style]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(str(seed).encode()).digest()[:8], "big"))
    phrases = list(CONTENT_PHRASES[content])
    lines: list[str] = []
    for attempt in range(12 * count):
        phrase = phrases[(attempt + int(rng.integers(len(phrases)))) % len(phrases)]
        subjects = [s for s in _SUBJECTS_PLAIN if s.split()[-1] not in phrase]  # not "someone waves someone over"
        if attempt % 2 == 0 or style == "normal":
            subject, manner = subjects[int(rng.integers(len(subjects)))], manners[attempt // 2 % len(manners)]
        else:
            subject, manner = people[attempt // 2 % len(people)], ""
        words = realize(f"{subject} {phrase} {manner}", poss="their")
        line = caption_line(words)
        if line not in lines:
            lines.append(line)
        if len(lines) == count:
            break
    return lines


# ----------------------------------------------------------------------------- the import


@dataclass
class _TakeResult:
    take: BandaiTake
    clips: list[tuple[str, int]]  # (clip id, feature frames) of the originals written (mirrors beside)
    moments: tuple[np.ndarray, np.ndarray, int] | None  # sums over originals and mirrors (train only)
    dropped_frames: int
    quality: dict[str, float] = field(default_factory=dict)


def _import_take(take: BandaiTake, tmp: Path) -> _TakeResult:
    """Import one take into `tmp` (its pieces and their mirrors, with captions); a pure function of the file."""
    from remogpt.data.check import motion_quality
    from remogpt.motion import features_to_joints, mirror_caption, mirror_features
    from remogpt.motion.bvh import BvhImportError, import_bvh

    try:
        imported = import_bvh(take.path, rig="bandai", units="cm", up="y", segment_frames=SEGMENT_FRAMES)
    except BvhImportError as exc:
        raise BandaiError(str(exc)) from None
    clips, sums, sq, count, skating = [], None, None, 0, []
    for k, clip in enumerate(imported.clips):
        clip_id = take.clip_id if len(imported.clips) == 1 else f"{take.clip_id}_p{k}"
        lines = bandai_captions(take.content, take.style, seed=clip_id)
        mirrored = mirror_features(clip.features)
        for cid, feats, caps in ((clip_id, clip.features, lines),
                                 ("M" + clip_id, mirrored, [mirror_caption(line) for line in lines])):  # fmt: skip
            np.save(tmp / "new_joint_vecs" / f"{cid}.npy", feats.astype(np.float32), allow_pickle=False)
            joints = features_to_joints(feats).astype(np.float32)
            np.save(tmp / "new_joints" / f"{cid}.npy", joints, allow_pickle=False)
            (tmp / "texts" / f"{cid}.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
        q = motion_quality(clip.joints)
        skating.append(float(np.mean(q["foot_skating_values"])) if np.size(q["foot_skating_values"]) else 0.0)
        both = np.concatenate([clip.features, mirrored]).astype(np.float64)
        sums = both.sum(0) if sums is None else sums + both.sum(0)
        sq = np.square(both).sum(0) if sq is None else sq + np.square(both).sum(0)
        count += len(both)
        clips.append((clip_id, int(clip.features.shape[0])))
    moments = (sums, sq, count) if sums is not None and take.split == "train" else None
    quality = {"foot_skating": float(np.mean(skating)) if skating else 0.0}
    return _TakeResult(take, clips, moments, imported.dropped_frames, quality)


def _iter_results(takes: Sequence[BandaiTake], tmp: Path, workers: int) -> Iterator[_TakeResult]:
    if workers <= 1 or len(takes) < 8:
        for take in takes:
            yield _import_take(take, tmp)
        return
    from remogpt.workers import worker_pool

    with worker_pool(workers) as pool:
        chunk = max(1, min(32, len(takes) // (8 * workers)))
        yield from pool.map(_import_take, takes, [tmp] * len(takes), chunksize=chunk)


@dataclass
class BandaiImport:
    out: Path
    takes: int
    clips: int  # originals and mirrors
    seconds: float
    data_hash: str
    stats: dict[str, Any]


def import_bandai(
    root: Path | str, out: Path | str, workers: int = 2, force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BandaiImport:  # fmt: skip
    """Import the published set folders under `root` into the HumanML3D-layout folder `out`."""
    from remogpt.data.folder import publish_folder, staging_folder, write_folder_index
    from remogpt.data.normalize import FeatureMoments

    started = time.perf_counter()
    out = Path(out)
    takes = find_takes(root)  # every label checked before anything is written
    if out.exists() and any(out.iterdir()) and not force:
        raise BandaiError(f"{out}: exists and is not empty; give another --out or --force to replace it")
    tmp = staging_folder(out)
    splits: dict[str, list[str]] = {s: [] for s in SPLIT_FRACTIONS}
    moments = FeatureMoments()
    rows: list[dict[str, Any]] = []
    try:
        for done, res in enumerate(_iter_results(takes, tmp, workers), start=1):
            t = res.take
            for clip_id, frames in res.clips:
                splits[t.split] += [clip_id, "M" + clip_id]
                rows.append({"id": clip_id, "take": t.clip_id, "dataset": t.dataset, "content": t.content,
                             "style": t.style, "split": t.split, "frames": frames, "source": t.path.name,
                             "foot_skating": res.quality["foot_skating"]})  # fmt: skip
            if res.moments is not None:
                moments.add_sums(*res.moments)
            if progress is not None:
                progress(done, len(takes))
        if not splits["train"]:
            raise BandaiError(f"{root}: no take of at least 2 s landed in the train split; nothing to normalise with")
    except BaseException:  # a damaged take (or Ctrl-C): leave no half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_folder_index(tmp, splits, moments, rows)
    data_hash = hash_folder(tmp)
    stats = _statistics(takes, rows, splits)
    _write_card(tmp, stats, data_hash)
    info = {"importer": "bandai", "importer_version": IMPORTER_VERSION, "root": str(root), "data_hash": data_hash,
            "licence": LICENCE, "stats": stats}  # fmt: skip
    atomic_write_text(tmp / "import.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    publish_folder(tmp, out)
    clips = sum(len(v) for v in splits.values())
    return BandaiImport(out, len(takes), clips, time.perf_counter() - started, data_hash, stats)


def _statistics(takes: Sequence[BandaiTake], rows: list[dict[str, Any]], splits: dict[str, list[str]]) -> dict:
    frames = [r["frames"] for r in rows]
    per_split_takes = Counter(t.split for t in takes)
    return {
        "takes": len(takes),
        "takes_per_split": {s: per_split_takes.get(s, 0) for s in SPLIT_FRACTIONS},
        "clips_per_split": {k: len(v) for k, v in splits.items()},
        "contents": {f"{d}:{c}": n for (d, c), n in sorted(Counter((t.dataset, t.content) for t in takes).items())},
        "styles": {f"{d}:{s}": n for (d, s), n in sorted(Counter((t.dataset, t.style) for t in takes).items())},
        "hours_at_20fps": round(2 * sum(frames) / 20 / 3600, 2),  # originals and mirrors
        "feature_frames": {"min": int(min(frames)), "mean": float(np.mean(frames)), "max": int(max(frames))}
        if frames
        else None,
        "takes_without_clip": sum(1 for t in takes if not any(r["take"] == t.clip_id for r in rows)),
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _write_card(root: Path, stats: dict[str, Any], data_hash: str) -> None:
    from remogpt.data.folder import load_captions

    frames = stats["feature_frames"] or {"min": 0, "max": 0, "mean": 0.0}
    examples = []
    for split in ("train", "test"):
        ids = (root / f"{split}.txt").read_text(encoding="utf-8").split()
        for clip_id in ids[:4]:
            caps = load_captions(root / "texts" / f"{clip_id}.txt")
            examples.append(f"- `{clip_id}` ({split}): " + " / ".join(c.text for c in caps))
    lines = [
        "# Bandai-Namco-Research motion datasets (imported)",
        "",
        f"Real motion capture by Bandai Namco Research Inc. Licence: **{LICENCE}**. Do not redistribute",
        "this folder; cite Kobayashi et al., *Motion Capture Dataset for Practical Use of AI-based Motion",
        "Editing and Stylization* (2023).",
        "",
        "Made by `remogpt data import-bandai`: the `bandai` rig mapped to SMPL-22 (spine2 halfway between",
        "Spine and Chest; hips and collars moved to where SMPL has them in the pelvis and chest),",
        "centimetres to metres, 30 → 20 fps, the reference processing (retarget to the",
        "HumanML3D skeleton, floor, origin, facing +Z), takes over 196 frames cut into pieces, a mirrored copy",
        "of each clip (`M` + id) with left/right swapped in its captions, captions written from the labels.",
        "Splits are drawn per take (a take, its pieces and mirrors share one split).",
        "",
        f"- data hash: `{data_hash}`",
        f"- takes: {stats['takes']} ({_counts(stats['takes_per_split'])}); clips with their mirrors: "
        f"{_counts(stats['clips_per_split'])}",
        f"- motion: {stats['hours_at_20fps']} h at 20 fps (with mirrors); clip frames "
        f"{frames['min']}–{frames['max']}, mean {frames['mean']:.0f}",
        f"- takes shorter than 2 s at 20 fps (no clip): {stats['takes_without_clip']}",
        "",
        "## Contents (dataset:content → takes)",
        "",
        _counts(stats["contents"]),
        "",
        "## Styles (dataset:style → takes)",
        "",
        _counts(stats["styles"]),
        "",
        "## Caption examples",
        "",
        *examples,
        "",
    ]
    atomic_write_text(root / "DATA_CARD.md", "\n".join(lines))
