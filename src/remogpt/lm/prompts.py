"""Instruction prompts with retrieved context, in the paper's format (Fig. 5).

    ### Input: Generate motion: a person is shaking a bottle.
    ### Context: Text: a person picks something up … Motion: <som>…<eom> Text: … Motion: <som>…<eom>
    ### Output:

The target is the motion (text-to-motion) or the caption (motion-to-text). A third task,
continuation (MotionGPT's motion prediction), puts the motion so far in the instruction beside the
caption of the whole motion, and its target is the rest. Templates live in
`templates.json` (a data file, so they can be edited or replaced without touching code); training
draws one at random per sample, inference uses the first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from remogpt.errors import RemogptError

__all__ = ["OPTIONAL_TASKS", "TASKS", "ContextPair", "PromptBuilder"]

TASKS = ("t2m", "m2t")
#: Tasks a user's template file may leave out (the packaged templates are used for them).
OPTIONAL_TASKS = ("continue",)
_SLOTS = {"t2m": ("{caption}",), "m2t": ("{motion}",), "continue": ("{motion}", "{caption}")}


@dataclass(frozen=True)
class ContextPair:
    """One retrieved (caption, motion) pair, the motion already as a token string."""

    caption: str
    motion: str


class PromptBuilder:
    def __init__(self, templates: dict[str, list[str]]) -> None:
        templates = dict(templates)
        for task in OPTIONAL_TASKS:
            if task not in templates:
                templates[task] = _packaged()[task]
        for task in (*TASKS, *OPTIONAL_TASKS):
            options = templates.get(task)
            if not options or not all(isinstance(t, str) for t in options):
                raise RemogptError(f"prompt templates: task {task!r} needs a non-empty list of strings")
            for slot in _SLOTS[task]:
                bad = [t for t in options if slot not in t]
                if bad:
                    raise RemogptError(f"prompt templates: {task} template without {slot}: {bad[0]!r}")
        self.templates = {task: list(templates[task]) for task in (*TASKS, *OPTIONAL_TASKS)}

    @classmethod
    def from_file(cls, path: Path | str | None = None) -> PromptBuilder:
        """The packaged templates, or a user's JSON file with the same shape."""
        if path is None:
            return cls(_packaged())
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RemogptError(f"{path}: prompt template file not found") from None
        except json.JSONDecodeError as exc:
            raise RemogptError(f"{path}: invalid JSON ({exc})") from None
        return cls({k: v for k, v in data.items() if not k.startswith("_")})

    def all_texts(self) -> list[str]:
        """Every template string and the format's own words (to train a text tokenizer on)."""
        return [*self.templates["t2m"], *self.templates["m2t"], *self.templates["continue"],
                "### Input: ### Context: Text: Motion: ### Output:"]  # fmt: skip

    def _pick(self, task: str, rng: np.random.Generator | None) -> str:
        options = self.templates[task]
        return options[0] if rng is None else options[int(rng.integers(len(options)))]

    @staticmethod
    def _assemble(instruction: str, context: Sequence[ContextPair]) -> str:
        parts = [f"### Input: {instruction}"]
        if context:
            parts.append("### Context: " + " ".join(f"Text: {c.caption} Motion: {c.motion}" for c in context))
        parts.append("### Output:")
        return "\n".join(parts)

    def text_to_motion(self, caption: str, context: Sequence[ContextPair] = (),
                       rng: np.random.Generator | None = None) -> str:  # fmt: skip
        return self._assemble(self._pick("t2m", rng).format(caption=caption.strip()), context)

    def motion_to_text(self, motion: str, context: Sequence[ContextPair] = (),
                       rng: np.random.Generator | None = None) -> str:  # fmt: skip
        return self._assemble(self._pick("m2t", rng).format(motion=motion), context)

    def continuation(self, motion: str, caption: str, context: Sequence[ContextPair] = (),
                     rng: np.random.Generator | None = None) -> str:  # fmt: skip
        """The motion so far (a token string) and the caption of the whole motion; the target is the rest."""
        return self._assemble(self._pick("continue", rng).format(motion=motion, caption=caption.strip()), context)


def _packaged() -> dict[str, list[str]]:
    text = resources.files("remogpt.lm").joinpath("templates.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
