"""Motion primitives: what a person would describe, animated as pose tracks.

Each primitive writes its part of the body into a `Timeline` over a frame range: locomotion and
leg actions drive the legs, pelvis and the arms' swing; arm actions override one or both arms;
backbone actions bend the spine and neck on top of whatever else happens. Every primitive eases
in from and out to the standing pose, so primitives can follow each other and overlap.
Each also carries its caption phrases (`<name>_phrases`, next to its animation; the grammar they
are written in is captions.py's), so adding a primitive is done in this file.
Angles are in degrees in this file; sides are 0 = left, 1 = right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from remogpt.data.synth.body import J, PoseTracks, arm_direction
from remogpt.data.synth.captions import NUMBER, SPEED_ADV, PhraseWords, a_or_n, pick
from remogpt.motion.skeleton import HUMANML3D

__all__ = ["PRIMITIVES", "Primitive", "Timeline", "idle"]

FPS = 20.0
LEFT, RIGHT = 0, 1
SIDE_NAMES = ("left", "right")
HIP = (J["left_hip"], J["right_hip"])
KNEE = (J["left_knee"], J["right_knee"])
ANKLE = (J["left_ankle"], J["right_ankle"])
SPINE = (J["spine1"], J["spine2"], J["spine3"])
NECK = J["neck"]
PELVIS = J["pelvis"]
X, Y, Z = 0, 1, 2


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def envelope(n: int, rise: float, fall: float) -> np.ndarray:
    """1 inside, smooth ramps of `rise`/`fall` seconds at the ends (shortened for short ranges)."""
    k = np.arange(n, dtype=np.float64)
    r = max(1.0, min(rise * FPS, n / 2))
    f = max(1.0, min(fall * FPS, n / 2))
    return smoothstep(k / r) * smoothstep((n - 1 - k) / f)


def keyframes(n: int, times: Sequence[float], values: Sequence[float | Sequence[float]]) -> np.ndarray:
    """Smooth (ease-in-out) interpolation of key values at key times (seconds) over n frames."""
    t = np.arange(n) / FPS
    times_arr = np.asarray(times, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    idx = np.clip(np.searchsorted(times_arr, t, side="right") - 1, 0, len(times_arr) - 1)
    nxt = np.clip(idx + 1, 0, len(times_arr) - 1)
    span = np.maximum(times_arr[nxt] - times_arr[idx], 1e-9)
    s = smoothstep((t - times_arr[idx]) / span)
    s = np.where(nxt == idx, 0.0, s)
    s = s.reshape((-1,) + (1,) * (vals.ndim - 1))
    return vals[idx] * (1 - s) + vals[nxt] * s


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)


@dataclass
class Timeline:
    """Pose tracks under construction, plus the bookkeeping for layering primitives."""

    frames: int
    rng: np.random.Generator
    tracks: PoseTracks = field(init=False)
    base_euler: np.ndarray = field(init=False)  # legs, pelvis, arm swing bias (T, 22, 3) degrees
    add_euler: np.ndarray = field(init=False)  # backbone actions, added on top (degrees)
    arm_base: np.ndarray = field(init=False)  # (T, 2, 2, 3) arm directions without arm actions
    arm_action: np.ndarray = field(init=False)  # (T, 2, 2, 3) arm action targets
    arm_weight: np.ndarray = field(init=False)  # (T, 2) how much the arm action owns each arm
    yaw_rate: np.ndarray = field(init=False)  # (T,) radians per frame
    trunk_pitch: np.ndarray = field(init=False)  # (T,) degrees the torso leans forward (for hanging arms)

    def __post_init__(self) -> None:
        T = self.frames
        self.tracks = PoseTracks.standing(T)
        self.base_euler = np.zeros((T, 22, 3))
        self.add_euler = np.zeros((T, 22, 3))
        self.arm_base = self.tracks.arm_dirs.copy()
        self.arm_action = self.tracks.arm_dirs.copy()
        self.arm_weight = np.zeros((T, 2))
        self.yaw_rate = np.zeros(T)
        self.trunk_pitch = np.zeros(T)

    def set_arm_action(self, sl: slice, side: int, upper: np.ndarray, fore: np.ndarray, weight: np.ndarray) -> None:
        self.arm_action[sl, side, 0] = upper
        self.arm_action[sl, side, 1] = fore
        self.arm_weight[sl, side] = np.maximum(self.arm_weight[sl, side], weight)

    def finish(self, heading0: float = 0.0) -> PoseTracks:
        """Combine the layers into the tracks that `animate` reads."""
        tr = self.tracks
        tr.euler = np.radians(self.base_euler + self.add_euler)
        # Arms hang under gravity: a forward-leaning torso swings the resting arms back in its frame.
        pitch = np.radians(self.trunk_pitch)[:, None, None]
        base = self.arm_base.copy()
        y, z = base[..., 1].copy(), base[..., 2].copy()
        base[..., 1] = y * np.cos(pitch) + z * np.sin(pitch)
        base[..., 2] = -y * np.sin(pitch) + z * np.cos(pitch)
        w = self.arm_weight[:, :, None, None]
        tr.arm_dirs = _normalize(base * (1 - w) + self.arm_action * w)
        tr.heading = heading0 + np.concatenate([[0.0], np.cumsum(self.yaw_rate[:-1])])
        return tr


@dataclass(frozen=True)
class Primitive:
    """A named motion: which part performs it, its parameter choices, how long it takes, how to animate it."""

    name: str
    part: str  # "locomotion", "legs", "arms" or "backbone"
    sample_params: Callable[[np.random.Generator], dict]
    duration: Callable[[dict, np.random.Generator], float]  # seconds
    animate: Callable[[Timeline, slice, dict], None]
    ends_standing: bool = True
    # Its caption phrases: templates with marked verbs (see captions.py), from its parameters.
    phrases: Callable[[dict, np.random.Generator, PhraseWords], list[str]] | None = None


def _mirror_layer(tl: Timeline, sl: slice, euler_before: np.ndarray) -> None:
    """Mirror (left↔right) what a primitive just added to base_euler over `sl`."""
    delta = tl.base_euler[sl] - euler_before
    perm = list(HUMANML3D.mirror_permutation)
    mirrored = delta[:, perm] * np.array([1.0, -1.0, -1.0])
    tl.base_euler[sl] = euler_before + mirrored


# ----------------------------------------------------------------------------- standing


def idle(tl: Timeline, sl: slice) -> None:
    """Standing still is never perfectly still: breathing, a slow weight shift, a personal posture."""
    n = sl.stop - sl.start
    rng = tl.rng
    s = np.arange(n) / FPS
    tl.base_euler[sl, PELVIS, Z] += 1.5 * np.sin(2 * np.pi * rng.uniform(0.12, 0.25) * s + rng.uniform(0, 6.3))
    breathe = 0.8 * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * s + rng.uniform(0, 6.3))
    for j in SPINE:
        tl.base_euler[sl, j, X] += breathe / 3 + rng.uniform(-1.5, 2.5)
    tl.base_euler[sl, NECK, X] += rng.uniform(-6, 8)
    abd, bend = rng.uniform(2, 10), rng.uniform(5, 20)
    for side in (LEFT, RIGHT):
        tl.arm_base[sl, side, 0] = arm_direction(2, abd, side)
        tl.arm_base[sl, side, 1] = arm_direction(2 + bend, abd * 0.6, side)


# ----------------------------------------------------------------------------- locomotion


def _gait(
    tl: Timeline,
    sl: slice,
    p: dict,
    *,
    run: float = 0.0,
    backward: bool = False,
    high_knee: bool = False,
    phase0: float | None = None,
) -> None:
    """Walking/jogging/running legs and arm swing; `run` in [0, 1] blends walk → run."""
    n = sl.stop - sl.start
    rng = tl.rng
    speed = {"slow": 0.78, "normal": 1.0, "fast": 1.25}[p.get("speed", "normal")]
    freq = (0.9 + 0.55 * run) * speed * rng.uniform(0.93, 1.07)
    if backward:
        freq *= 0.85
    if high_knee:
        freq = 0.55 * rng.uniform(0.9, 1.1)
    env = envelope(n, 0.55, 0.55)
    sign = -1.0 if backward else 1.0
    start = rng.uniform(0, 2 * np.pi) if phase0 is None else phase0
    phase = start + sign * 2 * np.pi * freq * np.arange(n) / FPS
    hip_amp = (21 + 16 * run) * (0.75 + 0.25 * speed) * rng.uniform(0.9, 1.1)
    knee_amp = (58 + 45 * run) * rng.uniform(0.92, 1.08)
    if backward:
        hip_amp *= 0.75
    if high_knee:
        hip_amp, knee_amp = 16.0, 100.0
    for side in (LEFT, RIGHT):
        ph = phase + side * np.pi
        hip_flex = hip_amp * np.sin(ph) + 4 + 6 * run
        if high_knee:
            hip_flex = hip_flex + 50 * np.maximum(0, np.cos(ph + np.pi / 6)) ** 1.5
        swing = np.maximum(0.0, np.cos(ph + np.pi / 6)) ** 1.5
        knee = knee_amp * swing + (12 + 10 * run) * np.maximum(0.0, np.cos(ph - 3 * np.pi / 4)) ** 4 + 4
        dorsi = (
            12 * np.maximum(0.0, np.cos(ph + np.pi / 6)) ** 2
            - (16 + 10 * run) * np.maximum(0.0, np.cos(ph + 2 * np.pi / 3)) ** 6
        )
        tl.base_euler[sl, HIP[side], X] += -env * hip_flex
        tl.base_euler[sl, KNEE[side], X] += env * knee
        tl.base_euler[sl, ANKLE[side], X] += -env * dorsi
    tl.base_euler[sl, PELVIS, Y] += -env * (5 - 2 * run) * np.sin(phase)
    tl.base_euler[sl, PELVIS, Z] += env * 2.0 * np.sin(phase)
    for j in SPINE[1:]:
        tl.base_euler[sl, j, Y] += env * 2.5 * np.sin(phase)
    lean = (3 + 9 * run) * (1 if not backward else -0.3)
    for j in SPINE:
        tl.base_euler[sl, j, X] += env * lean / 3
    tl.trunk_pitch[sl] += env * lean
    # Arms swing opposite to the legs; running arms are bent.
    arm_amp = (16 + 18 * run) * (0.8 + 0.2 * speed) * rng.uniform(0.8, 1.2)
    elbow = 12 + 70 * run
    for side in (LEFT, RIGHT):
        swing_flex = -arm_amp * np.sin(phase + side * np.pi) * env
        upper = arm_direction(swing_flex, 6 + 4 * run, side)
        fore = arm_direction(swing_flex + elbow * (0.6 + 0.4 * env) + 8 * np.maximum(0, swing_flex) / 10, 4, side)
        tl.arm_base[sl, side, 0] = _normalize(tl.arm_base[sl, side, 0] * (1 - env[:, None]) + upper * env[:, None])
        tl.arm_base[sl, side, 1] = _normalize(tl.arm_base[sl, side, 1] * (1 - env[:, None]) + fore * env[:, None])
    if run > 0:
        # Flight phases around the moments both feet are off the ground (twice per stride).
        frac = 0.18 + 0.17 * run
        c0 = np.cos(np.pi * frac)
        lift = np.clip((np.cos(2 * phase + np.pi) - c0) / (1 - c0), 0, 1)
        height = (0.035 + 0.04 * run) * rng.uniform(0.85, 1.15)
        tl.tracks.airborne[sl] += env**4 * height * np.sin(np.pi * lift / 2) ** 2 * (lift > 0)


def _walk(tl: Timeline, sl: slice, p: dict) -> None:
    _gait(tl, sl, p)
    tl.yaw_rate[sl] += p.get("yaw_total", 0.0) * _rate_profile(sl.stop - sl.start)


def _walk_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    adv = pick(rng, SPEED_ADV[p["speed"]])
    out = [
        f"^walk forward {adv}",
        f"^walk straight ahead {adv}",
        f"^take a few steps forward {adv}",
        f"^move forward {adv}",
    ]
    if p["speed"] == "slow":
        out += ["^stroll forward slowly", "^walk slowly forward"]
    elif p["speed"] == "fast":
        out += ["^walk quickly forward", "^hurry forward", "^walk forward at a brisk pace"]
    return out


def _rate_profile(n: int) -> np.ndarray:
    """Per-frame weights summing to 1, easing in and out (for spreading a turn over a range)."""
    w = envelope(n, 0.6, 0.6)
    return w / w.sum()


def _jog(tl: Timeline, sl: slice, p: dict) -> None:
    _gait(tl, sl, p, run=0.55)


def _jog_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    adv = "slowly" if p["speed"] == "slow" else ""
    return [
        f"^jog forward {adv}",
        f"^jog straight ahead {adv}",
        f"^jog in a straight line {adv}",
        f"^run forward at a jogging pace {adv}",
    ]


def _run(tl: Timeline, sl: slice, p: dict) -> None:
    _gait(tl, sl, p, run=1.0)


def _run_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    if p["speed"] == "fast":
        return ["^sprint forward", "^run forward very fast", "^run quickly straight ahead", "^sprint ahead"]
    return ["^run forward", "^run straight ahead", "^run ahead", "^run forward in a straight line"]


def _walk_backward(tl: Timeline, sl: slice, p: dict) -> None:
    _gait(tl, sl, p, backward=True)


def _walk_backward_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    adv = pick(rng, SPEED_ADV[p["speed"]])
    return [
        f"^walk backwards {adv}",
        f"^walk backward {adv}",
        f"^take a few steps backwards {adv}",
        "^step backwards a few times",
        "^back up a few steps",
    ]


def _circle(tl: Timeline, sl: slice, p: dict) -> None:
    _gait(tl, sl, {"speed": "normal"})
    direction = 1.0 if p["direction"] == "counterclockwise" else -1.0
    tl.yaw_rate[sl] += direction * p["angle"] * _rate_profile(sl.stop - sl.start)


def _circle_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    d = p["direction"]
    turn = "left" if d == "counterclockwise" else "right"
    return [
        f"^walk in a {d} circle",
        f"^walk around in a circle {d}",
        f"^walk in a circle, +turn to the {turn}",
        f"^walk in a circle to the {turn}",
        f"^circle around {d}",
    ]


def _march_in_place(tl: Timeline, sl: slice, lift: float = 1.0) -> None:
    n = sl.stop - sl.start
    env = envelope(n, 0.3, 0.3)
    freq = 1.1 * tl.rng.uniform(0.9, 1.1)
    phase = 2 * np.pi * freq * np.arange(n) / FPS
    for side in (LEFT, RIGHT):
        up = np.maximum(0.0, np.sin(phase + side * np.pi)) ** 1.5
        tl.base_euler[sl, HIP[side], X] += -env * 18 * lift * up
        tl.base_euler[sl, KNEE[side], X] += env * 35 * lift * up
        tl.base_euler[sl, ANKLE[side], X] += -env * 12 * lift * up


def _turn(tl: Timeline, sl: slice, p: dict) -> None:
    _march_in_place(tl, sl)
    direction = 1.0 if p["direction"] == "left" else -1.0
    tl.yaw_rate[sl] += direction * np.radians(p["angle"]) * _rate_profile(sl.stop - sl.start)


def _turn_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    d = p["direction"]
    if p["angle"] == 90:
        return [
            f"^turn to the {d}",
            f"^turn {d}",
            f"^make a quarter turn to the {d}",
            f"^turn ninety degrees to the {d}",
            f"^rotate to the {d}",
        ]
    return [
        f"^turn around to the {d}",
        f"^turn all the way around to the {d}",
        f"^make a half turn to the {d}",
        f"^turn to the {d} and ^face the other way",
        f"^spin around to the {d}",
    ]


def _sidestep(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    before = tl.base_euler[sl].copy()
    env = envelope(n, 0.4, 0.4)
    freq = 0.85 * tl.rng.uniform(0.9, 1.1)
    phase = 2 * np.pi * freq * np.arange(n) / FPS
    amp = 13 * tl.rng.uniform(0.85, 1.15)
    # Written for stepping to the left; mirrored for the right.
    lateral = (-amp * np.cos(phase), amp * np.cos(phase))
    lift = (np.maximum(0.0, np.sin(phase)), np.maximum(0.0, -np.sin(phase)))
    for side in (LEFT, RIGHT):
        tl.base_euler[sl, HIP[side], Z] += env * (lateral[side] + amp)
        tl.base_euler[sl, HIP[side], X] += -env * 12 * lift[side]
        tl.base_euler[sl, KNEE[side], X] += env * 30 * lift[side]
        tl.base_euler[sl, ANKLE[side], X] += -env * 10 * lift[side]
    # Both legs end where they started: remove the constant offset at the ends with the envelope.
    for side in (LEFT, RIGHT):
        tl.base_euler[sl, HIP[side], Z] -= env * amp
    if p["side"] == "right":
        _mirror_layer(tl, sl, before)


def _sidestep_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, count = w.side, w.count
    n = NUMBER[count]
    return [
        f"^sidestep to the {side}",
        f"^step sideways to the {side}",
        f"^take {n} steps sideways to the {side}",
        f"^shuffle sideways to the {side}",
        f"^sidestep {n} times to the {side}",
    ]


def _ballistic(n: int, height: float) -> np.ndarray:
    s = (np.arange(n) + 1) / (n + 1)
    return 4 * height * s * (1 - s)


def _jump(tl: Timeline, sl: slice, p: dict) -> None:
    rng = tl.rng
    height = {"low": 0.15, "high": 0.32}[p.get("height", "low")] * rng.uniform(0.85, 1.15)
    flight = np.sqrt(8 * height / 9.81)
    forward = p.get("direction") == "forward"
    distance = rng.uniform(0.45, 0.8) if forward else 0.0
    t = sl.start
    for _ in range(p["count"]):
        crouch, takeoff = 0.35, 0.47
        land = takeoff + flight
        keys = [0.0, crouch, takeoff, takeoff + flight / 2, land, land + 0.22, land + 0.55]
        hip = [0, 48, 0, 28, 12, 42, 0]
        knee = [0, 82, 4, 45, 20, 70, 0]
        ankle_flat = [0, 82 - 48, -30, 0, 8, 70 - 42, 0]  # dorsi: feet flat while crouched, toes down at take-off
        trunk = [0, 22, 4, 6, 8, 20, 0]
        arm = [0, -40, 150, 110, 60, 30, 0]
        m = round(keys[-1] * FPS)
        seg = slice(t, min(t + m, sl.stop))
        k = seg.stop - seg.start
        if k <= 0:
            break
        for side in (LEFT, RIGHT):
            tl.base_euler[seg, HIP[side], X] += -keyframes(k, keys, hip)
            tl.base_euler[seg, KNEE[side], X] += keyframes(k, keys, knee)
            tl.base_euler[seg, ANKLE[side], X] += -keyframes(k, keys, ankle_flat)
            flex = keyframes(k, keys, arm)
            tl.arm_base[seg, side, 0] = arm_direction(flex, 8, side)
            tl.arm_base[seg, side, 1] = arm_direction(flex + 15, 5, side)
        lean = keyframes(k, keys, trunk)
        for j in SPINE:
            tl.base_euler[seg, j, X] += lean / 3
        tl.trunk_pitch[seg] += lean
        a = t + round(takeoff * FPS)
        b = min(t + round(land * FPS), sl.stop)
        if b > a:
            tl.tracks.airborne[a:b] += _ballistic(b - a, height)
            tl.tracks.flight_velocity[a:b] = [0.0, distance / max(b - a, 1)]
        t += m


def _jump_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    count, cw = w.count, w.cw
    c1 = count == 1
    if p["direction"] == "forward":
        out = [
            f"^jump forward {cw}",
            f"^leap forward {cw}",
            f"^jump ahead {cw}",
            f"^do {a_or_n(count, 'jump')} forward",
        ]
    else:
        out = [
            f"^jump {cw}" if not c1 else "^jump up",
            f"^jump up and down {cw}",
            f"^jump in place {cw}",
            f"^jump straight up {cw}",
        ]
    if p["height"] == "high":
        out.append(
            f"^jump high into the air {cw}" if p["direction"] != "forward" else f"^leap high and far forward {cw}"
        )
    else:
        out.append(
            f"^do {'a small jump' if c1 else NUMBER[count] + ' small jumps'}"
            + (" forward" if p["direction"] == "forward" else " in place")
        )
    return out


def _hop(tl: Timeline, sl: slice, p: dict) -> None:
    """Hopping on the `side` foot; the other leg is held up, bent at the knee."""
    before = tl.base_euler[sl].copy()
    rng = tl.rng
    n = sl.stop - sl.start
    env = envelope(n, 0.35, 0.35)
    stand, lifted = LEFT, RIGHT  # written for hopping on the left foot
    tl.base_euler[sl, HIP[lifted], X] += -env * 28
    tl.base_euler[sl, KNEE[lifted], X] += env * 85
    tl.base_euler[sl, ANKLE[lifted], X] += env * 15
    forward = p.get("direction") == "forward"
    height = 0.09 * rng.uniform(0.85, 1.15)
    flight = np.sqrt(8 * height / 9.81)
    t = sl.start + int(0.35 * FPS)
    for _ in range(p["count"]):
        keys = [0.0, 0.22, 0.3, 0.3 + flight, 0.3 + flight + 0.2]
        m = round(keys[-1] * FPS)
        seg = slice(t, min(t + m, sl.stop))
        k = seg.stop - seg.start
        if k <= 0:
            break
        tl.base_euler[seg, HIP[stand], X] += -keyframes(k, keys, [0, 22, 2, 10, 0])
        tl.base_euler[seg, KNEE[stand], X] += keyframes(k, keys, [0, 38, 3, 15, 0])
        tl.base_euler[seg, ANKLE[stand], X] += -keyframes(k, keys, [0, 16, -25, 0, 0])
        a, b = t + round(0.3 * FPS), min(t + round((0.3 + flight) * FPS), sl.stop)
        if b > a:
            tl.tracks.airborne[a:b] += _ballistic(b - a, height)
            tl.tracks.flight_velocity[a:b] = [0.0, (rng.uniform(0.15, 0.3) if forward else 0.0) / max(b - a, 1)]
        t += m
    # Arms out a little for balance.
    for side in (LEFT, RIGHT):
        tl.arm_base[sl, side, 0] = _normalize(
            tl.arm_base[sl, side, 0] * (1 - env[:, None]) + arm_direction(10, 30, side) * env[:, None]
        )
        tl.arm_base[sl, side, 1] = _normalize(
            tl.arm_base[sl, side, 1] * (1 - env[:, None]) + arm_direction(40, 25, side) * env[:, None]
        )
    if p["side"] == "right":
        _mirror_layer(tl, sl, before)


def _hop_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, cw, poss = w.side, w.cw, w.poss
    where = "forward" if p["direction"] == "forward" else "in place"
    return [
        f"^hop on the {side} foot {cw}",
        f"^hop {cw} on {poss} {side} leg",
        f"^hop {where} on the {side} foot {cw}",
        f"^balance on the {side} leg and ^hop {where} {cw}",
    ]


# ----------------------------------------------------------------------------- leg actions


def _flat_feet(tl: Timeline, seg: slice, side: int, hip: np.ndarray, knee: np.ndarray, extra: float = 0.0) -> None:
    tl.base_euler[seg, HIP[side], X] += -hip
    tl.base_euler[seg, KNEE[side], X] += knee
    tl.base_euler[seg, ANKLE[side], X] += -(knee - hip + extra)


def _kick(tl: Timeline, sl: slice, p: dict) -> None:
    before = tl.base_euler[sl].copy()
    high = p.get("height") == "high"
    kick, stand = LEFT, RIGHT  # written for the left leg
    t = sl.start
    for _ in range(p["count"]):
        keys = [0.0, 0.3, 0.45, 0.65, 0.95]
        m = round(keys[-1] * FPS)
        seg = slice(t, min(t + m, sl.stop))
        k = seg.stop - seg.start
        if k <= 0:
            break
        top = 88 if high else 68
        tl.base_euler[seg, HIP[kick], X] += -keyframes(k, keys, [0, 55, top, 50, 0])
        tl.base_euler[seg, KNEE[kick], X] += keyframes(k, keys, [0, 88, 8, 80, 0])
        tl.base_euler[seg, ANKLE[kick], X] += keyframes(k, keys, [0, 5, 25, 5, 0])
        _flat_feet(tl, seg, stand, keyframes(k, keys, [0, 8, 10, 8, 0]), keyframes(k, keys, [0, 12, 14, 12, 0]))
        lean = keyframes(k, keys, [0, -4, -12, -4, 0])
        for j in SPINE:
            tl.base_euler[seg, j, X] += lean / 3
        tl.trunk_pitch[seg] += lean
        t += m
    if p["side"] == "right":
        _mirror_layer(tl, sl, before)


def _kick_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, count, cw, poss = w.side, w.count, w.cw, w.poss
    hl = "high" if p["height"] == "high" else "low"
    return [
        f"^kick with the {side} leg {cw}",
        f"^kick {poss} {side} foot forward {cw}",
        f"^kick out with the {side} leg {cw}",
        f"^do {a_or_n(count, hl + ' kick')} with the {side} foot",
    ]


def _squat(tl: Timeline, sl: slice, p: dict) -> None:
    rng = tl.rng
    t = sl.start
    arms_forward = p.get("arms_forward", False)
    for _ in range(p["count"]):
        down, hold = rng.uniform(0.8, 1.1), rng.uniform(0.2, 0.6)
        keys = [0.0, down, down + hold, 2 * down + hold]
        m = round(keys[-1] * FPS)
        seg = slice(t, min(t + m, sl.stop))
        k = seg.stop - seg.start
        if k <= 0:
            break
        depth = rng.uniform(0.85, 1.05)
        hip = keyframes(k, keys, [0, 95 * depth, 95 * depth, 0])
        knee = keyframes(k, keys, [0, 115 * depth, 115 * depth, 0])
        for side in (LEFT, RIGHT):
            _flat_feet(tl, seg, side, hip, knee)
        lean = keyframes(k, keys, [0, 30 * depth, 30 * depth, 0])
        for j in SPINE:
            tl.base_euler[seg, j, X] += lean / 3
        tl.trunk_pitch[seg] += lean * (0.0 if arms_forward else 1.0)
        if arms_forward:
            w = hip / 95.0
            for side in (LEFT, RIGHT):
                tl.arm_base[seg, side, 0] = _normalize(
                    tl.arm_base[seg, side, 0] * (1 - w[:, None]) + arm_direction(85, 8, side) * w[:, None]
                )
                tl.arm_base[seg, side, 1] = _normalize(
                    tl.arm_base[seg, side, 1] * (1 - w[:, None]) + arm_direction(90, 4, side) * w[:, None]
                )
        t += m


def _squat_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    count, cw, poss = w.count, w.cw, w.poss
    arms = " with the arms held out in front" if p.get("arms_forward") else ""
    return [
        f"^squat down {cw}{arms}",
        f"^do {a_or_n(count, 'squat')}{arms}",
        f"^squat down and ^stand back up {cw}",
        f"^bend {poss} knees into a squat {cw}",
        f"^crouch down and ^rise again {cw}",
    ]


def _sit(tl: Timeline, sl: slice, p: dict) -> None:
    rng = tl.rng
    n = sl.stop - sl.start
    down = rng.uniform(1.1, 1.4)
    end = n / FPS
    if p.get("stand_up", True):
        keys = [0.0, down, end - down - 0.1, end - 0.1]
        pose = [0, 1, 1, 0]
    else:
        keys = [0.0, down, end]
        pose = [0, 1, 1]
    w = keyframes(n, keys, pose)
    for side in (LEFT, RIGHT):
        _flat_feet(tl, sl, side, 88 * w, 92 * w)
    if p.get("stand_up", True):
        lean = keyframes(n, [0, 0.5 * down, down, end - down - 0.1, end - 0.6 * down, end - 0.1], [0, 25, 4, 4, 25, 0])
    else:
        lean = keyframes(n, [0, 0.5 * down, down, end], [0, 25, 4, 4])
    for j in SPINE:
        tl.base_euler[sl, j, X] += lean / 3
    # Hands come to rest on the thighs.
    for side in (LEFT, RIGHT):
        tl.arm_base[sl, side, 0] = _normalize(
            tl.arm_base[sl, side, 0] * (1 - w[:, None]) + arm_direction(35, 8, side) * w[:, None]
        )
        tl.arm_base[sl, side, 1] = _normalize(
            tl.arm_base[sl, side, 1] * (1 - w[:, None]) + arm_direction(80, 2, side) * w[:, None]
        )


def _sit_down_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    refl = w.refl
    if p["stand_up"]:
        return [
            "^sit down and then ^stand back up",
            "^sit on a chair and ^get back up",
            "^take a seat and then ^stand up again",
            "^sit down for a moment and ^stand up again",
        ]
    return ["^sit down", "^sit down on a chair", "^take a seat", f"^lower {refl} into a chair", "^sit down slowly"]


def _kneel(tl: Timeline, sl: slice, p: dict) -> None:
    """Kneel on the `side` knee (the other foot stays planted in front), then maybe stand up."""
    before = tl.base_euler[sl].copy()
    rng = tl.rng
    n = sl.stop - sl.start
    down = rng.uniform(1.0, 1.3)
    end = n / FPS
    if p.get("stand_up", True):
        w = keyframes(n, [0.0, down, end - down - 0.1, end - 0.1], [0, 1, 1, 0])
    else:
        w = keyframes(n, [0.0, down, end], [0, 1, 1])
    knee_down, front = LEFT, RIGHT  # written for kneeling on the left knee
    tl.base_euler[sl, HIP[knee_down], X] += -w * 8
    tl.base_euler[sl, KNEE[knee_down], X] += w * 95
    tl.base_euler[sl, ANKLE[knee_down], X] += w * 20
    _flat_feet(tl, sl, front, 92 * w, 92 * w)
    for j in SPINE:
        tl.base_euler[sl, j, X] += w * 3
    if p["side"] == "right":
        _mirror_layer(tl, sl, before)


def _kneel_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, poss = w.side, w.poss
    rest = " and then ^stand back up" if p["stand_up"] else ""
    return [
        f"^kneel down on the {side} knee{rest}",
        f"^get down on {poss} {side} knee{rest}",
        f"^kneel on the {side} knee{rest}",
        f"^go down on one knee, the {side} one{', and ^get up again' if rest else ''}",
    ]


def _lunge(tl: Timeline, sl: slice, p: dict) -> None:
    before = tl.base_euler[sl].copy()
    t = sl.start
    front, back = LEFT, RIGHT  # written for lunging with the left leg forward
    for _ in range(p["count"]):
        keys = [0.0, 0.45, 0.8, 1.5, 1.9, 2.6, 3.0, 3.4]
        m = round(keys[-1] * FPS)
        seg = slice(t, min(t + m, sl.stop))
        k = seg.stop - seg.start
        if k <= 0:
            break
        fh = keyframes(k, keys, [0, 45, 55, 80, 80, 55, 45, 0])
        fk = keyframes(k, keys, [0, 65, 35, 95, 95, 35, 65, 0])
        tl.base_euler[seg, HIP[front], X] += -fh
        tl.base_euler[seg, KNEE[front], X] += fk
        tl.base_euler[seg, ANKLE[front], X] += -keyframes(k, keys, [0, 10, -5, 15, 15, -5, 10, 0])
        tl.base_euler[seg, HIP[back], X] += keyframes(k, keys, [0, 5, 12, 18, 18, 12, 5, 0])
        tl.base_euler[seg, KNEE[back], X] += keyframes(k, keys, [0, 5, 15, 80, 80, 15, 5, 0])
        tl.base_euler[seg, ANKLE[back], X] += keyframes(k, keys, [0, 5, 15, 45, 45, 15, 5, 0])
        t += m
    if p["side"] == "right":
        _mirror_layer(tl, sl, before)


def _lunge_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, count, cw, poss = w.side, w.count, w.cw, w.poss
    return [
        f"^lunge forward with the {side} leg {cw}",
        f"^do {a_or_n(count, 'lunge')} with the {side} leg",
        f"^step forward into a lunge with the {side} foot {cw}",
        f"^lunge with {poss} {side} leg in front {cw}",
    ]


def _step_over(tl: Timeline, sl: slice, p: dict) -> None:
    before = tl.base_euler[sl].copy()
    # The left leg swings first: its swing starts at phase −π/2 (hip fully extended).
    _gait(tl, sl, {"speed": "slow"}, high_knee=True, phase0=-np.pi / 2 - 0.3)
    if p["side"] == "right":
        _mirror_layer(tl, sl, before)


def _step_over_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side = w.side
    return [
        f"^step over an obstacle with the {side} foot first",
        f"^step over something, +lead with the {side} leg",
        f"^lift the {side} knee high and ^step over something",
        f"^step carefully over an object, {side} foot first",
    ]


# ----------------------------------------------------------------------------- arm actions


def _arm_sides(p: dict) -> tuple[int, ...]:
    return {"left": (LEFT,), "right": (RIGHT,), "both": (LEFT, RIGHT)}[p["side"]]


def _hold_weight(n: int, rise: float = 0.45, fall: float = 0.45) -> np.ndarray:
    return envelope(n, rise, fall)


def _wave(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.5, 0.5)
    freq = 2.2 * tl.rng.uniform(0.85, 1.15)
    osc = 28 * np.sin(2 * np.pi * freq * np.arange(n) / FPS)
    abd = 120 * tl.rng.uniform(0.85, 1.1)
    for side in _arm_sides(p):
        upper = np.broadcast_to(arm_direction(18, abd, side), (n, 3))
        fore = arm_direction(10, 180 - 0.35 * (180 - abd) + osc, side)  # forearm up, swinging sideways
        tl.set_arm_action(sl, side, upper, fore, w)


def _wave_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, poss = w.side, w.poss
    if side == "both":
        return [
            "^wave with both hands",
            "^wave both arms in the air",
            "^raise both hands and ^wave",
            f"^wave both hands above {poss} head",
        ]
    return [
        f"^wave with the {side} hand",
        f"^wave {poss} {side} hand",
        f"^raise the {side} hand and ^wave",
        f"^wave the {side} arm in the air",
        f"^wave hello with the {side} hand",
    ]


def _raise(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.6, 0.6)
    style = p.get("style", "overhead")
    for side in _arm_sides(p):
        if style == "overhead":
            upper = arm_direction(168, 12, side)
            fore = arm_direction(172, 8, side)
        else:  # out to the sides
            upper = arm_direction(0, 90, side)
            fore = arm_direction(0, 92, side)
        tl.set_arm_action(sl, side, np.broadcast_to(upper, (n, 3)), np.broadcast_to(fore, (n, 3)), w)


def _raise_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, poss = w.side, w.poss
    if p["style"] == "overhead":
        if side == "both":
            return [
                "^raise both arms above the head",
                "^lift both arms up",
                "^put both hands up in the air",
                f"^raise both hands over {poss} head",
            ]
        return [
            f"^raise the {side} arm above the head",
            f"^lift {poss} {side} arm up",
            f"^put the {side} hand up in the air",
            f"^raise {poss} {side} hand over {poss} head",
        ]
    if side == "both":
        return [
            "^hold both arms out to the sides",
            "^raise both arms out to the sides",
            f"^spread {poss} arms out sideways",
            "^extend both arms sideways to shoulder height",
        ]
    return [
        f"^hold the {side} arm out to the side",
        f"^raise the {side} arm out to the side",
        f"^extend {poss} {side} arm sideways",
        f"^lift the {side} arm sideways to shoulder height",
    ]


def _clap(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.45, 0.45)
    freq = 2.4 * tl.rng.uniform(0.85, 1.15)
    s = np.arange(n) / FPS
    start = 0.45
    clap_phase = np.clip((s - start) * freq, 0, p["count"])
    together = 0.5 - 0.5 * np.cos(2 * np.pi * clap_phase)  # 0 apart … 1 together
    for side in (LEFT, RIGHT):
        upper = np.broadcast_to(arm_direction(55, 22, side), (n, 3))
        inward = 20 + 55 * (1 - together)  # horizontal opening of the forearm
        fore = arm_direction(80, -(70 - inward), side)
        tl.set_arm_action(sl, side, upper, fore, w)


def _clap_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    count, cw, poss = w.count, w.cw, w.poss
    return [
        f"^clap {cw}",
        f"^clap {poss} hands {cw}",
        f"^clap {poss} hands together {cw}",
        f"^give {NUMBER[count]} claps",
    ]


def _punch(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.35, 0.35)
    sides = _arm_sides(p)
    guard_upper = {s: arm_direction(35, 12, s) for s in (LEFT, RIGHT)}
    guard_fore = {s: arm_direction(150, -25, s) for s in (LEFT, RIGHT)}
    strike = np.zeros((n, 2))
    period = 0.55
    for i in range(p["count"]):
        side = sides[i % len(sides)]
        t0 = 0.4 + i * period
        strike[:, side] = np.maximum(strike[:, side], keyframes(n, [0, t0, t0 + 0.15, t0 + 0.4, 99], [0, 0, 1, 0, 0]))
    for side in (LEFT, RIGHT):
        s = strike[:, side : side + 1]
        upper = _normalize(guard_upper[side] * (1 - s) + arm_direction(88, -4, side) * s)
        fore = _normalize(guard_fore[side] * (1 - s) + arm_direction(90, -6, side) * s)
        tl.set_arm_action(sl, side, upper, fore, w)  # both arms keep a guard; the named one strikes
    twist = (strike[:, RIGHT] - strike[:, LEFT]) * 12
    for j in SPINE[1:]:
        tl.add_euler[sl, j, Y] += twist / 2


def _punch_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, count, cw = w.side, w.count, w.cw
    if side == "both":
        n = NUMBER[max(count, 2)]
        return [
            f"^throw {n} punches with alternating fists",
            "^punch with alternating fists",
            f"^punch forward {n} times, alternating hands",
            f"^jab {n} times with both fists",
        ]
    return [
        f"^punch with the {side} hand {cw}",
        f"^punch forward with the {side} fist {cw}",
        f"^throw {a_or_n(count, 'punch').replace('punchs', 'punches')} with the {side} hand",
        f"^jab with the {side} arm {cw}",
    ]


def _throw(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    (side,) = _arm_sides(p)
    keys = [0.0, 0.55, 0.75, 0.95, n / FPS]
    flex = keyframes(n, keys, [0, -10, 120, 50, 0])
    abd = keyframes(n, keys, [8, 80, 15, -20, 8])
    fore_flex = keyframes(n, keys, [0, 120, 150, 45, 0])
    w = _hold_weight(n, 0.3, 0.5)
    tl.set_arm_action(sl, side, arm_direction(flex, abd, side), arm_direction(fore_flex, abd * 0.6, side), w)
    twist = keyframes(n, keys, [0, 25, -10, -20, 0]) * (1 if side == RIGHT else -1)
    for j in SPINE:
        tl.add_euler[sl, j, Y] += twist / 3


def _throw_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, poss = w.side, w.poss
    return [
        f"^throw something with the {side} hand",
        f"^throw a ball with the {side} arm",
        f"^make a throwing motion with the {side} hand",
        f"^throw an object overhand with {poss} {side} arm",
        f"^wind up and ^throw with the {side} hand",
    ]


def _reach(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.6, 0.6)
    for side in _arm_sides(p):
        upper = arm_direction(92, -8, side)
        fore = arm_direction(92, -10, side)
        tl.set_arm_action(sl, side, np.broadcast_to(upper, (n, 3)), np.broadcast_to(fore, (n, 3)), w)
    for j in SPINE:
        tl.add_euler[sl, j, X] += w * 4


def _reach_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, poss = w.side, w.poss
    if side == "both":
        return [
            "^reach forward with both hands",
            "^reach out in front with both arms",
            "^stretch both arms out in front",
            "^extend both arms forward",
        ]
    return [
        f"^reach forward with the {side} hand",
        f"^reach out in front with the {side} arm",
        f"^stretch the {side} arm out in front",
        f"^extend {poss} {side} arm forward",
    ]


def _drink(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.6, 0.6)
    (side,) = _arm_sides(p)
    upper = arm_direction(42, -18, side)
    fore = _normalize(np.array([-0.45 if side == LEFT else 0.45, 0.88, 0.12]))
    tl.set_arm_action(sl, side, np.broadcast_to(upper, (n, 3)), np.broadcast_to(fore, (n, 3)), w)
    tl.add_euler[sl, NECK, X] += -w * 14


def _drink_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, poss = w.side, w.poss
    return [
        f"^drink from a cup in the {side} hand",
        f"^take a drink with the {side} hand",
        f"^bring the {side} hand to {poss} mouth as if +drink",
        f"^drink something held in {poss} {side} hand",
        f"^raise a cup to {poss} mouth with the {side} hand",
    ]


def _stretch(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    w = _hold_weight(n, 0.7, 0.7)
    for side in (LEFT, RIGHT):
        upper = arm_direction(172, 14, side)
        fore = arm_direction(176, 10, side)
        tl.set_arm_action(sl, side, np.broadcast_to(upper, (n, 3)), np.broadcast_to(fore, (n, 3)), w)
    for j in SPINE:
        tl.add_euler[sl, j, X] += -w * 4


def _stretch_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    poss = w.poss
    return [
        "^stretch both arms above the head",
        f"^stretch {poss} arms up high",
        "^reach up and ^stretch",
        "^do an overhead stretch",
        "^stretch, +raise both arms overhead",
    ]


# ----------------------------------------------------------------------------- backbone actions


def _spine(tl: Timeline, sl: slice, axis: int, curve: np.ndarray, neck: float = 0.3) -> None:
    for j, share in zip(SPINE, (0.3, 0.35, 0.35), strict=True):
        tl.add_euler[sl, j, axis] += curve * share
    tl.add_euler[sl, NECK, axis] += curve * neck


def _bow(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    depth = {"slight": 28.0, "deep": 50.0}[p.get("depth", "slight")] * tl.rng.uniform(0.9, 1.1)
    curve = np.zeros(n)
    per = n / p["count"]
    for i in range(p["count"]):
        a = int(i * per)
        b = int((i + 1) * per)
        curve[a:b] = depth * keyframes(b - a, [0, 0.5, 0.5 + 0.5, (b - a) / FPS], [0, 1, 1, 0])
    _spine(tl, sl, X, curve)
    tl.trunk_pitch[sl] += curve


def _bow_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    count, cw = w.count, w.cw
    deep = p["depth"] == "deep"
    return [
        f"^bow {'deeply' if deep else 'slightly'} {cw}",
        f"^bow {cw}",
        f"^bow down {cw}",
        f"^take {'a deep' if deep else 'a small'} bow" if count == 1 else f"^bow {'deeply ' if deep else ''}{cw}",
        f"^bend forward in {'a deep' if deep else 'a slight'} bow {cw}",
    ]


def _bend_forward(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    end = n / FPS
    w = keyframes(n, [0, 1.0, max(1.01, end - 1.0), end], [0, 1, 1, 0])
    hinge, spine = 48 * w, 45 * w
    tl.add_euler[sl, PELVIS, X] += hinge
    for side in (LEFT, RIGHT):
        tl.add_euler[sl, HIP[side], X] += -hinge  # thighs stay vertical: the hips flex by the pelvis tilt
    _spine(tl, sl, X, spine, neck=0.2)
    tl.trunk_pitch[sl] += hinge + spine


def _bend_forward_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    return [
        "^bend forward",
        "^bend down to ~touch the toes",
        "^bend over at the waist",
        "^bend forward at the waist and ^come back up",
        "^lean all the way forward and ^straighten up again",
    ]


def _lean(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    amount = 30 * tl.rng.uniform(0.85, 1.15)
    sign = -1.0 if p["side"] == "left" else 1.0  # a lean to the left (+X) is a negative roll about Z
    curve = np.zeros(n)
    per = n / p["count"]
    for i in range(p["count"]):
        a, b = int(i * per), int((i + 1) * per)
        curve[a:b] = keyframes(b - a, [0, 0.7, max(0.71, (b - a) / FPS - 0.7), (b - a) / FPS], [0, 1, 1, 0])
    _spine(tl, sl, Z, sign * amount * curve, neck=0.15)


def _lean_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, cw, poss = w.side, w.cw, w.poss
    return [
        f"^lean to the {side} {cw}",
        f"^lean the upper body to the {side} {cw}",
        f"^tilt {poss} torso to the {side} {cw}",
        f"^bend sideways to the {side} {cw}",
    ]


def _twist(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    amount = 38 * tl.rng.uniform(0.85, 1.15)
    first = 1.0 if p["side"] == "left" else -1.0  # turning the torso to the left is +Y
    s = np.arange(n) / FPS
    env = envelope(n, 0.4, 0.4)
    freq = p["count"] / max(n / FPS - 0.4, 0.5)
    curve = first * amount * env * np.sin(2 * np.pi * freq * (s - 0.2).clip(0))
    _spine(tl, sl, Y, curve, neck=0.4)


def _twist_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, other, cw, poss = w.side, w.other, w.cw, w.poss
    return [
        f"^twist the upper body to the {side} and then to the {other}",
        f"^twist {poss} torso from side to side {cw}",
        f"^rotate the torso to the {side} and back {cw}",
        f"^turn {poss} upper body to the {side}, then to the {other}",
    ]


def _look_around(tl: Timeline, sl: slice, p: dict) -> None:
    n = sl.stop - sl.start
    amount = 60 * tl.rng.uniform(0.85, 1.1)
    first = 1.0 if p["side"] == "left" else -1.0
    env = envelope(n, 0.3, 0.3)
    s = np.arange(n) / FPS
    freq = p["count"] / max(n / FPS - 0.3, 0.5)
    curve = first * amount * env * np.sin(2 * np.pi * freq * (s - 0.15).clip(0))
    tl.add_euler[sl, NECK, Y] += curve
    for j in SPINE[1:]:
        tl.add_euler[sl, j, Y] += curve * 0.1


def _look_around_phrases(p: dict, rng: np.random.Generator, w: PhraseWords) -> list[str]:
    side, other, poss = w.side, w.other, w.poss
    return [
        "^look around",
        f"^look to the {side} and then to the {other}",
        f"^turn {poss} head to the {side} and then to the {other}",
        f"^look {side} and {other}",
        f"^glance to the {side} and to the {other}",
    ]


# ----------------------------------------------------------------------------- the table


def _choice(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]


def _side(rng: np.random.Generator) -> str:
    return str(_choice(rng, SIDE_NAMES))


def _count(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


_SPEEDS = ("slow", "normal", "normal", "fast")

PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in [
        Primitive("walk", "locomotion",
                  lambda r: {"speed": _choice(r, _SPEEDS)},
                  lambda p, r: r.uniform(2.8, 5.0), _walk,
                  phrases=_walk_phrases),
        Primitive("jog", "locomotion",
                  lambda r: {"speed": _choice(r, ("normal", "normal", "slow"))},
                  lambda p, r: r.uniform(2.6, 4.5), _jog,
                  phrases=_jog_phrases),
        Primitive("run", "locomotion",
                  lambda r: {"speed": _choice(r, ("normal", "fast"))},
                  lambda p, r: r.uniform(2.4, 4.0), _run,
                  phrases=_run_phrases),
        Primitive("walk_backward", "locomotion",
                  lambda r: {"speed": _choice(r, ("slow", "normal"))},
                  lambda p, r: r.uniform(2.8, 4.5), _walk_backward,
                  phrases=_walk_backward_phrases),
        Primitive("sidestep", "locomotion",
                  lambda r: {"side": _side(r), "count": _count(r, 2, 4)},
                  lambda p, r: p["count"] / 0.85 + 0.8, _sidestep,
                  phrases=_sidestep_phrases),
        Primitive("turn", "locomotion",
                  lambda r: {"direction": _side(r), "angle": int(_choice(r, (90, 180, 180)))},
                  lambda p, r: (1.6 if p["angle"] == 90 else 2.4) * r.uniform(0.9, 1.15), _turn,
                  phrases=_turn_phrases),
        Primitive("circle", "locomotion",
                  lambda r: {"direction": _choice(r, ("clockwise", "counterclockwise")),
                             "angle": float(2 * np.pi * r.uniform(0.85, 1.0))},
                  lambda p, r: r.uniform(5.5, 7.5), _circle,
                  phrases=_circle_phrases),
        Primitive("jump", "locomotion",
                  lambda r: {"count": _count(r, 1, 3), "direction": _choice(r, ("in_place", "forward")),
                             "height": _choice(r, ("low", "high"))},
                  lambda p, r: p["count"] * (1.2 + (0.13 if p["height"] == "high" else 0.0)) + 0.2, _jump,
                  phrases=_jump_phrases),
        Primitive("hop", "locomotion",
                  lambda r: {"side": _side(r), "count": _count(r, 2, 4),
                             "direction": _choice(r, ("in_place", "forward"))},
                  lambda p, r: 0.7 + p["count"] * 0.8, _hop,
                  phrases=_hop_phrases),
        Primitive("kick", "legs",
                  lambda r: {"side": _side(r), "count": _count(r, 1, 3), "height": _choice(r, ("low", "high"))},
                  lambda p, r: p["count"] * 0.95 + 0.3, _kick,
                  phrases=_kick_phrases),
        Primitive("squat", "legs",
                  lambda r: {"count": _count(r, 1, 2), "arms_forward": bool(r.random() < 0.4)},
                  lambda p, r: p["count"] * 2.6 + 0.3, _squat,
                  phrases=_squat_phrases),
        Primitive("sit_down", "legs",
                  lambda r: {"stand_up": bool(r.random() < 0.6)},
                  lambda p, r: r.uniform(4.0, 5.5) if p["stand_up"] else r.uniform(2.5, 3.5), _sit,
                  ends_standing=False,
                  phrases=_sit_down_phrases),
        Primitive("kneel", "legs",
                  lambda r: {"side": _side(r), "stand_up": bool(r.random() < 0.6)},
                  lambda p, r: r.uniform(4.0, 5.0) if p["stand_up"] else r.uniform(2.5, 3.2), _kneel,
                  ends_standing=False,
                  phrases=_kneel_phrases),
        Primitive("lunge", "legs",
                  lambda r: {"side": _side(r), "count": _count(r, 1, 2)},
                  lambda p, r: p["count"] * 3.4 + 0.2, _lunge,
                  phrases=_lunge_phrases),
        Primitive("step_over", "legs",
                  lambda r: {"side": _side(r)},
                  lambda p, r: r.uniform(3.4, 4.2), _step_over,
                  phrases=_step_over_phrases),
        Primitive("wave", "arms",
                  lambda r: {"side": _choice(r, ("left", "right", "right", "both"))},
                  lambda p, r: r.uniform(2.0, 3.5), _wave,
                  phrases=_wave_phrases),
        Primitive("raise", "arms",
                  lambda r: {"side": _choice(r, ("left", "right", "both")),
                             "style": _choice(r, ("overhead", "sideways"))},
                  lambda p, r: r.uniform(2.2, 3.5), _raise,
                  phrases=_raise_phrases),
        Primitive("clap", "arms",
                  lambda r: {"side": "both", "count": _count(r, 2, 5)},
                  lambda p, r: 1.0 + p["count"] / 2.4, _clap,
                  phrases=_clap_phrases),
        Primitive("punch", "arms",
                  lambda r: {"side": _choice(r, ("left", "right", "both")), "count": _count(r, 1, 4)},
                  lambda p, r: 0.9 + p["count"] * 0.55, _punch,
                  phrases=_punch_phrases),
        Primitive("throw", "arms",
                  lambda r: {"side": _choice(r, ("right", "right", "left"))},
                  lambda p, r: r.uniform(1.6, 2.1), _throw,
                  phrases=_throw_phrases),
        Primitive("reach", "arms",
                  lambda r: {"side": _choice(r, ("left", "right", "both"))},
                  lambda p, r: r.uniform(2.0, 3.0), _reach,
                  phrases=_reach_phrases),
        Primitive("drink", "arms",
                  lambda r: {"side": _side(r)},
                  lambda p, r: r.uniform(2.4, 3.6), _drink,
                  phrases=_drink_phrases),
        Primitive("stretch", "arms",
                  lambda r: {"side": "both"},
                  lambda p, r: r.uniform(2.6, 3.8), _stretch,
                  phrases=_stretch_phrases),
        Primitive("bow", "backbone",
                  lambda r: {"count": _count(r, 1, 2), "depth": _choice(r, ("slight", "deep"))},
                  lambda p, r: p["count"] * 1.9 + 0.2, _bow,
                  phrases=_bow_phrases),
        Primitive("bend_forward", "backbone",
                  lambda r: {},
                  lambda p, r: r.uniform(3.0, 4.0), _bend_forward,
                  phrases=_bend_forward_phrases),
        Primitive("lean", "backbone",
                  lambda r: {"side": _side(r), "count": _count(r, 1, 2)},
                  lambda p, r: p["count"] * 2.2, _lean,
                  phrases=_lean_phrases),
        Primitive("twist", "backbone",
                  lambda r: {"side": _side(r), "count": _count(r, 1, 3)},
                  lambda p, r: 0.6 + p["count"] * 1.3, _twist,
                  phrases=_twist_phrases),
        Primitive("look_around", "backbone",
                  lambda r: {"side": _side(r), "count": _count(r, 1, 2)},
                  lambda p, r: 0.5 + p["count"] * 1.8, _look_around,
                  phrases=_look_around_phrases),
    ]
}  # fmt: skip


def phrases(name: str, p: dict, rng: np.random.Generator, poss: str, refl: str) -> list[str]:
    """Paraphrases of one primitive with its parameters (templates with marked verbs), from the
    primitive's own phrase function (`Primitive.phrases`, next to its animation)."""
    primitive = PRIMITIVES.get(name)
    if primitive is None or primitive.phrases is None:
        raise KeyError(f"no phrases for primitive {name!r}")
    return primitive.phrases(p, rng, PhraseWords.of(p, poss, refl))
