"""Does the language model overfit? Teacher-forced text→motion loss on training and held-out texts.

Usage: python benchmarks/lm_fit.py [--runs none=runs/lm_long60/none …] [--data runs/lm_quality/data]
       [--splits train val] [--samples 640] [--seed 0] [--out lm_fit]
Writes benchmarks/results/OUT.json and .md and prints a table.

Sampled motions can miss their text for two reasons: the model has not learned the mapping (its
loss is high on the texts it trained on too) or it learned the training texts and does not carry
that over to new ones (low loss on train, high on held-out texts: overfitting). This scores the
target codes of a seeded subset of each split, teacher-forced, with the prompt the model sees at
inference (its first template, the retrieved context of its own setting; a training sample's own
clip, mirror and timed parts are excluded from the retrieval, as in training): the mean negative
log-likelihood per target token (codes and `<eom>`) and the share of tokens that are the model's
argmax, overall and per kind of prompt of the embedded data's generator (`labels.jsonl`, as
`lm_breakdown.py`), and per part of the motion: its first four codes (the start), the middle four
(where "X, then Y" switches actions) and the last three (the end and `<eom>`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from lm_breakdown import KINDS, _kinds  # benchmarks/: the same kinds of prompt
from results_io import machine, write_results

PARTS = ("start", "middle", "end")


def _token_scores(model: Any, samples: list[Any], split: str, rng: np.random.RandomState,
                  batch_size: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Per sample: the negative log-likelihood and argmax hit of every target token, teacher-forced."""
    import torch

    out = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        texts = [s.captions[rng.randint(len(s.captions))].text for s in batch]
        exclude = [[s.id] for s in batch] if split == "train" else None
        contexts, _ = model._contexts("t2m", texts, model.retrieval, exclude)
        prompts = [model.prompts.text_to_motion(t, c) for t, c in zip(texts, contexts, strict=True)]
        targets = []
        for s in batch:
            features = s.features[: len(s.features) - len(s.features) % model.tokenizer.downsample]
            codes = model.tokenizer.encode(features).cpu().numpy().astype(np.int64)
            targets.append(model.vocab.motion_string(codes[: model.cfg.max_motion_codes]))
        tok = model.vocab.tokenizer
        enc = tok(prompts, padding=True, truncation=True, max_length=model.cfg.max_input_tokens, return_tensors="pt")
        tgt = tok(targets, padding=True, return_tensors="pt")
        labels = tgt.input_ids.masked_fill(tgt.attention_mask == 0, -100)
        with torch.no_grad():
            logits = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=labels).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row in range(len(batch)):
            n = int((labels[row] != -100).sum())
            gold = labels[row, :n]
            nll = -logp[row, torch.arange(n), gold]
            out.append((nll.numpy(), (logp[row, :n].argmax(-1) == gold).numpy().astype(float)))
    return out


def _summary(scores: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    nll = np.concatenate([n for n, _ in scores])
    hit = np.concatenate([h for _, h in scores])
    parts = {
        "start": [n[:4].mean() for n, _ in scores],
        "middle": [n[max(0, len(n) // 2 - 2) : len(n) // 2 + 2].mean() for n, _ in scores],
        "end": [n[-3:].mean() for n, _ in scores],
    }
    return {"samples": len(scores), "nll": float(nll.mean()), "accuracy": float(hit.mean()),
            **{f"nll_{p}": float(np.mean(v)) for p, v in parts.items()}}  # fmt: skip


def main() -> None:
    from remogpt.data import load_split
    from remogpt.lm import ReMoGPT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["none=runs/lm_long60/none"], help="NAME=RUN_FOLDER")
    parser.add_argument("--data", type=Path, default=Path("runs/lm_quality/data"))
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--samples", type=int, default=640, help="samples per split (a seeded subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="lm_fit", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "benchmark": "lm_fit",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "samples": args.samples, "seed": args.seed, "runs": {},
    }  # fmt: skip
    splits = {}
    for split in args.splits:
        samples = sorted(load_split(args.data, split), key=lambda s: s.id)
        picks = np.random.RandomState(args.seed).permutation(len(samples))[: args.samples]
        chosen = [samples[i] for i in sorted(picks)]
        splits[split] = (chosen, _kinds(args.data, chosen))
    for spec in args.runs:
        name, run = spec.split("=", 1)
        model = ReMoGPT.from_pretrained(run, data_root=args.data)
        rows: dict[str, dict[str, dict[str, float]]] = {}
        for split, (chosen, kinds) in splits.items():
            scores = _token_scores(model, chosen, split, np.random.RandomState([args.seed, 1]))
            rows[split] = {"all": _summary(scores)}
            for kind in [k for k in [*KINDS, *sorted(set(kinds) - set(KINDS))] if k in kinds]:
                rows[split][kind] = _summary([s for s, k in zip(scores, kinds, strict=True) if k == kind])
            print(f"{name} {split}: NLL/token {rows[split]['all']['nll']:.3f}, "
                  f"accuracy {rows[split]['all']['accuracy']:.3f}", flush=True)  # fmt: skip
        result["runs"][name] = {"run": run, "modality": model.retrieval.modality,
                                "dropout_rate": model.cfg.dropout_rate, "splits": rows}  # fmt: skip

    lines = [f"# Teacher-forced text→motion loss, training vs held-out texts ({result['date']})", "",
             f"{args.samples} samples per split (seeded), one seeded caption each, the prompt of the run's own "
             "setting. NLL: mean negative log-likelihood per target token (codes and `<eom>`); accuracy: "
             "share of target tokens that are the model's argmax; start / middle / end: NLL of the first 4, "
             "the middle 4 and the last 3 tokens.", "",
             "| run | split | kind | samples | NLL ↓ | accuracy ↑ | NLL start | NLL middle | NLL end |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in result["runs"].items():
        for split, kinds in r["splits"].items():
            for kind, v in kinds.items():
                lines.append(f"| {name} | {split} | {KINDS.get(kind, kind)} | {v['samples']} | {v['nll']:.3f} | "
                             f"{v['accuracy']:.3f} | {v['nll_start']:.2f} | {v['nll_middle']:.2f} | "
                             f"{v['nll_end']:.2f} |")  # fmt: skip
    write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
