"""The one base class of errors caused by the user's input (files, values, artifacts).

The CLI prints these as one line and exits with status 2; anything else is a bug and keeps its
traceback. Every stage derives its own errors from `RemogptError` (and the builtin they refine).
"""

from __future__ import annotations

__all__ = ["RemogptError"]


class RemogptError(Exception):
    """Bad input with a message that names the file, field or value at fault."""
