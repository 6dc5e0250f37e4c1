"""Write `benchmarks/results/README.md`: one line per result file, with the benchmark that writes it,
its date and the README section (in docs/results.md) that discusses it. A test checks that every
file in the folder is listed, so the index cannot fall behind.

    python benchmarks/index_results.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
INDEX = RESULTS / "README.md"


def _script(name: str) -> str:
    """The benchmark whose name is the longest prefix of the file's (lm_quality_x.json → lm_quality.py)."""
    stem = name.split(".")[0]
    scripts = sorted((p.stem for p in HERE.glob("*.py") if p.stem != "index_results"), key=len, reverse=True)
    if stem.startswith("paper_tables"):
        return "`remogpt eval ablation`"
    if stem == "retrieval":
        return "`remogpt eval retrieval`"
    if stem.startswith("lm_guidance") or stem.startswith("lm_temperature") or stem.startswith("lm_scheduled") \
            or stem.startswith("lm_dropout"):  # fmt: skip
        return "`lm_rerank.py`"
    match = next((s for s in scripts if stem == s or stem.startswith(s + "_")), None)
    return f"`{match}.py`" if match else "–"


def _date(path: Path) -> str:
    """The date a JSON result records (`date`, or a run's), else the one of its JSON twin."""
    source = path if path.suffix == ".json" else path.with_suffix(".json")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "–"
    if isinstance(data, dict):
        for key in ("date", "measured", "day"):
            if isinstance(data.get(key), str):
                return data[key][:10]
    return "–"


def index_text() -> str:
    files = sorted(p for p in RESULTS.iterdir() if p.is_file() and p.name != INDEX.name)
    lines = [
        "# benchmarks/results",
        "",
        "What each file is, which benchmark writes it and the date it records (– : none recorded). The",
        "tables and what they say are in [docs/results.md](../../docs/results.md). Regenerate this index with",
        "`python benchmarks/index_results.py`.",
        "",
        "| file | written by | date | kind |",
        "|---|---|---|---|",
    ]
    kinds = {".json": "numbers", ".md": "table", ".png": "figure"}
    for path in files:
        lines.append(f"| [{path.name}]({path.name}) | {_script(path.name)} | {_date(path)} | "
                     f"{kinds.get(path.suffix, path.suffix)} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    INDEX.write_text(index_text(), encoding="utf-8")
    print(f"wrote {INDEX} ({len(index_text().splitlines()) - 8} files)")
