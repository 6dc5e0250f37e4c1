"""The command line as a user meets it: render, demo, help, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from factory import random_motion
from remogpt.demo import run_demo
from remogpt.motion import process_joints


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "remogpt", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_help_lists_the_commands(run_cli):
    out = cli("--help")  # the console entry point itself, in a process of its own
    assert out.returncode == 0
    for command in ("data", "render", "demo", "generate", "caption", "retrieve", "train", "eval"):
        assert command in out.stdout
    for sub in (("data", "check", "--help"), ("data", "synth", "--help"), ("render", "--help"), ("demo", "--help")):
        assert run_cli(*sub).returncode == 0


def test_render_features_joints_grid_and_still(tmp_path: Path, run_cli):
    feats, joints = process_joints(random_motion(41, seed=1))
    np.save(tmp_path / "f.npy", feats.astype(np.float32))
    np.save(tmp_path / "j.npy", joints.astype(np.float32))
    one = run_cli("render", str(tmp_path / "f.npy"), "--out", str(tmp_path / "one.mp4"), "--caption", "a person walks")
    assert one.returncode == 0, one.stderr
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "one.mp4"))
    meta = next(reader)
    assert sum(1 for _ in reader) == 40 and meta["fps"] == 20.0
    grid = run_cli("render", str(tmp_path / "f.npy"), str(tmp_path / "j.npy"), "--out", str(tmp_path / "grid.gif"))
    assert grid.returncode == 0, grid.stderr
    assert (tmp_path / "grid.gif").stat().st_size > 0
    still = run_cli("render", str(tmp_path / "j.npy"), "--out", str(tmp_path / "s.png"))
    assert still.returncode == 0 and (tmp_path / "s.png").stat().st_size > 0


def test_render_bad_input_is_one_line(tmp_path: Path, run_cli):
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    np.save(tmp_path / "wrong.npy", np.zeros((10, 7), np.float32))
    np.save(tmp_path / "good.npy", process_joints(random_motion(41, seed=2))[0].astype(np.float32))
    for args, expected in (
        (("render", str(tmp_path / "missing.npy")), "file not found"),
        (("render", str(tmp_path / "bad.npy")), "not a .npy file"),
        (("render", str(tmp_path / "wrong.npy"), "--out", str(tmp_path / "w.mp4")), "wrong.npy: 7 feature dims"),
        (("render", str(tmp_path / "good.npy"), "--out", str(tmp_path / "w.avi")), ".avi' (use .mp4, .gif, .png)"),
    ):
        out = run_cli(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("error:") and expected in out.stderr and "Traceback" not in out.stderr


def test_demo_end_to_end_and_cached(tmp_path: Path):
    """The whole main job with micro budgets: data, three trained stages, generation, captions, videos;
    the second run reuses every stage."""
    from remogpt.demo import DemoConfig

    budget = DemoConfig(tokenizer_steps=20, retriever_steps=10, lm_stage1_steps=10, lm_stage2_steps=10,
                        judge_steps=10, judge_generated_clips=10, judge_selection_clips=10, eval_prompts=4,
                        examples=2)  # fmt: skip
    lines: list[str] = []
    first = run_demo(out=tmp_path / "demo", data=tmp_path / "data", clips=40, workers=1, config=budget,
                     log=lines.append)  # fmt: skip
    assert not first.data_reused and first.summary["check_ok"] and first.reused_stages == []
    for video in first.videos:
        assert video.is_file() and video.stat().st_size > 1000
    assert len(first.videos) == 1 + 2 + 1 + 1  # the new sentence, two test prompts, the captioned clips, the GIF
    # The README's preview: an animated GIF read back by Pillow, frames that move, small enough to commit.
    from PIL import Image, ImageSequence

    gif = tmp_path / "demo" / "preview.gif"
    assert first.videos[-1] == gif and gif.stat().st_size < 1_000_000
    with Image.open(gif) as image:
        frames = [np.asarray(f.convert("RGB"), dtype=np.int16) for f in ImageSequence.Iterator(image)]
    assert len(frames) >= 10 and frames[0].shape[1] >= 2 * frames[0].shape[0]  # side by side
    assert np.abs(frames[0] - frames[len(frames) // 2]).mean() > 0.1  # it moves
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    results = summary["results"]
    assert results["prompts"] == 4 and 0 <= results["t2m_R1_generated"] <= 1
    # Both copies a sceptic would name: text→motion retrieval's top-1 and the nearest caption's motion.
    assert all(0 <= results[k] <= 1 for k in ("t2m_R1_retrieved_copy", "t2m_R1_retrieved_copy_t2t"))
    assert any("top-1 retrieved motion text→motion" in line and "/ text→text" in line for line in lines)
    assert set(results["m2t_generated"]) >= {"BLEU@4", "ROUGE_L", "CIDEr"}
    # What the words say: the copy rate and the judge's attribute accuracy of every row, on the test prompts.
    words = results["words"]["test"]
    assert 0 <= words["copy_rate"]["identical"] <= words["copy_rate"]["same_offset"] <= 1
    assert set(words["attributes"]) >= {"generated", "real", "real_roundtrip", "copy_t2m", "copy_t2t"}
    judge = json.loads((tmp_path / "data-judge" / "manifest.json").read_text())
    if judge["extra"]["scored"]:
        assert all(0 <= v["all_correct"] <= v["attributes"] <= 1 for v in words["attributes"].values())
    else:  # a 10-step judge reads no attribute well enough on val to be trusted: nothing is scored, not 0 %
        assert all(v["attributes"] is None for v in words["attributes"].values())
    assert any("attributes found, 4 test prompts" in line for line in lines)
    assert any("copy rate, test prompts" in line for line in lines)
    assert [isinstance(e["generated"], str) for e in summary["caption_examples"]] == [True, True]
    # The phases follow one another, so they add up to the total that the last line prints.
    phases = {k: v for k, v in summary["seconds"].items() if k != "total"}
    assert abs(sum(phases.values()) - summary["seconds"]["total"]) < 0.1, summary["seconds"]
    assert f"done in {first.seconds:.0f} s" in lines[-1] and abs(first.seconds - summary["seconds"]["total"]) < 0.01
    for stage in ("tokenizer", "retriever", "lm"):
        assert (tmp_path / "demo" / stage / "manifest.json").is_file()
    assert any("data check: OK" in line for line in lines) and any("R@1 among 4" in line for line in lines)
    # On two cores the tokenizer trained beside the retriever, one core each, then made the LM's motion
    # codes there; its lines come after the retriever's, and the LM stage used the codes.
    two = (os.cpu_count() or 1) >= 2
    assert any("trains on one core beside the retriever" in line for line in lines) == two
    assert any("clips made beside it" in line for line in lines) == two
    if two:
        order = [next(i for i, line in enumerate(lines) if key in line)
                 for key in ("[3/6]", "[2/6] motion tokenizer (VQ-VAE", "[4/6]")]  # fmt: skip
        assert order == sorted(order)
    assert json.loads((tmp_path / "demo" / "codes" / "index.json").read_text())["clips"]
    second = run_demo(out=tmp_path / "demo", data=tmp_path / "data", clips=40, workers=1, config=budget,
                      log=lines.append)  # fmt: skip
    assert second.data_reused and second.summary["data_hash"] == first.summary["data_hash"]
    assert second.reused_stages == ["tokenizer", "retriever", "lm", "generation"]
    assert second.summary["results"] == first.summary["results"]
    # A changed LM budget retrains the LM only (and shows its new generations).
    third = run_demo(out=tmp_path / "demo", data=tmp_path / "data", clips=40, workers=1,
                     config=budget.replace(lm_stage2_steps=12), log=lines.append)  # fmt: skip
    assert third.reused_stages == ["tokenizer", "retriever"]
    assert any("other settings" in line for line in lines)


def test_the_train_commands_chain_with_their_defaults(tmp_path: Path, run_cli, monkeypatch, one_thread):
    """train tokenizer → train retriever → index build → train lm → generate, no folder named: every
    command uses the same default run folder (budgets cut to a few steps)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMOGPT_CACHE_DIR", str(tmp_path / "cache"))
    cpu = ("--accelerator", "cpu")
    for args in (("data", "synth", "--clips", "30", "--workers", "1"),
                 ("train", "tokenizer", "--max-steps", "4", "--batch-size", "8", *cpu),
                 ("train", "retriever", "--max-steps", "2", "--batch-size", "8", *cpu),
                 ("index", "build"),
                 ("train", "lm", "--stage1-steps", "0", "--stage2-steps", "2", "--batch-size", "4", *cpu),
                 ("generate", "a person waves")):  # fmt: skip
        result = run_cli(*args)
        assert result.returncode == 0, (args, result.stderr[-2000:])
    run = tmp_path / "runs" / "demo"
    stages = [p.name for p in sorted(run.iterdir()) if (p / "manifest.json").is_file()]
    assert stages == ["lm", "retriever", "tokenizer"]
    assert (tmp_path / "out" / "generation.json").is_file() and (tmp_path / "out" / "motion.mp4").is_file()
