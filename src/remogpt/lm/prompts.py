"""Instruction prompts with retrieved context, in the paper's format (Fig. 5).

    ### Input: Generate motion: a person is shaking a bottle.
    ### Context: Text: a person picks something up … Motion: <som>…<eom> Text: … Motion: <som>…<eom>
    ### Output:

The target is the motion (text-to-motion) or the caption (motion-to-text). Templates live in
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

__all__ = ["TASKS", "ContextPair", "PromptBuilder"]

TASKS = ("t2m", "m2t")


@dataclass(frozen=True)
class ContextPair:
    """One retrieved (caption, motion) pair, the motion already as a token string."""

    caption: str
    motion: str


class PromptBuilder:
    def __init__(self, templates: dict[str, list[str]]) -> None:
        for task in TASKS:
            options = templates.get(task)
            if not options or not all(isinstance(t, str) for t in options):
                raise RemogptError(f"prompt templates: task {task!r} needs a non-empty list of strings")
            slot = "{caption}" if task == "t2m" else "{motion}"
            bad = [t for t in options if slot not in t]
            if bad:
                raise RemogptError(f"prompt templates: {task} template without {slot}: {bad[0]!r}")
        self.templates = {task: list(templates[task]) for task in TASKS}

    @classmethod
    def from_file(cls, path: Path | str | None = None) -> PromptBuilder:
        """The packaged templates, or a user's JSON file with the same shape."""
        if path is None:
            text = resources.files("remogpt.lm").joinpath("templates.json").read_text(encoding="utf-8")
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise RemogptError(f"{path}: prompt template file not found") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RemogptError(f"{path or 'templates.json'}: invalid JSON ({exc})") from None
        return cls({k: v for k, v in data.items() if not k.startswith("_")})

    def all_texts(self) -> list[str]:
        """Every template string and the format's own words (to train a text tokenizer on)."""
        return [*self.templates["t2m"], *self.templates["m2t"], "### Input: ### Context: Text: Motion: ### Output:"]

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
