"""`docs/cli.md`, written from the commands' own definitions so that it cannot drift from them
(a test compares the file with `markdown()`). Regenerate: `python -m remogpt.cli_docs docs/cli.md`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["commands", "markdown"]


def _root() -> Any:
    import typer

    from remogpt.cli import app

    return typer.main.get_command(app)


def commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every leaf command as (path, click command), e.g. (("train", "lm"), …), in registration order."""
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(group: Any, path: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, (*path, name))
            else:
                out.append(((*path, name), command))

    walk(_root(), ())
    return out


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(param: Any) -> str:
    default = param.default
    if default is None or (param.is_flag and default is False) or callable(default):
        return ""
    if isinstance(default, (list, tuple)):
        return ", ".join(str(d) for d in default) if default else ""
    return f"`{default}`"


def _param_row(param: Any) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`" + ("" if param.required else " (optional)")
        return f"| {name} | {_cell(getattr(param, 'help', '') or '')} | |"
    names = "/".join(param.opts + list(param.secondary_opts))
    return f"| `{names}` | {_cell(param.help or '')} | {_default(param)} |"


def markdown() -> str:
    root = _root()
    lines = [
        "# remogpt command reference",
        "",
        "Written by `python -m remogpt.cli_docs docs/cli.md` from the commands themselves; every command also",
        "prints this with `--help`.",
        "",
        _cell(root.help or ""),
        "",
    ]
    for path, command in commands():
        lines += [f"## `remogpt {' '.join(path)}`", "", _cell((command.help or "").split("\n\n")[0]), ""]
        params = [p for p in command.params if p.name not in ("help",)]
        if params:
            lines += ["| argument / option | what it does | default |", "|---|---|---|"]
            lines += [_param_row(p) for p in params]
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/cli.md")
    target.write_text(markdown(), encoding="utf-8")
    print(f"wrote {target} ({len(commands())} commands)")
