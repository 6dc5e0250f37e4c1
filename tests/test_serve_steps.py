"""The web app's text → motion answers in two steps: the 3D view, references and files first, the
video after (it takes seconds of drawing). Checked on the functions the page calls, without a browser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_the_3d_view_comes_before_the_video(micro_run: Path, tmp_path: Path):
    pytest.importorskip("gradio")
    from remogpt.serve import ServeConfig, _Session, _text_to_motion, _text_to_motion_video

    session = _Session(micro_run, ServeConfig(workdir=tmp_path, video_size=96))
    steps: list[str] = []
    progress = lambda share, desc="": steps.append(desc)  # noqa: E731
    temperature = float(session.model.cfg.temperature)
    glb, table, files, pending = _text_to_motion(session, "a person walks forward", 1, 0, temperature, 1, progress)
    folder = Path(pending["folder"])
    assert Path(glb).is_file() and Path(glb).read_bytes()[:4] == b"glTF" and not (folder / "motion.mp4").exists()
    assert table and {Path(f).suffix for f in files} == {".npy", ".bvh", ".glb"}
    assert pending["count"] == 1 + len(table) and pending["titles"][0] == "generated 0"
    video = _text_to_motion_video(session, pending, progress)
    assert Path(video) == folder / "motion.mp4" and Path(video).stat().st_size > 1000
    joints = np.load(folder / "motion_0_joints.npy")
    expected = session.model.generate_motion(["a person walks forward"], seed=0)[0].joints
    np.testing.assert_allclose(joints, expected, atol=1e-5)
    assert _text_to_motion_video(session, None, progress) is None  # a failed first step: no video
