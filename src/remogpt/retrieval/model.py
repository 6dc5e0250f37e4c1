"""The retrieval model (encoders + projection heads into one space) and its contrastive loss (Eq. 3)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from remogpt.motion import HUMANML3D, SkeletonSpec
from remogpt.retrieval.config import RetrieverConfig
from remogpt.retrieval.motion import PartLevelMotionEncoder, ProjectionHead, WholeBodyMotionEncoder
from remogpt.retrieval.text import TextEncoder

__all__ = ["RetrievalModel", "build_model", "info_nce", "near_duplicate_mask"]


def near_duplicate_mask(sentence_emb: Tensor, threshold: float) -> Tensor:
    """(B, B) True where two *different* items' captions are near-identical (TMR: cosine > 2·threshold − 1).

    `sentence_emb` are unit-norm frozen sentence embeddings; the diagonal is always False.
    """
    selfsim = sentence_emb @ sentence_emb.T
    near = selfsim > 2 * threshold - 1
    return near & ~torch.eye(len(near), dtype=torch.bool, device=near.device)


def info_nce(
    text_latent: Tensor,
    motion_latent: Tensor,
    temperature: Tensor | float,
    sentence_emb: Tensor | None = None,
    threshold: float | None = None,
) -> Tensor:
    """Symmetric InfoNCE over s(t, m) and s(m, t) = cos / τ (Eq. 3), pair i ↔ i positive.

    Pairs whose captions are near-duplicates (see `near_duplicate_mask`) are removed from the
    negatives of both directions, as TMR does, because they are probably not negatives at all.
    """
    sim = F.normalize(text_latent, dim=-1) @ F.normalize(motion_latent, dim=-1).T / temperature
    if sentence_emb is not None and threshold is not None:
        sim = sim.masked_fill(near_duplicate_mask(sentence_emb, threshold), float("-inf"))
    labels = torch.arange(len(sim), device=sim.device)
    return (F.cross_entropy(sim, labels) + F.cross_entropy(sim.T, labels)) / 2


class RetrievalModel(nn.Module):
    """s(m, t) = cos(F̂^M(m), F̂^T(t)): a motion encoder and a text encoder, each with a projection head.

    The text encoder is optional: a frozen one lives outside the model (its outputs are cached), and
    the heads then take its sentence embeddings (`embed_sentences`).
    """

    def __init__(
        self,
        motion_encoder: PartLevelMotionEncoder | WholeBodyMotionEncoder,
        motion_head: nn.Module,
        text_head: nn.Module,
        text_encoder: TextEncoder | None = None,
        temperature: float = 0.1,
        learn_temperature: bool = False,
    ) -> None:
        super().__init__()
        self.motion_encoder = motion_encoder
        self.motion_head = motion_head
        self.text_head = text_head
        self.text_encoder = text_encoder
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def temperature(self) -> Tensor:
        # Clamped as CLIP does (scale ≤ 100), so a learnt temperature cannot run away.
        return 1.0 / self.log_scale.clamp(max=math.log(100.0)).exp()

    @property
    def part_level(self) -> bool:
        return isinstance(self.motion_encoder, PartLevelMotionEncoder)

    def embed_motion(self, features: Tensor, mask: Tensor, drop: Collection[str] = ()) -> Tensor:
        """Normalised features (B, T, D) and mask → unit-norm (B, latent)."""
        return F.normalize(self.motion_head(self.motion_encoder(features, mask, drop)), dim=-1)

    def embed_sentences(self, sentence_emb: Tensor) -> Tensor:
        """The text encoder's sentence embeddings (B, d_text) → unit-norm (B, latent)."""
        return F.normalize(self.text_head(sentence_emb), dim=-1)

    def embed_text(self, texts: Sequence[str]) -> Tensor:
        if self.text_encoder is None:
            raise RuntimeError("this model holds no text encoder; embed its sentence embeddings instead")
        return self.embed_sentences(self.text_encoder(texts))


def build_model(
    cfg: RetrieverConfig, text_dim: int, text_encoder: TextEncoder | None = None, skeleton: SkeletonSpec = HUMANML3D
) -> RetrievalModel:
    """The model a config describes (part-level or whole-body), with freshly initialised encoders/heads."""
    if cfg.motion.part_level:
        motion: PartLevelMotionEncoder | WholeBodyMotionEncoder = PartLevelMotionEncoder.from_config(
            cfg.motion, skeleton
        )
    else:
        motion = WholeBodyMotionEncoder.from_config(cfg.motion, skeleton)
    return RetrievalModel(
        motion,
        ProjectionHead(motion.out_dim, cfg.latent_dim, cfg.head_dropout),
        ProjectionHead(text_dim, cfg.latent_dim, cfg.head_dropout),
        text_encoder=text_encoder,
        temperature=cfg.temperature,
        learn_temperature=cfg.learn_temperature,
    )
