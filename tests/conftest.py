"""Shared fixtures: the real HumanML3D clip from ../shared when present, and tiny generated folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from factory import CliResult

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def real_clip() -> tuple[np.ndarray, np.ndarray]:
    """(features (170, 263), joints (170, 22, 3)) of HumanML3D clip 012314, as the dataset ships it."""
    vecs = SHARED_DATA / "humanml3d_012314_new_joint_vecs.npy"
    joints = SHARED_DATA / "humanml3d_012314_new_joints.npy"
    if not (vecs.is_file() and joints.is_file()):
        pytest.skip("the real HumanML3D clip in ../shared/data is not available")
    return np.load(vecs, allow_pickle=False), np.load(joints, allow_pickle=False)


@pytest.fixture(scope="session")
def embedded_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small embedded data set (120 clips + mirrors, seed 0), built once per test session."""
    from remogpt.data.synth import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("embedded") / "embedded_small"
    synthesize(out, SynthConfig(clips=120, seed=0), workers=1)
    return out


@pytest.fixture(scope="session")
def reference_skeleton_pose() -> np.ndarray:
    path = SHARED_DATA / "humanml3d_reference_skeleton.npy"
    if not path.is_file():
        pytest.skip("the reference skeleton in ../shared/data is not available")
    return np.load(path, allow_pickle=False)[:22]


@pytest.fixture(scope="session")
def micro_run(embedded_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro tokenizer, retriever and LM on the small embedded set, trained once per session.
    Shared: a test that changes files copies it first."""
    from factory import train_micro_run

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_micro_run(embedded_small, tmp_path_factory.mktemp("micro") / "run")
    finally:
        torch.set_num_threads(before)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, and much faster when the machine is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """`remogpt …` in this process (no interpreter start-up per call): exit code, stdout, stderr."""
    from remogpt.cli import main

    def run(*args: str | Path) -> CliResult:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
