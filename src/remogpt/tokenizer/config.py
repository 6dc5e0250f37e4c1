"""Typed configs of the motion tokenizer: the model (saved with every artifact) and its training.

The defaults are the `tiny` preset, sized to train usefully on two CPU cores in a few minutes while
keeping the paper's 512-code vocabulary (so the language model stage sees the same token count);
`paper` is the MotionGPT / T2M-GPT VQ-VAE the paper uses (512 × 512 codebook, width 512, depth 3,
64-frame windows, batch 256, AdamW 2e-4 with betas (0.9, 0.99)).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from remogpt.config import ConfigBase, ConfigError, DataConfig
from remogpt.training import TrainerConfig

__all__ = ["MixFolder", "TokenizerConfig", "TokenizerTrainConfig"]


@dataclasses.dataclass
class TokenizerConfig(ConfigBase):
    """The VQ-VAE: 1-D convolutions over normalised features, an EMA codebook, and the loss weights."""

    feature_dim: int = 263  # HumanML3D (251 for KIT-ML)
    codebook_size: int = 512  # K, the motion vocabulary (paper: 512)
    code_dim: int = 64  # dimension of a code vector (paper: 512)
    width: int = 128  # channels of the convolutions (paper: 512)
    depth: int = 3  # residual blocks per resolution
    down_t: int = 2  # stride-2 convolutions: downsampling rate l = 2**down_t (paper: 4)
    dilation_growth_rate: int = 3  # residual block dilations 1, 3, 9 (applied 9, 3, 1 as T2M-GPT)
    ema_decay: float = 0.99  # codebook EMA decay
    dead_code_threshold: float = 1.0  # a code whose EMA usage count falls below this is reset
    # Residual quantisation (MoMask's RVQ): layer i + 1 quantises what layers 1..i left of the encoder
    # output, each with its own codebook of `codebook_size` codes. The language model reads and writes
    # the first layer (the base codes); the others add detail where they are known (a round trip of a
    # user's motion). 1: one codebook (T2M-GPT, the paper). 4 layers on tiny_detail, 2,000 steps, 2 seeds
    # (benchmarks/results/tokenizer_rvq.json): embedded test 22.1 → 14.8-15.1 mm, hops and the waving side
    # kept in ≥ 0.91 of round trips; the base layer alone decodes like one codebook (24.3-24.6 mm), and
    # the LM writes only that layer, so the demo keeps 1.
    num_quantizers: int = 1
    # Probability that a training sample decodes from a random prefix of the layers (1..Q) rather than
    # all, so that the base codes alone (what the LM makes) still decode to a whole motion (MoMask: 0.2).
    quantizer_dropout: float = 0.0
    commit_weight: float = 0.02  # β of the commitment loss
    joint_weight: float = 0.5  # weight of the SmoothL1 on the joint-position (ric) dims
    # Terms on the motion the features describe rather than on the features (0: off, T2M-GPT's loss).
    # The root's yaw is integrated from a per-frame velocity, so a small error there turns the whole
    # body more and more over a clip, while the feature loss gives that dimension 1/263 of its weight.
    # Both at 1, 1,000 steps, seed 0: embedded test 39.5 → 32.0 mm root-aligned
    # (benchmarks/results/tokenizer_mix_heading_joints.json), but off by default: they trade feature
    # accuracy for joint accuracy (feature MAE 0.200 → 0.221-0.231), the matching evaluator reads the
    # features, and the demo's language model (then on a 1,000-step tokenizer) scored worse on every
    # seed with them (lm_quality.py, 3 fresh demos: evaluator R-Top1 0.454-0.474 against 0.475-0.501,
    # FID up to 2.59 against 1.59; benchmarks/results/lm_quality_heading_joints.json). Turn them on
    # for real mocap with turns.
    heading_weight: float = 0.0  # L1 of the yaw integrated over the window (rad)
    aligned_joint_weight: float = 0.0  # mean distance (m) of the root-aligned joints recovered from the features
    # Terms on the joints the words name: a clap is the wrists meeting for a frame or two and a hop is
    # the feet leaving the floor by 3-5 cm, which a loss averaged over 263 features (or 22 joints)
    # smooths away (eval/rules.py: 0 of 56 claps survived the 2,000-step demo tokenizer).
    extremity_weight: float = 0.0  # mean distance (m) of the root-aligned wrists and feet
    extremity_velocity_weight: float = 0.0  # mean distance (m/s) of their frame-to-frame velocities
    foot_height_weight: float = 0.0  # L1 (m) of the feet's height above the floor (contacts, hops)
    # Contacts between body parts: the error of the distances between wrists, feet and head, weighted
    # by exp(−distance / 0.1 m) in the original so that the pairs that touch (hands in a clap) count most.
    contact_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "feature_dim",
            "codebook_size",
            "code_dim",
            "width",
            "depth",
            "dilation_growth_rate",
            "num_quantizers",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.down_t < 0:
            raise ConfigError(f"down_t must be ≥ 0, got {self.down_t}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ConfigError(f"quantizer_dropout must be in [0, 1], got {self.quantizer_dropout}")
        if self.dead_code_threshold < 0:
            raise ConfigError(f"dead_code_threshold must be ≥ 0, got {self.dead_code_threshold}")
        for name in ("commit_weight", "joint_weight", *self.MOTION_TERMS):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0, got {getattr(self, name)}")

    #: The loss terms computed on the motion the features describe (they need the data's Mean/Std).
    MOTION_TERMS: ClassVar[tuple[str, ...]] = (
        "heading_weight", "aligned_joint_weight", "extremity_weight", "extremity_velocity_weight", "foot_height_weight",
        "contact_weight",
    )  # fmt: skip

    @property
    def downsample(self) -> int:
        """Frames per code (the paper's l)."""
        return 2**self.down_t


@dataclasses.dataclass
class MixFolder(ConfigBase):
    """Another HumanML3D-layout folder whose train clips join the tokenizer's training (a data mix:
    e.g. real motion capture beside the embedded data). Its clips are normalised with the main
    folder's Mean/Std, which the tokenizer keeps."""

    root: Path = Path("data/bandai")
    repeat: int = 1  # windows per clip and epoch (the main folder's clips give one each)

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise ConfigError(f"repeat must be ≥ 1, got {self.repeat}")


@dataclasses.dataclass
class TokenizerTrainConfig(ConfigBase):
    """What `remogpt train tokenizer` does: model, data, optimiser and schedule, and the trainer."""

    model: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    mix: tuple[MixFolder, ...] = ()  # more folders trained on beside `data` (validation stays on `data`)
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(max_steps=4000, batch_size=32, checkpoint_every_n_steps=500,
                                              log_every_n_steps=50, val_every_n_steps=500)
    )  # fmt: skip
    window: int = 64  # training windows of this many frames, one random window per clip per epoch
    # tiny: 1e-3, five times T2M-GPT's 2e-4 (which is for batch 256 at paper size): at the demo's
    # 1,000 steps it took the reconstructions scored by the matching evaluator from R-Top1 0.49 /
    # FID 3.8 to 0.58 / 0.92 (512 embedded test clips; Real 0.68); 2e-3 collapsed to 0.48 / 3.8.
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 200  # linear warm-up from lr/(warmup+1) to lr (T2M-GPT)
    lr_milestones: tuple[int, ...] = (3000,)  # multiply the lr by lr_gamma at each of these steps
    lr_gamma: float = 0.05
    val_clips: int | None = 256  # validate on the first window of the first N val clips; None: all, 0: none

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # tiny with the terms on the joints the words name (benchmarks/tokenizer_variants.py, `ends`, 3
        # seeds at the demo's 2,000 steps against T2M-GPT's loss: embedded test 31.6 → 21.5-22.3 mm,
        # hop counts kept 0.06 → 0.72-1.00, jump counts 0.62 → 0.96-1.00; claps still 0; the waving side
        # 0.87 → 0.74-0.81), for the same training time.
        "tiny_detail": {
            "model": {"heading_weight": 1.0, "aligned_joint_weight": 1.0, "extremity_weight": 2.0,
                      "extremity_velocity_weight": 0.2, "foot_height_weight": 4.0},
        },
        # tiny_detail with 4 residual code layers (num_quantizers, quantizer_dropout 0.2): the variant
        # ends_rvq of benchmarks/tokenizer_variants.py (2 seeds: embedded test 14.8-15.1 mm, hops and the
        # waving side kept in >= 0.91 of round trips); the language model writes the later layers
        # through its residual head (LMConfig.residual_layers).
        "tiny_rvq": {
            "model": {"heading_weight": 1.0, "aligned_joint_weight": 1.0, "extremity_weight": 2.0,
                      "extremity_velocity_weight": 0.2, "foot_height_weight": 4.0, "num_quantizers": 4,
                      "quantizer_dropout": 0.2},
        },
        "paper": {
            "model": {"code_dim": 512, "width": 512, "heading_weight": 0.0, "aligned_joint_weight": 0.0,
                      "extremity_weight": 0.0, "extremity_velocity_weight": 0.0, "foot_height_weight": 0.0,
                      "contact_weight": 0.0},
            "trainer": {"max_steps": 300_000, "batch_size": 256, "checkpoint_every_n_steps": 5000,
                        "log_every_n_steps": 200, "val_every_n_steps": 5000},
            "lr": 2e-4,
            "warmup_steps": 1000,
            "lr_milestones": [200_000],
            "val_clips": None,
        },
    }  # fmt: skip

    def __post_init__(self) -> None:
        unit = self.model.downsample
        if self.window < unit or self.window % unit:
            raise ConfigError(f"window must be a positive multiple of the downsampling rate {unit}, got {self.window}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must be in [0, 1), got {self.betas}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be ≥ 0, got {self.warmup_steps}")
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ConfigError(f"lr_milestones must be increasing, got {list(self.lr_milestones)}")
        if self.val_clips is not None and self.val_clips < 0:
            raise ConfigError(f"val_clips must be ≥ 0 or null, got {self.val_clips}")

    def lr_schedule(self, optimizer: Any) -> Any:
        """T2M-GPT's schedule from torch's schedulers: linear warm-up from lr/(warmup+1) to lr over
        `warmup_steps`, times `lr_gamma` at each of `lr_milestones` (optimiser steps, 0-based)."""
        from torch.optim import lr_scheduler

        decay = lr_scheduler.MultiStepLR(optimizer, list(self.lr_milestones), self.lr_gamma)
        if not self.warmup_steps:
            return decay
        warm = lr_scheduler.LinearLR(optimizer, 1.0 / (self.warmup_steps + 1), 1.0, total_iters=self.warmup_steps)
        return lr_scheduler.ChainedScheduler([warm, decay], optimizer=optimizer)
