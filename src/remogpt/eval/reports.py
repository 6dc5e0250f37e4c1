"""Reports of the evaluation runners: Markdown tables in the paper's layout, JSON, and PNG plots.

Every table says which protocol, split, evaluator and seeds made it, and prints each number as
mean ± interval (the runner's result says which interval). Plots use matplotlib's object API
(`Figure`), never pyplot, so no global backend state is touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "format_value",
    "m2t_markdown",
    "plot_rareness",
    "plot_recall_curves",
    "rare_markdown",
    "retrieval_markdown",
    "t2m_markdown",
    "to_markdown",
    "write_json",
    "write_report",
]

DASH = "–"
_RERANK_JUDGES = {"retriever": "the run's retriever", "captioner": "the model's own captioner",
                  "both": "the run's retriever and the model's own captioner together"}  # fmt: skip


def format_value(entry: dict[str, Any] | float | None, digits: int = 3) -> str:
    """`mean ± interval` (the interval left out when it is zero, e.g. a deterministic metric), or – for none."""
    if entry is None:
        return DASH
    if isinstance(entry, int | float):
        return f"{float(entry):.{digits}f}"
    mean, interval = float(entry["mean"]), float(entry.get("interval", 0.0))
    if len(entry.get("values", [])) > 1 or interval > 0:
        return f"{mean:.{digits}f} ± {interval:.{digits}f}"
    return f"{mean:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _seeds(seeds: Sequence[int]) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}…{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


def _retrieval_text(setting: dict[str, Any] | None) -> str:
    if not setting:
        return "unknown"
    if setting.get("modality") == "none" or setting.get("k") == 0:
        return "none"
    return f"{setting['modality']}, k = {setting['k']} per modality"


def _invalid_text(stats: dict[str, Any] | None) -> str:
    if not stats:
        return ""
    kinds = ", ".join(f"{k}: {v}" for k, v in list(stats.get("by_kind", {}).items())[:6]) or "none"
    return (f"Invalid sequences: {stats['invalid_sequences']} of {stats['sequences']} sampled "
            f"({100 * stats['invalid_fraction']:.1f}%; {kinds}); samples retried {stats['samples_retried']}, "
            f"failed (a retrieved motion stood in) {stats['samples_failed']} of {stats['samples']}.")  # fmt: skip


def t2m_markdown(result: dict[str, Any]) -> str:
    """Table 2's layout: R-Precision top-1/2/3, FID, MMDist, Diversity, MModality, Real row first."""
    mm = result.get("mmodality")
    lines = [
        f"## Text-to-motion: {result['label']}",
        "",
        f"Protocol: {result['protocol']}. Run `{result['run_dir']}` "
        f"(context: {_retrieval_text(result.get('retrieval'))}), evaluator "
        f"`{result['evaluator']['dir']}`; {result['split']} split, {result['samples_per_repeat']} of "
        f"{result['samples']} samples per repeat (batches of 32, the partial one dropped), "
        f"{'a seeded random caption' if result['caption'] == 'random' else 'the first caption'} per sample; "
        f"repeats: {result['repeats']} (seeds {_seeds(result['repeat_seeds'])}); Diversity over "
        f"{result['diversity_times']} pairs; "
        + (f"MModality on {mm['texts']} texts × {mm['generations']} generations, {mm['times']} pairs. "
           if mm else "MModality not computed. ")
        + (f"Every generated motion is the best of {result['rerank_candidates']} samples by "
           f"{_RERANK_JUDGES[result.get('rerank_score') or 'retriever']}. "
           if result.get("rerank_candidates", 1) > 1 else "")
        + (f"Sampled with classifier-free guidance, scale {result['guidance_scale']:g}. "
           if result.get("guidance_scale", 1.0) > 1 else "")
        + f"Values: {result['interval']}.",
        "",
    ]  # fmt: skip
    header = ["Methods", "R-Precision Top-1 ↑", "Top-2 ↑", "Top-3 ↑", "FID ↓", "MMDist ↓", "Diversity →", "MModality ↑"]
    keys = ["top1", "top2", "top3", "FID", "MMDist", "Diversity", "MModality"]
    words = [k for k in ("Attributes", "AllAttributes", "CopyRate", "CodeOverlap")
             if any((row.get(k) is not None) for row in result["rows"].values())]  # fmt: skip
    header += [{"Attributes": "Attributes ↑", "AllAttributes": "All attributes ↑", "CopyRate": "Copy rate",
                "CodeOverlap": "Codes at same offset"}[k] for k in words]  # fmt: skip
    rows = [[name] + [format_value(row.get(k)) for k in keys + words] for name, row in result["rows"].items()]
    lines += _table(header, rows)
    judge = result.get("judge")
    if judge:
        lines += ["", f"Attributes: the share of each prompt's attributes (per phase, in order: base / arm / "
                  f"backbone action, side, direction, count) that the attribute judge `{judge['dir']}` finds in "
                  f"the motion ({judge['scored']} attributes such as clap.count scored; left out, read below 90 % on "
                  "real "
                  f"validation clips: {', '.join(judge['left_out']) or 'none'}). All attributes: the share of "
                  "prompts with every one found."]  # fmt: skip
    if any(row.get("CopyRate") is not None for row in result["rows"].values()):
        lines += ["", "Copy rate: the share of generated sequences identical, code for code, to a motion "
                  "retrieved into their prompt; codes at same offset: the mean largest share of codes equal to "
                  "one of those motions' at the same position."]  # fmt: skip
    if result.get("invalid"):
        lines += ["", _invalid_text(result["invalid"])]
    return "\n".join(lines) + "\n"


def m2t_markdown(result: dict[str, Any]) -> str:
    """Table 4's layout: R-Precision top-1/3, MMDist, Length_avg, BLEU@1/4, ROUGE-L, CIDEr, BERTScore."""
    lines = [
        f"## Motion-to-text: {result['label']}",
        "",
        f"Protocol: {result['protocol']}. Run `{result['run_dir']}` "
        f"(context: {_retrieval_text(result.get('retrieval'))}), evaluator "
        f"`{result['evaluator']['dir']}`; {result['split']} split, {result['samples']} motions, "
        f"{result['decoding']} decoding; caption scores on a 0–100 scale, references = all captions of the clip; "
        f"BERTScore: {result.get('bertscore_model') or 'not computed'}; R-Precision over {result['repeats']} "
        f"shuffles (seeds {result['seed']}…{result['seed'] + result['repeats'] - 1}). {result['interval']}.",
        "",
    ]  # fmt: skip
    header = ["Methods", "R-Precision Top-1 ↑", "Top-3 ↑", "MMDist ↓", "Length_avg", "BLEU@1 ↑", "BLEU@4 ↑",
              "ROUGE-L ↑", "CIDEr ↑", "BERTScore ↑"]  # fmt: skip
    digits = {"top1": 3, "top3": 3, "MMDist": 3, "Length_avg": 2}
    keys = ("top1", "top3", "MMDist", "Length_avg", "BLEU@1", "BLEU@4", "ROUGE_L", "CIDEr", "BERTScore")
    rows = [[name] + [format_value(row.get(k), digits.get(k, 1)) for k in keys] for name, row in result["rows"].items()]
    lines += _table(header, rows)
    return "\n".join(lines) + "\n"


def retrieval_markdown(results: Sequence[dict[str, Any]]) -> str:
    """Table 1's layout (text-to-motion and motion-to-text, R@1/2/3/5/10 and MedR) for several retrievers."""
    first = results[0]
    lines = [
        "## Retrieval (Table 1)",
        "",
        f"Protocol: {first['protocol']}. {first['split']} split of `{first['data_root']}`, "
        f"{first['samples']} samples (first caption each, "
        f"sorted by id); small batches: seed {first['seed']}. R@k in percent, MedR 1-based.",
    ]
    for proto, title in (("all", "all test samples"), ("small_batches", "small batches of 32")):
        for direction, name in (("t2m", "Text-to-motion"), ("m2t", "Motion-to-text")):
            lines += ["", f"### {name} retrieval, {title}", ""]
            header = ["Methods", "#Params", "R@1 ↑", "R@2 ↑", "R@3 ↑", "R@5 ↑", "R@10 ↑", "MedR ↓"]
            rows = []
            for res in results:
                metrics = res["metrics"].get(proto)
                params = res.get("motion_params")
                cells = [res["label"], f"{params / 1e6:.2f}M" if params else DASH]
                for m in ("R01", "R02", "R03", "R05", "R10", "MedR"):
                    cells.append(format_value(metrics[f"{direction}/{m}"], 2) if metrics else DASH)
                rows.append(cells)
            lines += _table(header, rows)
    notes = [f"{r['label']}: {r['metrics']['small_batches_note']}" for r in results
             if r["metrics"].get("small_batches_note")]  # fmt: skip
    if notes:
        lines += ["", "Small batches not computed: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def rare_markdown(result: dict[str, Any]) -> str:
    """Table 8's layout: MMDist, Top 5% MMDist, Balanced MMDist, Diversity, Top 5% Diversity."""
    lines = [
        "## Rare motions (Table 8)",
        "",
        f"Protocol: {result['protocol']}. {result['split']} split, {result['samples']} samples "
        f"(the {result['caption']}); rareness from "
        f"{result['text_embedder']} against every training caption; rarest {100 * result['top_fraction']:g}% = "
        f"{result['top_count']} samples; Balanced MMDist over {result['num_ranges']} equal-width rareness ranges; "
        f"evaluator `{result['evaluator']['dir']}`; {result['repeats']} repeat(s) from seed {result['seed']}; "
        f"{result['interval']}.",
        "",
    ]  # fmt: skip
    header = ["Method", "MMDist ↓", "Top 5% MMDist ↓", "Balanced MMDist ↓", "Diversity ↑", "Top 5% Diversity ↑"]
    keys = ("MMDist", "Top5%_MMDist", "Balanced_MMDist", "Diversity", "Top5%_Diversity")
    rows = [[name] + [format_value(row.get(k)) for k in keys] for name, row in result["rows"].items()]
    lines += _table(header, rows)
    for name, stats in result.get("invalid", {}).items():
        lines += ["", f"{name}: {_invalid_text(stats)}"]
    return "\n".join(lines) + "\n"


def to_markdown(result: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """The Markdown table of any runner result (a list of retrieval results makes one Table 1)."""
    if not isinstance(result, dict):
        return retrieval_markdown(list(result))
    writers = {"t2m": t2m_markdown, "m2t": m2t_markdown, "rare": rare_markdown}
    if result["task"] == "retrieval":
        return retrieval_markdown([result])
    return writers[result["task"]](result)


def write_json(path: Path | str, payload: Any) -> Path:
    from remogpt.artifacts import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_report(result: dict[str, Any] | Sequence[dict[str, Any]], out_dir: Path | str, name: str) -> list[Path]:
    """`out_dir/name.json`, `name.md` and the task's plot (`name_recall.png` or `name_rareness.png`)."""
    from remogpt.artifacts import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / f"{name}.json", result)]
    atomic_write_text(out / f"{name}.md", to_markdown(result))
    written.append(out / f"{name}.md")
    items = [result] if isinstance(result, dict) else list(result)
    if items and items[0]["task"] == "retrieval":
        written.append(plot_recall_curves(items, out / f"{name}_recall.png"))
    elif items and items[0]["task"] == "rare":
        written.append(plot_rareness(items[0], out / f"{name}_rareness.png"))
    return written


# ----------------------------------------------------------------------------- plots


def _save(fig: Any, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_recall_curves(results: Sequence[dict[str, Any]], path: Path | str) -> Path:
    """R@k against k (text→motion and motion→text), one line per retriever (mean over seeds if given a list)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, direction, title in zip(axes, ("t2m", "m2t"), ("text → motion", "motion → text"), strict=True):
        for res in results:
            curve = res["metrics"]["recall_curve"]
            ax.plot(curve["k"], curve[direction], marker="o", markersize=3, label=res["label"])
        ax.set_title(f"{title} ({results[0]['samples']} {results[0]['split']} samples)")
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("R@k (%)")
    axes[1].legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_rareness(result: dict[str, Any], path: Path | str) -> Path:
    """Text–motion distance of each sample against its rareness, with the per-range means of Balanced MMDist."""
    from matplotlib.figure import Figure

    rare = np.asarray(result["per_sample"]["rareness"])
    n_ranges = int(result["num_ranges"])
    edges = np.linspace(rare.min(), rare.max(), n_ranges + 1)
    which = np.clip(np.searchsorted(edges, rare, side="right") - 1, 0, n_ranges - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for i, (name, dist) in enumerate(result["per_sample"]["distance"].items()):
        d = np.asarray(dist)
        color = f"C{i}"
        ax.scatter(rare, d, s=8, alpha=0.35, color=color)
        means = [(centres[k], d[which == k].mean()) for k in range(n_ranges) if np.any(which == k)]
        ax.plot([m[0] for m in means], [m[1] for m in means], marker="o", color=color, label=name)
    ax.set_xlabel(f"rareness (1 − max cosine to training captions; {n_ranges} ranges)")
    ax.set_ylabel("text–motion distance (evaluator)")
    ax.set_title(f"Rare motions: {result['samples']} {result['split']} samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
