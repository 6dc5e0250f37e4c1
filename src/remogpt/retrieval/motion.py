"""Motion encoders: PL-TMR's one-light-transformer-per-body-part (Eq. 2) and the whole-body baseline.

Both map a padded batch of normalised features (B, T, D) with its mask to one vector per motion;
padding never influences the result (it is masked out of attention and out of the pooling), so a
motion embeds the same alone or in a batch with longer ones.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import torch
from torch import Tensor, nn

from remogpt.motion import HUMANML3D, PART_NAMES, SkeletonSpec, part_dims, split_parts
from remogpt.retrieval.config import MotionEncoderConfig
from remogpt.retrieval.errors import RetrievalInputError

__all__ = ["PartLevelMotionEncoder", "ProjectionHead", "SequenceEncoder", "WholeBodyMotionEncoder"]


def _sinusoids(length: int, width: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : width // 2]
    return table


class SequenceEncoder(nn.Module):
    """A light transformer: features → width, sinusoidal positions, pre-norm encoder, one pooled vector.

    `pooling="cls"` reads a learnt summary token prepended to the sequence (TMR's encoder);
    `"mean"` averages the real tokens. With `stride` s > 1, s consecutive frames form one token
    (their features concatenated, then projected); the number of frames must be a multiple of s.
    """

    def __init__(
        self,
        in_dim: int,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        ff_size: int = 128,
        dropout: float = 0.1,
        pooling: str = "cls",
        max_frames: int = 256,
        stride: int = 1,
    ) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.in_dim, self.width, self.pooling, self.max_frames, self.stride = in_dim, width, pooling, max_frames, stride
        self.input = nn.Linear(in_dim * stride, width)
        self.summary = nn.Parameter(torch.randn(1, 1, width) * 0.02) if pooling == "cls" else None
        self.register_buffer("positions", _sinusoids(max_frames // stride + 2, width), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff_size, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T, in_dim) and (B, T) bool (True on real frames) → (B, width)."""
        if x.shape[-1] != self.in_dim:
            raise RetrievalInputError(f"motion encoder expects {self.in_dim} dims per frame, got {x.shape[-1]}")
        if x.shape[1] > self.max_frames:
            raise RetrievalInputError(f"motion has {x.shape[1]} frames, the encoder takes at most {self.max_frames}")
        if self.stride > 1:
            b, t, d = x.shape
            if t % self.stride or bool((mask.sum(1) % self.stride).any()):
                raise RetrievalInputError(
                    f"motion lengths must be multiples of the encoder's stride {self.stride} "
                    f"(got batch length {t}, lengths {mask.sum(1).tolist()[:8]})"
                )
            x = x.reshape(b, t // self.stride, self.stride * d)
            mask = mask[:, :: self.stride]
        h = self.input(x)
        if self.summary is not None:
            h = torch.cat([self.summary.expand(len(h), -1, -1), h], dim=1)
            mask = torch.cat([mask.new_ones(len(mask), 1), mask], dim=1)
        h = self.dropout(h + self.positions[: h.shape[1]])
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask))
        if self.summary is not None:
            return h[:, 0]
        weights = mask.unsqueeze(-1).to(h.dtype)
        return (h * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _check_mask(features: Tensor, mask: Tensor) -> None:
    if features.ndim != 3 or mask.shape != features.shape[:2]:
        raise RetrievalInputError(
            f"expected features (B, T, D) and mask (B, T), got {tuple(features.shape)} and {tuple(mask.shape)}"
        )
    if not bool(mask.any(dim=1).all()):
        raise RetrievalInputError("every motion needs at least one real frame (a mask row is all padding)")


class PartLevelMotionEncoder(nn.Module):
    """F^M(m) = Concat[F^M_1(m_1), …, F^M_P(m_P)] (Eq. 2): each part's encoder sees only its dims."""

    def __init__(self, part_encoders: Mapping[str, nn.Module], skeleton: SkeletonSpec = HUMANML3D) -> None:
        super().__init__()
        missing = [p for p in PART_NAMES if p not in part_encoders]
        if missing:
            raise ValueError(f"part encoders missing for {missing}")
        self.skeleton = skeleton
        self.parts = nn.ModuleDict({name: part_encoders[name] for name in PART_NAMES})
        self.out_dim = sum(int(enc.width) for enc in self.parts.values())  # type: ignore[arg-type]
        self.in_dim = skeleton.feature_dim

    @classmethod
    def from_config(cls, cfg: MotionEncoderConfig, skeleton: SkeletonSpec = HUMANML3D) -> PartLevelMotionEncoder:
        dims = part_dims(skeleton)
        ff = max(1, round(cfg.ff_mult * cfg.width))
        encoders = {
            name: SequenceEncoder(
                dims[name],
                cfg.width,
                cfg.layers,
                cfg.heads,
                ff,
                cfg.dropout,
                cfg.pooling,
                cfg.max_frames,
                cfg.frame_stride,
            )
            for name in PART_NAMES
        }
        return cls(encoders, skeleton)

    def part_embeddings(self, features: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Each part's pooled vector, {part: (B, width)} in the paper's part order."""
        _check_mask(features, mask)
        if features.shape[-1] != self.in_dim:
            raise RetrievalInputError(
                f"motion has {features.shape[-1]} dims per frame, this retriever takes "
                f"{self.in_dim} ({self.skeleton.name})"
            )
        parts = split_parts(features, self.skeleton)
        return {name: self.parts[name](parts[name], mask) for name in PART_NAMES}

    def forward(self, features: Tensor, mask: Tensor, drop: Collection[str] = ()) -> Tensor:
        """(B, T, D) → (B, out_dim); parts named in `drop` contribute zeros (a test-time ablation)."""
        unknown = set(drop) - set(PART_NAMES)
        if unknown:
            raise RetrievalInputError(f"unknown parts {sorted(unknown)} (known: {', '.join(PART_NAMES)})")
        emb = self.part_embeddings(features, mask)
        return torch.cat([torch.zeros_like(emb[p]) if p in drop else emb[p] for p in PART_NAMES], dim=-1)


class WholeBodyMotionEncoder(nn.Module):
    """The TMR-style baseline: one transformer over all dims of every frame."""

    def __init__(self, encoder: SequenceEncoder, skeleton: SkeletonSpec = HUMANML3D) -> None:
        super().__init__()
        if encoder.in_dim != skeleton.feature_dim:
            raise ValueError(
                f"encoder takes {encoder.in_dim} dims, the {skeleton.name} skeleton has {skeleton.feature_dim}"
            )
        self.skeleton = skeleton
        self.body = encoder
        self.out_dim = encoder.width
        self.in_dim = skeleton.feature_dim

    @classmethod
    def from_config(cls, cfg: MotionEncoderConfig, skeleton: SkeletonSpec = HUMANML3D) -> WholeBodyMotionEncoder:
        width = cfg.whole_body_width or cfg.width * len(PART_NAMES)
        heads = width // cfg.head_dim
        ff = max(1, round(cfg.ff_mult * width))
        encoder = SequenceEncoder(
            skeleton.feature_dim,
            width,
            cfg.layers,
            heads,
            ff,
            cfg.dropout,
            cfg.pooling,
            cfg.max_frames,
            cfg.frame_stride,
        )
        return cls(encoder, skeleton)

    def forward(self, features: Tensor, mask: Tensor, drop: Collection[str] = ()) -> Tensor:
        _check_mask(features, mask)
        if drop:
            raise RetrievalInputError("the whole-body encoder has no parts to drop")
        if features.shape[-1] != self.in_dim:
            raise RetrievalInputError(
                f"motion has {features.shape[-1]} dims per frame, this retriever takes "
                f"{self.in_dim} ({self.skeleton.name})"
            )
        return self.body(features, mask)


class ProjectionHead(nn.Module):
    """Into the shared space: linear, then a residual GELU MLP and LayerNorm (MotionPatches' head)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.projection = nn.Linear(in_dim, out_dim)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(out_dim, out_dim), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        projected = self.projection(x)
        return self.norm(projected + self.mlp(projected))
