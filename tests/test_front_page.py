"""The front page as a newcomer reads it: every command in its code blocks exists (its `--help`
works), every page it links to is there, and the generated pages match what generates them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _code_lines() -> list[str]:
    """The lines of the shell code blocks (```bash, ```text or plain ```), not of the Python ones."""
    lines, language = [], None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            language = line[3:].strip() if language is None else None
        elif language in ("bash", "text", "") and line.strip():
            lines.append(line.strip())
    return lines


def _remogpt_commands() -> list[list[str]]:
    """The words after `remogpt` on each code line that runs it (`.venv/bin/remogpt` too)."""
    out = []
    for line in _code_lines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")  # quotes kept whole, # a comment
        lexer.whitespace_split = True
        parts: list[list[str]] = [[]]
        for token in lexer:
            if token in (";", "&&", "||", "|"):
                parts.append([])
            else:
                parts[-1].append(token)
        for words in parts:
            at = next((i for i, w in enumerate(words) if w == "remogpt" or w.endswith("/remogpt")), None)
            if at is not None:
                out.append(words[at + 1 :])
    return out


def test_the_front_page_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).splitlines()  # type: ignore[union-attr]
    assert first == ['python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/remogpt demo',
                     ".venv/bin/python -m pytest -q"]  # fmt: skip


def test_every_command_on_the_front_page_exists(run_cli: Any):
    import typer

    from remogpt.cli import app

    group = typer.main.get_command(app)
    commands = _remogpt_commands()
    assert len(commands) >= 12  # the demo, the eight commands, the GPU recipe
    seen = set()
    for words in commands:
        node, path = group, []
        while hasattr(node, "commands") and words and words[0] in node.commands:
            node = node.commands[words[0]]
            path.append(words.pop(0))
        assert path and not hasattr(node, "commands"), f"`remogpt {' '.join(path + words)}` is not a command"
        seen.add(tuple(path))
        names = {o for p in node.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
        unknown = [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in names]
        assert not unknown, f"`remogpt {' '.join(path)}` has no option {unknown}"
    for path in sorted(seen):
        code, out, err = run_cli(*path, "--help")
        assert code == 0 and "Usage" in out, (path, err)
    eight = {("generate",), ("caption",), ("retrieve",), ("export",), ("serve",), ("train", "lm"),
             ("eval", "t2m"), ("data", "import-bvh")}  # fmt: skip
    assert eight <= seen


def _anchor(heading: str) -> str:
    """GitHub's id for a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)}


def _links(page: Path) -> list[tuple[Path, str]]:
    """(target file, anchor or '') of every relative link on a page."""
    found = []
    for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if "://" in link or link.startswith("mailto:"):
            continue
        target, _, anchor = link.partition("#")
        found.append((page.parent / target if target else page, anchor))
    return found


def test_every_linked_page_picture_and_section_is_there():
    links = _links(README)
    assert {"docs/preview.gif", "docs/cli.md", "docs/results.md", "docs/real-data.md"} <= {
        str(target.relative_to(ROOT)) for target, _ in links
    }
    for page in (README, *sorted((ROOT / "docs").glob("*.md"))):
        for target, anchor in _links(page):
            assert target.exists(), (page.name, str(target))
            if anchor:
                assert anchor in _anchors(target), f"{page.name}: no section #{anchor} in {target.name}"


def test_the_cli_reference_is_generated_from_the_commands():
    from remogpt.cli_docs import commands, markdown

    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == markdown(), (
        "docs/cli.md is stale: run `python -m remogpt.cli_docs docs/cli.md`"
    )
    assert len(commands()) >= 20 and all(f"## `remogpt {' '.join(p)}`" in markdown() for p, _ in commands())


def test_the_results_index_lists_every_result_file():
    import importlib.util

    spec = importlib.util.spec_from_file_location("index_results", ROOT / "benchmarks" / "index_results.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    index = (ROOT / "benchmarks" / "results" / "README.md").read_text(encoding="utf-8")
    assert index == module.index_text(), "run `python benchmarks/index_results.py`"
    for path in (ROOT / "benchmarks" / "results").iterdir():
        assert path.name == "README.md" or f"[{path.name}]" in index, path.name
