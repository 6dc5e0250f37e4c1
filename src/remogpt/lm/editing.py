"""Editing and extending motion with the language model: continue, in-between, body-part edits, timelines.

All four rest on one mechanism. The decoder is handed the codes of the motion so far as if it had
sampled them (`ReMoGPT.generate_motion(prefix_codes=…)`), and samples on from there, retrieving
context for the new text as text→motion does. This is how an autoregressive motion model
continues (T2M-GPT). A model trained with `continue_rate` > 0 also learnt continuation as a task
of its own (MotionGPT's motion prediction): its instruction then holds the motion so far beside
the text, and each retrieved motion is shown from the point the text's motion has reached, as in
its training (`remogpt.lm.data`). A model without it writes after the prefix what its text asks
for, started from where the prefix left off.

What is kept is the input's own features, bit for bit: the decoded new frames never replace them.
The new frames are joined with an *offset blend* (a simple inertialization): the first new frame is
moved to where the kept motion was heading (its last frame plus its last frame-to-frame change),
its first change made equal to that change, and the offset eases out over `blend_frames` (a cubic
Hermite curve), so neither the pose nor its velocity jumps at the seam, and the kept frames stay
untouched. Where carrying a fall on would take the feet below both motions' floors, the blended
frame is lifted (`_above_floor`). A first version matched the pose only; on 12 test clips its
seams jumped in velocity above real motion's 95th percentile in 7 of 12 continuations. The foot
contacts (binary) are not blended.

Body-part edits work in feature space, not in token space: a code of this tokenizer stands for
the whole body over 4 frames, so no code can keep the legs and change the arms. The part's
features come from a motion generated for the text with exactly the input's length; the arms are
re-attached at the upper spine (Spine3), and a kept upper body follows the new root's height.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remogpt.errors import RemogptError
from remogpt.lm.data import CONTINUATION_OVERLAP

__all__ = [
    "BLEND_FRAMES",
    "CONTEXT_CODES",
    "PREFIX",
    "SEGMENTS_BY",
    "TASK",
    "EditedMotion",
    "TimelineEntry",
    "continue_motion",
    "edit_parts",
    "inbetween",
    "join",
    "join_end",
    "parse_timeline",
    "read_timeline_file",
    "timeline",
]

#: Codes of the motion so far that the decoder is given (16 frames at 4 frames a code): enough to
#: carry pose and pace over, few enough that the retrieved motions' alignment stays close; the
#: overlap a continuation is trained with.
CONTEXT_CODES = CONTINUATION_OVERLAP
#: Frames over which a seam's offset fades out (0.5 s at 20 fps).
BLEND_FRAMES = 10
#: How new frames go on from the motion so far (`EditedMotion.continued_by`).
TASK, PREFIX = "continuation task", "decoder prefix"
#: How a timeline's segment after the first goes on from the one before. The continuation task
#: was trained on a caption's own motion cut in two; between two captions it made segments worse
#: (benchmarks/lm_continue.py: evaluator R-Top1 of the segments), while the decoder prefix only
#: carries the pose and pace over and lets the new text decide.
SEGMENTS_BY = PREFIX
#: The body parts a part edit can regenerate, and the joints (HumanML3D numbering) each one takes.
_EDITABLE = ("arms", "legs")
_CONTACTS = 4  # the last 4 feature dims: foot contacts (binary, never blended)


@dataclass
class EditedMotion:
    """An edited or extended motion: the whole result, what of the input it keeps, and where it joins."""

    text: str
    features: np.ndarray  # (T, 263) raw features, the kept frames or parts included
    joints: np.ndarray  # (T, 22, 3)
    codes: np.ndarray  # the new codes (without the context given to the decoder)
    references: list[dict] = field(default_factory=list)  # retrieved pairs used as context (first step)
    kept_frames: list[tuple[int, int]] = field(default_factory=list)  # [start, stop) ranges copied from the input
    kept_parts: list[str] = field(default_factory=list)  # body parts copied from the input (part edits)
    seams: list[int] = field(default_factory=list)  # first frame after each join
    segments: list[dict] = field(default_factory=list)  # timelines: text, start frame, frames, references
    attempts: int = 1
    problem: str | None = None
    # How new frames went on from kept ones: "continuation task" (the model learnt it, continue_rate
    # > 0) or "decoder prefix" (the last codes handed to a text→motion decoder); "" for part edits.
    continued_by: str = ""

    def report(self) -> dict[str, Any]:
        """What generation.json records of the edit."""
        return {"kept_frames": [list(r) for r in self.kept_frames], "kept_parts": self.kept_parts,
                "seams": self.seams, "segments": self.segments, "continued_by": self.continued_by}  # fmt: skip


@dataclass
class TimelineEntry:
    text: str
    seconds: float | None = None  # None: as long as the model makes it


# ----------------------------------------------------------------------------------------- checks


def _check_motion(model: Any, features: Any, name: str, min_frames: int | None = None) -> np.ndarray:
    """Raw features (T, D) of this run's skeleton, finite, at least one code long."""
    arr = np.asarray(features, dtype=np.float32)
    dim, unit = model.tokenizer.feature_dim, model.tokenizer.downsample
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise RemogptError(f"{name}: expected features (T, {dim}), got shape {arr.shape} (mismatched skeleton?)")
    if not np.isfinite(arr).all():
        raise RemogptError(f"{name}: holds NaN or infinite values")
    need = unit if min_frames is None else min_frames
    if len(arr) < need:
        raise RemogptError(f"{name}: {len(arr)} frames; at least {need} are needed")
    return arr


def _check_frames(frames: Any, name: str) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
        raise RemogptError(f"{name} must be a whole number of frames ≥ 1, got {frames!r}")
    return int(frames)


def _window(model: Any) -> int:
    return int(model.cfg.max_motion_codes)


# ------------------------------------------------------------------------------------------ seams


def _hermite_offset(n: int, x0: np.ndarray, v0: np.ndarray, frames: int) -> np.ndarray:
    """(n, D) offsets d(t): d(0) = x0 and d(1) − d(0) = v0 exactly, then easing to 0 with zero slope
    at `frames` (cubic Hermite bases, scaled so that the first step is exact), 0 after."""
    out = np.zeros((n, len(x0)), np.float32)
    if frames <= 0:
        return out
    if frames == 1:
        out[:1] = x0
        return out

    def h00(u: np.ndarray) -> np.ndarray:
        return 2 * u**3 - 3 * u**2 + 1

    def h10(u: np.ndarray) -> np.ndarray:
        return u**3 - 2 * u**2 + u

    u, first = np.minimum(np.arange(n), frames)[:, None] / frames, 1.0 / frames
    slope = h10(u) / h10(first)  # 0 at 0, 1 after one frame, 0 from `frames` on
    hold = h00(u) + (1.0 - h00(first)) * slope  # 1 at 0 and after one frame, 0 from `frames` on
    return (hold * x0[None] + slope * v0[None]).astype(np.float32)


def _heading(kept: np.ndarray, backwards: bool = False) -> np.ndarray:
    """The frame `kept` leads to (its last frame plus its last change); `backwards`: the frame before its first."""
    frames = kept[::-1] if backwards else kept
    return frames[-1].copy() if len(frames) < 2 else frames[-1] + (frames[-1] - frames[-2])


def join(kept: np.ndarray, new: np.ndarray, frames: int) -> np.ndarray:
    """`new` moved so that it carries on from `kept`: its first frame where `kept` was heading (its last
    frame plus its last change) and its first change equal to that change; the offset eases out
    over `frames` frames. Foot contacts untouched."""
    if len(new) == 0:
        return new.copy()
    heading = _heading(kept)
    step, own = heading - kept[-1], new[1] - new[0] if len(new) >= 2 else np.zeros_like(new[0])
    x0, v0 = heading - new[0], step - own
    out = new.copy()
    out[:, :-_CONTACTS] += _hermite_offset(len(new), x0, v0, frames)[:, :-_CONTACTS]
    return _above_floor(out, new, kept[-1], frames)


def _height_dims(dim: int) -> list[int]:
    """The root's height and every joint's height above the floor (ric y) in a feature vector."""
    from remogpt.motion import joint_dims_by_kind, skeleton_for_dim

    joints = skeleton_for_dim(dim).num_joints
    return [3] + [joint_dims_by_kind(j, joints)[0][1] for j in range(1, joints)]


def _above_floor(out: np.ndarray, new: np.ndarray, kept_last: np.ndarray, frames: int) -> np.ndarray:
    """Lift a blended frame (the whole body, vertically) where the blend took its lowest joint below
    both the kept motion's last frame and the decoder's own frame: a jump's downward speed carried
    over a seam must not push the feet through the floor (seen at 4 of 5 seams of a 60 s timeline)."""
    heights = _height_dims(out.shape[1])
    ric_y = heights[1:]
    floor = np.minimum(new[: frames + 1, ric_y].min(axis=1), kept_last[ric_y].min())
    lowest = out[: frames + 1, ric_y].min(axis=1)
    lift = np.maximum(floor - lowest, 0.0)
    out[: frames + 1, heights] += lift[:, None]
    return out


def join_end(new: np.ndarray, kept: np.ndarray, frames: int) -> np.ndarray:
    """`new` moved so that it leads into `kept` (the mirror of `join`)."""
    return join(kept[::-1], new[::-1], frames)[::-1].copy()


# ------------------------------------------------------------------------------------- continuing


def _sample(model: Any, text: str, seed: int, prefix: np.ndarray | None, num_codes: int | None,
            sampling: dict[str, Any], continues: np.ndarray | None = None, offset: int = 0) -> Any:  # fmt: skip
    extra = {} if continues is None else {"continues": continues, "context_offset": offset}
    return model.generate_motion([text], num_samples=1, seed=seed, prefix_codes=prefix, num_codes=num_codes,
                                 **extra, **sampling)[0]  # fmt: skip


def _trained(model: Any) -> bool:
    return bool(getattr(model, "continuation_trained", False))


def _continued_by(model: Any) -> str:
    return TASK if _trained(model) else PREFIX


def _check_way(model: Any, way: str, name: str) -> None:
    """A one-line error for a way of continuing that is unknown, or that this model never learnt."""
    if way not in (TASK, PREFIX) or (way == TASK and not _trained(model)):
        raise RemogptError(f"{name} {way!r}: this model continues by {PREFIX!r}"
                           + (f" or {TASK!r}" if _trained(model) else " only (it was not trained on continuation)"))


def _extend(model: Any, so_far: np.ndarray, text: str, frames: int | None, seed: int, context_codes: int,
            blend_frames: int, sampling: dict[str, Any], text_start: int = 0, how: str | None = None,
            ) -> tuple[np.ndarray, np.ndarray, list[dict], Any]:  # fmt: skip
    """New frames that continue `so_far` as `text` says: (frames, new codes, first references, last sample).
    `frames` None lets the model end the motion; longer than its window, it continues itself in steps.
    `how` (default `_continued_by(model)`): TASK gives a model trained on continuation its task (the
    motion so far in the instruction, each retrieved motion shown from where `text`'s motion, which
    began at frame `text_start`, has reached); PREFIX hands the last codes to the decoder only."""
    unit, window = model.tokenizer.downsample, _window(model)
    context_codes = max(1, min(context_codes, window - 1))
    how = _continued_by(model) if how is None else how
    _check_way(model, how, "how")
    trained = how == TASK
    prompt_codes = int(model.cfg.continue_prompt_codes) if trained else 0
    pieces: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    refs: list[dict] | None = None
    motion = so_far
    remaining = frames
    step = 0
    while True:
        k = min(context_codes, len(motion) // unit)
        n = min(max(k, prompt_codes), len(motion) // unit)
        tail = motion[len(motion) - n * unit :]
        encoded = model.tokenizer.encode(torch.as_tensor(tail)).cpu().numpy().astype(np.int64) if n else None
        prefix = encoded[len(encoded) - k :] if k else None  # type: ignore[index]
        continues = encoded if trained and n else None
        offset = max(0, (len(motion) - text_start) // unit - k)
        room = (window - k) * unit  # new frames one step can write
        want = None if remaining is None else min(remaining, room)
        num_codes = None if want is None else k + math.ceil(want / unit)
        sample = _sample(model, text, seed + 7919 * step, prefix, num_codes, sampling, continues, offset)
        decoded = np.asarray(sample.features, dtype=np.float32)
        new = decoded[k * unit :] if want is None else decoded[k * unit : k * unit + want]
        if len(new) == 0:  # the model closed the motion at once: one code more, asked for
            sample = _sample(model, text, seed + 7919 * step, prefix, k + 1, sampling, continues, offset)
            decoded = np.asarray(sample.features, dtype=np.float32)
            new = decoded[k * unit :]
        new = join(motion, new, blend_frames)  # pose and velocity carried on
        pieces.append(new)
        codes.append(np.asarray(sample.codes)[k:])
        refs = sample.references if refs is None else refs
        motion = np.concatenate([motion, new])
        step += 1
        if remaining is None:
            break
        remaining -= len(new)
        if remaining <= 0:
            break
    return np.concatenate(pieces), np.concatenate(codes), refs or [], sample


def _joints(features: np.ndarray) -> np.ndarray:
    from remogpt.motion import features_to_joints

    return np.asarray(features_to_joints(features), dtype=np.float32)


def continue_motion(model: Any, text: str, prefix: Any, frames: int | None = None, seed: int = 0,
                    context_codes: int = CONTEXT_CODES, blend_frames: int = BLEND_FRAMES,
                    **sampling: Any) -> EditedMotion:  # fmt: skip
    """`prefix` (T, D) raw features, then what `text` asks for: `frames` more frames (default: as long
    as the model makes it; more than its window is written in steps). The prefix is kept bit for bit."""
    text = model._check_texts(text)[0]
    prefix = _check_motion(model, prefix, "the motion to continue")
    if frames is not None:
        frames = _check_frames(frames, "frames")
    new, codes, refs, last = _extend(model, prefix, text, frames, seed, context_codes, blend_frames, sampling)
    features = np.concatenate([prefix, new])
    return EditedMotion(text, features, _joints(features), codes, refs, kept_frames=[(0, len(prefix))],
                        seams=[len(prefix)], attempts=last.attempts, problem=last.problem,
                        continued_by=_continued_by(model))  # fmt: skip


def inbetween(model: Any, start: Any, end: Any, frames: int, text: str | None = None, seed: int = 0,
              context_codes: int = CONTEXT_CODES, blend_frames: int = BLEND_FRAMES, candidates: int = 1,
              **sampling: Any) -> EditedMotion:  # fmt: skip
    """`start`, then `frames` new frames, then `end` (raw features each). The new frames continue
    `start` as `text` says (without a text, as the model's own caption of `end` says) and are bent,
    over their last `blend_frames`, to arrive at `end`'s first frame with its velocity. Both ends are
    kept bit for bit. Features hold no world position, so `end` is placed where the middle arrives.

    `candidates` N > 1 samples N middles (seeds seed … seed + N − 1) and keeps the one that arrives
    nearest to `end` (its last frame against the frame before `end`'s first, in units of the
    tokenizer's per-dimension spread), so that the bend is the smallest."""
    start = _check_motion(model, start, "the start motion (--from)", min_frames=1)
    end = _check_motion(model, end, "the end motion (--to)", min_frames=1)
    frames = _check_frames(frames, "frames")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= 64:
        raise RemogptError(f"candidates must be a whole number in 1 … 64, got {candidates!r}")
    if text is None or not text.strip():
        caption_input = end if len(end) >= model.tokenizer.downsample else np.repeat(end, model.tokenizer.downsample, 0)
        text = model.caption([caption_input])[0] or "a person moves"
    text = model._check_texts(text)[0]
    target = _heading(end, backwards=True)[:-_CONTACTS]
    spread = np.asarray(model.tokenizer.std.detach().cpu(), dtype=np.float32)[:-_CONTACTS]
    best: tuple[float, Any] | None = None
    for n in range(candidates):
        tried = _extend(model, start, text, frames, seed + n, context_codes, blend_frames, sampling)
        gap = float(np.mean(np.abs((tried[0][-1, :-_CONTACTS] - target) / np.maximum(spread, 1e-3))))
        if best is None or gap < best[0]:
            best = (gap, tried)
    assert best is not None
    new, codes, refs, last = best[1]
    middle = join_end(new, end, min(blend_frames, frames))
    features = np.concatenate([start, middle, end])
    a, b = len(start), len(start) + frames
    return EditedMotion(text, features, _joints(features), codes, refs, kept_frames=[(0, a), (b, len(features))],
                        seams=[a, b], attempts=last.attempts, problem=last.problem,
                        continued_by=_continued_by(model))  # fmt: skip


# ------------------------------------------------------------------------------------ part edits


def edit_parts(model: Any, motion: Any, text: str, regenerate: str = "arms", seed: int = 0,
               **sampling: Any) -> EditedMotion:  # fmt: skip
    """`motion` (T, D) with its arms (or its legs and root) made anew as `text` says, the rest kept.

    `regenerate="arms"`: root, legs and backbone stay bit for bit; the arms come from a motion
    generated for `text` with the same length, moved so that they hang from the kept Spine3.
    `regenerate="legs"`: the root (trajectory, height) and the legs come from the new motion; the
    backbone and arms keep their pose relative to the root (their rotations and horizontal offsets
    bit for bit; heights follow the new root's height; velocities its velocity)."""
    from remogpt.motion import graft_arms, joint_dims_by_kind, joint_feature_indices, skeleton_for_dim

    if regenerate not in _EDITABLE:
        raise RemogptError(f"regenerate must be one of {', '.join(_EDITABLE)}, got {regenerate!r}")
    text = model._check_texts(text)[0]
    motion = _check_motion(model, motion, "the motion to edit", min_frames=2 * model.tokenizer.downsample)
    unit, window = model.tokenizer.downsample, _window(model)
    codes_needed = math.ceil(len(motion) / unit)
    if codes_needed > window:
        raise RemogptError(f"the motion to edit has {len(motion)} frames; a body-part edit works within the "
                           f"model's window of {window * unit} frames ({window * unit / 20:g} s): "
                           "cut it first")  # fmt: skip
    sample = _sample(model, text, seed, None, codes_needed, sampling)
    new = np.asarray(sample.features, dtype=np.float32)[: len(motion)]
    spec = skeleton_for_dim(motion.shape[1])
    n = spec.num_joints
    parts = spec.parts
    if regenerate == "arms":
        out = graft_arms(motion, new)
        kept = ["root", "right_leg", "left_leg", "backbone"]
    else:
        out = motion.copy()
        legs = sorted(set(parts["right_leg"]) | set(parts["left_leg"]))
        upper = sorted(set(parts["backbone"]) | set(parts["right_arm"]) | set(parts["left_arm"]))
        root_vel = joint_feature_indices(0, n)[4:]  # after the root's 4 dims, its velocity
        out[:, 0:4] = new[:, 0:4]
        out[:, root_vel] = new[:, root_vel]
        out[:, -_CONTACTS:] = new[:, -_CONTACTS:]
        for j in legs:
            ric, rot, vel = joint_dims_by_kind(j, n)
            out[:, ric], out[:, rot], out[:, vel] = new[:, ric], new[:, rot], new[:, vel]
        lift = new[:, 3] - motion[:, 3]  # ric heights are above the floor, not above the root
        for j in upper:
            ric, _, vel = joint_dims_by_kind(j, n)
            out[:, ric[1]] = motion[:, ric[1]] + lift
            out[:, vel] = motion[:, vel] - motion[:, root_vel] + new[:, root_vel]
        kept = ["backbone", "right_arm", "left_arm"]
    return EditedMotion(text, out, _joints(out), np.asarray(sample.codes), sample.references,
                        kept_parts=kept, attempts=sample.attempts, problem=sample.problem)  # fmt: skip


# -------------------------------------------------------------------------------------- timelines

_DURATION = re.compile(r"\s*[\(\[]\s*(-?\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\s*[\)\]]\s*$", re.IGNORECASE)
_THEN = re.compile(r"^\s*(?:and\s+)?then\b[\s,]*", re.IGNORECASE)


def _entry(raw: str, number: int, where: str) -> TimelineEntry:
    text, seconds = raw.strip(), None
    match = _DURATION.search(text)
    if match:
        seconds = float(match.group(1))
        text = text[: match.start()].strip()
    text = _THEN.sub("", text).strip()
    if not text:
        raise RemogptError(f"{where}: entry {number} is empty (write e.g. 'a person walks forward (4 s)')")
    if seconds is not None and not seconds > 0:
        raise RemogptError(f"{where}: entry {number} ({text!r}) lasts {seconds:g} s; a duration must be > 0")
    return TimelineEntry(text, seconds)


def parse_timeline(spec: str, where: str = "the timeline") -> list[TimelineEntry]:
    """"A (4 s); then B; then C (3 s)" → entries; a duration in brackets is optional."""
    if not isinstance(spec, str) or not spec.strip():
        raise RemogptError(f"{where} is empty; write e.g. 'a person walks forward (4 s); then waves (2 s)'")
    return [_entry(raw, n, where) for n, raw in enumerate(spec.split(";"), start=1)]


def read_timeline_file(path: Path | str) -> list[TimelineEntry]:
    """A timeline file: JSON (a list of {"text", "seconds"} or of strings) or text (one entry a line,
    as in `parse_timeline`; blank lines and lines starting with # are skipped)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RemogptError(f"{path}: file not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise RemogptError(f"{path}: not a readable text file ({type(exc).__name__})") from None
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RemogptError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(items, list) or not items:
            raise RemogptError(f"{path}: expected a non-empty JSON list of {{\"text\": …, \"seconds\": …}}")
        entries = []
        for n, item in enumerate(items, start=1):
            if isinstance(item, str):
                entries.append(_entry(item, n, str(path)))
                continue
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise RemogptError(f"{path}: entry {n} needs a \"text\" string")
            seconds = item.get("seconds")
            if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
                raise RemogptError(f"{path}: entry {n}: \"seconds\" must be a number, got {seconds!r}")
            entry = _entry(item["text"], n, str(path))
            if seconds is not None:
                if not seconds > 0:
                    raise RemogptError(f"{path}: entry {n} lasts {seconds:g} s; a duration must be > 0")
                entry.seconds = float(seconds)
            entries.append(entry)
        return entries
    lines = [line for line in raw.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not lines:
        raise RemogptError(f"{path}: no entries (one per line, e.g. 'a person walks forward (4 s)')")
    return [_entry(line, n, str(path)) for n, line in enumerate(lines, start=1)]


def timeline(model: Any, entries: Sequence[TimelineEntry | tuple[str, float | None] | str], seed: int = 0,
             context_codes: int = CONTEXT_CODES, blend_frames: int = BLEND_FRAMES,
             segments_by: str = SEGMENTS_BY, **sampling: Any) -> EditedMotion:  # fmt: skip
    """One continuous motion from texts with durations: each entry continues the motion so far as its
    text says (retrieving for its own text), for its seconds (or as long as the model makes it).
    A segment after the first goes on from the one before by `segments_by` (see SEGMENTS_BY)."""
    items = [e if isinstance(e, TimelineEntry) else TimelineEntry(e) if isinstance(e, str) else TimelineEntry(*e)
             for e in entries]  # fmt: skip
    if not items:
        raise RemogptError("the timeline is empty; give at least one text")
    from remogpt.motion import skeleton_for_dim

    fps = skeleton_for_dim(model.tokenizer.feature_dim).fps
    for n, e in enumerate(items, start=1):
        if not isinstance(e.text, str) or not e.text.strip():
            raise RemogptError(f"timeline entry {n} is empty")
        if e.seconds is not None and not (math.isfinite(e.seconds) and e.seconds > 0):
            raise RemogptError(f"timeline entry {n} ({e.text!r}) lasts {e.seconds} s; a duration must be > 0")
    _check_way(model, segments_by, "segments_by")
    unit = model.tokenizer.downsample
    segments: list[dict] = []
    codes: list[np.ndarray] = []
    motion: np.ndarray | None = None
    attempts, problem = 1, None
    for n, e in enumerate(items):
        frames = None if e.seconds is None else max(unit, round(e.seconds * fps))
        text = model._check_texts(e.text)[0]
        if motion is None:
            first = None if frames is None else min(frames, _window(model) * unit)
            num = None if first is None else math.ceil(first / unit)
            sample = _sample(model, text, seed, None, num, sampling)
            new = np.asarray(sample.features, dtype=np.float32)[: first or None]
            refs, new_codes = sample.references, np.asarray(sample.codes)
            if frames is not None and frames > len(new):  # longer than one window: it continues itself
                more, more_codes, _, sample = _extend(model, new, text, frames - len(new), seed + 1, context_codes,
                                                      blend_frames, sampling)  # fmt: skip
                new, new_codes = np.concatenate([new, more]), np.concatenate([new_codes, more_codes])
            start = 0
            motion = new
        else:
            new, new_codes, refs, sample = _extend(model, motion, text, frames, seed + 104729 * n, context_codes,
                                                   blend_frames, sampling, text_start=len(motion),
                                                   how=segments_by)  # fmt: skip
            start = len(motion)
            motion = np.concatenate([motion, new])
        codes.append(new_codes)
        attempts, problem = max(attempts, sample.attempts), problem or sample.problem
        segments.append({"text": text, "start": start, "frames": len(new), "references": refs})
    assert motion is not None
    label = " ; then ".join(s["text"] for s in segments)
    extended = len(segments) > 1 or len(motion) > _window(model) * unit
    return EditedMotion(label, motion, _joints(motion), np.concatenate(codes), segments[0]["references"],
                        seams=[s["start"] for s in segments[1:]], segments=segments, attempts=attempts,
                        problem=problem, continued_by=(segments_by if len(segments) > 1 else _continued_by(model))
                        if extended else "")  # fmt: skip
