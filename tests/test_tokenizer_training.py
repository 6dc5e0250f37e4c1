"""Training the tokenizer (learning, resume, 2-process DDP through the CLI) and the cache of codes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from remogpt.data.folder import load_features
from remogpt.tokenizer import (
    MotionTokenizer,
    StaleCodesError,
    TokenizerError,
    TokenizerTrainConfig,
    load_codes,
    reconstruction_metrics,
    tokenize_folder,
    train_tokenizer,
)
from remogpt.tokenizer.train import load_clips

pytestmark = pytest.mark.usefixtures("one_thread")


def micro_config(root: Path, steps: int, **overrides: object) -> TokenizerTrainConfig:
    """A model small enough to train in seconds; one thread, no progress bar."""
    base: dict = {
        "model": {"width": 32, "code_dim": 16, "codebook_size": 64, "depth": 2},
        "data": {"root": str(root)},
        "window": 32,
        "lr": 2e-3,
        "warmup_steps": 10,
        "lr_milestones": [],
        "val_clips": 0,
        "trainer": {"max_steps": steps, "batch_size": 16, "accelerator": "cpu", "devices": "1",
                    "progress_bar": False, "checkpoint_every_n_steps": 1000, "log_every_n_steps": 10},
    }  # fmt: skip
    return TokenizerTrainConfig.preset("tiny", **base).replace(**overrides)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remogpt", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def trained(embedded_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 steps of the micro model on the small embedded set (a few seconds)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tok") / "run"
    cfg = micro_config(embedded_small, 150, trainer={"log_every_n_steps": 1})
    result = train_tokenizer(cfg, out)
    assert result.artifact == out / "tokenizer" and result.steps == 150
    return out


def test_training_reconstructs_held_out_clips_better_than_the_mean_pose(trained: Path, embedded_small: Path):
    tok = MotionTokenizer.from_pretrained(trained)
    _, clips = load_clips(embedded_small, "test")
    clips = [c[: len(c) - len(c) % 4] for c in clips]
    recon = reconstruction_metrics(clips, [tok.reconstruct(c).numpy() for c in clips], tok.normalizer)
    mean_pose = [np.broadcast_to(tok.normalizer.mean, c.shape).copy() for c in clips]
    baseline = reconstruction_metrics(clips, mean_pose, tok.normalizer)
    assert recon["feature_mae"] < 0.75 * baseline["feature_mae"], (recon, baseline)
    assert recon["mpjpe_aligned_mm"] < 0.85 * baseline["mpjpe_aligned_mm"], (recon, baseline)
    with (trained / "tokenizer" / "logs" / "version_0" / "metrics.csv").open() as fh:
        losses = [float(r["train/loss"]) for r in csv.DictReader(fh) if r.get("train/loss")]
    assert len(losses) == 150 and np.mean(losses[-10:]) < 0.8 * np.mean(losses[:5])  # the loss goes down
    manifest = json.loads((trained / "tokenizer" / "manifest.json").read_text())
    assert manifest["stage"] == "tokenizer" and manifest["extra"]["steps"] == 150 and manifest["data_hash"]
    codes = tok.encode(clips[0])
    assert len(codes) == len(clips[0]) // 4 and int(codes.min()) >= 0 and int(codes.max()) < 64


def test_training_with_the_motion_terms_logs_them_and_learns(embedded_small: Path, tmp_path: Path):
    torch.set_num_threads(1)
    model = {"width": 32, "code_dim": 16, "codebook_size": 64, "depth": 2, "heading_weight": 1.0,
             "aligned_joint_weight": 1.0, "extremity_weight": 1.0, "extremity_velocity_weight": 0.1,
             "foot_height_weight": 1.0}  # fmt: skip
    cfg = micro_config(embedded_small, 150, model=model, trainer={"log_every_n_steps": 1, "max_steps": 150})
    train_tokenizer(cfg, tmp_path / "run")
    with (tmp_path / "run" / "tokenizer" / "logs" / "version_0" / "metrics.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/loss")]
    for key in ("train/heading", "train/aligned_joint", "train/extremity", "train/foot_height"):
        values = [float(r[key]) for r in rows]  # the small set barely turns: small, finite
        assert len(values) == 150 and all(np.isfinite(values)) and max(values) < 0.5, key
    velocity = [float(r["train/extremity_velocity"]) for r in rows]  # m/s: falls as the model learns
    assert all(np.isfinite(velocity)) and np.mean(velocity[-20:]) < np.mean(velocity[:20]), velocity[::30]
    tok = MotionTokenizer.from_pretrained(tmp_path / "run")
    assert (tok.config.heading_weight, tok.config.aligned_joint_weight, tok.config.foot_height_weight) == (1, 1, 1)
    _, clips = load_clips(embedded_small, "test")
    clips = [c[: len(c) - len(c) % 4] for c in clips]
    recon = reconstruction_metrics(clips, [tok.reconstruct(c).numpy() for c in clips], tok.normalizer)
    mean_pose = [np.broadcast_to(tok.normalizer.mean, c.shape).copy() for c in clips]
    baseline = reconstruction_metrics(clips, mean_pose, tok.normalizer)
    assert recon["mpjpe_aligned_mm"] < 0.9 * baseline["mpjpe_aligned_mm"], (recon, baseline)  # 0.88 here


def test_resume_continues_the_step_count(embedded_small: Path, tmp_path: Path):
    out = tmp_path / "run"
    first = train_tokenizer(micro_config(embedded_small, 4), out)
    assert first.steps == 4
    with pytest.raises(TokenizerError, match="already holds a training run; continue it with --resume"):
        train_tokenizer(micro_config(embedded_small, 8), out)
    bigger = micro_config(embedded_small, 8, model={"codebook_size": 128})
    with pytest.raises(TokenizerError, match=r"does not fit this config.*codebook \(64, 16\) \(config \(128, 16\)\)"):
        train_tokenizer(bigger, out, resume=True)
    resumed = train_tokenizer(micro_config(embedded_small, 8), out, resume=True)
    assert resumed.steps == 8
    assert json.loads((out / "tokenizer" / "manifest.json").read_text())["extra"]["steps"] == 8
    logs = sorted(p.name for p in (out / "tokenizer" / "logs").iterdir())
    assert logs == ["version_0", "version_1"]  # each launch logs on its own


def test_ddp_two_processes_on_cpu_through_the_cli(embedded_small: Path, tmp_path: Path):
    config = tmp_path / "micro.yaml"
    micro_config(embedded_small, 3).to_yaml(config)
    out = tmp_path / "ddp"
    run = cli("train", "tokenizer", "--config", str(config), "--out", str(out), "--accelerator", "cpu",
              "--devices", "2", "--strategy", "ddp", "--max-steps", "3")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((out / "tokenizer" / "manifest.json").read_text())
    assert manifest["extra"]["world_size"] == 2 and manifest["extra"]["steps"] == 3
    tok = MotionTokenizer.from_pretrained(out)
    assert tok.codebook_size == 64 and len(tok.encode(np.zeros((8, 263), np.float32))) == 2
    assert "trained 3 steps" in run.stdout


def test_cached_codes_are_reused_and_invalidated(trained: Path, embedded_small: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(embedded_small, data)
    tok = MotionTokenizer.from_pretrained(trained)
    codes_dir = tmp_path / "codes"
    first = tokenize_folder(tok, data, codes_dir, batch_size=16)
    n_ids = len(set((data / "train.txt").read_text().split() + (data / "val.txt").read_text().split()
                    + (data / "test.txt").read_text().split()))  # fmt: skip
    assert not first.reused and first.clips == n_ids and not first.skipped
    codes = load_codes(codes_dir, tok)
    clip_id = sorted(codes)[5]
    features = load_features(data / "new_joint_vecs" / f"{clip_id}.npy")
    assert np.array_equal(codes[clip_id], tok.encode(features, crop=True).numpy())  # batched = one by one
    assert np.load(codes_dir / f"{clip_id}.npy", allow_pickle=False).dtype == np.int16
    stamp = (codes_dir / f"{clip_id}.npy").stat().st_mtime_ns
    again = tokenize_folder(tok, data, codes_dir)
    assert again.reused and (codes_dir / f"{clip_id}.npy").stat().st_mtime_ns == stamp

    other = MotionTokenizer.from_pretrained(trained)  # same weights, but another codebook → another fingerprint
    with torch.no_grad():
        other.vqvae.quantizer.codebook.mul_(1.5)
    with pytest.raises(StaleCodesError, match="run `remogpt tokenize` again"):
        load_codes(codes_dir, other)
    assert not tokenize_folder(other, data, codes_dir).reused
    assert load_codes(codes_dir, other).keys() == codes.keys()

    np.save(data / "new_joint_vecs" / f"{clip_id}.npy", features[:20])  # the data changed
    changed = tokenize_folder(other, data, codes_dir)
    assert not changed.reused and len(load_codes(codes_dir)[clip_id]) == 5


def test_tokenize_cli_caches_and_reports_errors_on_one_line(
    trained: Path, embedded_small: Path, tmp_path: Path, run_cli
):
    out = tmp_path / "codes"
    code, stdout, _ = run_cli("tokenize", str(embedded_small), "--tokenizer", str(trained / "tokenizer"),
                               "--out", str(out))  # fmt: skip
    assert code == 0 and stdout.startswith("encoded") and (out / "index.json").is_file()
    code, stdout, _ = run_cli("tokenize", str(embedded_small), "--tokenizer", str(trained), "--out", str(out))
    assert code == 0 and "reused" in stdout
    for args, expected in (
        (("tokenize", str(embedded_small), "--tokenizer", str(tmp_path / "nope")), "tokenizer folder not found"),
        (("tokenize", str(tmp_path / "nodata"), "--tokenizer", str(trained)), "data folder not found"),
        (("train", "tokenizer", "--data", str(embedded_small), "--out", str(tmp_path / "x"), "--resume"),
         "nothing to resume"),
        (("train", "tokenizer", "--data", str(embedded_small), "--out", str(trained)), "continue it with --resume"),
        (("data", "import-bvh", str(tmp_path / "missing.bvh")), "missing.bvh: file not found"),
    ):  # fmt: skip
        code, _, stderr = run_cli(*args)
        assert code == 2, (args, stderr)
        assert stderr.startswith("error:") and expected in stderr and stderr.count("\n") == 1, stderr


def test_a_data_mix_adds_the_other_folders_clips_with_their_repeat(embedded_small: Path, tmp_path: Path, run_cli):
    from factory import make_folder
    from remogpt.tokenizer.module import WindowDataset

    extra = make_folder(tmp_path / "extra", n_train=5, n_test=1, frames=64)
    ids, _ = load_clips(embedded_small, "train")
    lines: list[str] = []
    cfg = micro_config(embedded_small, 2).replace(mix=[{"root": str(extra), "repeat": 3}])
    result = train_tokenizer(cfg, tmp_path / "run", log=lines.append)
    assert result.train_clips == len(ids) + 5 * 3  # each mix clip gives three windows per epoch
    assert any(f"5 more training clips from {extra} (each 3× per epoch)" in m for m in lines)
    manifest = json.loads((tmp_path / "run" / "tokenizer" / "manifest.json").read_text())
    plain = train_tokenizer(micro_config(embedded_small, 2), tmp_path / "plain")
    assert manifest["data_hash"] != json.loads((plain.artifact / "manifest.json").read_text())["data_hash"]
    # The main folder's statistics normalise everything; the repeated clip's windows are drawn anew.
    feats = [np.random.default_rng(i).normal(size=(40, 263)).astype(np.float32) for i in range(2)]
    from remogpt.data.normalize import Normalizer

    norm = Normalizer(np.zeros(263, np.float32), np.ones(263, np.float32))
    once = WindowDataset(feats, norm, 16, seed=1)
    twice = WindowDataset(feats, norm, 16, seed=1, repeats=[1, 2])
    assert len(once) == 2 and len(twice) == 3
    assert torch.equal(once[0], twice[0]) and torch.equal(once[1], twice[1])  # no mix: the same windows as before
    assert not torch.equal(twice[1], twice[2])  # the second window of clip 1 starts elsewhere
    bad = run_cli("train", "tokenizer", "--data", embedded_small, "--out", tmp_path / "r3",
                  "--mix", f"{tmp_path / 'nope'}:2")  # fmt: skip
    assert bad.returncode == 2 and "is not a folder" in bad.stderr


def test_more_threads_at_a_fixed_step_gives_the_same_weights_however_long_it_waits(embedded_small: Path,
                                                                                   tmp_path: Path):  # fmt: skip
    """The demo's hand-off: the tokenizer beside the retriever switches to two threads at a fixed step,
    after waiting there for the retriever's core; how long it waits must not change what it learns."""
    import threading

    from safetensors.torch import load_file

    from remogpt.training import more_threads_at

    weights, waits = [], []
    for delay in (0.0, 2.0):
        freed = threading.Event()
        if delay == 0.0:
            freed.set()
        else:
            threading.Timer(delay, freed.set).start()
        handoff = more_threads_at(3, freed, threads=2)
        out = tmp_path / f"wait{delay}"
        train_tokenizer(micro_config(embedded_small, 6), out, callbacks=[handoff])
        assert handoff.switched_at == 3 and torch.get_num_threads() == 2
        torch.set_num_threads(1)
        waits.append(handoff.waited_s)
        weights.append(load_file(out / "tokenizer" / "model.safetensors"))
    assert waits[0] < 0.1 and waits[1] > 0.5  # it reached step 3 well before the event
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # Before the step, an event that is never set changes nothing.
    never = more_threads_at(100, threading.Event(), threads=2)
    train_tokenizer(micro_config(embedded_small, 4), tmp_path / "never", callbacks=[never])
    assert never.switched_at is None and torch.get_num_threads() == 1
