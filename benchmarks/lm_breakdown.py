"""Where text→motion falls short: R-Top1 per kind of prompt (one action, actions in sequence, at once).

Usage: python benchmarks/lm_breakdown.py [--runs none=runs/lm_long60/none both=runs/lm_long60/both]
       [--data runs/lm_quality/data] [--evaluator runs/lm_quality/evaluator] [--split val]
       [--rerank 1 8] [--rerank-by retriever both] [--temperature 0.4 1.0] [--top-k 20] [--guidance 1 1.5]
       [--seed 0] [--out lm_breakdown]
Writes benchmarks/results/OUT.json and .md and prints a table.

One R-Precision number hides which prompts a model fails. The embedded data's generator records,
for every clip, what it composed (`labels.jsonl`): one action, two actions one after the other
("…, then …"), or two at the same time ("… while …"); a timed caption describes one part of a clip.
Every sample of the split gets one caption (seeded), Real its reference crop, each run one generated
motion (for N > 1 the best of N, by each judge of `--rerank-by`), the copy baselines the top-1 retrieved
training motion. `--temperature`, `--top-k` and `--guidance` add decoding settings to compare (each
combination with each N; default: the model's own). The matching evaluator scores each text's
expected top-1 hit in R-Precision's random batches of 32 (`r_precision_per_text`: exact over the
batch-mates, not one shuffle), and the hits are averaged per kind. On the train split the copy rows
find the sample itself (nothing is excluded), so there they equal Real. A folder without
`labels.jsonl` gets the "all" column only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from lm_rerank import add_run_arguments  # benchmarks/: the same run options
from remogpt.lm import RERANK_SCORES
from results_io import machine, write_results

KINDS = {"single": "one action", "sequential": "in sequence", "simultaneous": "at once", "segment": "timed part"}


def _kinds(data: Path, samples: list[Any]) -> list[str]:
    """Each sample's kind from the generator's labels ("segment" for a timed caption's sample)."""
    path = data / "labels.jsonl"
    if not path.is_file():
        return ["all"] * len(samples)
    with open(path, encoding="utf-8") as f:
        kind_of = {(row := json.loads(line))["id"]: row["kind"] for line in f if line.strip()}
    kinds = []
    for s in samples:
        clip = s.id.split("#")[0].removeprefix("M")  # mirrored copies share their clip's labels
        kinds.append("segment" if "#" in s.id else kind_of.get(clip, "unlabelled"))
    return kinds


def _decoding_label(temperature: float | None, top_k: int | None, guidance: float | None) -> str:
    """The decoding settings that differ from the model's own, for a row's name."""
    parts = [f"{key} {value:g}" for key, value in (("T", temperature), ("top-k", top_k), ("guidance", guidance))
             if value is not None]  # fmt: skip
    return f" ({', '.join(parts)})" if parts else ""


def main() -> None:
    from remogpt.data import load_split
    from remogpt.eval import r_precision_per_text
    from remogpt.eval.evaluator import Evaluator
    from remogpt.eval.runners import COPY_T2M, COPY_T2T, TOKENIZER_ROUNDTRIP, reference_crop
    from remogpt.lm import ReMoGPT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--split", default="val")
    parser.add_argument("--rerank", type=int, nargs="+", default=[1, 8], help="candidates per motion to score")
    parser.add_argument("--rerank-by", nargs="+", default=["retriever", "both"],
                        choices=RERANK_SCORES, help="who picks the best of N > 1")  # fmt: skip
    parser.add_argument("--temperature", type=float, nargs="+", default=[None],
                        help="sampling temperatures to compare (default: the model's)")  # fmt: skip
    parser.add_argument("--top-k", type=int, default=None, help="top-k of the sampling (default: the model's)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[None],
                        help="classifier-free guidance scales to compare (1: off; default: the model's)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="lm_breakdown", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()

    samples = sorted(load_split(args.data, args.split), key=lambda s: s.id)
    kinds = _kinds(args.data, samples)
    rng = np.random.RandomState(args.seed)
    captions = [s.captions[rng.randint(len(s.captions))] for s in samples]
    real = [reference_crop(s.features, rng) for s in samples]
    evaluator = Evaluator.from_pretrained(args.evaluator)
    text_emb = evaluator.embed_texts([list(c.tokens) or c.text for c in captions])
    texts = [c.text for c in captions]

    def hits(motions: list[np.ndarray]) -> np.ndarray:
        return r_precision_per_text(text_emb, evaluator.embed_motions(motions), top_k=1)

    rows: dict[str, np.ndarray] = {"Real": hits(real)}
    seconds: dict[str, float] = {}
    for i, spec in enumerate(args.runs):
        name, run = spec.split("=", 1)
        model = ReMoGPT.from_pretrained(run, data_root=args.data)
        if i == 0:  # the references, with the first run's tokenizer and retriever
            rows[TOKENIZER_ROUNDTRIP] = hits([model.tokenizer.reconstruct(r).cpu().numpy() for r in real])
            for row, target in ((COPY_T2M, "motion"), (COPY_T2T, "text")):
                found = model.retriever.search(text=texts, k=1, target=target, with_motions=False)
                rows[row] = hits([model.retriever.motion(f.ids[0]) for f in found])
        settings = [(t, g, c, j) for t in args.temperature for g in args.guidance for c in args.rerank
                    for j in (args.rerank_by if c > 1 else [None])]  # fmt: skip
        for temperature, guidance, n, judge in settings:
            label = f"ReMoGPT, {name}" + _decoding_label(temperature, args.top_k, guidance)
            label += f", best of {n} by {judge}" if n > 1 else ""
            t0 = time.perf_counter()
            generated = model.generate_motion(texts, seed=args.seed, rerank=n, rerank_score=judge,
                                              temperature=temperature, top_k=args.top_k,
                                              guidance_scale=guidance)  # fmt: skip
            seconds[label] = time.perf_counter() - t0
            rows[label] = hits([g.features for g in generated])
            print(f"{label}: R-Top1 {rows[label].mean():.3f} ({seconds[label]:.0f} s)", flush=True)

    groups = {"all": list(range(len(samples)))}
    for kind in [*KINDS, *sorted(set(kinds) - set(KINDS) - {"all"})]:  # the known kinds first, in KINDS' order
        if kind in kinds:
            groups[kind] = [i for i, k in enumerate(kinds) if k == kind]
    table = {row: {g: float(v[idx].mean()) for g, idx in groups.items()} for row, v in rows.items()}
    result = {
        "benchmark": "lm_breakdown",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "split": args.split, "samples": len(samples), "seed": args.seed, "runs": args.runs,
        "decoding": {"temperature": args.temperature, "top_k": args.top_k, "guidance": args.guidance},
        "group_sizes": {g: len(idx) for g, idx in groups.items()}, "r_top1": table, "generate_seconds": seconds,
    }  # fmt: skip
    names = {g: KINDS.get(g, g) for g in groups}
    lines = [f"# Text→motion R-Top1 by kind of prompt ({result['date']})", "",
             f"{args.split} split, every sample with one seeded caption ({len(samples)}); matching evaluator, "
             "each text's expected top-1 hit in random batches of 32, averaged per kind.", "",
             "| row | " + " | ".join(f"{names[g]} ({len(idx)})" for g, idx in groups.items()) + " |",
             "|---|" + "---|" * len(groups)]  # fmt: skip
    for row, values in table.items():
        lines.append(f"| {row} | " + " | ".join(f"{values[g]:.3f}" for g in groups) + " |")
    write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
