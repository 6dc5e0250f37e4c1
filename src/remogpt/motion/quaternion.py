"""Quaternion helpers in the (w, x, y, z) convention of the HumanML3D reference code.

Everything is torch so that one code path serves numpy callers (converted at the boundary),
batched tensors and autograd. The functions broadcast over leading dimensions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "axis_angle_to_quaternion",
    "qbetween",
    "qinv",
    "qmul",
    "qnormalize",
    "qrot",
    "quaternion_to_cont6d",
    "quaternion_to_matrix",
    "yaw_quaternion",
]

_EPS = 1e-12


def qnormalize(q: Tensor) -> Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def qinv(q: Tensor) -> Tensor:
    """Conjugate; the inverse for unit quaternions (the only kind used here)."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def qmul(q: Tensor, r: Tensor) -> Tensor:
    """Hamilton product q·r (apply r first, then q)."""
    w1, x1, y1, z1 = q.unbind(-1)
    w2, x2, y2, z2 = r.unbind(-1)
    return torch.stack(
        (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ),
        dim=-1,
    )


def qrot(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); shapes broadcast."""
    batch = tuple(np.broadcast_shapes(q.shape[:-1], v.shape[:-1]))
    q = q.expand(batch + (4,))
    v = v.expand(batch + (3,))
    u = q[..., 1:]
    w = q[..., :1]
    uv = torch.linalg.cross(u, v, dim=-1)
    uuv = torch.linalg.cross(u, uv, dim=-1)
    return v + 2.0 * (w * uv + uuv)


def qbetween(u: Tensor, v: Tensor) -> Tensor:
    """The shortest-arc rotation taking direction u to direction v.

    Matches the reference formula (w = |u||v| + u·v, xyz = u×v, normalised). Where u and v are
    opposite the reference divides by zero; here the result is a half turn about an axis
    perpendicular to u, which is a valid answer instead of NaN.
    """
    u, v = torch.broadcast_tensors(u, v)
    cross = torch.linalg.cross(u, v, dim=-1)
    w = (u.square().sum(-1, keepdim=True) * v.square().sum(-1, keepdim=True)).sqrt() + (u * v).sum(-1, keepdim=True)
    q = torch.cat([w, cross], dim=-1)
    norm = q.norm(dim=-1, keepdim=True)
    scale = (u.norm(dim=-1, keepdim=True) * v.norm(dim=-1, keepdim=True)).clamp_min(_EPS)
    degenerate = (norm / scale) < 1e-7
    if bool(degenerate.any()):
        # Perpendicular axis: u × x̂, or u × ẑ when u is along x̂.
        x_axis = u.new_tensor([1.0, 0.0, 0.0]).expand(u.shape)
        z_axis = u.new_tensor([0.0, 0.0, 1.0]).expand(u.shape)
        axis = torch.linalg.cross(u, x_axis, dim=-1)
        small = axis.norm(dim=-1, keepdim=True) < 1e-6 * u.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        axis = torch.where(small, torch.linalg.cross(u, z_axis, dim=-1), axis)
        half_turn = torch.cat([torch.zeros_like(w), qnormalize(axis)[..., :3]], dim=-1)
        q = torch.where(degenerate, half_turn, q)
        norm = q.norm(dim=-1, keepdim=True)
    return q / norm.clamp_min(_EPS)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """(..., 4) → (..., 3, 3); scale-invariant like the reference (divides by |q|²)."""
    r, i, j, k = q.unbind(-1)
    two_s = 2.0 / q.square().sum(-1)
    m = torch.stack(
        (
            1 - two_s * (j * j + k * k),
            two_s * (i * j - k * r),
            two_s * (i * k + j * r),
            two_s * (i * j + k * r),
            1 - two_s * (i * i + k * k),
            two_s * (j * k - i * r),
            two_s * (i * k - j * r),
            two_s * (j * k + i * r),
            1 - two_s * (i * i + j * j),
        ),
        dim=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quaternion_to_cont6d(q: Tensor) -> Tensor:
    """Continuous 6-D rotation: the first two columns of the rotation matrix, column 0 first."""
    m = quaternion_to_matrix(q)
    return torch.cat([m[..., 0], m[..., 1]], dim=-1)


def axis_angle_to_quaternion(axis_angle: Tensor) -> Tensor:
    """Rotation vector (axis × angle in radians, (..., 3)) → unit quaternion (..., 4)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    # sin(half)/angle, with its limit 0.5 at angle → 0.
    small = angle < 1e-8
    factor = torch.where(small, 0.5 - angle.square() / 48.0, torch.sin(half) / angle.clamp_min(1e-8))
    return torch.cat([torch.cos(half), axis_angle * factor], dim=-1)


def yaw_quaternion(angle: Tensor) -> Tensor:
    """Rotation by `angle` radians about +Y (counter-clockwise seen from above)."""
    half = 0.5 * angle
    zeros = torch.zeros_like(angle)
    return torch.stack([torch.cos(half), zeros, torch.sin(half), zeros], dim=-1)
