"""Tiny HumanML3D-layout folders for tests, made from smooth random motions through the real pipeline."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from remogpt.motion import HUMANML3D, axis_angle_to_quaternion, forward_kinematics, process_joints


def random_motion(frames: int, seed: int) -> np.ndarray:
    """Raw joints (frames, 22, 3): every joint swings, the root walks forward and turns a little."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, frames / 20.0, frames)[:, None, None]
    axis_angle = rng.uniform(0.05, 0.4, (1, 22, 3)) * np.sin(
        2 * np.pi * rng.uniform(0.3, 1.5, (1, 22, 3)) * t + rng.uniform(0, 6.3, (1, 22, 3))
    )
    axis_angle[:, 0] = 0
    axis_angle[:, 0, 1] = rng.uniform(-0.3, 0.3) * t[:, 0, 0]
    speed = rng.uniform(0.0, 1.2)
    root = np.stack([np.zeros(frames), np.full(frames, 0.95), speed * t[:, 0, 0]], -1)
    joints = forward_kinematics(
        axis_angle_to_quaternion(torch.from_numpy(axis_angle)),
        torch.from_numpy(root),
        torch.from_numpy(HUMANML3D.offsets()),
        HUMANML3D.parents,
    ).numpy()
    return joints


def write_clip(root: Path, clip_id: str, frames: int, seed: int, captions: list[str]) -> np.ndarray:
    feats, joints = process_joints(random_motion(frames, seed))
    (root / "new_joint_vecs").mkdir(parents=True, exist_ok=True)
    (root / "new_joints").mkdir(parents=True, exist_ok=True)
    (root / "texts").mkdir(parents=True, exist_ok=True)
    np.save(root / "new_joint_vecs" / f"{clip_id}.npy", feats.astype(np.float32))
    np.save(root / "new_joints" / f"{clip_id}.npy", joints.astype(np.float32))
    (root / "texts" / f"{clip_id}.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    return feats


def make_folder(root: Path, n_train: int = 6, n_test: int = 3, frames: int = 63, with_stats: bool = False) -> Path:
    """A clean folder: ids 000000…, captions in the HumanML3D line format, split files."""
    root.mkdir(parents=True, exist_ok=True)
    ids = {"train": [], "val": [], "test": []}
    k = 0
    for split, n in (("train", n_train), ("val", 1), ("test", n_test)):
        for _ in range(n):
            clip_id = f"{k:06d}"
            caps = [
                f"a person walks forward number {k}#a/DET person/NOUN walk/VERB forward/ADV number/NOUN {k}/NUM"
                "#0.0#0.0",
                f"someone moves ahead {k}#someone/PRON move/VERB ahead/ADV {k}/NUM#0.0#0.0",
            ]
            write_clip(root, clip_id, frames + 4 * k, seed=k, captions=caps)
            ids[split].append(clip_id)
            k += 1
    for split, split_ids in ids.items():
        (root / f"{split}.txt").write_text("\n".join(split_ids) + "\n", encoding="utf-8")
    if with_stats:
        from remogpt.data import Normalizer, load_split

        clips = load_split(root, "train", HUMANML3D)
        Normalizer.for_folder(root, (c.features for c in clips))
    return root


def _micro_lm():  # imported lazily: factory is imported by tests that never need the LM stack
    from remogpt.lm import LMConfig
    from remogpt.training import TrainerConfig

    trainer = TrainerConfig(batch_size=16, accelerator="cpu", devices="1", progress_bar=False,
                            log_every_n_steps=5, checkpoint_every_n_steps=1000)  # fmt: skip
    return LMConfig(d_model=64, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=32,
                    text_vocab_size=400, stage1_steps=60, stage2_steps=60, lr=3e-3, stage2_lr=2e-3,
                    dropout_rate=0.0, trainer=trainer)  # fmt: skip


MICRO_LM = _micro_lm()


def micro_tokenizer_config(data: Path, steps: int = 120):
    """The micro run's tokenizer training config (a 64-code VQ-VAE, 120 steps)."""
    from remogpt.tokenizer import TokenizerTrainConfig

    return TokenizerTrainConfig.from_dict({
        "model": {"width": 32, "code_dim": 16, "codebook_size": 64, "depth": 2},
        "data": {"root": str(data)}, "window": 32, "lr": 2e-3, "warmup_steps": 10,
        "lr_milestones": [], "val_clips": 0,
        "trainer": {"max_steps": steps, "batch_size": 16, "accelerator": "cpu", "devices": "1",
                    "progress_bar": False, "checkpoint_every_n_steps": 1000, "log_every_n_steps": 10},
    })  # fmt: skip


def train_micro_run(data: Path, run: Path) -> Path:
    """A micro tokenizer, retriever and LM trained on `data` into `run` (about half a minute on one thread)."""
    from remogpt.lm import train_lm
    from remogpt.retrieval import RetrieverConfig, train_retriever
    from remogpt.tokenizer import train_tokenizer

    train_tokenizer(micro_tokenizer_config(data), run)
    ret_cfg = RetrieverConfig.preset("tiny", data={"root": str(data)}, **{
        "motion": {"width": 32, "layers": 1, "heads": 2}, "latent_dim": 64, "lr": 2e-3, "warmup_steps": 10,
        "trainer": {"max_steps": 40, "batch_size": 32, "progress_bar": False, "accelerator": "cpu", "devices": "1",
                  "log_every_n_steps": 10, "checkpoint_every_n_steps": 40},
    })  # fmt: skip
    train_retriever(ret_cfg, run, progress=False)
    train_lm(MICRO_LM.replace(data={"root": str(data)}), run)
    return run


@dataclass
class CliResult:
    """What a command printed and returned (the fields of subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str

    def __iter__(self) -> Iterator[int | str]:  # code, out, err = run_cli(...)
        return iter((self.returncode, self.stdout, self.stderr))


def object_npy_bytes() -> bytes:
    """An .npy whose header declares Python objects (a pickle would follow), written by hand so that
    the test itself never pickles anything."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    return buf.getvalue() + b"\x80\x04not a real pickle."
