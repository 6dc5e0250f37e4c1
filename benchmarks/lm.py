"""ReMoGPT inference and training speed on the CPU: AITS at batch 1 and 32 with the share spent in
retrieval, motion tokens/s, captions/s, and the training throughput of each stage.

Usage: python benchmarks/lm.py [--run runs/demo] [--data data/embedded] [--prompts 64]
Also times one prompt end to end as a user meets it: `remogpt generate "…" --no-video` as a whole
process (Python start, imports, loading the run, retrieval, sampling, decoding, writing files).
Writes benchmarks/results/lm.json and prints a table.

AITS (average inference time per sentence, the paper's Table 3 measure) = wall time of
`generate_motion` for N test prompts / N, retrieval, sampling and VQ-VAE decoding included (joint
recovery too). Retrieval time is measured inside the same calls. Training throughput is read from
the run's manifest (samples/s of each stage as it trained).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remogpt.artifacts import read_manifest
from remogpt.data import load_split
from remogpt.lm import ReMoGPT

RESULTS = Path(__file__).resolve().parent / "results"


def _timed_generation(model: ReMoGPT, prompts: list[str], batch: int, rerank: int = 1,
                      judge: str = "retriever") -> dict[str, Any]:  # fmt: skip
    """`batch` prompts per call; with `rerank` N each motion is the best of N samples by `judge` (N× the
    sequences; the captioner judge adds one teacher-forced pass over the candidates)."""
    model.timings.clear()
    model.stats.clear()
    codes = 0
    t0 = time.perf_counter()
    for start in range(0, len(prompts), batch):
        out = model.generate_motion(prompts[start : start + batch], seed=start, batch_size=batch * rerank,
                                    rerank=rerank, rerank_score=judge)  # fmt: skip
        codes += sum(len(g.codes) for g in out)
    seconds = time.perf_counter() - t0
    return {
        "batch": batch,
        "rerank": rerank,
        "judge": judge if rerank > 1 else None,
        "prompts": len(prompts),
        "rerank_share": model.timings["rerank_s"] / seconds,
        "AITS_s": seconds / len(prompts),
        "retrieval_share": model.timings["retrieval_s"] / seconds,
        "motion_tokens_per_s": codes / seconds,
        "invalid_sequences": sum(v for k, v in model.stats.items() if k.startswith("invalid")),
        "sequences": model.stats["sequences"],
    }


def _timed_captioning(model: ReMoGPT, motions: list[np.ndarray], batch: int) -> dict[str, float]:
    model.timings.clear()
    t0 = time.perf_counter()
    for start in range(0, len(motions), batch):
        model.caption(motions[start : start + batch], batch_size=batch)
    seconds = time.perf_counter() - t0
    return {"batch": batch, "motions": len(motions), "captions_per_s": len(motions) / seconds,
            "retrieval_share": model.timings["retrieval_s"] / seconds}  # fmt: skip


def _cli_latency(run: Path, data: Path, repeats: int = 3) -> dict[str, float]:
    """`remogpt generate "…" --no-video` as a user runs it: whole-process wall time, median of `repeats`."""
    import statistics
    import subprocess
    import sys
    import tempfile

    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            t0 = time.perf_counter()
            command = [str(Path(sys.executable).with_name("remogpt")), "generate", "a person jumps twice then waves",
                       "--run", str(run), "--out", tmp, "--no-video"]  # fmt: skip
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "runs": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "lm.json")
    args = parser.parse_args()

    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = ReMoGPT.from_pretrained(args.run, data_root=args.data)
    load_seconds = time.perf_counter() - t0
    test = load_split(args.data, "test")
    rng = np.random.default_rng(0)
    picks = [test[i] for i in rng.choice(len(test), size=min(args.prompts, len(test)), replace=False)]
    prompts = [c.captions[0].text for c in picks]
    motions = [c.features for c in picks]
    model.generate_motion(prompts[:2])  # warm-up (thread pools, lazy imports)

    t2m = [
        _timed_generation(model, prompts[:16], 1),
        _timed_generation(model, prompts, 32),
        _timed_generation(model, prompts[:16], 1, rerank=8),  # best of 8: the motion tokens/s count the kept ones
        _timed_generation(model, prompts[:16], 1, rerank=8, judge="both"),
    ]
    m2t = [_timed_captioning(model, motions[:16], 1), _timed_captioning(model, motions, 32)]
    cli = _cli_latency(args.run, args.data)
    manifest = read_manifest(args.run / "lm")
    result = {
        "run": str(args.run),
        "parameters": model.parameters_count,
        "config": {k: manifest.config[k] for k in ("d_model", "num_layers", "num_decoder_layers", "d_ff")},
        "retrieval": manifest.config["retrieval"],
        "text_to_motion": t2m,
        "motion_to_text": m2t,
        "load_seconds": load_seconds,
        "cli_generate_one_prompt": cli,
        "training_samples_per_second": manifest.extra.get("samples_per_second", {}),
        "training_stage_seconds": manifest.extra.get("stage_seconds", {}),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version()},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"ReMoGPT tiny ({result['parameters'] / 1e6:.1f}M parameters), {os.cpu_count()} CPU cores")
    print(f"{'task':<28}{'batch':>6}{'AITS / per item':>18}{'retrieval share':>17}{'throughput':>22}")
    for r in t2m:
        task = "text→motion" if r["rerank"] == 1 else f"t→m best of {r['rerank']} ({r['judge']})"
        print(f"{task:<28}{r['batch']:>6}{r['AITS_s']:>16.3f} s{100 * r['retrieval_share']:>16.1f}%"
              f"{r['motion_tokens_per_s']:>13.0f} tokens/s")  # fmt: skip
    for r in m2t:
        print(f"{'motion→text':<28}{r['batch']:>6}{1 / r['captions_per_s']:>16.3f} s"
              f"{100 * r['retrieval_share']:>16.1f}%{r['captions_per_s']:>11.1f} captions/s")  # fmt: skip
    print(f"loading the run (tokenizer, retriever + MiniLM + faiss, T5): {load_seconds:.1f} s in-process")
    print(
        f'`remogpt generate "…" --no-video`, whole process: median {cli["median_s"]:.1f} s '
        f"(min {cli['min_s']:.1f}, max {cli['max_s']:.1f}, {cli['runs']} runs)"
    )
    for stage, v in result["training_samples_per_second"].items():
        print(f"training {stage}: {v:.1f} samples/s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
