"""Captions for generated clips: a small grammar with synonyms and paraphrases, in HumanML3D's style.

Verb phrases are templates whose verbs are marked (`^walk` inflects, `~touch` stays in the base
form, `+drink` is always the gerund), so one phrase serves "a person walks forward", "while
walking forward" and "is walking forward". Every word is in a lexicon that gives its lemma and
part of speech, which is how the second field of a HumanML3D caption line (`word/POS` with
lemmas) is written without a tagger.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LEXICON", "Word", "caption_line", "describe", "realize"]


@dataclass(frozen=True)
class Word:
    text: str
    lemma: str
    pos: str


# Verbs: lemma → (third person singular, gerund).
VERBS: dict[str, tuple[str, str]] = {
    "back": ("backs", "backing"), "balance": ("balances", "balancing"), "be": ("is", "being"),
    "bend": ("bends", "bending"), "bow": ("bows", "bowing"), "bring": ("brings", "bringing"),
    "circle": ("circles", "circling"), "clap": ("claps", "clapping"), "come": ("comes", "coming"),
    "crouch": ("crouches", "crouching"), "do": ("does", "doing"), "drink": ("drinks", "drinking"),
    "extend": ("extends", "extending"), "face": ("faces", "facing"), "get": ("gets", "getting"),
    "give": ("gives", "giving"), "glance": ("glances", "glancing"), "go": ("goes", "going"),
    "hold": ("holds", "holding"), "hop": ("hops", "hopping"), "hurry": ("hurries", "hurrying"),
    "jab": ("jabs", "jabbing"), "jog": ("jogs", "jogging"), "jump": ("jumps", "jumping"),
    "kick": ("kicks", "kicking"), "kneel": ("kneels", "kneeling"), "lean": ("leans", "leaning"),
    "leap": ("leaps", "leaping"), "lift": ("lifts", "lifting"), "look": ("looks", "looking"),
    "lower": ("lowers", "lowering"), "lunge": ("lunges", "lunging"), "make": ("makes", "making"),
    "move": ("moves", "moving"), "punch": ("punches", "punching"), "put": ("puts", "putting"),
    "raise": ("raises", "raising"), "reach": ("reaches", "reaching"), "rise": ("rises", "rising"),
    "rotate": ("rotates", "rotating"), "run": ("runs", "running"), "shuffle": ("shuffles", "shuffling"),
    "sidestep": ("sidesteps", "sidestepping"), "sit": ("sits", "sitting"), "spin": ("spins", "spinning"),
    "sprint": ("sprints", "sprinting"), "spread": ("spreads", "spreading"), "squat": ("squats", "squatting"),
    "stand": ("stands", "standing"), "step": ("steps", "stepping"), "straighten": ("straightens", "straightening"),
    "stretch": ("stretches", "stretching"), "stroll": ("strolls", "strolling"), "take": ("takes", "taking"),
    "throw": ("throws", "throwing"), "tilt": ("tilts", "tilting"), "touch": ("touches", "touching"),
    "turn": ("turns", "turning"), "twist": ("twists", "twisting"), "walk": ("walks", "walking"),
    "wave": ("waves", "waving"), "wind": ("winds", "winding"), "lead": ("leads", "leading"),
}  # fmt: skip

_LEXICON_BY_POS = {
    "DET": "a an the his her their both each all",
    "PRON": "someone something he she himself herself themselves one",
    "NOUN": (
        "person man woman figure human individual hand:hand hands:hand arm:arm arms:arm foot feet:foot leg legs:leg "
        "knee knees:knee head body torso chair obstacle object cup ball circle step steps:step side sides:side "
        "time times:time toes:toe toe air line pace turn jump jumps:jump squat squats:squat lunge lunges:lunge "
        "punch punches:punch kick kicks:kick clap claps:clap bow moment mouth waist shoulder height fist fists:fist "
        "way stretch degrees:degree motion seat front place drink"
    ),
    "ADV": (
        "forward forwards:forward backward backwards:backward ahead slowly quickly briskly fast then once twice "
        "around up down back again away sideways straight high overhand carefully finally first together "
        "very slightly deeply left:left right:right out overhead far"
    ),
    "ADJ": (
        "left right clockwise counterclockwise few slow brisk fast small deep low high quarter half upper "
        "other alternating jogging throwing overhead slight same"
    ),
    "ADP": "with on in to over above from of at into before after as like for",
    "VERB": "held:hold",
    "INTJ": "hello",
    "CCONJ": "and or",
    "SCONJ": "while if until",
    "NUM": "two three four five ninety",
    "AUX": "is",
    "PART": "",
}
LEXICON: dict[str, tuple[str, str]] = {}
for _pos, _words in _LEXICON_BY_POS.items():
    for _w in _words.split():
        _surface, _, _lemma = _w.partition(":")
        LEXICON.setdefault(_surface, (_lemma or _surface, _pos))
# Direction words after a verb ("turns left", "looks right") are adverbs in those phrases; the
# tagger-free rule here: "left"/"right" directly after a verb or "and" are ADV, else ADJ.
_DIRECTION_WORDS = {"left", "right"}

COUNT_ADV = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}
NUMBER = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def realize(template: str, form: str = "3sg", **slots: str) -> list[Word]:
    """Fill a phrase template and inflect its marked verbs. form: "3sg", "ing" or "base"."""
    text = template.format(**slots)
    text = re.sub(r"\s+", " ", text).strip()
    words: list[Word] = []
    prev_pos = ""
    for raw in text.replace(",", " ,").split(" "):
        if not raw:
            continue
        if raw == ",":
            words.append(Word(",", ",", "PUNCT"))
            prev_pos = "PUNCT"
            continue
        if raw[0] in "^~+":
            lemma = raw[1:]
            if lemma not in VERBS:
                raise KeyError(f"verb {lemma!r} is not in the caption grammar's verb table")
            third, gerund = VERBS[lemma]
            if raw[0] == "~":
                surface = lemma
            elif raw[0] == "+":
                surface = gerund
            else:
                surface = {"3sg": third, "ing": gerund, "base": lemma}[form]
            words.append(Word(surface, lemma, "VERB"))
            prev_pos = "VERB"
            continue
        if raw not in LEXICON:
            raise KeyError(f"word {raw!r} is not in the caption grammar's lexicon")
        lemma, pos = LEXICON[raw]
        if raw in _DIRECTION_WORDS:
            pos = "ADV" if prev_pos in ("VERB", "CCONJ") else "ADJ"
        words.append(Word(raw, lemma, pos))
        prev_pos = pos
    return words


def caption_line(words: Sequence[Word], start: float = 0.0, end: float = 0.0) -> str:
    """`caption#word/POS ...#start#end` as in HumanML3D's texts/ files (tokens without punctuation)."""
    text = " ".join(w.text for w in words).replace(" ,", ",")
    text = text[0].lower() + text[1:] + "."
    tokens = " ".join(f"{w.lemma}/{w.pos}" for w in words if w.pos != "PUNCT")
    return f"{text}#{tokens}#{start}#{end}"


# ----------------------------------------------------------------------------- phrase tables

_SPEED_ADV = {"slow": ["slowly", "at a slow pace"], "normal": [""], "fast": ["quickly", "briskly", "at a brisk pace"]}


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _count_suffix(count: int) -> str:
    return "" if count == 1 else COUNT_ADV[count]


def _a_or_n(count: int, noun: str) -> str:
    return f"a {noun}" if count == 1 else f"{NUMBER[count]} {noun}s"


def phrases(name: str, p: dict, rng: np.random.Generator, poss: str, refl: str) -> list[str]:
    """Paraphrases of one primitive with its parameters (templates with marked verbs)."""
    side = p.get("side", "")
    other = {"left": "right", "right": "left"}.get(side, "")
    count = int(p.get("count", 1))
    cw = _count_suffix(count)
    if name == "walk":
        adv = _pick(rng, _SPEED_ADV[p["speed"]])
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
    if name == "jog":
        adv = "slowly" if p["speed"] == "slow" else ""
        return [
            f"^jog forward {adv}",
            f"^jog straight ahead {adv}",
            f"^jog in a straight line {adv}",
            f"^run forward at a jogging pace {adv}",
        ]
    if name == "run":
        if p["speed"] == "fast":
            return ["^sprint forward", "^run forward very fast", "^run quickly straight ahead", "^sprint ahead"]
        return ["^run forward", "^run straight ahead", "^run ahead", "^run forward in a straight line"]
    if name == "walk_backward":
        adv = _pick(rng, _SPEED_ADV[p["speed"]])
        return [
            f"^walk backwards {adv}",
            f"^walk backward {adv}",
            f"^take a few steps backwards {adv}",
            "^step backwards a few times",
            "^back up a few steps",
        ]
    if name == "sidestep":
        n = NUMBER[count]
        return [
            f"^sidestep to the {side}",
            f"^step sideways to the {side}",
            f"^take {n} steps sideways to the {side}",
            f"^shuffle sideways to the {side}",
            f"^sidestep {n} times to the {side}",
        ]
    if name == "turn":
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
    if name == "circle":
        d = p["direction"]
        turn = "left" if d == "counterclockwise" else "right"
        return [
            f"^walk in a {d} circle",
            f"^walk around in a circle {d}",
            f"^walk in a circle, +turn to the {turn}",
            f"^walk in a circle to the {turn}",
            f"^circle around {d}",
        ]
    if name == "jump":
        c1 = count == 1
        if p["direction"] == "forward":
            out = [
                f"^jump forward {cw}",
                f"^leap forward {cw}",
                f"^jump ahead {cw}",
                f"^do {_a_or_n(count, 'jump')} forward",
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
    if name == "hop":
        where = "forward" if p["direction"] == "forward" else "in place"
        return [
            f"^hop on the {side} foot {cw}",
            f"^hop {cw} on {poss} {side} leg",
            f"^hop {where} on the {side} foot {cw}",
            f"^balance on the {side} leg and ^hop {where} {cw}",
        ]
    if name == "kick":
        hl = "high" if p["height"] == "high" else "low"
        return [
            f"^kick with the {side} leg {cw}",
            f"^kick {poss} {side} foot forward {cw}",
            f"^kick out with the {side} leg {cw}",
            f"^do {_a_or_n(count, hl + ' kick')} with the {side} foot",
        ]
    if name == "squat":
        arms = " with the arms held out in front" if p.get("arms_forward") else ""
        return [
            f"^squat down {cw}{arms}",
            f"^do {_a_or_n(count, 'squat')}{arms}",
            f"^squat down and ^stand back up {cw}",
            f"^bend {poss} knees into a squat {cw}",
            f"^crouch down and ^rise again {cw}",
        ]
    if name == "sit_down":
        if p["stand_up"]:
            return [
                "^sit down and then ^stand back up",
                "^sit on a chair and ^get back up",
                "^take a seat and then ^stand up again",
                "^sit down for a moment and ^stand up again",
            ]
        return ["^sit down", "^sit down on a chair", "^take a seat", f"^lower {refl} into a chair", "^sit down slowly"]
    if name == "kneel":
        rest = " and then ^stand back up" if p["stand_up"] else ""
        return [
            f"^kneel down on the {side} knee{rest}",
            f"^get down on {poss} {side} knee{rest}",
            f"^kneel on the {side} knee{rest}",
            f"^go down on one knee, the {side} one{', and ^get up again' if rest else ''}",
        ]
    if name == "lunge":
        return [
            f"^lunge forward with the {side} leg {cw}",
            f"^do {_a_or_n(count, 'lunge')} with the {side} leg",
            f"^step forward into a lunge with the {side} foot {cw}",
            f"^lunge with {poss} {side} leg in front {cw}",
        ]
    if name == "step_over":
        return [
            f"^step over an obstacle with the {side} foot first",
            f"^step over something, +lead with the {side} leg",
            f"^lift the {side} knee high and ^step over something",
            f"^step carefully over an object, {side} foot first",
        ]
    if name == "wave":
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
    if name == "raise":
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
    if name == "clap":
        return [
            f"^clap {cw}",
            f"^clap {poss} hands {cw}",
            f"^clap {poss} hands together {cw}",
            f"^give {NUMBER[count]} claps",
        ]
    if name == "punch":
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
            f"^throw {_a_or_n(count, 'punch').replace('punchs', 'punches')} with the {side} hand",
            f"^jab with the {side} arm {cw}",
        ]
    if name == "throw":
        return [
            f"^throw something with the {side} hand",
            f"^throw a ball with the {side} arm",
            f"^make a throwing motion with the {side} hand",
            f"^throw an object overhand with {poss} {side} arm",
            f"^wind up and ^throw with the {side} hand",
        ]
    if name == "reach":
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
    if name == "drink":
        return [
            f"^drink from a cup in the {side} hand",
            f"^take a drink with the {side} hand",
            f"^bring the {side} hand to {poss} mouth as if +drink",
            f"^drink something held in {poss} {side} hand",
            f"^raise a cup to {poss} mouth with the {side} hand",
        ]
    if name == "stretch":
        return [
            "^stretch both arms above the head",
            f"^stretch {poss} arms up high",
            "^reach up and ^stretch",
            "^do an overhead stretch",
            "^stretch, +raise both arms overhead",
        ]
    if name == "bow":
        deep = p["depth"] == "deep"
        return [
            f"^bow {'deeply' if deep else 'slightly'} {cw}",
            f"^bow {cw}",
            f"^bow down {cw}",
            f"^take {'a deep' if deep else 'a small'} bow" if count == 1 else f"^bow {'deeply ' if deep else ''}{cw}",
            f"^bend forward in {'a deep' if deep else 'a slight'} bow {cw}",
        ]
    if name == "bend_forward":
        return [
            "^bend forward",
            "^bend down to ~touch the toes",
            "^bend over at the waist",
            "^bend forward at the waist and ^come back up",
            "^lean all the way forward and ^straighten up again",
        ]
    if name == "lean":
        return [
            f"^lean to the {side} {cw}",
            f"^lean the upper body to the {side} {cw}",
            f"^tilt {poss} torso to the {side} {cw}",
            f"^bend sideways to the {side} {cw}",
        ]
    if name == "twist":
        return [
            f"^twist the upper body to the {side} and then to the {other}",
            f"^twist {poss} torso from side to side {cw}",
            f"^rotate the torso to the {side} and back {cw}",
            f"^turn {poss} upper body to the {side}, then to the {other}",
        ]
    if name == "look_around":
        return [
            "^look around",
            f"^look to the {side} and then to the {other}",
            f"^turn {poss} head to the {side} and then to the {other}",
            f"^look {side} and {other}",
            f"^glance to the {side} and to the {other}",
        ]
    raise KeyError(f"no phrases for primitive {name!r}")


def describe(name: str, params: dict, rng: np.random.Generator, poss: str = "the", refl: str = "himself") -> list[str]:
    """All paraphrase templates of one primitive (for tests and the data card)."""
    return phrases(name, params, rng, poss, refl)
