"""The language model at the long CPU budget: does it beat the copy baselines once it has time?

Usage: python benchmarks/lm_long.py --source runs/lm_quality/demo_seed0 --data runs/lm_quality/data
       --evaluator runs/lm_quality/evaluator [--work runs/lm_long] [--tokenizer-steps 4000]
       [--stage1 3000] [--stage2 4000] [--variants none:none:0 both:both:0[:STAGE2]] [--every 1000] [--repeats 3]
       [--rerank 8] [--rerank-by both] [--lm d_model=256 d_ff=1024 …] [--out lm_long]
Writes benchmarks/results/OUT.json and .md and prints a table.

Issue 11's long budget: the language model trains for at most 60 minutes on 2 cores. Stage 1 (no
context) is the same for every variant, so it trains once, on both cores, and is copied into each
variant; then every variant's stage 2 trains in its own process on one core, side by side (one
thread gives ~0.8 of two, so two variants in parallel take about the wall time of one). A
variant's LM minutes are the shared stage 1's plus its own stage 2's. It uses

- the `tiny` tokenizer trained for its preset's own 4,000 steps (the demo's stops at 1,000: its
  reconstructions cap any LM below the copy baselines), scored by the "Real through the
  tokenizer" row of `eval_t2m`, the ceiling of any model that writes its codes;
- the source run's retriever (its train-split database and cached retrievals);
- the `tiny` LM with a context-free stage 1 and a stage 2 of the variant's retrieval setting. A
  variant is NAME:MODALITY:GOLD[:STAGE2], GOLD the share of training prompts whose context holds
  the sample's own pair (the demo: 1.0, which teaches copying; the paper: 0.0, real neighbours
  only), STAGE2 its stage-2 steps (default `--stage2`: a longer prompt trains slower, so equal
  minutes can mean fewer steps).

Each final model is scored with the matching evaluator on the whole test split (text→motion with
Guo et al.'s protocol, `--repeats` repeats; greedy captions of every test motion), beside Real, the
tokenizer's round trip and the copy baselines, scored the same way in the same run. Stage-2
snapshots every `--every` steps are scored on a fixed subset of 320 prompts: a learning curve.
With `--rerank N` (default 8) text→motion is scored once more with every motion the best of N
samples (`ReMoGPT.generate_motion(rerank=N)`), picked by `--rerank-by`: the run's own retriever,
the model's own captioner or both (the default); the matching evaluator is a separately trained
model, so the run picks and the evaluator judges. `--lm KEY=VALUE …`
changes fields of the `tiny` LM preset (its shape, say) for stage 1 and every variant alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from lm_learning import score  # benchmarks/: the same scoring as the learning curves
from remogpt.lm import RERANK_SCORES
from results_io import machine, write_results

CURVE_PROMPTS = 320

JUDGES = {"retriever": "the retriever", "captioner": "the captioner", "both": "retriever + captioner"}


def _tokenizer(work: Path, data: Path, steps: int, seed: int) -> tuple[Path, float]:
    """The tiny tokenizer at `steps` steps (its preset's schedule), trained once on both cores."""
    from remogpt.tokenizer import TokenizerTrainConfig, train_tokenizer

    run = work / "tokenizer_run"
    manifest = run / "tokenizer" / "manifest.json"
    if not manifest.is_file():
        trainer = {"max_steps": steps, "seed": seed, "progress_bar": False}
        cfg = TokenizerTrainConfig.preset("tiny", data={"root": str(data)}, trainer=trainer)
        t0 = time.perf_counter()
        train_tokenizer(cfg, run)
        (run / "seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n", encoding="utf-8")
    return run / "tokenizer", float((run / "seconds.txt").read_text())


def _prepare(work: Path, name: str, source: Path, tokenizer: Path, codes: Path) -> Path:
    """A run folder for one variant: the new tokenizer and its codes, the source run's retriever and
    its cached retrievals (they depend on the retriever and the data, not on the tokenizer). A folder
    prepared before is kept as it is, so an interrupted stage 2 resumes from its checkpoint."""
    run = work / name
    if (run / "lm").is_dir() and all((run / link).exists() for link in ("tokenizer", "retriever", "codes")):
        return run
    shutil.rmtree(run, ignore_errors=True)
    (run / "lm").mkdir(parents=True)
    (run / "tokenizer").symlink_to(tokenizer.resolve())
    (run / "retriever").symlink_to((source / "retriever").resolve())
    (run / "codes").symlink_to(codes.resolve())
    if (source / "lm" / "retrievals.json").is_file():  # the LM checks its key before reusing it
        shutil.copy2(source / "lm" / "retrievals.json", run / "lm" / "retrievals.json")
    return run


def _lm_overrides(specs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs for LMConfig, each value read as JSON (a number, true/false) or else kept as text."""
    overrides = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep:
            raise SystemExit(f"--lm {spec!r}: expected KEY=VALUE")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def _stage1(work: Path, source: Path, tokenizer: Path, codes: Path, data: Path, steps: int,
            seed: int, overrides: dict[str, Any]) -> tuple[Path, float]:  # fmt: skip
    """Stage 1 (no context) is the same for every variant: trained once on both cores, then copied into
    each variant, so the cores go to the stage-2 runs that differ."""
    from remogpt.lm import LMConfig, train_lm

    run = _prepare(work, "stage1", source, tokenizer, codes)
    seconds = run / "seconds.txt"
    if not seconds.is_file():
        cfg = LMConfig.preset("tiny", **{**overrides, "stage1_steps": steps, "stage2_steps": 0})
        cfg = cfg.replace(data={"root": str(data)}, trainer={"progress_bar": False, "seed": seed,
                                                             "log_every_n_steps": 100})  # fmt: skip
        t0 = time.perf_counter()
        with open(run / "train.log", "a", encoding="utf-8") as log:
            train_lm(cfg, run, resume=True, log=lambda m: print(m, file=log, flush=True))
        seconds.write_text(f"{time.perf_counter() - t0:.1f}\n", encoding="utf-8")
    return run / "lm", float(seconds.read_text())


def _train_variant(run: str, data: str, modality: str, gold: float, stage1: int, stage2: int, every: int,
                   seed: int, overrides: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """In a worker process (one thread): train one variant's stage 2 from the shared stage 1 (already
    in its folder), log to run/train.log. Resumes after an interruption."""
    from remogpt.lm import LMConfig, train_lm

    run_dir = Path(run)
    manifest = run_dir / "lm" / "manifest.json"
    if not manifest.is_file():
        cfg = LMConfig.preset("tiny", **{**overrides, "stage1_steps": stage1, "stage2_steps": stage2,
                                         "retrieval": {"modality": modality, "gold_rate": gold}})  # fmt: skip
        cfg = cfg.replace(data={"root": data}, trainer={"progress_bar": False, "seed": seed, "log_every_n_steps": 100,
                                                        "checkpoint_every_n_steps": every})  # fmt: skip
        with open(run_dir / "train.log", "a", encoding="utf-8") as log:
            train_lm(cfg, run_dir, resume=True, log=lambda m: print(m, file=log, flush=True), snapshot_every=every)
    extra = json.loads(manifest.read_text(encoding="utf-8"))["extra"]
    return {"stage_seconds": extra["stage_seconds"], "samples_per_second": extra.get("samples_per_second")}


def _shape(result: dict[str, Any]) -> str:
    overrides = result["lm"].get("overrides")
    return f" with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else ""


def _markdown(result: dict[str, Any]) -> str:
    lines = [f"# The language model at the long CPU budget ({result['date']})", "",
             f"Tokenizer: tiny, {result['tokenizer']['steps']} steps ({result['tokenizer']['seconds'] / 60:.1f} min, "
             f"2 cores). LM: tiny{_shape(result)}, stage 1 (no context; {result['lm']['stage1_steps']} steps, "
             "once on 2 cores, "
             "shared) + stage 2 (steps per variant below), one variant per core, side by side. "
             f"Matching evaluator; text→motion on the whole test split × {result['repeats']} repeats, captions of "
             "every test motion (greedy).", "",
             "| row | t2m R-Top1 ↑ | R-Top3 ↑ | FID ↓ | MMDist ↓ | captions BLEU@4 ↑ | CIDEr ↑ | text R-Top1 ↑ | "
             "LM minutes |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    base = result["baselines"]
    rows = [(r, base["t2m"].get(r), None, None) for r in base["t2m"]]
    rows += [(r, None, base["m2t"][r], None) for r in base["m2t"]]
    steps = {name: f" ({result['lm']['stage1_steps'] + v['stage2_steps']} steps)" if "stage2_steps" in v else ""
             for name, v in result["variants"].items()}  # fmt: skip
    for name, v in result["variants"].items():
        minutes = sum(v["train"]["stage_seconds"].values()) / 60
        rows.append((f"ReMoGPT, {name}{steps[name]}", v["final"]["t2m"]["ReMoGPT"], v["final"]["m2t"]["ReMoGPT"],
                     minutes))  # fmt: skip
        if "final_rerank" in v:
            n = v["final_rerank"]["rerank_candidates"]
            judge = JUDGES[v["final_rerank"].get("rerank_score") or "retriever"]  # older results: the retriever
            rows.append((f"ReMoGPT, {name}{steps[name]}, best of {n} by {judge}",
                         v["final_rerank"]["t2m"]["ReMoGPT"], None, minutes))  # fmt: skip

    def cell(row: dict | None, key: str, digits: int) -> str:  # a row may lack a metric (real captions: BLEU)
        return "" if row is None or row.get(key) is None else f"{row[key]:.{digits}f}"

    for label, t, m, minutes in rows:
        cells = [
            cell(t, "top1", 3),
            cell(t, "top3", 3),
            cell(t, "FID", 2),
            cell(t, "MMDist", 2),
            cell(m, "BLEU@4", 1),
            cell(m, "CIDEr", 1),
            cell(m, "top1", 3),
            f"{minutes:.1f}" if minutes else "",
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Learning curves (stage-2 snapshots, {CURVE_PROMPTS} test prompts, 1 repeat):", "",
              "| variant | step | R-Top1 | FID | BLEU@4 | CIDEr |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, v in result["variants"].items():
        for p in v["curve"]:
            t, m = p["t2m"]["ReMoGPT"], p["m2t"]["ReMoGPT"]
            lines.append(f"| {name} | {p['step']} | {t['top1']:.3f} | {t['FID']:.2f} | {m['BLEU@4']:.1f} | "
                         f"{m['CIDEr']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    from remogpt.lm.train import prepare_codes
    from remogpt.workers import worker_pool

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("runs/lm_quality/demo_seed0"),
                        help="a run whose retriever (and cached retrievals) the variants use")  # fmt: skip
    parser.add_argument("--data", type=Path, default=Path("runs/lm_quality/data"))
    parser.add_argument("--evaluator", type=Path, default=Path("runs/lm_quality/evaluator"))
    parser.add_argument("--work", type=Path, default=Path("runs/lm_long"))
    parser.add_argument("--tokenizer-steps", type=int, default=4000)
    parser.add_argument("--stage1", type=int, default=3000)
    parser.add_argument("--stage2", type=int, default=4000)
    parser.add_argument("--variants", nargs="+", default=["none:none:0", "both:both:0"],
                        help="NAME:MODALITY:GOLD_RATE[:STAGE2_STEPS], at most 2 (one per core); "
                             "STAGE2_STEPS defaults to --stage2")  # fmt: skip
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rerank", type=int, default=8, help="also score text→motion with every motion the best of N samples (1: not)"
    )
    parser.add_argument("--rerank-by", default="both", choices=RERANK_SCORES,
                        help="who picks the best of N")  # fmt: skip
    parser.add_argument("--lm", nargs="*", default=[], metavar="KEY=VALUE",
                        help="fields of the tiny LM preset to change, e.g. d_model=256 d_ff=1024")  # fmt: skip
    parser.add_argument("--out", default="lm_long", help="results name: benchmarks/results/OUT.json and .md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    overrides = _lm_overrides(args.lm)
    variants = {}
    for spec in args.variants:
        name, modality, gold, *stage2 = spec.split(":")
        variants[name] = (modality, float(gold), int(stage2[0]) if stage2 else args.stage2)

    print(f"tokenizer, {args.tokenizer_steps} steps …", flush=True)
    tokenizer, tok_seconds = _tokenizer(args.work, args.data, args.tokenizer_steps, args.seed)
    prepare_codes(tokenizer, args.data, args.work / "codes")
    print(f"stage 1 (no context, shared), {args.stage1} steps on both cores …", flush=True)
    stage1, stage1_seconds = _stage1(args.work, args.source, tokenizer, args.work / "codes", args.data, args.stage1,
                                     args.seed, overrides)  # fmt: skip
    runs = {name: _prepare(args.work, name, args.source, tokenizer, args.work / "codes") for name in variants}
    for run in runs.values():  # the shared stage 1 and its vocabulary, unless the variant has them
        for part in ("vocabulary", "stage1/model"):
            if not (run / "lm" / part).exists():
                shutil.copytree(stage1 / part, run / "lm" / part)
    print(f"stage 2 of {', '.join(variants)} side by side (one core each) …", flush=True)
    with worker_pool(len(variants)) as pool:
        futures = {name: pool.submit(_train_variant, str(runs[name]), str(args.data), modality, gold, args.stage1,
                                     stage2, args.every, args.seed, overrides)
                   for name, (modality, gold, stage2) in variants.items()}  # fmt: skip
        trained = {name: f.result() for name, f in futures.items()}
    for t in trained.values():  # stage 1 ran once, on two cores, for every variant
        t["stage_seconds"] = {"stage1": stage1_seconds, **t["stage_seconds"]}

    result: dict[str, Any] = {
        "benchmark": "lm_long",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "source": str(args.source),
        "tokenizer": {"steps": args.tokenizer_steps, "seconds": tok_seconds, "preset": "tiny"},
        "lm": {
            "overrides": overrides,
            "stage1_steps": args.stage1,
            "stage1_threads": 2,
            "stage1_seconds": stage1_seconds,
            "batch_size": 16,
            "stage2_threads_per_variant": 1,
        },
        "repeats": args.repeats,
        "seed": args.seed,
        "variants": {},
    }
    for name, (modality, gold, stage2) in variants.items():
        run = runs[name]
        curve = []
        for step in range(args.every, stage2, args.every):
            snapshot = run / "lm" / "stage2" / "snapshots" / f"step_{step}"
            scores = score(run, snapshot, args.data, args.evaluator, CURVE_PROMPTS, baselines=False)
            curve.append({"step": args.stage1 + step, **scores})
            print(f"{name} step {args.stage1 + step}: R-Top1 {scores['t2m']['ReMoGPT']['top1']:.3f} "
                  f"FID {scores['t2m']['ReMoGPT']['FID']:.2f} CIDEr {scores['m2t']['ReMoGPT']['CIDEr']:.1f}",
                  flush=True)  # fmt: skip
        print(f"scoring {name} on the whole test split …", flush=True)
        first = "baselines" not in result  # the reference rows are the same for every variant: scored once
        final = score(run, None, args.data, args.evaluator, None, baselines=first, repeats=args.repeats)
        final_point = {"step": args.stage1 + stage2, **{k: final[k] for k in ("t2m", "m2t", "malformed_fraction")}}
        if first:
            result["baselines"] = {task: {row: v for row, v in final[task].items() if row != "ReMoGPT"}
                                   for task in ("t2m", "m2t")}  # fmt: skip
        result["variants"][name] = {"modality": modality, "gold_rate": gold, "stage2_steps": stage2,
                                    "train": trained[name],
                                    "final": final, "curve": [*curve, final_point]}  # fmt: skip
        if args.rerank > 1:
            print(f"scoring {name}, best of {args.rerank} by {args.rerank_by}, on the whole test split …", flush=True)
            best = score(run, None, args.data, args.evaluator, None, baselines=False, repeats=args.repeats,
                         rerank=args.rerank, rerank_score=args.rerank_by, captions=False)  # fmt: skip
            result["variants"][name]["final_rerank"] = best
            print(f"{name}, best of {args.rerank}: R-Top1 {best['t2m']['ReMoGPT']['top1']:.3f} "
                  f"FID {best['t2m']['ReMoGPT']['FID']:.2f}", flush=True)  # fmt: skip
        t, m = final["t2m"]["ReMoGPT"], final["m2t"]["ReMoGPT"]
        print(f"{name}: R-Top1 {t['top1']:.3f} FID {t['FID']:.2f} | BLEU@4 {m['BLEU@4']:.1f} CIDEr {m['CIDEr']:.1f}",
              flush=True)  # fmt: skip
    write_results(args.out, result, _markdown(result))


if __name__ == "__main__":
    main()
