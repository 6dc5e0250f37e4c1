"""What every benchmark writes beside its numbers: the machine, and the result files.

Benchmarks run as scripts (`python benchmarks/NAME.py`), so this folder is on `sys.path` and they
import this module by its name."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """The facts a timing needs beside it: cores, Python, platform."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_results(stem: str, result: dict[str, Any], markdown: str | None = None) -> None:
    """benchmarks/results/STEM.json (numpy scalars as floats), and STEM.md printed, when given."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    if markdown is not None:
        (RESULTS / f"{stem}.md").write_text(markdown, encoding="utf-8")
        print(markdown)


def cached_json(path: Path, message: str, compute: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any,
                ) -> dict[str, Any]:  # fmt: skip
    """`path`'s result when an earlier run wrote it (a long benchmark resumes), else
    `compute(*args, **kwargs)` (announced with `message`), written there."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    print(message, flush=True)
    result = compute(*args, **kwargs)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
