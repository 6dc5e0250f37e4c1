"""Which copy is the sceptic's strongest? The nearest training caption found by raw MiniLM or by a run's retriever.

Usage: python benchmarks/copy_baselines.py [--runs seed0=runs/lm_quality/demo_seed0 …]
       [--data runs/lm_quality/data] [--evaluator runs/lm_quality/evaluator] [--split test] [--seed 0]
       [--out copy_baselines]
Writes benchmarks/results/OUT.json and .md and prints a table.

The text→text copy returns the motion of the training caption nearest to the prompt. Issue 11 first
measured it with the bundled sentence model (all-MiniLM-L6-v2, cosine over every training caption);
`eval t2m` measures it with the run's PL-TMR text encoder. This scores both, and Real, with the
matching evaluator on every sample of the split (one seeded caption each): each text's expected
top-1 hit in R-Precision's random batches of 32 (`r_precision_per_text`), averaged; so the model's
rows elsewhere are set against the stronger of the two.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from results_io import machine, write_results


def main() -> None:
    from remogpt.data import load_split
    from remogpt.eval import r_precision_per_text
    from remogpt.eval.evaluator import Evaluator
    from remogpt.eval.runners import reference_crop
    from remogpt.lm import ReMoGPT
    from remogpt.retrieval.text import TextEncoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["seed0=runs/lm_quality/demo_seed0"], help="NAME=RUN_FOLDER")
    parser.add_argument("--data", type=Path, default=Path("runs/lm_quality/data"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/lm_quality/evaluator"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="copy_baselines", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()

    evaluator = Evaluator.from_pretrained(args.evaluator)
    samples = sorted(load_split(args.data, args.split), key=lambda s: s.id)
    train = sorted(load_split(args.data, "train"), key=lambda s: s.id)
    rng = np.random.RandomState(args.seed)
    captions = [s.captions[rng.randint(len(s.captions))] for s in samples]
    texts = [c.text for c in captions]
    real = [reference_crop(s.features, rng) for s in samples]
    text_emb = evaluator.embed_texts([list(c.tokens) or c.text for c in captions])

    def r_top1(motions: list[np.ndarray]) -> float:
        return float(r_precision_per_text(text_emb, evaluator.embed_motions(motions), top_k=1).mean())

    rows = {"Real": r_top1(real)}
    encoder = TextEncoder()
    owners = [i for i, s in enumerate(train) for _ in s.captions]
    database = encoder.encode([c.text for s in train for c in s.captions])
    nearest = (encoder.encode(texts) @ database.T).argmax(axis=1)
    rows["copy text→text, raw MiniLM (cosine)"] = r_top1([train[owners[j]].features for j in nearest])
    for spec in args.runs:
        name, run = spec.split("=", 1)
        model = ReMoGPT.from_pretrained(run, data_root=args.data)
        for target, label in (("text", "text→text"), ("motion", "text→motion")):
            found = model.retriever.search(text=texts, k=1, target=target, with_motions=False)
            rows[f"copy {label}, {name}'s PL-TMR"] = r_top1([model.retriever.motion(f.ids[0]) for f in found])
    result = {
        "benchmark": "copy_baselines",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "split": args.split, "samples": len(samples), "seed": args.seed, "runs": args.runs, "r_top1": rows,
    }  # fmt: skip
    lines = [f"# The copy baselines, raw MiniLM against the runs' retrievers ({result['date']})", "",
             f"{args.split} split, every sample with one seeded caption ({len(samples)}); matching evaluator, "
             "each text's expected top-1 hit in random batches of 32, averaged.", "",
             "| row | R-Top1 ↑ |", "|---|---|"]  # fmt: skip
    lines += [f"| {row} | {value:.3f} |" for row, value in rows.items()]
    write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
