"""`remogpt data synth`: write the embedded data set as a HumanML3D-layout folder.

Clip i is a pure function of (seed, i): its split, composition, body, noise and captions come from
a generator seeded with both, and torch runs single-threaded, so the folder is byte-identical for
a seed whatever the number of workers. Each clip goes through the same canonicalisation and
feature extraction as real data; its left/right mirror (id prefixed with `M`, captions swapped)
joins the same split, as in HumanML3D.

Beside the i.i.d. train/val/test splits, clips `clips`, `clips` + 1, … make `test_compositional`:
each holds a composition that no train clip holds (compose.HELD_OUT_*), and keeps only the captions
that no train clip has, so that nothing in it can be answered by looking up a training clip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remogpt.artifacts import atomic_write_text, hash_folder
from remogpt.config import ConfigBase
from remogpt.workers import torch_threads, worker_pool

__all__ = ["GENERATOR_VERSION", "SynthConfig", "SynthResult", "progress_bar", "synthesize"]

#: Bump when the generator's output for a given seed changes; part of the cache key.
GENERATOR_VERSION = 2  # 2: held-out compositions kept out of train; the test_compositional split
SPLIT_FRACTIONS = {"train": 0.80, "val": 0.05, "test": 0.15}  # HumanML3D's proportions
#: Clips whose compositions no train clip has (see compose.HELD_OUT_*); beside the i.i.d. splits.
COMPOSITIONAL_SPLIT = "test_compositional"
COMPOSITIONAL_SHARE = 0.075  # compositional originals per i.i.d. original when not given


@dataclass
class SynthConfig(ConfigBase):
    """How many clips, from which seed; the defaults build the embedded data set of the main job."""

    clips: int = 4000  # originals; each gets a mirror, so the folder holds twice as many
    seed: int = 0
    captions_min: int = 3
    captions_max: int = 4
    timed_caption_prob: float = 0.3  # sequential clips that also get a caption of one phase with its span
    rare_keep_train: float = 0.08  # chance a rare combination survives in a train clip
    rare_boost_test: float = 0.06  # chance a val/test clip is forced to be a rare combination
    # Originals of the test_compositional split (each with a mirror), drawn beside the i.i.d. splits
    # as clips `clips`, `clips` + 1, …; each holds a held-out composition. 0: no such split;
    # None: 7.5 % of `clips` (300 of the default 4000), so a small build stays small.
    compositional_clips: int | None = None

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"clips": 400},
        "paper": {"clips": 16000},
    }

    def __post_init__(self) -> None:
        from remogpt.config import ConfigError

        if self.clips < 10:
            raise ConfigError(f"clips must be at least 10 (one per split and more), got {self.clips}")
        if not 1 <= self.captions_min <= self.captions_max:
            raise ConfigError("need 1 ≤ captions_min ≤ captions_max")
        if self.compositional_clips is not None and self.compositional_clips < 0:
            raise ConfigError(f"compositional_clips must be at least 0, got {self.compositional_clips}")

    @property
    def compositional_count(self) -> int:
        """Originals of the test_compositional split that this config draws."""
        if self.compositional_clips is None:
            return int(self.clips * COMPOSITIONAL_SHARE)
        return self.compositional_clips

    @property
    def total_clips(self) -> int:
        """Originals drawn: the i.i.d. splits' and the compositional split's (before captions drop any)."""
        return self.clips + self.compositional_count


@dataclass
class ClipRecord:
    """What a worker hands back for one original clip, after writing it and its mirror."""

    index: int
    clip_id: str
    split: str
    labels: dict
    quality: dict
    moments: tuple[np.ndarray, np.ndarray, int]  # sums, sums of squares, frames (clip + mirror)


@dataclass
class SynthResult:
    out: Path
    config: SynthConfig
    seconds: float
    clips_written: int
    data_hash: str
    reused: bool = False
    stats: dict = field(default_factory=dict)

    @property
    def clips_per_second(self) -> float:
        return self.clips_written / self.seconds if self.seconds > 0 else float("inf")


def _split_for(seed: int, index: int) -> str:
    u = np.random.default_rng((seed, index, 0x5B)).random()
    if u < SPLIT_FRACTIONS["train"]:
        return "train"
    if u < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"]:
        return "val"
    return "test"


def make_clip(config: SynthConfig, index: int, root: Path) -> ClipRecord:
    """Generate original clip `index` and its mirror into `root` (a pure function of seed and index)."""
    from remogpt.data.check import motion_quality
    from remogpt.data.synth.captions import caption_line
    from remogpt.data.synth.compose import (
        build_joints,
        caption_words,
        primary_label,
        sample_compositional_spec,
        sample_spec,
    )
    from remogpt.motion import mirror_caption, mirror_features, process_joints

    compositional = index >= config.clips
    split = COMPOSITIONAL_SPLIT if compositional else _split_for(config.seed, index)
    rng = np.random.default_rng((config.seed, index))
    if compositional:
        spec = sample_compositional_spec(rng)
    else:
        spec = sample_spec(rng, split, config.rare_keep_train, config.rare_boost_test)
    joints = build_joints(spec, rng)
    features, recovered = process_joints(joints)
    features = features.astype(np.float32)
    n_caps = int(rng.integers(config.captions_min, config.captions_max + 1))
    texts: list[str] = []
    lines: list[str] = []
    for _ in range(40 * n_caps):
        line = caption_line(caption_words(spec, rng))
        text = line.split("#", 1)[0]
        if text not in texts:
            texts.append(text)
            lines.append(line)
        if len(lines) == n_caps:
            break
    timed = None
    if not compositional and spec.kind == "sequential" and rng.random() < config.timed_caption_prob:
        starts = spec.phase_starts()
        k = int(rng.integers(len(spec.phases)))
        a = max(0, starts[k] - 2)
        b = min(len(features), starts[k] + spec.phases[k].frames + 2)
        if b - a >= 44:
            from remogpt.data.synth.compose import ClipSpec

            single = ClipSpec([spec.phases[k]], "single", 0, [], 0, spec.body_scale, spec.heading0)
            start_s, end_s = round(a / 20.0, 2), round(b / 20.0, 2)
            lines.append(caption_line(caption_words(single, rng), start_s, end_s))
            timed = {"phase": k, "start": start_s, "end": end_s}
    clip_id = f"{index:06d}"
    labels = {"id": clip_id, "split": split, "primary": primary_label(spec), **spec.to_dict(), "timed": timed}
    q = motion_quality(recovered)
    quality = {k: v for k, v in q.items() if k != "foot_skating_values"}
    quality["skating_sum"] = float(np.sum(q["foot_skating_values"]))
    quality["skating_count"] = int(np.size(q["foot_skating_values"]))
    mirrored = mirror_features(features)
    _write_clip(root, clip_id, features, lines)
    _write_clip(root, "M" + clip_id, mirrored, [mirror_caption(line) for line in lines])
    both = np.concatenate([features, mirrored]).astype(np.float64)
    moments = (both.sum(0), np.square(both).sum(0), len(both))
    return ClipRecord(index, clip_id, split, labels, quality, moments)


def _iter_clips(config: SynthConfig, workers: int, root: Path) -> Iterator[ClipRecord]:
    """Records in index order (so that everything summed from them is order-stable)."""
    total = config.total_clips
    indices = range(total)
    if workers <= 1:  # on one thread like the workers: the same floats however many there are
        for i in indices:
            with torch_threads(1):
                record = make_clip(config, i, root)
            yield record
        return
    chunk = max(1, min(64, total // (workers * 8)))
    with worker_pool(workers) as pool:
        yield from pool.map(make_clip, [config] * total, indices, [root] * total, chunksize=chunk)


def _write_clip(root: Path, clip_id: str, features: np.ndarray, lines: list[str]) -> None:
    from remogpt.motion import features_to_joints

    np.save(root / "new_joint_vecs" / f"{clip_id}.npy", features, allow_pickle=False)
    np.save(root / "new_joints" / f"{clip_id}.npy", features_to_joints(features).astype(np.float32), allow_pickle=False)
    (root / "texts" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def is_complete(out: Path, config: SynthConfig) -> bool:
    """True when `out` holds a finished build of exactly this config (the cache check)."""
    marker = out / "synth.json"
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return info.get("config") == config.to_dict() and info.get("generator_version") == GENERATOR_VERSION


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for `synthesize(progress=…)` (shown only on a terminal), closed on exit."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc="      generating", unit="clip", leave=False, mininterval=0.5, disable=None)
    try:
        yield lambda done, _total: bar.update(done - bar.n)
    finally:
        bar.close()


def synthesize(
    out: Path | str,
    config: SynthConfig | None = None,
    workers: int = 1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SynthResult:
    """Build the data set in `out` (reused when a finished build of the same config is there)."""
    from remogpt.data.check import split_overlap
    from remogpt.data.folder import publish_folder, staging_folder, write_folder_index
    from remogpt.data.normalize import FeatureMoments
    from remogpt.data.synth.card import held_out_statistics, learnability, write_card

    cfg = config or SynthConfig()
    out = Path(out)
    if not force and is_complete(out, cfg):
        info = json.loads((out / "synth.json").read_text(encoding="utf-8"))
        return SynthResult(out, cfg, 0.0, 0, info["data_hash"], reused=True, stats=info.get("stats", {}))
    started = time.perf_counter()
    tmp = staging_folder(out)
    splits: dict[str, list[str]] = {s: [] for s in SPLIT_FRACTIONS}
    if cfg.compositional_count:
        splits[COMPOSITIONAL_SPLIT] = []
    labels: list[dict] = []
    qualities: list[dict] = []
    moments = FeatureMoments()
    for done, rec in enumerate(_iter_clips(cfg, workers, tmp), start=1):
        splits[rec.split] += [rec.clip_id, "M" + rec.clip_id]
        labels.append(rec.labels)
        qualities.append(rec.quality)
        if rec.split == "train":
            moments.add_sums(*rec.moments)
        if progress is not None:
            progress(done, cfg.total_clips)
    if COMPOSITIONAL_SPLIT in splits:
        splits[COMPOSITIONAL_SPLIT] = _drop_train_captions(tmp, splits)
        kept = {i.removeprefix("M") for i in splits[COMPOSITIONAL_SPLIT]}
        labels = [row for row in labels if row["split"] != COMPOSITIONAL_SPLIT or row["id"] in kept]
    write_folder_index(tmp, splits, moments, labels)
    data_hash = hash_folder(tmp)
    stats = _statistics(labels, qualities, splits)
    stats["learnability"] = learnability(tmp, labels, seed=cfg.seed)
    stats["overlap_with_train"] = split_overlap(tmp)
    stats["held_out"] = held_out_statistics(labels)
    write_card(tmp, cfg, stats, data_hash, GENERATOR_VERSION)
    info = {"generator_version": GENERATOR_VERSION, "config": cfg.to_dict(), "data_hash": data_hash, "stats": stats}
    atomic_write_text(tmp / "synth.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    publish_folder(tmp, out)
    seconds = time.perf_counter() - started
    written = sum(len(v) for v in splits.values())
    return SynthResult(out, cfg, seconds, written, data_hash, stats=stats)


def _drop_train_captions(root: Path, splits: dict[str, list[str]]) -> list[str]:
    """Remove from the compositional clips every caption that a train clip also has, so that no prompt
    of the split can be answered by looking its text up; returns the clips that keep a caption (a
    clip and its mirror leave together)."""
    train = set()
    for clip_id in splits["train"]:
        for line in (root / "texts" / f"{clip_id}.txt").read_text(encoding="utf-8").splitlines():
            train.add(line.split("#", 1)[0])
    kept = []
    ids = splits[COMPOSITIONAL_SPLIT]
    for original in [i for i in ids if not i.startswith("M")]:
        pair = [original, "M" + original]
        lines = {i: (root / "texts" / f"{i}.txt").read_text(encoding="utf-8").splitlines() for i in pair}
        # A caption and its mirror are one pair of lines; drop the pair if either text is in train.
        keep = [k for k, (a, b) in enumerate(zip(lines[original], lines["M" + original], strict=True))
                if a.split("#", 1)[0] not in train and b.split("#", 1)[0] not in train]  # fmt: skip
        if not keep:
            for i in pair:
                for folder, suffix in (("texts", ".txt"), ("new_joint_vecs", ".npy"), ("new_joints", ".npy")):
                    (root / folder / f"{i}{suffix}").unlink()
            continue
        for i in pair:
            (root / "texts" / f"{i}.txt").write_text("\n".join(lines[i][k] for k in keep) + "\n", encoding="utf-8")
        kept += pair
    return kept


def _statistics(labels: list[dict], qualities: list[dict], splits: dict[str, list[str]]) -> dict:
    from collections import Counter

    per_primitive: Counter[str] = Counter()
    per_part: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    rare: dict[str, Counter[str]] = {}
    lengths = []
    for row in labels:
        kinds[row["kind"]] += 1
        lengths.append(row["frames"] - 1)
        seen = set()
        for ph in row["phases"]:
            for act in ([ph["base"]] if ph["base"] else []) + ph["overlays"]:
                seen.add(act["name"])
        for name in seen:
            per_primitive[name] += 1
        for combo in row["rare"]:
            rare.setdefault(combo, Counter())[row["split"]] += 1
    from remogpt.data.synth.primitives import PRIMITIVES

    for name, n in per_primitive.items():
        per_part[PRIMITIVES[name].part] += n
    skate_sum = sum(q["skating_sum"] for q in qualities)
    skate_n = sum(q["skating_count"] for q in qualities)
    return {
        "splits": {k: len(v) for k, v in splits.items()},
        "kinds": dict(sorted(kinds.items())),
        "per_primitive": dict(sorted(per_primitive.items())),
        "per_part": dict(sorted(per_part.items())),
        "rare_combos": {k: dict(v) for k, v in sorted(rare.items())},
        "feature_frames": {
            "min": int(min(lengths)),
            "mean": float(np.mean(lengths)),
            "max": int(max(lengths)),
            "histogram_1s": np.histogram(lengths, bins=np.arange(0, 220, 20))[0].tolist(),
        },
        "quality": {
            "bone_length_spread_max": float(max(q["bone_length_spread"] for q in qualities)),
            "lowest_point_min": float(min(q["lowest_point"] for q in qualities)),
            "foot_skating_mean": skate_sum / max(skate_n, 1),
            "contact_fraction": float(np.mean([q["contact_fraction"] for q in qualities])),
        },
    }
