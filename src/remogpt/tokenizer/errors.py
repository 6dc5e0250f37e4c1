"""The tokenizer stage's error: bad features, codes, artifacts or caches, printed as one line by the CLI."""

from __future__ import annotations

from remogpt.errors import RemogptError

__all__ = ["TokenizerError"]


class TokenizerError(RemogptError, ValueError):
    """Input the tokenizer cannot take (shape, length, NaN, codes out of range, mismatched artifact)."""
