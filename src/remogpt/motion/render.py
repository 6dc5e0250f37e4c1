"""Stick-figure animations of 3D human motion: MP4, GIF and PNG stills.

For people who type a sentence and want to *look* at the motion, so it favours speed and a view
that is always readable over realism: no SMPL mesh, no Blender, no mplot3d. The joints are
projected with a small pinhole camera written here and drawn with plain 2-D matplotlib artists on
an Agg canvas; the static part of a frame (caption, title) is drawn once and blitted, and only the
artists whose data change are redrawn per frame. Everything goes through `Figure` and
`FigureCanvasAgg` objects, never pyplot, so rendering touches no global state and can run in threads.

The view: Y is up; the camera looks at the body from its front-left (the body faces +Z and its
left is +X, so the camera sits at +Z and +X), slightly from above, and follows the root's XZ
path smoothly (or, with ``camera="static"``, frames the whole trajectory). Image right is the
camera's right, so a body moving to +X moves right in the image and its left arm appears on the
image's right, as when facing a person. One zoom per clip, fitted so that every joint of every
frame is in view: the figure never leaves the frame and the scale never jitters.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from torch import Tensor

from remogpt.motion.features import MotionFormatError, features_to_joints
from remogpt.motion.skeleton import HUMANML3D, KIT, SkeletonSpec, skeleton_for_dim

__all__ = [
    "BONE_COLORS",
    "render_frames",
    "render_grid",
    "render_motion",
    "save_still",
]

MotionLike = np.ndarray | Tensor
CameraMode = Literal["follow", "static"]

#: Bone colours by side of the body (the body's own left/right), as RGB hex.
BONE_COLORS: dict[str, str] = {"left": "#1f77b4", "right": "#d62728", "center": "#404040"}

_DPI = 100.0
_TEXT_COLOR = "#202020"
_COUNTER_COLOR = "#5a5a5a"
_SKY_COLOR = "#ffffff"
_FLOOR_COLOR = "#e6e9ee"
_GRID_RGB = (0.50, 0.55, 0.61)
_TRACE_COLOR = "#8c6bb1"
_DIVIDER_RGB = (200, 200, 200)

# Camera, in metres of a human-sized body (scaled by the motion's body size, see `_unit_scale`).
_AZIMUTH_DEG = 35.0  # from +Z towards +X: the body's front-left
_PITCH_DEG = 15.0  # looking down a little
_DISTANCE = 4.5  # eye to the look-at point
_LOOK_HEIGHT = 0.9  # look-at point above the floor
_FOLLOW_SIGMA_S = 0.75  # Gaussian smoothing of the followed root path, seconds
_GRID_SPACING = 0.5
_GRID_RADIUS = 5.0
_SHADOW_RADIUS = 0.22
_FRAME_MARGIN = 0.07  # fraction of the scene kept free around the fitted view

#: Sum of HumanML3D's reference bone lengths (m): the body size that `_unit_scale` compares with.
_REFERENCE_BONE_SUM = float(sum(HUMANML3D.bone_lengths or ()))


# --------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------


def _as_array(motion: object, name: str) -> np.ndarray:
    if isinstance(motion, Tensor):
        arr = motion.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(motion)
        except (TypeError, ValueError) as exc:
            raise MotionFormatError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise MotionFormatError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        raise MotionFormatError(
            f"{name} contains {len(bad)} NaN/inf values (first at index {tuple(int(i) for i in bad[0])})"
        )


def _infer_joint_skeleton(num_joints: int, name: str) -> SkeletonSpec:
    for spec in (HUMANML3D, KIT):
        if spec.num_joints == num_joints:
            return spec
    raise MotionFormatError(
        f"{name}: {num_joints} joints match no known skeleton (22 HumanML3D, 21 KIT); pass skeleton="
    )


def _prepare_motion(
    motion: MotionLike, skeleton: SkeletonSpec | None, name: str = "motion"
) -> tuple[np.ndarray, SkeletonSpec]:
    """(T, J, 3) float64 joints and their skeleton, from joints (T, J, 3) or features (T, D)."""
    arr = _as_array(motion, name)
    if arr.ndim == 2:
        frames, dim = arr.shape
        if frames == 0:
            raise MotionFormatError(f"{name}: has zero frames (features of shape {arr.shape})")
        if skeleton is None:
            try:
                skeleton = skeleton_for_dim(dim)
            except ValueError:
                raise MotionFormatError(
                    f"{name}: features of dimension {dim} match no known skeleton "
                    f"(263 HumanML3D, 251 KIT); joints must have shape (T, J, 3)"
                ) from None
        elif dim != skeleton.feature_dim:
            raise MotionFormatError(
                f"{name}: features of dimension {dim} do not match the {skeleton.name} skeleton "
                f"({skeleton.feature_dim})"
            )
        _check_finite(arr, name)
        joints = np.asarray(features_to_joints(arr, skeleton), dtype=np.float64)
    elif arr.ndim == 3:
        frames, num_joints, coords = arr.shape
        if coords != 3:
            raise MotionFormatError(f"{name}: joints must have shape (T, J, 3), got {arr.shape}")
        if frames == 0:
            raise MotionFormatError(f"{name}: has zero frames (joints of shape {arr.shape})")
        if skeleton is None:
            skeleton = _infer_joint_skeleton(num_joints, name)
        elif num_joints != skeleton.num_joints:
            raise MotionFormatError(
                f"{name}: {num_joints} joints do not match the {skeleton.name} skeleton ({skeleton.num_joints} joints)"
            )
        _check_finite(arr, name)
        joints = arr.astype(np.float64)
    else:
        raise MotionFormatError(f"{name}: expected joints (T, J, 3) or features (T, D), got shape {tuple(arr.shape)}")
    return joints, skeleton


def _check_size(size: tuple[int, int], name: str = "size") -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise MotionFormatError(f"{name}: expected (width, height) in pixels, got {size!r}") from None
    if width < 64 or height < 64 or width > 8192 or height > 8192:
        raise MotionFormatError(f"{name}: each side must be 64–8192 pixels, got {width}×{height}")
    return width, height


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise MotionFormatError(f"fps must be a positive number, got {fps}")
    return fps


def _check_text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MotionFormatError(f"{name} must be a string or None, got {type(value).__name__}")
    return value


def _output_path(out: str | os.PathLike[str], suffixes: tuple[str, ...]) -> Path:
    """Checked output path with its directory created: fail before spending time on rendering."""
    path = Path(out).expanduser()
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise MotionFormatError(
            f"output {str(path)!r}: unsupported suffix {path.suffix or '(none)'!r} (use {' or '.join(suffixes)})"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MotionFormatError(f"cannot create output directory {str(path.parent)!r}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise MotionFormatError(f"output {str(path)!r} is a directory")
    return path


# --------------------------------------------------------------------------------------------
# Geometry: body size, camera, clipping
# --------------------------------------------------------------------------------------------


def _unit_scale(joints: np.ndarray, skeleton: SkeletonSpec) -> float:
    """Motion units per metre of a human-sized body, so that millimetre or centimetre data get the
    same camera and floor grid as metres.

    Compares the median total bone length with HumanML3D's; a body within a factor 2.5 of human
    size in m, cm or mm snaps to exactly 1, 100 or 1000 (so the grid stays in round units),
    anything else uses the ratio itself.
    """
    children = [j for j, p in enumerate(skeleton.parents) if p >= 0]
    if not children:
        return 1.0
    parents = [skeleton.parents[j] for j in children]
    bones = np.linalg.norm(joints[:, children] - joints[:, parents], axis=-1).sum(-1)
    ratio = float(np.median(bones)) / _REFERENCE_BONE_SUM
    if not math.isfinite(ratio) or ratio <= 1e-9:
        return 1.0
    for unit in (1.0, 100.0, 1000.0):
        if 0.4 <= ratio / unit <= 2.5:
            return unit
    return ratio


def _smooth_path(path: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-lag Gaussian smoothing along time; odd reflection at the ends keeps straight lines exact."""
    frames = len(path)
    if frames < 2 or sigma <= 0:
        return path.copy()
    from scipy.ndimage import gaussian_filter1d

    radius = max(1, math.ceil(3.0 * sigma))
    # scipy has no odd-reflection mode: pad by the kernel's radius, filter, keep the inside.
    padded = np.pad(np.asarray(path, dtype=np.float64), ((radius, radius), (0, 0)), mode="reflect", reflect_type="odd")
    return gaussian_filter1d(padded, sigma, axis=0, radius=radius)[radius:-radius]


def _clip_segments(a: np.ndarray, b: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip camera-space segments a→b (N, 3) to z ≥ near; returns (a', b', kept mask)."""
    za, zb = a[:, 2], b[:, 2]
    keep = (za >= near) | (zb >= near)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip((near - za) / (zb - za), 0.0, 1.0)[:, None]
    cross = a + t * (b - a)
    a2 = np.where((za < near)[:, None], cross, a)
    b2 = np.where((zb < near)[:, None], cross, b)
    return a2[keep], b2[keep], keep


def _clip_polygon(points: np.ndarray, near: float) -> np.ndarray:
    """Sutherland–Hodgman against the single plane z ≥ near; (N, 3) → (M, 3), M may be 0."""
    out: list[np.ndarray] = []
    count = len(points)
    for i in range(count):
        cur, nxt = points[i], points[(i + 1) % count]
        cur_in, nxt_in = cur[2] >= near, nxt[2] >= near
        if cur_in:
            out.append(cur)
        if cur_in != nxt_in:
            t = (near - cur[2]) / (nxt[2] - cur[2])
            out.append(cur + t * (nxt - cur))
    return np.asarray(out).reshape(-1, 3)


@dataclass(frozen=True)
class _Camera:
    """Pinhole camera with a fixed orientation and a per-frame position.

    `rotation` rows are the camera's right, up and forward axes in world coordinates; image
    coordinates are pixels of the scene area with y up (matplotlib data coordinates).
    """

    rotation: np.ndarray  # (3, 3)
    eye: np.ndarray  # (T, 3)
    target: np.ndarray  # (T, 2) look-at XZ
    focal: float
    centre: tuple[float, float]
    near: float
    distance: float

    def to_camera(self, points: np.ndarray, frame: int) -> np.ndarray:
        return (points - self.eye[frame]) @ self.rotation.T

    def project(self, cam: np.ndarray) -> np.ndarray:
        return np.asarray(self.centre) + self.focal * cam[..., :2] / cam[..., 2:3]


def _build_camera(
    joints: np.ndarray,
    fps: float,
    scale: float,
    floor: float,
    mode: CameraMode,
    scene_size: tuple[float, float],
) -> _Camera:
    root_xz = joints[:, 0, [0, 2]]
    if mode == "follow":
        distance = _DISTANCE * scale
        target = _smooth_path(root_xz, _FOLLOW_SIGMA_S * fps)
        # Never let the body run away from the camera (only bites on erratic root paths).
        deviation = root_xz - target
        norm = np.linalg.norm(deviation, axis=1, keepdims=True)
        limit = 0.3 * distance
        target = root_xz - deviation * np.minimum(1.0, limit / np.maximum(norm, 1e-12))
    elif mode == "static":
        horizontal = joints[..., [0, 2]].reshape(-1, 2)
        centre = 0.5 * (horizontal.min(0) + horizontal.max(0))
        reach = float(np.linalg.norm(horizontal - centre, axis=1).max())
        distance = _DISTANCE * scale + 1.5 * reach
        target = np.broadcast_to(centre, root_xz.shape).copy()
    else:
        raise MotionFormatError(f"camera must be 'follow' or 'static', got {mode!r}")

    azimuth, pitch = math.radians(_AZIMUTH_DEG), math.radians(_PITCH_DEG)
    back = np.array([math.sin(azimuth) * math.cos(pitch), math.sin(pitch), math.cos(azimuth) * math.cos(pitch)])
    look = np.column_stack([target[:, 0], np.full(len(target), floor + _LOOK_HEIGHT * scale), target[:, 1]])
    eye = look + distance * back
    forward = -back
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    rotation = np.stack([right, up, forward])
    near = 0.05 * scale

    # One zoom for the whole clip: every joint of every frame, plus a human-sized box around the
    # look-at point (so a still or tiny motion is not blown up), fits inside the scene.
    cam = np.einsum("tjc,kc->tjk", joints - eye[:, None, :], rotation)
    frames = len(joints)
    ground = np.column_stack([target[:, 0], np.full(frames, floor), target[:, 1]])
    half = 0.5 * scale * right
    anchors = np.stack([ground - half, ground + half, ground + np.array([0.0, 1.9 * scale, 0.0])], axis=1)
    cam_anchors = np.einsum("tjc,kc->tjk", anchors - eye[:, None, :], rotation)
    pts = np.concatenate([cam.reshape(-1, 3), cam_anchors.reshape(-1, 3)])
    pts = pts[pts[:, 2] > near]
    uv = pts[:, :2] / pts[:, 2:3]
    lo, hi = uv.min(0), uv.max(0)
    span = np.maximum(hi - lo, 1e-6)
    width, height = scene_size
    focal = float(min(width * (1 - 2 * _FRAME_MARGIN) / span[0], height * (1 - 2 * _FRAME_MARGIN) / span[1]))
    mid = 0.5 * (lo + hi)
    centre = (width / 2 - focal * float(mid[0]), height / 2 - focal * float(mid[1]))
    return _Camera(rotation, eye, target, focal, centre, near, distance)


# --------------------------------------------------------------------------------------------
# Text layout
# --------------------------------------------------------------------------------------------


def _font(size_px: float, bold: bool = False) -> FontProperties:
    return FontProperties(size=size_px * 72.0 / _DPI, weight="bold" if bold else "normal")


def _text_width(renderer: object, text: str, prop: FontProperties) -> float:
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)  # type: ignore[attr-defined]
    return float(width)


def _wrap(text: str, prop: FontProperties, max_width: float, renderer: object) -> list[str]:
    """Greedy word wrap measured with the real font; words longer than a line are broken."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if _text_width(renderer, candidate, prop) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while _text_width(renderer, current, prop) > max_width and len(current) > 1:
                cut = len(current) - 1
                while cut > 1 and _text_width(renderer, current[:cut], prop) > max_width:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        if current:
            lines.append(current)
    return lines


def _ellipsize(line: str, prop: FontProperties, max_width: float, renderer: object) -> str:
    """`line` + " …", shortened until it fits: marks a cut made on purpose, never a clipped one."""
    line = line.rstrip()
    while line and _text_width(renderer, line + " …", prop) > max_width:
        line = line[:-1].rstrip()
    return line + " …"


@dataclass(frozen=True)
class _TextLine:
    text: str
    prop: FontProperties
    top: float  # pixels below the figure's top edge
    height: float


def _layout_header(
    renderer: object, width: int, height: int, title: str | None, caption: str | None
) -> tuple[list[_TextLine], float]:
    """Lines of the title (bold) and the wrapped caption, and the header height in pixels.

    The caption's font shrinks for long captions so the scene keeps most of the frame; only a
    caption too long for 60% of the frame even at the smallest font is shortened, with an ellipsis
    (as is a title of more than two lines).
    """
    pad = min(10.0, max(4.0, 0.02 * width))
    max_width = width - 2 * pad
    title_px = min(20.0, max(10.0, width / 30))
    caption_px = min(18.0, max(9.0, width / 34))
    title_lines = _wrap(title, _font(title_px, True), max_width, renderer) if title else []
    if len(title_lines) > 2:  # a title is a short label; the caption is what must be read in full
        title_lines = [title_lines[0], _ellipsize(title_lines[1], _font(title_px, True), max_width, renderer)]
    caption_px_now = caption_px
    while True:
        caption_lines = _wrap(caption, _font(caption_px_now), max_width, renderer) if caption else []
        used = pad + 1.25 * (title_px * len(title_lines) + caption_px_now * len(caption_lines))
        if used <= 0.4 * height or caption_px_now <= 8.0 or not caption_lines:
            break
        caption_px_now = max(8.0, caption_px_now * 0.9)
    room = int((0.6 * height - pad - 1.25 * title_px * len(title_lines)) // (1.25 * caption_px_now))
    if len(caption_lines) > max(room, 1):
        caption_lines = caption_lines[: max(room, 1)]
        caption_lines[-1] = _ellipsize(caption_lines[-1], _font(caption_px_now), max_width, renderer)
    lines: list[_TextLine] = []
    top = pad
    for text in title_lines:
        lines.append(_TextLine(text, _font(title_px, True), top, 1.25 * title_px))
        top += 1.25 * title_px
    if title_lines and caption_lines:
        top += 0.2 * caption_px_now
    for text in caption_lines:
        lines.append(_TextLine(text, _font(caption_px_now), top, 1.25 * caption_px_now))
        top += 1.25 * caption_px_now
    header = top + 0.5 * pad if lines else 0.0
    return lines, float(math.ceil(header))


def _new_figure(width: int, height: int, facecolor: str = _SKY_COLOR) -> tuple[Figure, FigureCanvasAgg]:
    # A hair over the exact size: Agg truncates width·dpi to int, and 3.6·100 can be 359.99….
    fig = Figure(figsize=((width + 1e-3) / _DPI, (height + 1e-3) / _DPI), dpi=_DPI, facecolor=facecolor)
    canvas = FigureCanvasAgg(fig)
    return fig, canvas


def _place_text(fig: Figure, lines: list[_TextLine], width: int, height: int) -> None:
    for line in lines:
        fig.text(
            0.5,
            1.0 - line.top / height,
            line.text,
            ha="center",
            va="top",
            fontproperties=line.prop,
            color=_TEXT_COLOR,
            parse_math=False,
        )


def _render_header(width: int, title: str | None, caption: str | None, max_height: int) -> np.ndarray | None:
    """A standalone header image (for still strips, whose cells share one caption)."""
    _, canvas = _new_figure(width, max(max_height, 64))
    lines, header = _layout_header(canvas.get_renderer(), width, max_height, title, caption)
    if not lines:
        return None
    height = int(header)
    fig, canvas = _new_figure(width, height)
    _place_text(fig, lines, width, height)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:height, :width, :3].copy()


# --------------------------------------------------------------------------------------------
# One panel: a figure whose dynamic artists are redrawn per frame
# --------------------------------------------------------------------------------------------


def _chain_side(chain: Sequence[int], skeleton: SkeletonSpec) -> str:
    names = [skeleton.joint_names[j].lower() for j in chain[1:]]
    if any(n.startswith("left") or "_left" in n or n.startswith("l_") for n in names):
        return "left"
    if any(n.startswith("right") or "_right" in n or n.startswith("r_") for n in names):
        return "right"
    return "center"


class _Panel:
    """Renders frames of one motion at a fixed size; frame indices past the end hold the last one."""

    def __init__(
        self,
        joints: np.ndarray,
        skeleton: SkeletonSpec,
        *,
        size: tuple[int, int],
        fps: float,
        caption: str | None = None,
        title: str | None = None,
        camera: CameraMode = "follow",
        show_frame_counter: bool = True,
    ) -> None:
        self.joints = joints
        self.skeleton = skeleton
        self.num_frames = len(joints)
        self.fps = fps
        self.width, self.height = size
        self.show_frame_counter = show_frame_counter

        fig, canvas = _new_figure(self.width, self.height)
        self._fig, self._canvas = fig, canvas
        lines, header = _layout_header(canvas.get_renderer(), self.width, self.height, title, caption)
        _place_text(fig, lines, self.width, self.height)
        scene_h = float(self.height - header)
        self._scene_h = scene_h

        ax = fig.add_axes((0.0, 0.0, 1.0, scene_h / self.height))
        ax.set_axis_off()
        ax.set_autoscale_on(False)
        ax.set_xlim(0.0, self.width)  # data units are scene pixels: equal scale on both axes
        ax.set_ylim(0.0, scene_h)
        self._ax = ax

        self.scale = _unit_scale(joints, skeleton)
        self.floor = float(joints[..., 1].min())
        cam = _build_camera(joints, fps, self.scale, self.floor, camera, (self.width, scene_h))
        self.camera = cam

        # Joints in camera space and image space, all frames at once.
        joints_cam = np.einsum("tjc,kc->tjk", joints - cam.eye[:, None, :], cam.rotation)
        with np.errstate(divide="ignore", invalid="ignore"):
            proj = cam.project(joints_cam)
        proj[joints_cam[..., 2] <= cam.near] = np.nan
        self._proj = proj
        chains = [tuple(c) for c in skeleton.kinematic_chains]
        self._chains = chains
        self._chain_depth = np.stack([joints_cam[:, list(c), 2].mean(1) for c in chains], axis=1)
        self._root_floor = np.column_stack([joints[:, 0, 0], np.full(self.num_frames, self.floor), joints[:, 0, 2]])

        px_per_m = cam.focal * self.scale / cam.distance  # image pixels per body metre, roughly
        pt = 72.0 / _DPI
        lw = float(np.clip(0.045 * px_per_m, 1.5, 16.0))

        self._add_ground(scene_h, lw, pt)
        self._add_body(chains, lw, pt, px_per_m)
        self._add_counter()
        self._dynamic = [
            self._grid,
            self._trace,
            self._shadow,
            *self._bones,
            self._head,
            self._counter,
        ]
        for artist in self._dynamic:
            artist.set_animated(True)
        canvas.draw()  # the static part: background, caption, title
        self._background = canvas.copy_from_bbox(fig.bbox)

        angles = np.linspace(0.0, 2.0 * np.pi, 24, endpoint=False)
        self._shadow_circle = np.column_stack([np.cos(angles), np.zeros_like(angles), np.sin(angles)])

    def _add_ground(self, scene_h: float, lw: float, pt: float) -> None:
        """The floor up to the horizon (static), its grid, the root's trace and the body's shadow."""
        ax, cam = self._ax, self.camera
        # The floor is infinite, so it ends at the horizon, which is fixed (the camera only
        # translates): a static rectangle, drawn once into the background.
        level = cam.rotation @ (np.array([1.0, 0.0, 1.0]) * cam.rotation[2])
        horizon = float(np.clip(cam.centre[1] + cam.focal * level[1] / level[2], 0.0, scene_h))
        floor_patch = Polygon(
            [(0, 0), (self.width, 0), (self.width, horizon), (0, horizon)],
            closed=True,
            facecolor=_FLOOR_COLOR,
            edgecolor="none",
            zorder=0.0,
        )
        ax.add_patch(floor_patch)
        self._grid = LineCollection([], linewidths=max(0.6, lw * 0.18) * pt, zorder=1.0)
        ax.add_collection(self._grid, autolim=False)
        self._trace = Line2D([], [], color=_TRACE_COLOR, lw=max(1.0, 0.4 * lw) * pt, solid_capstyle="round", zorder=2.0)
        ax.add_line(self._trace)
        self._shadow = Polygon(np.zeros((3, 2)), closed=True, facecolor=(0, 0, 0, 0.16), edgecolor="none")
        self._shadow.set_zorder(2.5)
        ax.add_patch(self._shadow)

    def _add_body(self, chains: list[tuple[int, ...]], lw: float, pt: float, px_per_m: float) -> None:
        """One line per kinematic chain (joints as dots) and the head."""
        ax, skeleton = self._ax, self.skeleton
        self._bones: list[Line2D] = []
        for chain in chains:
            color = BONE_COLORS[_chain_side(chain, skeleton)]
            line = Line2D(
                [],
                [],
                color=color,
                lw=lw * pt,
                solid_capstyle="round",
                solid_joinstyle="round",
                marker="o",
                markersize=1.25 * lw * pt,
                markerfacecolor="white",
                markeredgecolor=color,
                markeredgewidth=max(1.0, 0.35 * lw) * pt,
                zorder=3.0,
            )
            ax.add_line(line)
            self._bones.append(line)

        head = [j for j, n in enumerate(skeleton.joint_names) if n.lower() == "head"]
        self._head_joint = head[0] if head else None
        self._head_chain = next((k for k, c in enumerate(chains) if self._head_joint in c), None)
        self._head = Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=float(np.clip(0.18 * px_per_m, 3 * lw, 60.0)) * pt,
            markerfacecolor="white",
            markeredgecolor=BONE_COLORS["center"],
            markeredgewidth=max(1.0, 0.5 * lw) * pt,
            zorder=3.0,
        )
        ax.add_line(self._head)

    def _add_counter(self) -> None:
        ax = self._ax
        counter_px = min(14.0, max(8.0, self.width / 40))
        margin = 3.0 + 0.012 * min(self.width, self.height)
        self._counter = ax.text(
            self.width - margin,
            margin,
            "",
            ha="right",
            va="bottom",
            fontproperties=_font(counter_px),
            color=_COUNTER_COLOR,
            parse_math=False,
            zorder=6.0,
        )

    # -- per-frame pieces ---------------------------------------------------------------------

    def _update_floor(self, k: int) -> None:
        cam, scale, floor = self.camera, self.scale, self.floor
        tx, tz = cam.target[k]
        # Grid nodes are world-fixed, so the floor slides under a followed body; lines fade out
        # with distance from the look-at point.
        spacing, radius = _GRID_SPACING * scale, _GRID_RADIUS * scale
        xs = spacing * np.arange(math.ceil((tx - radius) / spacing), math.floor((tx + radius) / spacing) + 1)
        zs = spacing * np.arange(math.ceil((tz - radius) / spacing), math.floor((tz + radius) / spacing) + 1)
        if len(xs) < 2 or len(zs) < 2:
            self._grid.set_segments([])
            return
        gx, gz = np.meshgrid(xs, zs[:-1], indexing="ij")
        along_z = (gx.ravel(), gz.ravel(), gx.ravel(), gz.ravel() + spacing)
        hx, hz = np.meshgrid(xs[:-1], zs, indexing="ij")
        along_x = (hx.ravel(), hz.ravel(), hx.ravel() + spacing, hz.ravel())
        x0 = np.concatenate([along_z[0], along_x[0]])
        z0 = np.concatenate([along_z[1], along_x[1]])
        x1 = np.concatenate([along_z[2], along_x[2]])
        z1 = np.concatenate([along_z[3], along_x[3]])
        dist = np.hypot(0.5 * (x0 + x1) - tx, 0.5 * (z0 + z1) - tz) / radius
        alpha = 0.85 * np.clip(1.0 - dist, 0.0, 1.0) ** 1.3
        visible = alpha > 0.02
        ys = np.full(int(visible.sum()), floor)
        a = np.column_stack([x0[visible], ys, z0[visible]])
        b = np.column_stack([x1[visible], ys, z1[visible]])
        a_cam, b_cam, kept = _clip_segments(cam.to_camera(a, k), cam.to_camera(b, k), cam.near)
        segments = np.stack([cam.project(a_cam), cam.project(b_cam)], axis=1)
        colors = np.empty((len(segments), 4))
        colors[:, :3] = _GRID_RGB
        colors[:, 3] = alpha[visible][kept]
        self._grid.set_segments(segments)
        self._grid.set_color(colors)

    def _update_trace(self, k: int) -> None:
        cam = self.camera
        if k < 1:
            self._trace.set_data([], [])
        else:
            pts = cam.to_camera(self._root_floor[: k + 1], k)
            a_cam, b_cam, _ = _clip_segments(pts[:-1], pts[1:], cam.near)
            data = np.full((3 * len(a_cam), 2), np.nan)
            data[0::3] = cam.project(a_cam)
            data[1::3] = cam.project(b_cam)
            self._trace.set_data(data[:, 0], data[:, 1])
        circle = self._root_floor[k] + _SHADOW_RADIUS * self.scale * self._shadow_circle
        shadow_cam = cam.to_camera(circle, k)
        if (shadow_cam[:, 2] > cam.near).all():
            self._shadow.set_xy(cam.project(shadow_cam))
            self._shadow.set_visible(True)
        else:
            self._shadow.set_visible(False)

    def _update_body(self, k: int) -> None:
        proj = self._proj[k]
        order = np.argsort(-self._chain_depth[k])  # farthest first
        for rank, c in enumerate(order):
            line = self._bones[c]
            idx = list(self._chains[c])
            line.set_data(proj[idx, 0], proj[idx, 1])
            line.set_zorder(3.0 + 0.1 * rank)
        if self._head_joint is not None:
            self._head.set_data([proj[self._head_joint, 0]], [proj[self._head_joint, 1]])
            base = self._bones[self._head_chain].get_zorder() if self._head_chain is not None else 3.0
            self._head.set_zorder(base + 0.05)
        if self.show_frame_counter:
            self._counter.set_text(f"{k + 1}/{self.num_frames}  {k / self.fps:.2f} s")

    def render(self, frame: int) -> np.ndarray:
        """(H, W, 3) uint8 image of `frame` (clamped to the last frame: shorter motions hold)."""
        k = min(max(int(frame), 0), self.num_frames - 1)
        self._update_floor(k)
        self._update_trace(k)
        self._update_body(k)
        canvas = self._canvas
        canvas.restore_region(self._background)
        artists = [a for a in self._dynamic if a.get_visible()]
        if not self.show_frame_counter:
            artists.remove(self._counter)
        for artist in sorted(artists, key=lambda a: a.get_zorder()):
            self._ax.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[: self.height, : self.width, :3].copy()


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even width and height (edge pixels repeated): yuv420p needs it."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)


def _write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """GIF through Pillow with one palette shared by all frames.

    Pillow's default per-frame adaptive palette is ~8× slower and makes flat colours flicker;
    these frames have few colours, so a median-cut palette of a few spread-out frames covers them.
    """
    from PIL import Image

    if not frames:
        raise MotionFormatError("no frames to write")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(4, len(frames))).round().astype(int))
    montage = Image.fromarray(np.concatenate([frames[i] for i in picks], axis=1))
    palette = montage.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=1000.0 / fps,
        loop=0,
        optimize=False,
    )


def _write_video(path: Path, frames: Iterator[np.ndarray], fps: float) -> Path:
    """Write to a temporary file next to `path`, then rename: no half-written output on failure."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.partial{path.suffix.lower()}")
    try:
        if path.suffix.lower() == ".mp4":
            import imageio_ffmpeg

            writer = None
            try:
                for frame in frames:
                    frame = _even(frame)
                    if writer is None:
                        writer = imageio_ffmpeg.write_frames(
                            str(tmp),
                            (frame.shape[1], frame.shape[0]),
                            fps=Fraction(fps).limit_denominator(1001),
                            codec="libx264",
                            pix_fmt_in="rgb24",
                            pix_fmt_out="yuv420p",
                            quality=None,
                            macro_block_size=1,
                            ffmpeg_log_level="error",
                            output_params=["-preset", "veryfast", "-crf", "20", "-movflags", "+faststart"],
                        )
                        writer.send(None)
                    writer.send(frame)
            finally:
                if writer is not None:
                    writer.close()  # also on error: ends the ffmpeg process
        else:
            _write_gif(tmp, list(frames), fps)
        os.replace(tmp, path)
    except OSError as exc:
        raise MotionFormatError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _make_panel(
    motion: MotionLike,
    *,
    caption: str | None,
    title: str | None,
    fps: float | None,
    skeleton: SkeletonSpec | None,
    size: tuple[int, int],
    camera: CameraMode,
    show_frame_counter: bool,
    name: str = "motion",
) -> _Panel:
    joints, spec = _prepare_motion(motion, skeleton, name)
    return _Panel(
        joints,
        spec,
        size=_check_size(size),
        fps=_check_fps(spec.fps if fps is None else fps),
        caption=_check_text(caption, "caption"),
        title=_check_text(title, "title"),
        camera=camera,
        show_frame_counter=show_frame_counter,
    )


def render_frames(
    motion: MotionLike,
    caption: str | None = None,
    fps: float | None = None,
    skeleton: SkeletonSpec | None = None,
    title: str | None = None,
    size: tuple[int, int] = (480, 480),
    *,
    frames: Sequence[int] | None = None,
    camera: CameraMode = "follow",
    show_frame_counter: bool = True,
) -> np.ndarray:
    """Every frame (or the chosen `frames`) as an (F, H, W, 3) uint8 array.

    The in-memory form of what `render_motion` writes, for tests, notebooks and custom writers.
    `motion` is joints (T, J, 3) or features (T, D), numpy or torch; `size` is (width, height).
    """
    panel = _make_panel(
        motion,
        caption=caption,
        title=title,
        fps=fps,
        skeleton=skeleton,
        size=size,
        camera=camera,
        show_frame_counter=show_frame_counter,
    )
    indices = range(panel.num_frames) if frames is None else _check_frames(frames, panel.num_frames)
    return np.stack([panel.render(i) for i in indices])


def _check_frames(frames: Sequence[int], num_frames: int) -> list[int]:
    out = []
    for f in frames:
        i = int(f)
        if not -num_frames <= i < num_frames:
            raise MotionFormatError(f"frame {i} is out of range for a motion of {num_frames} frames")
        out.append(i % num_frames)
    if not out:
        raise MotionFormatError("frames: no frame indices given")
    return out


def render_motion(
    motion: MotionLike,
    out: str | os.PathLike[str],
    caption: str | None = None,
    fps: float | None = None,
    skeleton: SkeletonSpec | None = None,
    title: str | None = None,
    size: tuple[int, int] = (480, 480),
    *,
    camera: CameraMode = "follow",
    show_frame_counter: bool = True,
) -> Path:
    """Animate one motion to `out` (.mp4: H.264/yuv420p; .gif) and return the path.

    `motion` is joints (T, J, 3) or features (T, D) (numpy or torch, told apart by ndim; features
    are recovered with `features_to_joints`); `fps` defaults to the skeleton's (20 for HumanML3D).
    Frames are streamed to the encoder, so long clips need little memory.
    """
    path = _output_path(out, (".mp4", ".gif"))
    panel = _make_panel(
        motion,
        caption=caption,
        title=title,
        fps=fps,
        skeleton=skeleton,
        size=size,
        camera=camera,
        show_frame_counter=show_frame_counter,
    )
    return _write_video(path, (panel.render(i) for i in range(panel.num_frames)), panel.fps)


def _check_labels(labels: Sequence[str | None] | None, count: int, name: str) -> list[str | None]:
    if labels is None:
        return [None] * count
    if isinstance(labels, str):
        raise MotionFormatError(f"{name} must be a list with one entry per motion, got a single string")
    labels = list(labels)
    if len(labels) != count:
        raise MotionFormatError(f"{name} has {len(labels)} entries for {count} motions")
    return [_check_text(v, f"{name}[{i}]") for i, v in enumerate(labels)]


def _grid_frames(panels: list[_Panel], ncols: int, cell: tuple[int, int]) -> Iterator[np.ndarray]:
    width, height = cell
    nrows = math.ceil(len(panels) / ncols)
    total = max(p.num_frames for p in panels)
    for i in range(total):
        canvas = np.full((nrows * height, ncols * width, 3), 255, dtype=np.uint8)
        for n, panel in enumerate(panels):
            r, c = divmod(n, ncols)
            canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = panel.render(i)
        for c in range(1, ncols):  # thin dividers, inside the cells so the size stays ncols·width
            canvas[:, c * width - 1 : c * width + 1] = _DIVIDER_RGB
        for r in range(1, nrows):
            canvas[r * height - 1 : r * height + 1, :] = _DIVIDER_RGB
        yield canvas


def render_grid(
    motions: Sequence[MotionLike],
    out: str | os.PathLike[str],
    captions: Sequence[str | None] | None = None,
    titles: Sequence[str | None] | None = None,
    fps: float | None = None,
    ncols: int | None = None,
    size_per_cell: tuple[int, int] = (360, 360),
    *,
    camera: CameraMode = "follow",
    show_frame_counter: bool = True,
) -> Path:
    """Several motions side by side in one video (e.g. generated vs retrieved vs real).

    Each panel has its own camera, title and caption; shorter motions hold their last frame and
    the video lasts as long as the longest. `ncols` defaults to all in one row (up to 4). The
    frame size is exactly (ncols·width, nrows·height) of `size_per_cell`; `fps` defaults to the
    first motion's skeleton's.
    """
    if isinstance(motions, np.ndarray | Tensor):
        if motions.ndim != 4:
            raise MotionFormatError(
                f"motions: expected a list of motions or a (N, T, J, 3) batch, got shape {tuple(motions.shape)}"
            )
        motions = list(motions)
    motions = list(motions)
    if not motions:
        raise MotionFormatError("motions: the list is empty; nothing to render")
    count = len(motions)
    caption_list = _check_labels(captions, count, "captions")
    title_list = _check_labels(titles, count, "titles")
    if ncols is None:
        ncols = count if count <= 4 else math.ceil(math.sqrt(count))
    if int(ncols) < 1:
        raise MotionFormatError(f"ncols must be at least 1, got {ncols}")
    ncols = min(int(ncols), count)
    cell = _check_size(size_per_cell, "size_per_cell")
    path = _output_path(out, (".mp4", ".gif"))
    prepared = [_prepare_motion(m, None, f"motions[{i}]") for i, m in enumerate(motions)]
    rate = _check_fps(prepared[0][1].fps if fps is None else fps)
    panels = [
        _Panel(
            joints,
            spec,
            size=cell,
            fps=rate,
            caption=caption_list[i],
            title=title_list[i],
            camera=camera,
            show_frame_counter=show_frame_counter,
        )
        for i, (joints, spec) in enumerate(prepared)
    ]
    return _write_video(path, _grid_frames(panels, ncols, cell), rate)


def save_still(
    motion: MotionLike,
    out_png: str | os.PathLike[str],
    frame: int | Sequence[int] | None = None,
    *,
    caption: str | None = None,
    title: str | None = None,
    fps: float | None = None,
    skeleton: SkeletonSpec | None = None,
    size: tuple[int, int] = (480, 480),
    num_key_frames: int = 4,
    camera: CameraMode = "follow",
) -> Path:
    """One PNG to look at without a video player: a single frame, or a strip of key frames.

    `frame` an int: that frame, drawn like a video frame. A list of ints: those frames side by
    side. None: `num_key_frames` evenly spaced frames from first to last, side by side. A strip
    shares one caption/title header and marks each cell with its frame number and time. The same
    camera as the video is used, so the strip shows the body moving over the floor.
    """
    path = _output_path(out_png, (".png",))
    import imageio.v3 as iio

    if isinstance(frame, int | np.integer):
        panel = _make_panel(
            motion,
            caption=caption,
            title=title,
            fps=fps,
            skeleton=skeleton,
            size=size,
            camera=camera,
            show_frame_counter=True,
        )
        image = panel.render(_check_frames([int(frame)], panel.num_frames)[0])
    else:
        panel = _make_panel(
            motion,
            caption=None,
            title=None,
            fps=fps,
            skeleton=skeleton,
            size=size,
            camera=camera,
            show_frame_counter=True,
        )
        if frame is None:
            if int(num_key_frames) < 1:
                raise MotionFormatError(f"num_key_frames must be at least 1, got {num_key_frames}")
            count = min(int(num_key_frames), panel.num_frames)
            indices = sorted({round(x) for x in np.linspace(0, panel.num_frames - 1, count)})
        else:
            indices = _check_frames(frame, panel.num_frames)
        cells = [panel.render(i) for i in indices]
        for cell in cells[1:]:
            cell[:, :1] = _DIVIDER_RGB
        image = np.concatenate(cells, axis=1)
        header = _render_header(
            image.shape[1], _check_text(title, "title"), _check_text(caption, "caption"), panel.height
        )
        if header is not None:
            image = np.concatenate([header, image], axis=0)
    try:
        iio.imwrite(path, image, extension=".png")
    except OSError as exc:
        raise MotionFormatError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return path
