"""Would part-level retrieval offer the language model a composition it cannot copy whole? (issue 47)

Usage: python benchmarks/part_context.py [--run runs/demo] [--data data/embedded] [--pool 20]
           [--prompts 300] [--seed 0]
Writes benchmarks/results/part_context.json (and .md) and prints a table.

No language model is trained here. For each prompt of the compositional split (compositions no
training clip holds) and of the i.i.d. test split, with the demo's PL-TMR retriever:
- **t2m copy / t2t copy**: the top-1 training motion found text→motion / text→text, as it is
  (the baselines of `eval_t2m`).
- **part-level composite**: among the `--pool` best training motions text→motion and the `--pool`
  best text→text (their union), the pair (body A, arms B) whose *composed* PL-TMR embedding is
  nearest the text: the root, legs and backbone part vectors of A with both arm part vectors of B,
  through the retriever's own head (Eq. 2; `Retriever.project_motion_parts`). A = B is allowed, so
  the whole-body match is one of the candidates. The composite motion is A's features with B's arms
  grafted on (`remogpt.motion.graft_arms`), B resampled in time to A's length.
- the same composite after the demo's tokenizer (encode, decode): what a language model that copied
  it code for code could show.
- Real clips, and Real after the tokenizer (the ceiling of any generated motion).
Every row is scored by the attribute judge the demo trained (`data/embedded-judge`): the share of
the prompt's checkable attributes (actions per body part, sides, directions, counts, order) found in
the motion. If the composite is well above both copies on the compositional split, training the
language model with composites as context is worth trying; if not, part-level context as built
here cannot be what makes it compose.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from results_io import machine, write_results

BODY = ("root", "right_leg", "left_leg", "backbone")
ARMS = ("right_arm", "left_arm")
RESCORE = 10  # composed pairs grafted for real and embedded again


def _resample(features: np.ndarray, frames: int) -> np.ndarray:
    src = np.linspace(0, len(features) - 1, frames)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, len(features) - 1)
    w = (src - lo)[:, None]
    out = ((1 - w) * features[lo] + w * features[hi]).astype(np.float32)
    out[:, -4:] = np.where(w < 0.5, features[lo, -4:], features[hi, -4:])  # contacts stay binary
    return out


def _composites(retriever: Any, texts: list[str], pool: int, part_vectors: dict[str, dict[str, np.ndarray]],
                ) -> list[dict[str, Any]]:  # fmt: skip
    """Per text: the best (body, arms) pair of its candidate pool by the composed embedding."""
    text_emb = retriever.embed_text(texts)
    by_motion = retriever.search_embeddings(text_emb, "text", pool, "motion", with_motions=False)
    by_text = retriever.search_embeddings(text_emb, "text", pool, "text", with_motions=False)
    out = []
    for q, m, t in zip(text_emb, by_motion, by_text, strict=True):
        cands = list(dict.fromkeys([*m.ids, *t.ids]))
        n = len(cands)
        parts = {p: np.stack([part_vectors[c][p] for c in cands]) for p in (*BODY, *ARMS)}
        # every (a, b): body parts of a, arms of b → n*n composed part sets
        composed = {p: np.repeat(parts[p], n, axis=0) for p in BODY} | {p: np.tile(parts[p], (n, 1)) for p in ARMS}
        sims = retriever.project_motion_parts(composed) @ q
        best = int(np.argmax(sims))
        a, b = divmod(best, n)
        whole = [i * n + i for i in range(n)]
        # Re-scored: the RESCORE best pairs, grafted for real and embedded as motions, against the
        # pool's whole motions; the best of them by the text's similarity (a pair must earn its mix).
        top = [divmod(int(i), n) for i in np.argsort(-sims)[:RESCORE]]
        tried = [(c, c) for c in cands] + [(cands[x], cands[y]) for x, y in top if x != y]
        emb = retriever.embed_motion([_graft(retriever, x, y) for x, y in tried], warn=False)
        pick = tried[int(np.argmax(emb @ q))]
        out.append({"body": cands[a], "arms": cands[b], "score": float(sims[best]),
                    "best_whole": cands[int(np.argmax(sims[whole]))], "best_whole_score": float(sims[whole].max()),
                    "rescored_body": pick[0], "rescored_arms": pick[1],
                    "t2m_top1": m.ids[0], "t2t_top1": t.ids[0]})  # fmt: skip
    return out


def _graft(retriever: Any, body_id: str, arms_id: str) -> np.ndarray:
    from remogpt.motion import graft_arms

    body = retriever.motion(body_id)
    if body_id == arms_id:
        return body
    return graft_arms(body, _resample(retriever.motion(arms_id), len(body)))


def _split_rows(model: Any, parts: dict[str, dict[str, np.ndarray]], data: Path, split: str, prompts: int,
                pool: int, seed: int, judge: Any, labels: Any) -> dict[str, Any]:  # fmt: skip
    import torch

    from remogpt.data import load_split

    retriever, tokenizer = model.retriever, model.tokenizer
    clips = [c for c in load_split(data, split) if c.captions and labels.phases(c.id) is not None]
    rng = np.random.default_rng(seed)
    clips = [clips[i] for i in rng.permutation(len(clips))[:prompts]]
    texts = [c.captions[int(rng.integers(len(c.captions)))].text for c in clips]
    t0 = time.perf_counter()
    picked = _composites(retriever, texts, pool, parts)
    seconds = time.perf_counter() - t0

    def roundtrip(f: np.ndarray) -> np.ndarray:
        usable = len(f) // tokenizer.downsample * tokenizer.downsample
        with torch.no_grad():
            return tokenizer.reconstruct(f[:usable]).cpu().numpy() if usable else f

    motions: dict[str, list[np.ndarray]] = {"Real": [c.features for c in clips]}
    motions["Real after the tokenizer"] = [roundtrip(c.features) for c in clips]
    motions["t2m copy (top-1)"] = [retriever.motion(p["t2m_top1"]) for p in picked]
    motions["t2t copy (top-1)"] = [retriever.motion(p["t2t_top1"]) for p in picked]
    motions["pool's best whole motion (composed score, A = B)"] = [retriever.motion(p["best_whole"])
                                                                   for p in picked]  # fmt: skip
    comp = [_graft(retriever, p["body"], p["arms"]) for p in picked]
    motions["part-level composite"] = comp
    motions["part-level composite after the tokenizer"] = [roundtrip(f) for f in comp]
    rescored = [_graft(retriever, p["rescored_body"], p["rescored_arms"]) for p in picked]
    motions["part-level composite, re-scored"] = rescored
    motions["part-level composite, re-scored, after the tokenizer"] = [roundtrip(f) for f in rescored]
    expected = [labels.phases(c.id) for c in clips]
    rows = {}
    for name, ms in motions.items():
        acc = judge.accuracy(expected, ms)
        rows[name] = {"attributes": acc["attributes"], "all_correct": acc["all_correct"], "per_kind": acc["per_kind"]}
    mixed = float(np.mean([p["body"] != p["arms"] for p in picked]))
    mixed_rescored = float(np.mean([p["rescored_body"] != p["rescored_arms"] for p in picked]))
    return {"prompts": len(clips), "rows": rows, "mixed_share": mixed, "mixed_share_rescored": mixed_rescored,
            "search_seconds": seconds,
            "examples": [{"text": t, **p} for t, p in zip(texts[:8], picked[:8], strict=True)]}  # fmt: skip


def _part_vectors(retriever: Any) -> dict[str, dict[str, np.ndarray]]:
    """Every database motion's six part vectors (before the head)."""
    ids = list(retriever._require_database().sample_ids)
    vectors = retriever.embed_motion_parts([retriever.motion(i) for i in ids], warn=False)
    return {i: {p: v[n] for p, v in vectors.items()} for n, i in enumerate(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from remogpt.demo import judge_folder
    from remogpt.eval.judge import AttributeJudge, LabelBook
    from remogpt.lm import ReMoGPT

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    judge = AttributeJudge.from_pretrained(judge_folder(args.data))
    labels = LabelBook.of(args.data)
    model = ReMoGPT.from_pretrained(args.run)
    t0 = time.perf_counter()
    parts = _part_vectors(model.retriever)
    cache_s = time.perf_counter() - t0
    splits = {s: _split_rows(model, parts, args.data, s, args.prompts, args.pool, args.seed, judge, labels)
              for s in ("test_compositional", "test")}  # fmt: skip
    out = {"benchmark": "part_context", "date": time.strftime("%Y-%m-%d"), "run": str(args.run),
           "data": str(args.data), "pool": args.pool, "seed": args.seed, "part_vectors_seconds": cache_s,
           "machine": machine(),
           "splits": splits}  # fmt: skip
    write_results("part_context", out, _markdown(out))


def _markdown(out: dict[str, Any]) -> str:
    lines = [f"# Part-level composites of retrieved motions against whole copies ({out['date']}; {out['run']}, "
             f"pool {out['pool']} + {out['pool']}, attribute judge; one retriever, no LM)", ""]
    for split, res in out["splits"].items():
        kinds = sorted({k for r in res["rows"].values() for k in r["per_kind"]})
        lines += [f"## {split}: {res['prompts']} prompts; the composite mixes two clips for "
                  f"{100 * res['mixed_share']:.0f} % of them, the re-scored one for "
                  f"{100 * res['mixed_share_rescored']:.0f} %", "",
                  "| row | attributes | all correct | " + " | ".join(kinds) + " |",
                  "|---|---|---|" + "---|" * len(kinds)]
        for name, row in res["rows"].items():
            per = " | ".join(f"{row['per_kind'][k]['accuracy']:.2f}" if k in row["per_kind"] else "–" for k in kinds)
            lines.append(f"| {name} | {row['attributes']:.3f} | {row['all_correct']:.3f} | {per} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
