"""The paper's pipeline on real motion capture: the Bandai-Namco sets (imported) beside the embedded data.

Usage: python benchmarks/bandai.py [--bandai data/bandai] [--embedded data/embedded]
           [--tokenizer runs/tokenizer_mix/with_bandai] [--seeds 0 1 2] [--work runs/bandai] [--repeats 3]

Needs `remogpt data import-bandai` (data/bandai) and a tokenizer that has seen real motion
(`benchmarks/tokenizer_mix.py` trains one on the embedded data + the Bandai train split; one
tokenizer for both data sets lets a prompt hold motions of the other data set, Table 7).
Writes benchmarks/results/bandai.json and bandai.md and prints the tables.

1. `remogpt eval ablation` on the Bandai folder at the demo's budgets (retriever 300 steps, LM 0 + 500
   steps), seeds `--seeds`: Table 1 (PL-TMR vs the whole-body encoder vs text-to-text, TMR protocol),
   text→motion and captioning without retrieval ("none") and with both modalities ("both_k1"), each
   scored by a matching evaluator trained on Bandai, with the copy baselines of the same run.
2. Label-level retrieval and the left/right test, per seed and retriever: the Bandai captions are made
   from a (content, style) label, so many test clips share their captions and exact-sample R@1 is
   capped; "content@1" counts a top-1 motion of the query's content (sides included) as right,
   "label@1" one of the same content and style. Left/right: for every test caption naming a hand
   ("… the left hand …"), (a) the top-1 among the test motions of that action with either hand
   ("side@1", chance 50 %) and (b) its own motion against its mirror ("pair", chance 50 %).
3. Table 7 (a retrieval database from another data set): the Bandai-trained models answer Bandai test
   prompts with the embedded train split as their database instead of their own; and models trained
   on the embedded data (one more ablation there, both_k1 only, same tokenizer) answer embedded test
   prompts with the Bandai train split as database.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from results_io import write_results

ROOT = Path(__file__).resolve().parents[1]
HAND = re.compile(r"\b(left|right) hand\b")
VARIANTS = ["none", "both_k1"]


def ablation_config(seeds: list[int], repeats: int, variants: list[str], table1: bool) -> Any:
    """The demo's budgets (remogpt.demo.DemoConfig) in the ablation; a reduced evaluation protocol."""
    from remogpt.eval.ablation import AblationConfig

    return AblationConfig(
        seeds=seeds, variants=variants, retriever_steps=300, lm_stage1_steps=0, lm_stage2_steps=500,
        repeats=repeats, mmodality=False, m2t_repeats=5, bertscore=False, table1=table1, text_to_text=table1,
        rare=False, threads=2,
    )  # fmt: skip


# ----------------------------------------------------------------------------- labels and the side test


def mirrored(content: str) -> str:
    return content.replace("left", "\0").replace("right", "left").replace("\0", "right")


def test_labels(data: Path, clips: list[Any]) -> tuple[list[str], list[str]]:
    """(content, style) of each test clip from labels.jsonl; a mirror's content has its sides swapped."""
    labels = {}
    for line in (data / "labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        labels[row["id"]] = (row["content"], row["style"])
    contents, styles = [], []
    for c in clips:
        original = c.id[1:] if c.id.startswith("M") and c.id[1:] in labels else c.id
        content, style = labels[original]
        contents.append(mirrored(content) if original != c.id else content)
        styles.append(style)
    return contents, styles


def label_metrics(sim: np.ndarray, clips: list[Any], contents: list[str], styles: list[str]) -> dict[str, Any]:
    """Text→motion at the label level and the left/right test, from a (texts × motions) similarity."""
    content, style = np.array(contents), np.array(styles)
    top = sim.argmax(1)
    out: dict[str, Any] = {
        "content@1": 100.0 * float((content[top] == content).mean()),
        "label@1": 100.0 * float(((content[top] == content) & (style[top] == style)).mean()),
    }
    index = {c.id: i for i, c in enumerate(clips)}
    sides: dict[str, list[float]] = {"left": [], "right": []}
    pairs: dict[str, list[float]] = {"left": [], "right": []}
    for i, c in enumerate(clips):
        found = HAND.search(c.captions[0].text)
        if found is None:
            continue
        side = found.group(1)
        action = contents[i].replace(side, "*")
        gallery = [j for j, other in enumerate(contents) if other.replace("left", "*").replace("right", "*") == action]
        best = max(gallery, key=lambda j: sim[i, j])
        sides[side].append(float(contents[best] == contents[i]))
        twin = index.get(c.id[1:] if c.id.startswith("M") else "M" + c.id)
        if twin is not None:
            pairs[side].append(float(sim[i, i] > sim[i, twin]))
    for side in ("left", "right"):
        out[f"side@1/{side}"] = 100.0 * float(np.mean(sides[side])) if sides[side] else None
        out[f"pair/{side}"] = 100.0 * float(np.mean(pairs[side])) if pairs[side] else None
        out[f"queries/{side}"] = len(sides[side])
    return out


def retriever_sim(run: Path, clips: list[Any], encoder: Any) -> np.ndarray:
    from remogpt.retrieval import Retriever

    retriever = Retriever.from_pretrained(run, text_encoder=encoder, load_index=False)
    text = retriever.embed_text([c.captions[0].text for c in clips])
    motion = retriever.embed_motion([c.features for c in clips], warn=False)
    return text @ motion.T


# ----------------------------------------------------------------------------- Table 7


def other_database(run: Path, data: Path, database: Path, evaluator: Path, seed: int, repeats: int,
                   label: str) -> dict[str, Any]:  # fmt: skip
    """Text→motion and captioning on `data`'s test split with `database`'s train split as the retrieval
    database; the evaluation settings are the ablation's, so the rows compare with its own-database rows."""
    from remogpt.eval.runners import eval_m2t, eval_t2m
    from remogpt.lm import ReMoGPT

    model = ReMoGPT.from_pretrained(run, data_root=data)
    model.retriever.build_index(database, "train", save=False)
    t2m = eval_t2m(run, data, evaluator, repeats=repeats, mmodality=False, seed=seed, label=label, model=model)
    m2t = eval_m2t(run, data, evaluator, bertscore=False, repeats=5, seed=seed, label=label, model=model)
    return {"t2m": t2m, "m2t": m2t}


# ----------------------------------------------------------------------------- summaries


def spread(values: list[float | None]) -> dict[str, float] | None:
    """min / median / max over runs (the figures the README quotes), and the mean."""
    if not values or any(v is None for v in values):
        return None
    arr = np.asarray(values, dtype=np.float64)
    return {"min": float(arr.min()), "median": float(np.median(arr)), "max": float(arr.max()),
            "mean": float(arr.mean()), "values": [float(v) for v in arr]}  # fmt: skip


def generation_rows(per_seed: dict[str, Any], variant: str) -> dict[str, dict[str, Any]]:
    """Text→motion and captioning rows of one variant (with the Real row and the copy baselines) over seeds."""
    from remogpt.eval.results import ProtocolResult
    from remogpt.eval.runners import COPY_M2T, COPY_T2M, COPY_T2T

    seeds = list(per_seed)
    t2m = [ProtocolResult.from_dict(per_seed[s]["t2m"][variant], f"seed {s} t2m {variant}") for s in seeds]
    m2t = [ProtocolResult.from_dict(per_seed[s]["m2t"][variant], f"seed {s} m2t {variant}") for s in seeds]
    rows: dict[str, dict[str, Any]] = {}
    for name, source in ((variant, variant), ("Real", "Real"), ("copy t2m", COPY_T2M), ("copy t2t", COPY_T2T)):
        rows[f"t2m/{name}"] = {m: spread([r.mean(source, m) for r in t2m]) for m in ("top1", "top3", "FID", "MMDist")}
    for name, source in ((variant, variant), ("Real", "Real"), ("copy m2t", COPY_M2T)):
        rows[f"m2t/{name}"] = {m: spread([r.mean(source, m) for r in m2t])
                               for m in ("top1", "BLEU@4", "ROUGE_L", "CIDEr")}  # fmt: skip
    invalid = [r.invalid.get(variant) for r in t2m]
    rows[f"t2m/{variant}"]["malformed"] = spread([i.invalid_fraction if i else None for i in invalid])
    return rows


def table7_rows(own: dict[str, Any], other: dict[str, Any], variant: str, label: str) -> dict[str, Any]:
    """Own-database rows (the ablation's) beside the other-database rows, same seeds and protocol; the
    copy baseline drawn from the other database too."""
    from remogpt.eval.results import ProtocolResult
    from remogpt.eval.runners import COPY_M2T, COPY_T2M

    seeds = list(other)
    runs = {
        "own database": ([own[s]["t2m"][variant] for s in seeds], [own[s]["m2t"][variant] for s in seeds], variant),
        f"{label} database": ([other[s]["t2m"] for s in seeds], [other[s]["m2t"] for s in seeds], label),
    }
    rows = {}
    for name, (t2m_raw, m2t_raw, row) in runs.items():
        t2m = [ProtocolResult.from_dict(r, f"{name} t2m") for r in t2m_raw]
        m2t = [ProtocolResult.from_dict(r, f"{name} m2t") for r in m2t_raw]
        for what, t_row, m_row in ((name, row, row), (f"{name}: copy top-1", COPY_T2M, COPY_M2T)):
            rows[what] = {
                **{f"t2m/{m}": spread([r.mean(t_row, m) for r in t2m]) for m in ("top1", "FID", "MMDist")},
                **{f"m2t/{m}": spread([r.mean(m_row, m) for r in m2t]) for m in ("top1", "BLEU@4", "CIDEr")},
            }
    return rows


def _fmt(entry: dict[str, float] | None, digits: int = 3) -> str:
    if entry is None:
        return "–"
    if len(entry["values"]) == 1:
        return f"{entry['median']:.{digits}f}"
    return f"{entry['median']:.{digits}f} ({entry['min']:.{digits}f}–{entry['max']:.{digits}f})"


def markdown(report: dict[str, Any]) -> str:
    seeds = report["seeds"]
    lines = [f"# The paper's pipeline on real motion capture (Bandai-Namco), seeds {seeds}", "",
             "Cells: median (min–max) over the seeds' fresh runs.", "",
             "## Table 1 on Bandai test (TMR protocol, all test samples) and label-level retrieval", "",
             "| retriever | t2m R@1 | t2m R@10 | m2t R@1 | MedR t2m | content@1 | label@1 | side@1 left | "
             "side@1 right | pair left | pair right |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind, row in report["retrieval"].items():
        cells = [row.get(k) for k in ("t2m/R01", "t2m/R10", "m2t/R01", "t2m/MedR", "content@1", "label@1",
                                      "side@1/left", "side@1/right", "pair/left", "pair/right")]  # fmt: skip
        lines.append(f"| {kind} | " + " | ".join(_fmt(c, 1) for c in cells) + " |")
    lines += ["", "## Text → motion and captioning on Bandai test (matching evaluator trained on Bandai)", "",
              "| row | R-Top1 | R-Top3 | FID | MMDist | malformed |", "|---|---|---|---|---|---|"]  # fmt: skip
    for variant, rows in report["generation"].items():
        for name, row in rows.items():
            if name.startswith("t2m/") and (name == f"t2m/{variant}" or variant == VARIANTS[-1]):
                cells = [row.get(k) for k in ("top1", "top3", "FID", "MMDist")]
                lines.append(
                    f"| {name[4:]} | " + " | ".join(_fmt(c) for c in cells) + f" | {_fmt(row.get('malformed'))} |"
                )
    lines += ["", "| row | text R-Top1 | BLEU@4 | ROUGE-L | CIDEr |", "|---|---|---|---|---|"]
    for variant, rows in report["generation"].items():
        for name, row in rows.items():
            if name.startswith("m2t/") and (name == f"m2t/{variant}" or variant == VARIANTS[-1]):
                cells = [row.get(k) for k in ("top1", "BLEU@4", "ROUGE_L", "CIDEr")]
                lines.append(
                    f"| {name[4:]} | " + " | ".join(_fmt(c, 3 if i == 0 else 1) for i, c in enumerate(cells)) + " |"
                )
    lines += ["", "## Table 7: the retrieval database from another data set (both_k1)", ""]
    for title, rows in report["table7"].items():
        lines += [f"### {title}", "", "| database | t2m R-Top1 | FID | MMDist | m2t R-Top1 | BLEU@4 | CIDEr |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, row in rows.items():
            cells = [row.get(k) for k in ("t2m/top1", "t2m/FID", "t2m/MMDist", "m2t/top1", "m2t/BLEU@4", "m2t/CIDEr")]
            lines.append(f"| {name} | " + " | ".join(_fmt(c, 1 if i > 3 else 3) for i, c in enumerate(cells)) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bandai", type=Path, default=ROOT / "data" / "bandai")
    parser.add_argument("--embedded", type=Path, default=ROOT / "data" / "embedded")
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "runs" / "tokenizer_mix" / "with_bandai")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="Text→motion repeats per run.")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bandai")
    args = parser.parse_args()

    import torch

    from remogpt.data import load_split
    from remogpt.eval.ablation import run_ablation
    from remogpt.retrieval import TextEncoder

    started = time.perf_counter()
    for folder in (args.bandai, args.embedded, args.tokenizer / "tokenizer"):
        if not (folder / "manifest.json").is_file() and not (folder / "train.txt").is_file():
            raise SystemExit(f"{folder}: missing (see the usage at the top of {Path(__file__).name})")
    bandai = run_ablation(args.bandai, args.work / "bandai", out_md=None, tokenizer_dir=args.tokenizer / "tokenizer",
                          config=ablation_config(args.seeds, args.repeats, VARIANTS, table1=True))  # fmt: skip
    embedded = run_ablation(args.embedded, args.work / "embedded", out_md=None,
                            tokenizer_dir=args.tokenizer / "tokenizer",
                            config=ablation_config(args.seeds, args.repeats, ["both_k1"], table1=False))  # fmt: skip

    # Label-level retrieval and the left/right test.
    clips = sorted(load_split(args.bandai, "test"), key=lambda c: c.id)
    contents, styles = test_labels(args.bandai, clips)
    encoder = TextEncoder()
    per_kind: dict[str, list[dict[str, Any]]] = {"pl": [], "wb": [], "t2t": []}
    for seed in args.seeds:
        for kind in ("pl", "wb"):
            sim = retriever_sim(
                args.work / "bandai" / f"seed{seed}" / "retrievers" / kind / "retriever", clips, encoder
            )
            per_kind[kind].append(label_metrics(sim, clips, contents, styles))
    from remogpt.eval.runners import text_to_text_sim

    per_kind["t2t"].append(label_metrics(text_to_text_sim(encoder, clips)[0], clips, contents, styles))
    retrieval: dict[str, dict[str, Any]] = {}
    labels = {"pl": "PL-TMR", "wb": "whole-body", "t2t": "text-to-text (MiniLM)"}
    for kind, found in per_kind.items():
        row = {k: spread([f[k] for f in found]) for k in found[0] if not k.startswith("queries/")}
        row["queries"] = {side: found[0][f"queries/{side}"] for side in ("left", "right")}
        if kind in ("pl", "wb"):
            for key in ("t2m/R01", "t2m/R10", "m2t/R01", "t2m/MedR"):
                row[key] = spread(
                    [bandai["per_seed"][str(s)]["table1"][kind]["metrics"]["all"][key] for s in args.seeds]
                )
        else:
            t2t = bandai["text_to_text"]["metrics"]["all"] if bandai.get("text_to_text") else {}
            for key in ("t2m/R01", "t2m/R10", "t2m/MedR"):
                row[key] = spread([t2t[key]]) if key in t2t else None
        retrieval[labels[kind]] = row

    # Table 7.
    own_b, own_e = bandai["per_seed"], embedded["per_seed"]
    other_b: dict[str, Any] = {}
    other_e: dict[str, Any] = {}
    for seed in args.seeds:
        for own, data, database, evaluator, label, out in (
            ("bandai", args.bandai, args.embedded, bandai["evaluator"], "embedded", other_b),
            ("embedded", args.embedded, args.bandai, embedded["evaluator"], "Bandai", other_e),
        ):
            run = args.work / own / f"seed{seed}" / "runs" / "both_k1"
            out[str(seed)] = other_database(run, data, database, Path(evaluator), seed, args.repeats, label)
    report = {
        "benchmark": "bandai",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "seeds": args.seeds,
        "data": {"bandai": bandai["data"], "embedded": embedded["data"]},
        "tokenizer": str(args.tokenizer),
        "budgets": {k: bandai["config"][k] for k in ("retriever_steps", "lm_stage1_steps", "lm_stage2_steps",
                                                      "repeats", "m2t_repeats")},
        "licence": "Bandai-Namco-Research motion datasets: CC BY-NC 4.0 (read from a local copy, not committed)",
        "retrieval": retrieval,
        "generation": {v: generation_rows(own_b, v) for v in VARIANTS},
        "table7": {"Bandai test prompts": table7_rows(own_b, other_b, "both_k1", "embedded"),
                   "embedded test prompts": table7_rows(own_e, other_e, "both_k1", "Bandai")},
        "evaluators": {"bandai": bandai["evaluator"], "embedded": embedded["evaluator"]},
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    write_results("bandai", report, markdown(report))


if __name__ == "__main__":
    main()
