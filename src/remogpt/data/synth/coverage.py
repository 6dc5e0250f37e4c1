"""`remogpt data coverage`: smooth random motion within human joint limits, for the tokenizer only.

Why: the embedded data set holds the motions its captions name and nothing else, so a tokenizer
trained on it has never seen a fast turn, a crouch or an arm path that no primitive makes, and real
capture (HumanML3D, LAFAN1, Bandai) comes back as the nearest embedded motion. These clips fill the
space between: every joint follows a sum of slow and fast sinusoids inside its range of motion,
played through a random time warp (tempo), while the root turns at random rates and now and then
leaves the floor. They have no captions and no test split: a HumanML3D-layout folder whose train
split joins tokenizer training with `--mix`.

Clip i is a pure function of (seed, i), as in the embedded data set, so a folder is byte-identical
for a seed whatever the number of workers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.artifacts import atomic_write_text, hash_folder
from remogpt.config import ConfigBase, ConfigError
from remogpt.data.synth.body import J, PoseTracks, animate, arm_direction, rest_offsets

__all__ = ["COVERAGE_VERSION", "CoverageConfig", "coverage_clip", "synthesize_coverage"]

COVERAGE_VERSION = 1
FPS = 20.0

#: Ranges of motion (degrees) per joint and Euler axis (X flexion, Y twist, Z abduction), for the left
#: side (the right mirrors Y and Z). Hip flexion is negative X, knee flexion positive, as the primitives.
_LIMITS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "hip": ((-110.0, 25.0), (-30.0, 30.0), (-15.0, 45.0)),
    "knee": ((0.0, 135.0), (0.0, 0.0), (0.0, 0.0)),
    "ankle": ((-30.0, 40.0), (-10.0, 10.0), (-15.0, 15.0)),
    "spine1": ((-15.0, 35.0), (-25.0, 25.0), (-15.0, 15.0)),
    "spine2": ((-10.0, 20.0), (-15.0, 15.0), (-10.0, 10.0)),
    "spine3": ((-10.0, 20.0), (-15.0, 15.0), (-10.0, 10.0)),
    "neck": ((-30.0, 35.0), (-45.0, 45.0), (-20.0, 20.0)),
    "head": ((-20.0, 25.0), (-30.0, 30.0), (-15.0, 15.0)),
    "pelvis": ((-15.0, 40.0), (-20.0, 20.0), (-12.0, 12.0)),
}
#: Arm ranges (degrees): the upper arm's flexion and abduction (arm_direction), the elbow's flexion.
_ARM = {"flex": (-45.0, 175.0), "abd": (-35.0, 110.0), "elbow": (0.0, 145.0)}


@dataclass
class CoverageConfig(ConfigBase):
    """How many clips of which lengths and speeds; the defaults fill a tokenizer mix in about a minute."""

    clips: int = 2000
    seed: int = 0
    min_frames: int = 64  # the tokenizer's training window
    max_frames: int = 196  # HumanML3D's longest clip
    max_tempo_hz: float = 2.5  # the fastest sinusoid a joint follows (before the time warp)
    max_joint_rad_s: float = 4.0  # and no joint swings faster than this (a wide swing is a slow one)
    max_turn_rad_s: float = 6.0  # the fastest yaw rate of a clip (HumanML3D clip 012314 spins at ~5 rad/s)
    airborne_share: float = 0.3  # clips with hops or jumps

    def __post_init__(self) -> None:
        if self.clips < 1:
            raise ConfigError(f"clips must be ≥ 1, got {self.clips}")
        if not 8 <= self.min_frames <= self.max_frames:
            raise ConfigError(f"need 8 ≤ min_frames ≤ max_frames, got {self.min_frames} and {self.max_frames}")
        for name in ("max_tempo_hz", "max_joint_rad_s", "max_turn_rad_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.airborne_share <= 1.0:
            raise ConfigError(f"airborne_share must be in [0, 1], got {self.airborne_share}")


def _smooth(rng: np.random.Generator, time: np.ndarray, max_hz: float, waves: int = 3) -> np.ndarray:
    """A curve in [-1, 1]: `waves` sinusoids at log-uniform tempos up to `max_hz`, random phases and weights."""
    freqs = np.exp(rng.uniform(np.log(min(0.1, max_hz)), np.log(max_hz), waves))
    weights = rng.uniform(0.2, 1.0, waves)
    phases = rng.uniform(0, 2 * np.pi, waves)
    curve = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * time[None] + phases[:, None])).sum(0)
    return curve / weights.sum()


def _in_range(
    rng: np.random.Generator, time: np.ndarray, lo: float, hi: float, max_hz: float, max_rad_s: float
) -> np.ndarray:
    """A smooth curve (degrees) in [lo, hi]: a random centre, a random reach around it, and tempos
    slow enough that the joint's angular speed stays under `max_rad_s`."""
    if hi <= lo:
        return np.full_like(time, lo)
    centre = rng.uniform(lo, hi)
    if rng.random() < 0.5:
        reach = rng.uniform(0.2, 1.0) * max(min(centre - lo, hi - centre), 0.1 * (hi - lo))
    else:
        centre, reach = (lo + hi) / 2, (hi - lo) / 2
    fastest = min(max_hz, max_rad_s / (2 * np.pi * np.radians(reach)))  # |d/dt reach·sin(2πft)| ≤ 2πf·reach
    curve = centre + reach * _smooth(rng, time, fastest)
    return np.clip(curve, lo, hi)


def _hops(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Root height above the ground: a few parabolic flights of 5-18 frames, 3-40 cm high."""
    height = np.zeros(frames)
    t = int(rng.integers(5, 30))
    while t < frames - 6:
        length = int(rng.integers(5, 19))
        peak = float(np.exp(rng.uniform(np.log(0.03), np.log(0.4))))
        s = (np.arange(length) + 1) / (length + 1)
        end = min(frames, t + length)
        height[t:end] = 4 * peak * s[: end - t] * (1 - s[: end - t])
        t = end + int(rng.integers(4, 40))
    return height


def coverage_clip(config: CoverageConfig, index: int) -> np.ndarray:
    """Raw joint positions (T, 22, 3) of clip `index`, before canonicalisation."""
    rng = np.random.default_rng((config.seed, index, 0xC0))
    frames = int(rng.integers(config.min_frames, config.max_frames + 1))
    # Tempo: the clip's own clock runs at 0.3-1.5 × real time, varying smoothly, so joints hold and hurry.
    speed = 0.9 + 0.6 * _smooth(rng, np.arange(frames) / FPS, 0.5)
    clock = np.concatenate([[0.0], np.cumsum(speed[:-1])]) / FPS
    max_hz = float(rng.uniform(0.3, 1.0)) * config.max_tempo_hz
    tracks = PoseTracks.standing(frames)
    euler = np.zeros((frames, 22, 3))
    for part, limits in _LIMITS.items():
        sides = [(part, 1.0)] if part in ("spine1", "spine2", "spine3", "neck", "head", "pelvis") else [
            (f"left_{part}", 1.0), (f"right_{part}", -1.0)]  # fmt: skip
        for name, mirror in sides:
            for axis, (lo, hi) in enumerate(limits):
                curve = _in_range(rng, clock, lo, hi, max_hz, config.max_joint_rad_s)
                euler[:, J[name], axis] = curve if axis == 0 else mirror * curve
    tracks.euler = np.radians(euler)
    for side in (0, 1):
        flex = _in_range(rng, clock, *_ARM["flex"], max_hz, config.max_joint_rad_s)
        abd = _in_range(rng, clock, *_ARM["abd"], max_hz, config.max_joint_rad_s)
        elbow = _in_range(rng, clock, *_ARM["elbow"], max_hz, config.max_joint_rad_s)
        tracks.arm_dirs[:, side, 0] = arm_direction(flex, abd, side)
        tracks.arm_dirs[:, side, 1] = arm_direction(np.minimum(flex + elbow, 200.0), abd, side)
    turn = float(rng.uniform(0.0, config.max_turn_rad_s)) if rng.random() < 0.8 else 0.0
    yaw_rate = turn * (_smooth(rng, clock, 0.6) + rng.uniform(-0.5, 0.5)) / FPS
    tracks.heading = float(rng.uniform(-np.pi, np.pi)) + np.concatenate([[0.0], np.cumsum(yaw_rate[:-1])])
    if rng.random() < config.airborne_share:
        tracks.airborne = _hops(rng, frames)
    scale = float(rng.uniform(0.85, 1.15))
    return animate(tracks, rest_offsets(scale))


def _make(config: CoverageConfig, index: int, root: Path) -> tuple[str, tuple[np.ndarray, np.ndarray, int]]:
    from remogpt.motion import features_to_joints, process_joints

    features, _ = process_joints(coverage_clip(config, index))
    features = features.astype(np.float32)
    clip_id = f"C{index:06d}"
    np.save(root / "new_joint_vecs" / f"{clip_id}.npy", features, allow_pickle=False)
    np.save(root / "new_joints" / f"{clip_id}.npy", features_to_joints(features).astype(np.float32), allow_pickle=False)
    wide = features.astype(np.float64)
    return clip_id, (wide.sum(0), np.square(wide).sum(0), len(wide))


def synthesize_coverage(
    out: Path | str,
    config: CoverageConfig | None = None,
    workers: int = 1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Build the coverage folder in `out` (reused when a finished build of the same config is there);
    returns its info (config, data hash, seconds)."""
    from remogpt.data.folder import publish_folder, staging_folder, write_folder_index
    from remogpt.data.normalize import FeatureMoments
    from remogpt.workers import torch_threads, worker_pool

    cfg = config or CoverageConfig()
    out = Path(out)
    info_path = out / "coverage.json"
    if not force and info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("config") == cfg.to_dict() and info.get("version") == COVERAGE_VERSION:
            return {**info, "reused": True}
    started = time.perf_counter()
    tmp = staging_folder(out)
    moments = FeatureMoments()
    ids = []
    with ExitStack() as stack:  # one thread here, or processes: the same bytes either way
        if workers <= 1:
            stack.enter_context(torch_threads(1))
            records = map(_make, [cfg] * cfg.clips, range(cfg.clips), [tmp] * cfg.clips)
        else:
            pool = stack.enter_context(worker_pool(workers))
            chunk = max(1, min(64, cfg.clips // (workers * 8)))
            records = pool.map(_make, [cfg] * cfg.clips, range(cfg.clips), [tmp] * cfg.clips, chunksize=chunk)
        for done, (clip_id, sums) in enumerate(records, start=1):
            ids.append(clip_id)
            moments.add_sums(*sums)
            if progress is not None:
                progress(done, cfg.clips)
    write_folder_index(tmp, {"train": ids}, moments, [])
    (tmp / "labels.jsonl").unlink()  # no labels: nothing here is described
    info = {"version": COVERAGE_VERSION, "config": cfg.to_dict(), "data_hash": hash_folder(tmp),
            "clips": len(ids), "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    atomic_write_text(tmp / "coverage.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    publish_folder(tmp, out)
    return {**info, "reused": False}
