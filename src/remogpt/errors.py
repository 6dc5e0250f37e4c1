"""The one base class of errors caused by the user's input (files, values, artifacts).

The CLI prints these as one line and exits with status 2; anything else is a bug and keeps its
traceback. Every stage derives its own errors from `RemogptError` (and the builtin they refine).
"""

from __future__ import annotations

import warnings

__all__ = ["RemogptError", "RemogptWarning", "UsageError", "first_line", "warn_if_no_words"]


class RemogptError(Exception):
    """Bad input with a message that names the file, field or value at fault."""


class UsageError(RemogptError, ValueError):
    """A bad command-line argument or option value (the commands of every stage raise this one)."""


class RemogptWarning(UserWarning):
    """Input that is accepted but probably not what the user meant; the CLI prints it as one line."""


def warn_if_no_words(text: str, where: str = "text") -> None:
    """Warn about a text without a single letter or digit (emoji, punctuation): the models then
    answer from their context alone, which the user should know rather than trust the result."""
    if isinstance(text, str) and text.strip() and not any(ch.isalnum() for ch in text):
        warnings.warn(f"{where} {text!r} has no words; the result follows the retrieved examples only",
                      RemogptWarning, stacklevel=3)  # fmt: skip


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors run over several lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
