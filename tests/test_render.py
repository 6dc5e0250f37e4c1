"""Stick-figure rendering: files that play back, pictures that show what they should."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb

from remogpt.motion.features import MotionFormatError, features_to_joints, joints_to_features
from remogpt.motion.render import BONE_COLORS, render_frames, render_grid, render_motion, save_still
from remogpt.motion.skeleton import HUMANML3D, KIT

SIZE = (200, 200)


# ---------------------------------------------------------------------------------------------
# Synthetic motions
# ---------------------------------------------------------------------------------------------


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def walk(frames: int = 30, velocity: tuple[float, float, float] = (0.0, 0.0, 1.2), swing: float = 0.5) -> np.ndarray:
    """HumanML3D T-pose (reference offsets), legs swinging about X, root moving at `velocity` m/s.

    Starts over the origin facing +Z with the lowest joint on y=0, i.e. canonical.
    """
    offsets, parents = HUMANML3D.offsets(), HUMANML3D.parents
    out = np.zeros((frames, len(parents), 3))
    for t in range(frames):
        phase = 2 * np.pi * t / 20
        local = [np.eye(3)] * len(parents)
        local[1] = _rot_x(swing * np.sin(phase))  # left hip
        local[2] = _rot_x(-swing * np.sin(phase))  # right hip
        rot: list[np.ndarray] = [np.eye(3)] * len(parents)
        for j, p in enumerate(parents):
            if p < 0:
                rot[j] = local[j]
                continue
            out[t, j] = out[t, p] + rot[p] @ offsets[j]
            rot[j] = rot[p] @ local[j]
        out[t] += np.asarray(velocity) * t / HUMANML3D.fps
    out[..., 1] -= out[..., 1].min()
    return out


def tpose(frames: int = 12) -> np.ndarray:
    return walk(frames, velocity=(0.0, 0.0, 0.0), swing=0.0)


# ---------------------------------------------------------------------------------------------
# Pixel helpers
# ---------------------------------------------------------------------------------------------


def color_mask(images: np.ndarray, color: str, tol: int = 30) -> np.ndarray:
    rgb = np.round(np.asarray(to_rgb(color)) * 255).astype(int)
    return (np.abs(images[..., :3].astype(int) - rgb) <= tol).all(-1)


def bone_mask(images: np.ndarray) -> np.ndarray:
    return color_mask(images, BONE_COLORS["left"]) | color_mask(images, BONE_COLORS["right"])


def centroid_x(mask: np.ndarray) -> float:
    xs = np.nonzero(mask)[1]
    assert len(xs) > 0, "no pixels of the requested colour"
    return float(xs.mean())


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    assert len(xs) > 0, "no pixels of the requested colour"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def read_mp4(path: Path) -> tuple[dict, np.ndarray]:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = gen.__next__()
    width, height = meta["size"]
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in gen])
    return meta, frames


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------


def test_frames_have_size_and_show_the_figure_in_three_colours() -> None:
    frames = render_frames(walk(20), caption="a person walks forward", size=(240, 200))
    assert frames.shape == (20, 200, 240, 3) and frames.dtype == np.uint8
    for frame in frames:
        assert frame.astype(float).var() > 100.0
        for side in ("left", "right", "center"):
            assert color_mask(frame, BONE_COLORS[side]).sum() > 20, side


def test_frames_change_only_when_the_figure_moves() -> None:
    moving = render_frames(walk(20), size=SIZE, show_frame_counter=False)
    still = render_frames(tpose(8), size=SIZE, show_frame_counter=False)
    assert np.abs(moving[0].astype(int) - moving[5].astype(int)).mean() > 0.5
    # The legs themselves move (not just the floor): the figure's pixels differ.
    assert (bone_mask(moving[0]) != bone_mask(moving[5])).sum() > 50
    assert all(np.array_equal(still[0], f) for f in still[1:])


def test_figure_moving_to_plus_x_moves_right_in_the_image() -> None:
    # The camera is at +Z (in front) and +X; its right is the world's +X side, so with a static
    # camera a body walking sideways to +X must drift to the right of the image.
    motion = walk(30, velocity=(2.0, 0.0, 0.0), swing=0.2)
    frames = render_frames(motion, size=SIZE, camera="static", frames=[0, 15, 29], show_frame_counter=False)
    xs = [centroid_x(bone_mask(f)) for f in frames]
    assert xs[0] < xs[1] < xs[2]
    assert xs[2] - xs[0] > 0.2 * SIZE[0]


def test_view_is_from_the_front_not_mirrored_not_upside_down() -> None:
    frame = render_frames(tpose(2), size=(240, 240), frames=[0], show_frame_counter=False)[0]
    left, right, center = (color_mask(frame, BONE_COLORS[s]) for s in ("left", "right", "center"))
    # Facing the camera, the body's left (+X) is on the viewer's right.
    assert centroid_x(left) > centroid_x(right) + 10
    # Head (centre colour, top of the spine) above the shoulders and hips; feet at the bottom.
    assert bbox(center)[1] < min(bbox(left)[1], bbox(right)[1])
    assert max(bbox(left)[3], bbox(right)[3]) > bbox(center)[3]


def test_follow_camera_keeps_a_fast_walker_in_view_without_jitter() -> None:
    # 3 m/s diagonally towards the camera's side: 4.5 m in 30 frames.
    motion = walk(30, velocity=(2.0, 0.0, 2.2))
    frames = render_frames(motion, size=SIZE, show_frame_counter=False)
    centres = []
    for frame in frames:
        x0, y0, x1, y1 = bbox(bone_mask(frame))
        assert x0 > 2 and y0 > 2 and x1 < SIZE[0] - 3 and y1 < SIZE[1] - 3
        centres.append(centroid_x(bone_mask(frame)))
    # Constant velocity: the smoothed camera tracks it exactly, the figure stays put.
    assert np.ptp(centres) < 0.1 * SIZE[0]


def test_equal_scale_on_both_axes() -> None:
    # A stretched projection would change the figure's aspect ratio with the frame's.
    aspects = []
    for size in [(300, 200), (200, 300), (240, 240)]:
        frame = render_frames(tpose(2), size=size, frames=[0], show_frame_counter=False)[0]
        x0, y0, x1, y1 = bbox(bone_mask(frame))
        aspects.append((x1 - x0) / (y1 - y0))
    assert max(aspects) / min(aspects) < 1.1


def test_features_render_like_their_joints_and_torch_like_numpy() -> None:
    features = joints_to_features(walk(25))
    from_features = render_frames(features, caption="walk", size=SIZE)
    from_joints = render_frames(features_to_joints(features), caption="walk", size=SIZE)
    assert from_features.shape == (24, SIZE[1], SIZE[0], 3)
    assert np.array_equal(from_features, from_joints)
    from_torch = render_frames(torch.from_numpy(features), caption="walk", size=SIZE, frames=[0, 23])
    assert np.array_equal(from_torch, from_joints[[0, 23]])


def test_long_caption_wraps_inside_the_frame() -> None:
    caption = " ".join(["a person walks forward slowly, then turns around and waves"] * 4)
    frame = render_frames(walk(3), caption=caption, title="generated", size=(240, 240), frames=[0])[0]
    text = (frame < 45).all(-1)  # the header text is near-black; nothing else in a frame is
    rows = np.nonzero(text.any(1))[0]
    bands = 1 + int((np.diff(rows) > 1).sum())
    assert bands >= 5  # title + at least four caption lines
    assert not text[:, :3].any() and not text[:, -3:].any()  # nothing runs off the sides
    assert rows.max() < bbox(bone_mask(frame))[1]  # the header sits above the figure
    assert bone_mask(frame).sum() > 50


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def test_mp4_plays_back_with_frame_count_size_and_fps(tmp_path: Path) -> None:
    motion = walk(24)
    out = render_motion(motion, tmp_path / "sub" / "walk.mp4", caption="a person walks", size=(240, 200))
    assert out == tmp_path / "sub" / "walk.mp4" and out.stat().st_size > 1000
    assert not [p for p in out.parent.iterdir() if p != out]  # no temporary left behind
    meta, frames = read_mp4(out)
    assert meta["size"] == (240, 200)
    assert meta["fps"] == pytest.approx(HUMANML3D.fps)
    assert len(frames) == 24
    expected = render_frames(motion, caption="a person walks", size=(240, 200), frames=[0, 23])
    assert np.abs(frames[[0, 23]].astype(int) - expected.astype(int)).mean() < 6.0


def test_mp4_of_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    out = render_motion(tpose(5), tmp_path / "odd.mp4", size=(201, 151), fps=10)
    meta, frames = read_mp4(out)
    assert meta["size"] == (202, 152) and len(frames) == 5
    assert meta["fps"] == pytest.approx(10.0)


def test_gif_plays_back_with_frame_count(tmp_path: Path) -> None:
    out = render_motion(walk(20), tmp_path / "walk.gif", caption="a person walks", size=SIZE)
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (20, SIZE[1], SIZE[0])
    expected = render_frames(walk(20), caption="a person walks", size=SIZE, frames=[10])[0]
    assert np.abs(frames[10, ..., :3].astype(int) - expected.astype(int)).mean() < 4.0


def test_grid_panels_side_by_side_shorter_ones_hold(tmp_path: Path) -> None:
    cell = (160, 128)
    motions = [walk(12), walk(20, velocity=(1.0, 0.0, 0.0)), torch.from_numpy(tpose(16))]
    out = render_grid(
        motions,
        tmp_path / "grid.gif",
        captions=["generated", "retrieved", "real"],
        titles=["A", "B", "C"],
        size_per_cell=cell,
    )
    frames = iio.imread(out, index=None)[..., :3]
    assert frames.shape[:3] == (20, cell[1], 3 * cell[0])  # longest motion decides the length
    first = frames[:, :, : cell[0] - 1]
    second = frames[:, :, cell[0] + 1 : 2 * cell[0] - 1]
    assert all(np.array_equal(first[11], f) for f in first[12:])  # held last frame
    assert not np.array_equal(second[11], second[19])  # still moving
    for panel in (first, second):
        assert bone_mask(panel[0]).sum() > 20

    meta, video = read_mp4(render_grid(motions[:2], tmp_path / "two.mp4", ncols=1, size_per_cell=cell))
    assert meta["size"] == (cell[0], 2 * cell[1]) and len(video) == 20


def test_save_still_single_frame_and_key_frame_strip(tmp_path: Path) -> None:
    motion = walk(20)
    single = iio.imread(save_still(motion, tmp_path / "one.png", frame=5, size=SIZE))
    assert single.shape[:2] == (SIZE[1], SIZE[0])
    expected = render_frames(motion, size=SIZE, frames=[5])[0]
    assert np.array_equal(single[..., :3], expected)

    strip = iio.imread(save_still(motion, tmp_path / "strip.png", caption="a person walks", size=SIZE))
    assert strip.shape[1] == 4 * SIZE[0] and strip.shape[0] > SIZE[1]  # four cells under a header
    cells = strip[-SIZE[1] :, :, :3]
    for i in range(4):
        assert bone_mask(cells[:, i * SIZE[0] + 2 : (i + 1) * SIZE[0] - 2]).sum() > 20

    chosen = iio.imread(save_still(motion, tmp_path / "two.png", frame=[0, -1], size=SIZE))
    assert chosen.shape[:2] == (SIZE[1], 2 * SIZE[0])  # no caption, no header


def kit_walk(frames: int = 8) -> np.ndarray:
    """KIT-ML T-pose (raw offset directions × rough bone lengths, metres) walking along +Z."""
    lengths = [0, 0.1, 0.15, 0.25, 0.15, 0.18, 0.28, 0.25, 0.18, 0.28, 0.25]
    lengths += [0.1, 0.42, 0.42, 0.06, 0.15, 0.1, 0.42, 0.42, 0.06, 0.15]
    offsets = np.asarray(KIT.raw_offsets, dtype=float) * np.asarray(lengths)[:, None]
    pose = np.zeros((KIT.num_joints, 3))
    for j in KIT.topological_order[1:]:
        pose[j] = pose[KIT.parents[j]] + offsets[j]
    pose[:, 1] -= pose[:, 1].min()
    return pose[None] + np.arange(frames)[:, None, None] * np.array([0.0, 0.0, 0.1])


def test_kit_skeleton_in_millimetres_renders_like_metres() -> None:
    motion = kit_walk()
    metres = render_frames(motion, size=SIZE, frames=[0, 7], show_frame_counter=False)
    millimetres = render_frames(motion * 1000.0, size=SIZE, frames=[0, 7], show_frame_counter=False)
    assert np.abs(metres.astype(int) - millimetres.astype(int)).max() <= 2
    assert bone_mask(metres[0]).sum() > 20 and color_mask(metres[0], BONE_COLORS["center"]).sum() > 10


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _with_nan() -> np.ndarray:
    m = walk(5)
    m[2, 3, 1] = np.nan
    return m


def _with_inf() -> np.ndarray:
    f = joints_to_features(walk(5))
    f[1, 7] = np.inf
    return f


@pytest.mark.parametrize(
    ("motion", "message"),
    [
        (np.zeros((10, 22, 2)), r"\(T, J, 3\)"),
        (np.zeros((10,)), r"got shape \(10,\)"),
        (np.zeros((2, 10, 22, 3)), r"got shape \(2, 10, 22, 3\)"),
        (np.zeros((10, 100)), "dimension 100 match no known skeleton"),
        (np.zeros((10, 23, 3)), "23 joints match no known skeleton"),
        (np.zeros((0, 22, 3)), "zero frames"),
        (np.zeros((0, 263)), "zero frames"),
        (_with_nan(), r"NaN/inf values \(first at index \(2, 3, 1\)\)"),
        (_with_inf(), "NaN/inf"),
        (np.array([["a", "b", "c"]]), "numeric array"),
    ],
)
def test_bad_motion_is_refused_with_a_clear_message(motion: np.ndarray, message: str, tmp_path: Path) -> None:
    with pytest.raises(MotionFormatError, match=message):
        render_frames(motion, size=SIZE)
    with pytest.raises(MotionFormatError, match=message):
        render_motion(motion, tmp_path / "bad.mp4", size=SIZE)
    assert not (tmp_path / "bad.mp4").exists()


def test_bad_options_are_refused(tmp_path: Path) -> None:
    motion = walk(5)
    with pytest.raises(MotionFormatError, match=r"unsupported suffix '\.avi'"):
        render_motion(motion, tmp_path / "out.avi")
    with pytest.raises(MotionFormatError, match=r"unsupported suffix '\.gif'"):
        save_still(motion, tmp_path / "still.gif")
    with pytest.raises(MotionFormatError, match="22 joints do not match the kit skeleton"):
        render_frames(motion, skeleton=KIT)
    with pytest.raises(MotionFormatError, match="fps must be a positive number"):
        render_frames(motion, fps=0)
    with pytest.raises(MotionFormatError, match="size"):
        render_frames(motion, size=(10, 480))
    with pytest.raises(MotionFormatError, match="frame 5 is out of range"):
        save_still(motion, tmp_path / "x.png", frame=5)


def test_unwritable_output_directory_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for render in (
        lambda out: render_motion(walk(5), out),
        lambda out: render_grid([walk(5)], out),
    ):
        with pytest.raises(MotionFormatError, match="cannot create output directory"):
            render(blocker / "videos" / "walk.mp4")
    with pytest.raises(MotionFormatError, match="cannot create output directory"):
        save_still(walk(5), blocker / "still.png")


def test_bad_grid_input_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "grid.mp4"
    with pytest.raises(MotionFormatError, match="list is empty"):
        render_grid([], out)
    with pytest.raises(MotionFormatError, match="captions has 1 entries for 2 motions"):
        render_grid([walk(5), walk(5)], out, captions=["only one"])
    with pytest.raises(MotionFormatError, match="titles has 3 entries for 2 motions"):
        render_grid([walk(5), walk(5)], out, titles=["a", "b", "c"])
    with pytest.raises(MotionFormatError, match="single string"):
        render_grid([walk(5), walk(5)], out, captions="one caption for all")
    with pytest.raises(MotionFormatError, match=r"motions\[1\]: has zero frames"):
        render_grid([walk(5), np.zeros((0, 22, 3))], out)
    assert not out.exists()
