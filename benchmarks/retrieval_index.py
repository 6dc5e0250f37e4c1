"""Retrieval-database search: exact numpy / torch matmul vs faiss flat vs faiss HNSW, in one run.

Usage: python benchmarks/retrieval_index.py [--sizes 10000 100000 1000000] [--dim 512]
Writes benchmarks/results/retrieval_index.json and .md and prints the table, and files the run under its key in
benchmarks/results/retrieval.json (retrieval.md gathers both benchmarks' tables).

For each database size (random unit-norm 512-d float32 vectors), every method answers the same
queries: latency p50/p99 of one query and of a batch of 32 (top-10 by inner product), build time,
memory per entry (faiss: serialized index size / entries) and recall@10 against exact search. Two
query sets: `random` (iid like the database: a worst case for graph indexes, every vector is about
equally far from every other) and `planted` (a database vector plus noise, cosine ≈ 0.9 to it, like
a real query with a clear match): for those, recall@1 of the planted vector is reported too.
Ratios are against numpy's exact search. HNSW uses the retrieval stage's defaults (M 32,
efSearch 128) except efConstruction (200 → 40 here). Even so, building HNSW over 1M 512-d vectors
takes ≈ 10 minutes on 2 cores (the whole run ≈ 15); `--hnsw-max 100000` skips that build (≈ 4 min).

`--real RUN` (default runs/table1/pl-s0, '' to skip) also measures the stage's own indexes
(VectorIndex flat / HNSW / IVF with their default settings) on a trained retriever's real
embeddings: the train split's motions and captions as databases, the test captions as queries.
`--sizes` with no values and `--update` reruns only that part and keeps the rest of the results.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
K = 10


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_db(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):  # in chunks: no float64 temporary of the whole thing
        out[s : s + 100_000] = rng.standard_normal((min(100_000, n - s), dim), dtype=np.float32)
    return unit(out)


def numpy_search(db: np.ndarray):
    def search(q: np.ndarray) -> np.ndarray:
        scores = q @ db.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        return np.take_along_axis(top, order, 1)

    return search


def torch_search(db: np.ndarray):
    import torch

    t = torch.from_numpy(db)

    def search(q: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.topk(torch.from_numpy(q) @ t.T, K, dim=1).indices.numpy()

    return search


def faiss_search(index: Any):
    def search(q: np.ndarray) -> np.ndarray:
        return index.search(q, K)[1]

    return search


def latency(search: Any, queries: np.ndarray, batch: int, repeats: int) -> dict[str, float]:
    times = []
    for r in range(repeats):
        q = np.ascontiguousarray(queries[(r * batch) % len(queries) :][:batch])
        if len(q) < batch:
            q = np.ascontiguousarray(queries[:batch])
        t = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - t)
    ms = 1000 * np.asarray(times)
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "n": repeats}


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(e.tolist())) / K for a, e in zip(found, exact, strict=True)]))


def run_size(n: int, dim: int, args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    t0 = time.perf_counter()
    db = make_db(n, dim, seed=n)
    rng = np.random.default_rng(1)
    random_q = unit(rng.standard_normal((args.queries, dim), dtype=np.float32))
    sources = rng.choice(n, args.queries, replace=False)
    noise = rng.standard_normal((args.queries, dim), dtype=np.float32) * np.float32(0.48 / np.sqrt(dim))
    planted_q = unit((db[sources] + noise).astype(np.float32))
    exact_random = numpy_search(db)(random_q)
    exact_planted = numpy_search(db)(planted_q)
    singles = args.single if n < 1_000_000 else max(10, args.single // 10)
    batches = args.batches if n < 1_000_000 else max(3, args.batches // 4)
    print(f"n={n}: data and exact answers in {time.perf_counter() - t0:.1f} s", flush=True)

    methods: dict[str, dict[str, Any]] = {}
    builders = {
        "numpy exact": lambda: (numpy_search(db), None),
        "torch exact": lambda: (torch_search(db), None),
        "faiss flat": lambda: _flat(db),
        "faiss HNSW": lambda: _hnsw(db, args),
    }
    for name, build in builders.items():
        if name == "faiss HNSW" and n > args.hnsw_max:
            methods[name] = {"skipped": f"n > --hnsw-max {args.hnsw_max}"}
            continue
        t = time.perf_counter()
        search, index = build()
        build_s = time.perf_counter() - t
        entry: dict[str, Any] = {"build_s": round(build_s, 2)}
        entry["single"] = latency(search, random_q, 1, singles)
        entry["batch32"] = latency(search, random_q, 32, batches)
        entry["recall@10_random"] = recall(search(random_q), exact_random)
        found = search(planted_q)
        entry["recall@10_planted"] = recall(found, exact_planted)
        entry["recall@1_planted_source"] = float(np.mean(found[:, 0] == sources))
        entry["bytes_per_entry"] = (len(faiss.serialize_index(index)) / n) if index is not None else db.itemsize * dim
        methods[name] = entry
        print(
            f"  {name}: build {build_s:.1f} s, single p50 {entry['single']['p50_ms']:.2f} ms, "
            f"batch p50 {entry['batch32']['p50_ms']:.2f} ms, recall@10 {entry['recall@10_random']:.3f}",
            flush=True,
        )
        del search, index
    base = methods["numpy exact"]
    for entry in methods.values():
        if "single" in entry:
            entry["speedup_single_vs_numpy"] = base["single"]["p50_ms"] / entry["single"]["p50_ms"]
            entry["speedup_batch32_vs_numpy"] = base["batch32"]["p50_ms"] / entry["batch32"]["p50_ms"]
    return {
        "n": n,
        "dim": dim,
        "queries": args.queries,
        "single_repeats": singles,
        "batch_repeats": batches,
        "methods": methods,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _flat(db: np.ndarray) -> tuple[Any, Any]:
    import faiss

    index = faiss.IndexFlatIP(db.shape[1])
    index.add(db)
    return faiss_search(index), index


def _hnsw(db: np.ndarray, args: argparse.Namespace) -> tuple[Any, Any]:
    import faiss

    index = faiss.IndexHNSWFlat(db.shape[1], args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    index.add(db)
    index.hnsw.efSearch = args.ef_search
    return faiss_search(index), index


def run_real(run: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The stage's own indexes (remogpt.retrieval.VectorIndex) on a trained retriever's real embeddings:
    the train split's motions and captions as databases, the test split's first captions as queries."""
    from remogpt.data import load_split
    from remogpt.retrieval import IndexConfig, Retriever, VectorIndex

    t0 = time.perf_counter()
    r = Retriever.from_pretrained(run, load_index=False)
    root = r.config.data.root
    train = load_split(root, "train")
    queries = r.embed_text([c.captions[0].text for c in load_split(root, "test")])
    databases = {
        "motions (t→m)": r.embed_motion([c.features for c in train], warn=False),
        "captions (t→t)": r.embed_text([cap.text for c in train for cap in c.captions]),
    }
    out: dict[str, Any] = {"run": str(run), "queries": len(queries), "dim": int(queries.shape[1]), "databases": {}}
    for name, db in databases.items():
        # Real databases hold duplicate captions (identical vectors): recall counts a found entry as right
        # when its score reaches the exact 10th best, so tie order does not matter.
        kth = np.sort(queries @ db.T, axis=1)[:, -K]

        def tie_recall(found: np.ndarray, db: np.ndarray = db, kth: np.ndarray = kth) -> float:
            scores = np.einsum("qd,qkd->qk", queries, db[found])
            return float(np.mean((scores >= kth[:, None] - 1e-5).sum(1) / K))

        rows: dict[str, Any] = {}
        for kind, cfg in (
            ("flat", IndexConfig(kind="flat")),
            ("hnsw", IndexConfig(kind="hnsw")),  # the stage's defaults: M 32, efConstruction 200, efSearch 128
            ("ivf", IndexConfig(kind="ivf")),
        ):
            t = time.perf_counter()
            index = VectorIndex.build(db, cfg)
            build_s = time.perf_counter() - t
            search = faiss_search(index.index)
            rows[kind] = {
                "build_s": round(build_s, 2),
                "single": latency(search, queries, 1, args.single),
                "batch32": latency(search, queries, 32, args.batches),
                "recall@10_test_queries": tie_recall(search(queries)),
                "recall@10_at_build": index.recall_at_10,  # what `remogpt index build` stores in the manifest
            }
        rows["numpy exact"] = {
            "single": latency(numpy_search(db), queries, 1, args.single),
            "batch32": latency(numpy_search(db), queries, 32, args.batches),
        }
        out["databases"][name] = {"entries": len(db), "methods": rows}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"real embeddings of {run}: {out['seconds']} s", flush=True)
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Retrieval index: exact vs approximate search",
        "",
        f"{report['dim']}-d random unit vectors, top-{K}, {report['threads']} threads; latency p50 / p99 in ms; "
        "speedup = numpy p50 / method p50; recall@10 against exact search.",
        "",
        "| entries | method | build s | 1 query p50 / p99 | speedup | batch 32 p50 / p99 | speedup | "
        "recall@10 random q. | recall@10 planted q. | planted found@1 | bytes/entry |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in report["sizes"]:
        for name, e in size["methods"].items():
            if "skipped" in e:
                lines.append(f"| {size['n']:,} | {name} | skipped ({e['skipped']}) |||||||||")
                continue
            lines.append(
                f"| {size['n']:,} | {name} | {e['build_s']:.1f} "
                f"| {e['single']['p50_ms']:.2f} / {e['single']['p99_ms']:.2f} "
                f"| {e['speedup_single_vs_numpy']:.2f}× | {e['batch32']['p50_ms']:.1f} / {e['batch32']['p99_ms']:.1f} "
                f"| {e['speedup_batch32_vs_numpy']:.2f}× | {e['recall@10_random']:.3f} | {e['recall@10_planted']:.3f} "
                f"| {e['recall@1_planted_source']:.3f} | {e['bytes_per_entry']:.0f} |"
            )
    lines += ["", f"Total run time {report['seconds']:.0f} s on {report['machine']}."]
    real = report.get("real")
    if real:
        lines += [
            "",
            f"## The stage's indexes on real PL-TMR embeddings ({real['run']})",
            "",
            f"{real['dim']}-d; queries: the {real['queries']} test captions; recall@10 against exact search.",
            "",
            "| database | entries | index | build s | 1 query p50 ms | batch 32 p50 ms | recall@10 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, db in real["databases"].items():
            for kind, e in db["methods"].items():
                rec = f"{e['recall@10_test_queries']:.3f}" if "recall@10_test_queries" in e else "1 (exact)"
                build = f"{e['build_s']:.2f}" if "build_s" in e else "–"
                lines.append(
                    f"| {name} | {db['entries']:,} | {kind} | {build} | {e['single']['p50_ms']:.2f} | "
                    f"{e['batch32']['p50_ms']:.2f} | {rec} |"
                )
    return "\n".join(lines) + "\n"


def merge_summary(section: str, data: dict[str, Any]) -> None:
    """Also file this run under `section` in benchmarks/results/retrieval.json, and rebuild retrieval.md
    from the per-benchmark markdown files (Table 1 and the index benchmark write separately)."""
    summary_path = RESULTS / "retrieval.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    summary[section] = data
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    parts = sorted(RESULTS.glob("retrieval_*.md"), key=lambda p: (p.stem != "retrieval_table1", p.stem))
    text = "\n".join(p.read_text(encoding="utf-8") for p in parts)
    (RESULTS / "retrieval.md").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200, help="queries for recall (and latency draws)")
    parser.add_argument("--single", type=int, default=200, help="single-query repeats (÷10 at 1M)")
    parser.add_argument("--batches", type=int, default=20, help="batch-of-32 repeats (÷4 at 1M)")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="skip HNSW above this size")
    parser.add_argument("--real", default="runs/table1/pl-s0", help="a trained retriever run ('' to skip)")
    parser.add_argument("--update", action="store_true", help="keep the previous results' sections not rerun")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval_index")
    args = parser.parse_args()

    import faiss
    import torch

    t0 = time.perf_counter()
    previous = {}
    if args.update and args.out.with_suffix(".json").is_file():
        previous = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
    sizes = [run_size(n, args.dim, args) for n in args.sizes]
    real = run_real(Path(args.real), args) if args.real else previous.get("real")
    if not args.sizes and previous:
        sizes = previous.get("sizes", [])
    report = {
        "dim": args.dim,
        "k": K,
        "threads": {"torch": torch.get_num_threads(), "faiss": faiss.omp_get_max_threads()},
        "hnsw": {"M": args.hnsw_m, "efConstruction": args.ef_construction, "efSearch": args.ef_search},
        "sizes": sizes,
        "real": real,
        "seconds": round(time.perf_counter() - t0, 1) if args.sizes else previous.get("seconds", 0.0),
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}, "
        f"faiss {faiss.__version__}, torch {torch.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    if args.out.parent.resolve() == RESULTS.resolve():
        merge_summary(args.out.stem.removeprefix("retrieval_"), report)
    print(text)


if __name__ == "__main__":
    main()
