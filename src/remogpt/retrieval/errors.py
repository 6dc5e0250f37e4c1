"""Errors of the retrieval stage, all `RemogptError`s (the CLI prints them as one line, exit 2)."""

from __future__ import annotations

from remogpt.artifacts import ArtifactError
from remogpt.errors import RemogptError, RemogptWarning

__all__ = ["IndexVersionError", "RetrievalError", "RetrievalInputError", "TruncationWarning"]


class RetrievalError(RemogptError):
    """Base of the retrieval stage's errors."""


class RetrievalInputError(RetrievalError, ValueError):
    """A query the retriever cannot answer: empty text, bad k, a motion of the wrong shape…"""


class IndexVersionError(RetrievalError, ArtifactError):
    """A retrieval index that was built by another retriever (its embeddings mean something else)."""


class TruncationWarning(RemogptWarning):
    """A caption longer than the text encoder's maximum length was cut."""
