"""Clips as compositions of primitives: what happens when, how it is animated and how it is told.

A clip is one to three phases in sequence; a phase is a locomotion or leg action (or standing)
with arm and/or backbone actions at the same time. That gives part-level captions ("walks forward
while waving the right hand") and ordered ones ("jumps, then sits down"). A fixed list of
simultaneous combinations is kept rare in the training split and common in test, for the
rare-motion protocol; another (HELD_OUT_*) is kept out of train entirely and makes the
test_compositional split, for the compositional protocol.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from remogpt.data.synth.body import animate, rest_offsets
from remogpt.data.synth.captions import Word, realize
from remogpt.data.synth.primitives import FPS, PRIMITIVES, Timeline, idle, phrases

__all__ = [
    "HELD_OUT_ATOMS",
    "HELD_OUT_COUNTS",
    "HELD_OUT_ORDERS",
    "HELD_OUT_PAIRS",
    "HELD_OUT_SIDES",
    "RARE_COMBOS",
    "Act",
    "ClipSpec",
    "Phase",
    "build_joints",
    "caption_words",
    "composition_key",
    "held_out_atoms",
    "mirror_labels",
    "primary_label",
    "sample_compositional_spec",
    "sample_spec",
]

#: (base action, simultaneous arm action) pairs that are rare in train and present in test.
RARE_COMBOS: tuple[tuple[str, str], ...] = (
    ("hop", "clap"), ("walk_backward", "drink"), ("sidestep", "punch"), ("run", "raise"),
    ("jog", "wave"), ("circle", "throw"), ("squat", "wave"), ("kick", "clap"),
)  # fmt: skip

# Compositions held out of train entirely (the compositional generalisation protocol): no train clip
# holds one, every clip of the test_compositional split holds at least one, and each action on its
# own stays common in train. Each atom reads the same in a clip and in its left/right mirror (the
# mirror `M<id>` joins its original's split), so no side-specific atom ("waves the left hand") can
# be held out; "both" and "forward" can. Disjoint from RARE_COMBOS, which stay rare-but-present.
#: (base action, simultaneous arm action) pairings in one phase, none of them in RARE_COMBOS.
HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("walk", "clap"), ("jump", "raise"), ("squat", "punch"), ("turn", "wave"), ("lunge", "reach"),
)  # fmt: skip
#: (action, count): a middle count, so lower and higher counts of the action, and the count with
#: other actions, stay in train.
HELD_OUT_COUNTS: tuple[tuple[str, int], ...] = (("clap", 3), ("hop", 3), ("kick", 2), ("punch", 2))
#: (action, parameter, value): a side or direction that a mirror leaves as it is.
HELD_OUT_SIDES: tuple[tuple[str, str, str], ...] = (
    ("punch", "side", "both"), ("hop", "direction", "forward"), ("reach", "side", "both"),
)  # fmt: skip
#: (A, B): a phase holding A (any slot) directly followed by a phase holding B; B then A stays in train.
HELD_OUT_ORDERS: tuple[tuple[str, str], ...] = (("walk", "jump"), ("squat", "clap"), ("turn", "kick"))
#: All of them as `held_out_atoms` writes them: 'walk+clap', 'clap×3', 'punch:both', 'walk>jump'.
HELD_OUT_ATOMS: tuple[str, ...] = (
    tuple(f"{a}+{b}" for a, b in HELD_OUT_PAIRS) + tuple(f"{a}×{n}" for a, n in HELD_OUT_COUNTS)
    + tuple(f"{a}:{v}" for a, _, v in HELD_OUT_SIDES) + tuple(f"{a}>{b}" for a, b in HELD_OUT_ORDERS)
)  # fmt: skip

MAX_FRAMES = 199  # raw joint frames; the features then have at most 198 (< 200, the loader's limit)
MIN_FRAMES = 45

LOCOMOTION = tuple(n for n, p in PRIMITIVES.items() if p.part == "locomotion")
LEG_ACTIONS = tuple(n for n, p in PRIMITIVES.items() if p.part == "legs")
ARM_ACTIONS = tuple(n for n, p in PRIMITIVES.items() if p.part == "arms")
BACKBONE_ACTIONS = tuple(n for n, p in PRIMITIVES.items() if p.part == "backbone")
# Backbone actions that combine with walking-type locomotion, and the locomotion they combine with.
BACKBONE_WHILE_MOVING = ("look_around", "twist")
MOVING_WITH_BACKBONE = ("walk", "walk_backward", "turn", "circle", "sidestep", "jog")
# Arm actions whose animation stretches to the length of what they accompany.
STRETCHY_ARMS = ("wave", "raise", "reach", "drink", "stretch", "throw")


@dataclass
class Act:
    name: str
    params: dict

    @property
    def part(self) -> str:
        return PRIMITIVES[self.name].part

    def label(self) -> str:
        side = self.params.get("side") or self.params.get("direction")
        return (
            f"{self.name}:{side}" if side in ("left", "right", "both", "clockwise", "counterclockwise") else self.name
        )


@dataclass
class Phase:
    base: Act | None
    overlays: list[Act] = field(default_factory=list)
    frames: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, length) of each overlay in the phase

    def acts(self) -> list[Act]:
        return ([self.base] if self.base else []) + self.overlays


@dataclass
class ClipSpec:
    phases: list[Phase]
    kind: str  # single / simultaneous / sequential
    pad_start: int
    gaps: list[int]
    pad_end: int
    body_scale: float
    heading0: float

    @property
    def frames(self) -> int:
        return self.pad_start + sum(p.frames for p in self.phases) + sum(self.gaps) + self.pad_end

    def phase_starts(self) -> list[int]:
        starts, t = [], self.pad_start
        for i, ph in enumerate(self.phases):
            starts.append(t)
            t += ph.frames + (self.gaps[i] if i < len(self.gaps) else 0)
        return starts

    def rare_combos(self) -> list[str]:
        found = []
        for ph in self.phases:
            if ph.base is None:
                continue
            for ov in ph.overlays:
                if (ph.base.name, ov.name) in RARE_COMBOS:
                    found.append(f"{ph.base.name}+{ov.name}")
        return found

    def held_out_atoms(self) -> list[str]:
        """The held-out atoms of the drawn clip: what keeps it out of train (see `HELD_OUT_ATOMS`)."""
        return held_out_atoms(self.to_dict())

    def to_dict(self) -> dict:
        starts = self.phase_starts()
        return {
            "kind": self.kind,
            "frames": self.frames,
            "phases": [
                {
                    "start": s,
                    "frames": ph.frames,
                    "base": {"name": ph.base.name, **ph.base.params} if ph.base else None,
                    "overlays": [{"name": o.name, **o.params} for o in ph.overlays],
                }
                for s, ph in zip(starts, self.phases, strict=True)
            ],
            "rare": self.rare_combos(),
        }


def _row_acts(phase: dict) -> list[dict]:
    return ([phase["base"]] if phase.get("base") else []) + list(phase.get("overlays", []))


def held_out_atoms(row: dict) -> list[str]:
    """The held-out atoms a clip holds (a labels.jsonl row, or `ClipSpec.to_dict()`), as readable strings:
    'walk+clap', 'clap×3', 'punch:both', 'walk>jump'."""
    found: list[str] = []
    phases = row["phases"]
    for ph in phases:
        base = ph["base"]["name"] if ph.get("base") else None
        for ov in ph.get("overlays", []):
            if (base, ov["name"]) in HELD_OUT_PAIRS:
                found.append(f"{base}+{ov['name']}")
        for act in _row_acts(ph):
            for name, count in HELD_OUT_COUNTS:
                if act["name"] == name and act.get("count") == count:
                    found.append(f"{name}×{count}")
            for name, param, value in HELD_OUT_SIDES:
                if act["name"] == name and act.get(param) == value:
                    found.append(f"{name}:{value}")
    for first, then in zip(phases[:-1], phases[1:], strict=False):
        a, b = {x["name"] for x in _row_acts(first)}, {x["name"] for x in _row_acts(then)}
        found += [f"{x}>{y}" for x, y in HELD_OUT_ORDERS if x in a and y in b]
    return sorted(set(found))


_KEY_PARAMS = ("count", "side", "direction")


def composition_key(row: dict) -> str:
    """Every phase in order with its actions and their counts, sides and directions (not speeds,
    heights, styles or angles): two clips with equal keys show the same composition."""

    def act_text(act: dict) -> str:
        params = ",".join(f"{k}={act[k]}" for k in _KEY_PARAMS if k in act)
        return f"{act['name']}({params})" if params else act["name"]

    phases = []
    for ph in row["phases"]:
        base = act_text(ph["base"]) if ph.get("base") else "-"
        phases.append(" + ".join([base, *sorted(act_text(o) for o in ph.get("overlays", []))]))
    return " ; ".join(phases)


_MIRRORED = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}


def mirror_labels(row: dict) -> dict:
    """The labels row of a clip's left/right mirror (`M<id>`; the mirror of a mirror is the original):
    sides and directions left<->right (`turn` keeps its direction as left/right) and clockwise<->
    counterclockwise swapped in every phase and in `primary`. labels.jsonl has no rows for mirrors."""
    out = copy.deepcopy(row)
    if "id" in out:
        clip_id = str(out["id"])
        out["id"] = clip_id[1:] if clip_id.startswith("M") else "M" + clip_id
    for ph in out["phases"]:
        for act in _row_acts(ph):
            for key in ("side", "direction"):
                if act.get(key) in _MIRRORED:
                    act[key] = _MIRRORED[act[key]]
    if "primary" in out:
        name, _, side = out["primary"].partition(":")
        out["primary"] = f"{name}:{_MIRRORED.get(side, side)}" if side else name
    return out


def _act(name: str, rng: np.random.Generator) -> Act:
    params = PRIMITIVES[name].sample_params(rng)
    if name == "punch" and params["side"] == "both":
        params["count"] = max(params["count"], 2)
    return Act(name, params)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _phase(rng: np.random.Generator, kind: str, forced: tuple[str, str] | None = None) -> Phase:
    """One phase of a given kind: base, arm, backbone, base+arm, base+backbone or arm+backbone."""
    if forced is not None:
        return Phase(_act(forced[0], rng), [_act(forced[1], rng)])
    if kind == "base":
        options = LOCOMOTION + LEG_ACTIONS
        return Phase(_act(_pick(rng, options), rng))
    if kind == "arm":
        return Phase(None, [_act(_pick(rng, ARM_ACTIONS), rng)])
    if kind == "backbone":
        return Phase(None, [_act(_pick(rng, BACKBONE_ACTIONS), rng)])
    if kind == "base+arm":
        return Phase(_act(_pick(rng, LOCOMOTION + LEG_ACTIONS), rng), [_act(_pick(rng, ARM_ACTIONS), rng)])
    if kind == "base+backbone":
        return Phase(_act(_pick(rng, MOVING_WITH_BACKBONE), rng), [_act(_pick(rng, BACKBONE_WHILE_MOVING), rng)])
    if kind == "arm+backbone":
        return Phase(None, [_act(_pick(rng, ARM_ACTIONS), rng), _act(_pick(rng, BACKBONE_WHILE_MOVING), rng)])
    raise ValueError(kind)


_PHASE_KINDS = ("base", "arm", "backbone", "base+arm", "base+backbone", "arm+backbone")
_PHASE_WEIGHTS = np.array([0.40, 0.16, 0.10, 0.24, 0.06, 0.04])


def _time_phase(phase: Phase, rng: np.random.Generator) -> None:
    """Durations: the phase lasts as long as its longest action; overlays sit inside it."""
    own = {id(a): PRIMITIVES[a.name].duration(a.params, rng) for a in phase.acts()}
    length = max(own.values())
    phase.frames = round(length * FPS)
    phase.spans = []
    for ov in phase.overlays:
        olen = own[id(ov)]
        if phase.base is not None and ov.name in STRETCHY_ARMS + BACKBONE_WHILE_MOVING:
            olen = max(olen, rng.uniform(0.75, 0.95) * length)
        n = min(phase.frames, round(olen * FPS))
        start = int(rng.integers(0, phase.frames - n + 1))
        phase.spans.append((start, n))


def sample_spec(
    rng: np.random.Generator, split: str, rare_keep_train: float = 0.08, rare_boost_test: float = 0.06
) -> ClipSpec:
    """Draw a clip. Rare combinations are mostly rejected in train and over-sampled in val/test."""
    for _ in range(200):
        u = rng.random()
        if split != "train" and rng.random() < rare_boost_test:
            combo = RARE_COMBOS[int(rng.integers(len(RARE_COMBOS)))]
            phases = [_phase(rng, "base+arm", forced=combo)]
            kind = "simultaneous"
        elif u < 0.55:
            k = str(rng.choice(_PHASE_KINDS, p=_PHASE_WEIGHTS))
            phases = [_phase(rng, k)]
            kind = "simultaneous" if "+" in k else "single"
        else:
            count = 2 if rng.random() < 0.85 else 3
            kinds = [
                str(rng.choice(_PHASE_KINDS, p=_PHASE_WEIGHTS))
                if rng.random() < 0.35
                else str(rng.choice(("base", "arm", "backbone"), p=(0.6, 0.25, 0.15)))
                for _ in range(count)
            ]
            phases = [_phase(rng, k) for k in kinds]
            kind = "sequential"
        spec = _timed_spec(phases, kind, rng)
        if spec is None:
            continue
        if split == "train" and spec.rare_combos() and rng.random() > rare_keep_train:
            continue
        if split == "train" and spec.held_out_atoms():  # never in train (the draw above is unchanged)
            continue
        return spec
    raise RuntimeError("could not draw a clip that fits the length limits")  # pragma: no cover


def _timed_spec(phases: list[Phase], kind: str, rng: np.random.Generator) -> ClipSpec | None:
    """Time the phases and pad the clip; None when the phases do not make a valid clip."""
    # Only the last phase may end seated or kneeling.
    if any(
        not PRIMITIVES[p.base.name].ends_standing and p.base.params.get("stand_up") is False
        for p in phases[:-1]
        if p.base
    ):
        return None
    # Two identical consecutive actions read as one; skip.
    names = [tuple(a.label() for a in p.acts()) for p in phases]
    if any(a == b for a, b in zip(names[:-1], names[1:], strict=False)):
        return None
    for ph in phases:
        _time_phase(ph, rng)
    spec = ClipSpec(
        phases=phases,
        kind=kind,
        pad_start=int(rng.integers(4, 12)),
        gaps=[int(rng.integers(0, 7)) for _ in phases[:-1]],
        pad_end=int(rng.integers(4, 12)),
        body_scale=float(rng.uniform(0.92, 1.08)),
        heading0=float(rng.uniform(0, 2 * np.pi)),
    )
    if not MIN_FRAMES <= spec.frames <= MAX_FRAMES:
        return None
    return spec


def _atoms() -> list[tuple[str, tuple]]:
    return ([("pair", a) for a in HELD_OUT_PAIRS] + [("count", a) for a in HELD_OUT_COUNTS]
            + [("side", a) for a in HELD_OUT_SIDES] + [("order", a) for a in HELD_OUT_ORDERS])  # fmt: skip


def _single(name: str, rng: np.random.Generator, **params: object) -> Phase:
    """A phase with `name` (and `params` forced): an arm action sometimes over a base action, a base
    action sometimes with an arm action, as the ordinary draw combines them."""
    act = _act(name, rng)
    act.params.update(params)
    if act.name == "punch" and act.params["side"] == "both":
        act.params["count"] = max(act.params["count"], 2)
    if PRIMITIVES[name].part == "arms":
        if rng.random() < 0.4:
            return Phase(_act(_pick(rng, LOCOMOTION + LEG_ACTIONS), rng), [act])
        return Phase(None, [act])
    if rng.random() < 0.3:
        return Phase(act, [_act(_pick(rng, ARM_ACTIONS), rng)])
    return Phase(act)


def _ordinary_kind(rng: np.random.Generator) -> str:
    """A phase kind as `sample_spec` draws the phases of a sequential clip."""
    if rng.random() < 0.35:
        return str(rng.choice(_PHASE_KINDS, p=_PHASE_WEIGHTS))
    return str(rng.choice(("base", "arm", "backbone"), p=(0.6, 0.25, 0.15)))


def sample_compositional_spec(rng: np.random.Generator) -> ClipSpec:
    """A clip of the test_compositional split: one held-out atom (chosen from `rng`) and sometimes an
    ordinary phase before or after it, valid by the rules of `sample_spec` (length limits, only the
    last phase ends seated, no two identical consecutive phases). Redrawn until it holds an atom."""
    atoms = _atoms()
    kind_of, atom = atoms[int(rng.integers(len(atoms)))]
    for _ in range(200):
        if kind_of == "pair":
            core = [Phase(_act(atom[0], rng), [_act(atom[1], rng)])]
        elif kind_of == "count":
            core = [_single(atom[0], rng, count=atom[1])]
        elif kind_of == "side":
            core = [_single(atom[0], rng, **{atom[1]: atom[2]})]
        else:
            core = [_single(atom[0], rng), _single(atom[1], rng)]
        phases = core
        # As in sample_spec: 45 % of clips are sequential, 15 % of those have three phases.
        if rng.random() < (0.15 if kind_of == "order" else 0.45):
            extra = _phase(rng, _ordinary_kind(rng))
            phases = [extra, *core] if rng.random() < 0.5 else [*core, extra]
        kind = "sequential" if len(phases) > 1 else ("simultaneous" if len(phases[0].acts()) > 1 else "single")
        spec = _timed_spec(phases, kind, rng)
        if spec is not None and spec.held_out_atoms():
            return spec
    raise RuntimeError("could not draw a compositional clip that fits the length limits")  # pragma: no cover


def build_joints(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """Raw joint positions (T, 22, 3) of the clip, before canonicalisation."""
    T = spec.frames
    tl = Timeline(T, rng)
    idle(tl, slice(0, T))
    for start, phase in zip(spec.phase_starts(), spec.phases, strict=True):
        if phase.base is not None:
            PRIMITIVES[phase.base.name].animate(tl, slice(start, start + phase.frames), phase.base.params)
        for ov, (o_start, o_len) in zip(phase.overlays, phase.spans, strict=True):
            a = start + o_start
            PRIMITIVES[ov.name].animate(tl, slice(a, a + o_len), ov.params)
    # A seated or kneeling last phase that does not stand up holds its pose to the end.
    last = spec.phases[-1]
    end_of_last = spec.phase_starts()[-1] + last.frames
    if last.base is not None and not PRIMITIVES[last.base.name].ends_standing and not last.base.params.get("stand_up"):
        tl.base_euler[end_of_last:] = tl.base_euler[end_of_last - 1]
        tl.arm_base[end_of_last:] = tl.arm_base[end_of_last - 1]
    tracks = tl.finish(heading0=spec.heading0)
    # Body size varies uniformly: retargeting to the reference skeleton then rescales the whole
    # motion (stride lengths change, contacts stay exact). Per-bone changes would be undone by the
    # retargeting and only lift the feet off the floor.
    return animate(tracks, rest_offsets(spec.body_scale))


# ----------------------------------------------------------------------------- captions

_SUBJECTS = (
    ("a person", None), ("someone", None), ("the person", None), ("a man", "m"), ("the man", "m"),
    ("a woman", "f"), ("the woman", "f"), ("a figure", None), ("the figure", None), ("a human", None),
)  # fmt: skip
_SUBJECT_WEIGHTS = np.array([0.34, 0.12, 0.12, 0.1, 0.08, 0.06, 0.04, 0.06, 0.04, 0.04])


def _words(text: str) -> list[Word]:
    return realize(text) if text else []


def _act_words(act: Act, form: str, rng: np.random.Generator, poss: str, refl: str) -> list[Word]:
    options = phrases(act.name, act.params, rng, poss, refl)
    return realize(options[int(rng.integers(len(options)))], form)


def _phase_words(phase: Phase, form: str, rng: np.random.Generator, poss: str, refl: str) -> list[Word]:
    acts = phase.acts()
    w = [_act_words(a, form, rng, poss, refl) for a in acts]
    gerund = [_act_words(a, "ing", rng, poss, refl) for a in acts]
    if len(acts) == 1:
        return w[0]
    main, rest = (w[0], gerund[1:]) if rng.random() < 0.7 else (w[1], [gerund[0], *gerund[2:]])
    if len(acts) == 3:
        rest = [rest[0] + _words("and") + rest[1]]
    style = rng.random()
    if style < 0.6 or form == "ing":
        return main + _words("while") + rest[0]
    if style < 0.8:
        other = w[1] if main is w[0] else w[0]
        return main + _words("and") + other + _words("at the same time")
    return main + _words(",") + rest[0]


def caption_words(spec: ClipSpec, rng: np.random.Generator) -> list[Word]:
    """One caption of the clip, drawn from the grammar."""
    subj, gender = _SUBJECTS[int(rng.choice(len(_SUBJECTS), p=_SUBJECT_WEIGHTS))]
    if gender == "m":
        poss, refl = ("his", "his", "the")[int(rng.integers(3))], "himself"
    elif gender == "f":
        poss, refl = ("her", "her", "the")[int(rng.integers(3))], "herself"
    else:
        poss, refl = ("the", "the", "his", "their")[int(rng.integers(4))], "themselves"
    S = _words(subj)
    phases = spec.phases
    if len(phases) == 1:
        ph = phases[0]
        r = rng.random()
        if len(ph.acts()) == 2 and r < 0.2:
            # "while walking forward, a person waves the left hand"
            first, second = ph.acts()
            return (
                _words("while")
                + _act_words(first, "ing", rng, poss, refl)
                + _words(",")
                + S
                + _act_words(second, "3sg", rng, poss, refl)
            )
        if r < 0.85:
            return S + _phase_words(ph, "3sg", rng, poss, refl)
        return S + _words("is") + _phase_words(ph, "ing", rng, poss, refl)
    parts3 = [_phase_words(ph, "3sg", rng, poss, refl) for ph in phases]
    if len(phases) == 2:
        r = rng.random()
        if r < 0.35:
            return S + parts3[0] + _words(", then") + parts3[1]
        if r < 0.6:
            return S + parts3[0] + _words("and then") + parts3[1]
        if r < 0.75:
            return S + _words("first") + parts3[0] + _words(", then") + parts3[1]
        if r < 0.88:
            return S + parts3[0] + _words("before") + _phase_words(phases[1], "ing", rng, poss, refl)
        return _words("after") + _phase_words(phases[0], "ing", rng, poss, refl) + _words(",") + S + parts3[1]
    if rng.random() < 0.5:
        return S + parts3[0] + _words(", then") + parts3[1] + _words(", and finally") + parts3[2]
    return S + parts3[0] + _words(",") + parts3[1] + _words(", and then") + parts3[2]


def primary_label(spec: ClipSpec) -> str:
    """The first thing that happens, with its side: what a one-word summary of the clip would be."""
    first = spec.phases[0]
    act = first.base if first.base is not None else first.overlays[0]
    return act.label()
