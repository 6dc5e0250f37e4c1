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

__all__ = ["LEXICON", "Word", "caption_line", "realize"]


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
    # for the captions of imported mocap labels (data.bandai)
    "answer": ("answers", "answering"), "beckon": ("beckons", "beckoning"), "call": ("calls", "calling"),
    "dance": ("dances", "dancing"), "dash": ("dashes", "dashing"), "gesture": ("gestures", "gesturing"),
    "guide": ("guides", "guiding"), "keep": ("keeps", "keeping"), "perform": ("performs", "performing"),
    "point": ("points", "pointing"), "respond": ("responds", "responding"), "say": ("says", "saying"),
    "show": ("shows", "showing"), "slash": ("slashes", "slashing"), "swing": ("swings", "swinging"),
}  # fmt: skip

_LEXICON_BY_POS = {
    "DET": "a an the his her their both each all",
    "PRON": "someone something he she himself herself themselves one",
    "NOUN": (
        "person man woman figure human individual hand:hand hands:hand arm:arm arms:arm foot feet:foot leg legs:leg "
        "knee knees:knee head body torso chair obstacle object cup ball circle step steps:step side sides:side "
        "time times:time toes:toe toe air line pace turn jump jumps:jump squat squats:squat lunge lunges:lunge "
        "punch punches:punch kick kicks:kick clap claps:clap bow moment mouth waist shoulder height fist fists:fist "
        "way stretch degrees:degree motion seat front place drink "
        "child curve dance gesture giant goodbye reply sword thug wave"
    ),
    "ADV": (
        "forward forwards:forward backward backwards:backward ahead slowly quickly briskly fast then once twice "
        "around up down back again away sideways straight high overhand carefully finally first together "
        "very slightly deeply left:left right:right out overhead far "
        "angrily cheerfully energetically gracefully happily hesitantly proudly rhythmically sadly stiffly "
        "timidly wearily"
    ),
    "ADJ": (
        "left right clockwise counterclockwise few slow brisk fast small deep low high quarter half upper "
        "other alternating jogging throwing overhead slight same "
        "angry annoyed cheerful childish confident elderly energetic exhausted feminine happy heavy huge lively "
        "long manly masculine musical old possible proud rhythmic sad several short slashing swaggering timid "
        "tired unhappy unsure weary young youthful"
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

SPEED_ADV = {"slow": ["slowly", "at a slow pace"], "normal": [""], "fast": ["quickly", "briskly", "at a brisk pace"]}


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _count_suffix(count: int) -> str:
    return "" if count == 1 else COUNT_ADV[count]


def a_or_n(count: int, noun: str) -> str:
    return f"a {noun}" if count == 1 else f"{NUMBER[count]} {noun}s"


@dataclass(frozen=True)
class PhraseWords:
    """The words a primitive's phrases share: its side and the other one, its count as an adverb
    ("twice"), the subject's possessive and reflexive ("his", "himself")."""

    side: str
    other: str
    count: int
    cw: str
    poss: str
    refl: str

    @classmethod
    def of(cls, p: dict, poss: str, refl: str) -> PhraseWords:
        side = p.get("side", "")
        count = int(p.get("count", 1))
        return cls(side, {"left": "right", "right": "left"}.get(side, ""), count, _count_suffix(count), poss, refl)
