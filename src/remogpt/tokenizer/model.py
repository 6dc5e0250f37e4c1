"""The VQ-VAE of the motion tokenizer (T2M-GPT / MotionGPT architecture), in plain PyTorch.

Encoder: conv → ReLU → `down_t` × (stride-2 conv, residual stack with dilations 9, 3, 1) → conv to the
code dimension. Decoder: the mirror image with nearest-neighbour upsampling. The codebook is
learnt by exponential moving averages of the encoder outputs assigned to each code (no gradient),
and codes that stop being used are reset to random encoder outputs, which keeps the whole
vocabulary alive. Under DDP the codebook statistics are summed over processes and the random
reset vectors come from rank 0, so every process keeps the same codebook.

Every layer with a temporal extent can take a frame mask: positions past a sequence's length are
zeroed before the next layer reads them, so a padded batch gives the same codes as encoding each
sequence alone (what a cache of codes needs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from remogpt.motion.features import features_to_joints
from remogpt.motion.skeleton import skeleton_for_dim
from remogpt.tokenizer.config import TokenizerConfig

__all__ = ["VQVAE", "EMACodebook", "QuantizerOutput", "VQVAEOutput", "tokenizer_loss"]


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x * mask[:, None, :].to(x.dtype)


def _downsample_mask(mask: Tensor | None) -> Tensor | None:
    # A stride-2 conv on length T (even) gives T/2 positions; position i is real iff frame 2i is.
    return None if mask is None else mask[:, ::2]


class ResBlock(nn.Module):
    """ReLU → dilated conv (k=3) → ReLU → 1×1 conv, plus the input."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return _masked(x + self.conv2(F.relu(self.conv1(F.relu(x)))), mask)


class ResStack(nn.Module):
    """`depth` residual blocks with dilations growth**(depth−1) … 1 (T2M-GPT's reversed order)."""

    def __init__(self, width: int, depth: int, growth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(width, growth**d) for d in reversed(range(depth)))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(cfg.feature_dim, cfg.width, 3, padding=1)
        self.down = nn.ModuleList(nn.Conv1d(cfg.width, cfg.width, 4, stride=2, padding=1) for _ in range(cfg.down_t))
        self.res = nn.ModuleList(ResStack(cfg.width, cfg.depth, cfg.dilation_growth_rate) for _ in range(cfg.down_t))
        self.conv_out = nn.Conv1d(cfg.width, cfg.code_dim, 3, padding=1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, D, T) → (B, code_dim, T / 2**down_t)."""
        x = _masked(F.relu(self.conv_in(_masked(x, mask))), mask)
        for down, res in zip(self.down, self.res, strict=True):
            mask = _downsample_mask(mask)
            x = res(_masked(down(x), mask), mask)
        return _masked(self.conv_out(x), mask)


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(cfg.code_dim, cfg.width, 3, padding=1)
        self.res = nn.ModuleList(ResStack(cfg.width, cfg.depth, cfg.dilation_growth_rate) for _ in range(cfg.down_t))
        self.up = nn.ModuleList(nn.Conv1d(cfg.width, cfg.width, 3, padding=1) for _ in range(cfg.down_t))
        self.conv_mid = nn.Conv1d(cfg.width, cfg.width, 3, padding=1)
        self.conv_out = nn.Conv1d(cfg.width, cfg.feature_dim, 3, padding=1)

    def forward(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, code_dim, L) → (B, D, L · 2**down_t); `mask` is at the code rate."""
        x = _masked(F.relu(self.conv_in(_masked(z, mask))), mask)
        for res, up in zip(self.res, self.up, strict=True):
            x = F.interpolate(res(x, mask), scale_factor=2, mode="nearest")
            mask = None if mask is None else mask.repeat_interleave(2, dim=1)
            x = _masked(up(x), mask)
        x = _masked(F.relu(self.conv_mid(x)), mask)
        return _masked(self.conv_out(x), mask)


@dataclass
class QuantizerOutput:
    quantized: Tensor  # (N, code_dim), straight-through: gradients flow to the encoder output
    codes: Tensor  # (N,) long
    commit_loss: Tensor  # scalar: MSE(encoder output, its code) with the code detached
    perplexity: Tensor  # scalar: exp(entropy) of this batch's code histogram
    usage: Tensor  # scalar: fraction of the codebook used in this batch


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class EMACodebook(nn.Module):
    """Nearest-code quantiser whose codebook follows EMAs of the vectors assigned to each code.

    Per training batch with assignments one-hot A (K × N) and vectors x (N × C):
        sum   ← decay · sum   + (1 − decay) · A x
        count ← decay · count + (1 − decay) · A 1
        codebook[k] = sum[k] / count[k]
    A code whose count falls below `dead_code_threshold` is dead: its codebook entry is replaced by
    a random encoder output of the batch, and its statistics restart from that vector
    (sum = threshold · vector, count = threshold) so the next updates build on it (Jukebox's reset;
    T2M-GPT resets only the entry and keeps the stale sum). The codebook is initialised from the first
    training batch's encoder outputs.
    """

    def __init__(self, codebook_size: int, code_dim: int, decay: float = 0.99, dead_code_threshold: float = 1.0):
        super().__init__()
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.decay = decay
        self.dead_code_threshold = dead_code_threshold
        self.register_buffer("codebook", torch.zeros(codebook_size, code_dim))
        self.register_buffer("code_sum", torch.zeros(codebook_size, code_dim))
        self.register_buffer("code_count", torch.zeros(codebook_size))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def _random_rows(self, x: Tensor) -> Tensor:
        """`codebook_size` rows drawn from x without replacement (tiled with small noise if x is short)."""
        n = x.shape[0]
        if n < self.codebook_size:
            reps = -(-self.codebook_size // n)
            noise = torch.randn(reps * n, x.shape[1], device=x.device, dtype=x.dtype) * (0.01 / x.shape[1] ** 0.5)
            x = x.repeat(reps, 1) + noise
        rows = x[torch.randperm(x.shape[0], device=x.device)[: self.codebook_size]].contiguous()
        if _distributed():
            dist.broadcast(rows, src=0)
        return rows

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        rows = self._random_rows(x)
        self.codebook.copy_(rows)
        self.code_sum.copy_(rows * self.dead_code_threshold)
        self.code_count.fill_(self.dead_code_threshold)
        self.initialized.fill_(True)

    def assign(self, x: Tensor) -> Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row of x (N, C)."""
        x = x.float()
        codebook = self.codebook
        distances = x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(1)[None, :]
        return distances.argmin(dim=1)

    @torch.no_grad()
    def ema_update(self, x: Tensor, codes: Tensor) -> None:
        """One EMA step of the statistics and the dead-code reset (see the class docstring)."""
        onehot = F.one_hot(codes, self.codebook_size).to(x.dtype)  # (N, K)
        batch_sum = onehot.t() @ x  # (K, C)
        batch_count = onehot.sum(0)  # (K,)
        if _distributed():
            dist.all_reduce(batch_sum)
            dist.all_reduce(batch_count)
        d = self.decay
        self.code_sum.mul_(d).add_(batch_sum.to(self.code_sum.dtype), alpha=1 - d)
        self.code_count.mul_(d).add_(batch_count.to(self.code_count.dtype), alpha=1 - d)
        alive = (self.code_count >= self.dead_code_threshold)[:, None]
        random_rows = self._random_rows(x).to(self.codebook.dtype)
        self.code_sum.copy_(torch.where(alive, self.code_sum, random_rows * self.dead_code_threshold))
        self.code_count.copy_(
            torch.where(alive[:, 0], self.code_count, self.code_count.new_tensor(self.dead_code_threshold))
        )
        self.codebook.copy_(torch.where(alive, self.code_sum / self.code_count.clamp_min(1e-12)[:, None], random_rows))

    def lookup(self, codes: Tensor) -> Tensor:
        return F.embedding(codes, self.codebook)

    def forward(self, x: Tensor) -> QuantizerOutput:
        """Quantise rows x (N, C); in training mode then update the codebook from this batch.

        Runs in float32 even under mixed precision: nearest-code search and EMA sums in bf16/fp16
        would mis-assign near ties and lose small updates.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            if self.training and not bool(self.initialized):
                self._initialize(x.detach())
            codes = self.assign(x.detach())
            quantized = self.lookup(codes)  # the codes as they were when assigned (T2M-GPT)
            if self.training:
                self.ema_update(x.detach(), codes)
            commit = F.mse_loss(x, quantized.detach())
            quantized = x + (quantized - x).detach()
        counts = torch.bincount(codes, minlength=self.codebook_size).to(x.dtype)
        prob = counts / counts.sum().clamp_min(1)
        perplexity = torch.exp(-(prob * torch.log(prob + 1e-10)).sum())
        return QuantizerOutput(quantized, codes, commit, perplexity, (counts > 0).to(x.dtype).mean())


@dataclass
class VQVAEOutput:
    reconstruction: Tensor  # (B, T, D)
    codes: Tensor  # (B, T / l): the base layer's
    commit_loss: Tensor
    perplexity: Tensor  # of the base layer
    usage: Tensor  # of the base layer
    layer_codes: Tensor | None = None  # (B, T / l, Q) with residual quantisation


class VQVAE(nn.Module):
    """Encoder → EMA codebook (and, with `num_quantizers` > 1, residual codebooks) → decoder over
    (B, T, D) normalised features.

    Residual layers (MoMask): layer i + 1 quantises z − (q_1 + … + q_i). Every layer's codebook learns
    from every batch on every rank, whatever the dropout drew, so the EMA statistics (summed over DDP
    processes) see the same calls everywhere; the dropout only chooses, per sample, how many layers the
    decoder is given. The straight-through estimator passes the decoder's gradient to z once.
    """

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = EMACodebook(cfg.codebook_size, cfg.code_dim, cfg.ema_decay, cfg.dead_code_threshold)
        self.residual_quantizers = nn.ModuleList(
            EMACodebook(cfg.codebook_size, cfg.code_dim, cfg.ema_decay, cfg.dead_code_threshold)
            for _ in range(cfg.num_quantizers - 1)
        )
        self.decoder = Decoder(cfg)

    @property
    def quantizers(self) -> list[EMACodebook]:
        return [self.quantizer, *self.residual_quantizers]

    def encode_latent(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, T, D) → encoder outputs (B, L, code_dim)."""
        return self.encoder(features.transpose(1, 2), mask).transpose(1, 2)

    def assign_layers(self, z: Tensor, layers: int) -> Tensor:
        """Encoder outputs (N, C) → codes (N, layers) of the first `layers` quantisers."""
        residual, codes = z.float(), []
        for quantizer in self.quantizers[:layers]:
            c = quantizer.assign(residual)
            residual = residual - quantizer.lookup(c)
            codes.append(c)
        return torch.stack(codes, dim=-1)

    def encode(self, features: Tensor, mask: Tensor | None = None, layers: int = 1) -> Tensor:
        """(B, T, D) → codes (B, T / l) of the base layer, or (B, T / l, layers) when layers > 1."""
        if not 1 <= layers <= self.cfg.num_quantizers:
            raise ValueError(f"layers must be in [1, {self.cfg.num_quantizers}], got {layers}")
        z = self.encode_latent(features, mask)
        codes = self.assign_layers(z.reshape(-1, z.shape[-1]), layers).view(*z.shape[:2], layers)
        return codes[..., 0] if layers == 1 else codes

    def lookup(self, codes: Tensor) -> Tensor:
        """Codes (B, L) (base only) or (B, L, q), q ≤ Q → the sum of their code vectors (B, L, code_dim)."""
        if codes.ndim == 2:
            return self.quantizer.lookup(codes)
        if codes.shape[-1] > self.cfg.num_quantizers:
            raise ValueError(f"{codes.shape[-1]} code layers for a tokenizer of {self.cfg.num_quantizers}")
        return sum(q.lookup(codes[..., i]) for i, q in enumerate(self.quantizers[: codes.shape[-1]]))

    def decode(self, codes: Tensor, mask: Tensor | None = None) -> Tensor:
        """codes (B, L) or (B, L, q) → features (B, L · l, D); `mask` (B, L) marks real codes."""
        z = self.lookup(codes)
        return self.decoder(z.transpose(1, 2), mask).transpose(1, 2)

    def _quantize_residual(self, z: Tensor) -> tuple[Tensor, QuantizerOutput, Tensor, Tensor]:
        """(B, L, C) → (decoder input, the base layer's output, codes (B, L, Q), mean commitment loss of
        the layers); the dropout applies while training."""
        rows = z.reshape(-1, z.shape[-1])
        residual, parts, codes, commits, base = rows, [], [], [], None
        for quantizer in self.quantizers:
            out = quantizer(residual)
            base = out if base is None else base
            q = out.quantized.detach()  # the code vectors (straight-through value == code)
            parts.append(q)
            codes.append(out.codes)
            commits.append(out.commit_loss)
            residual = residual - q
        assert base is not None
        stacked = torch.stack(parts, dim=1)  # (N, Q, C)
        layers = len(parts)
        keep = torch.full((z.shape[0],), layers, device=z.device)
        if self.training and self.cfg.quantizer_dropout > 0:
            drawn = torch.randint(1, layers + 1, (z.shape[0],), device=z.device)
            dropped = torch.rand(z.shape[0], device=z.device) < self.cfg.quantizer_dropout
            keep = torch.where(dropped, drawn, keep)
        active = torch.arange(layers, device=z.device)[None, :] < keep.repeat_interleave(z.shape[1])[:, None]
        total = (stacked * active[..., None].to(stacked.dtype)).sum(1)
        quantized = rows.float() + (total - rows.float()).detach()
        commit = torch.stack(commits).mean()
        return quantized.view(z.shape), base, torch.stack(codes, dim=-1).view(*z.shape[:2], layers), commit

    def forward(self, features: Tensor) -> VQVAEOutput:
        z = self.encode_latent(features)
        quantized, q, layer_codes, commit = self._quantize_residual(z)  # one layer: T2M-GPT's quantiser
        reconstruction = self.decoder(quantized.transpose(1, 2)).transpose(1, 2)
        layered = layer_codes if self.cfg.num_quantizers > 1 else None
        return VQVAEOutput(reconstruction, layer_codes[..., 0], commit, q.perplexity, q.usage, layered)


#: Distance at which a pair of body parts counts 1/e as much as one in contact (contact_weight).
CONTACT_SCALE_M = 0.1


def tokenizer_loss(
    reconstruction: Tensor,
    target: Tensor,
    commit_loss: Tensor,
    cfg: TokenizerConfig,
    mean: Tensor | None = None,
    std: Tensor | None = None,
) -> dict[str, Tensor]:
    """SmoothL1 on all features + joint_weight × SmoothL1 on the ric dims + commit_weight × commitment,
    and, when their weights are set, terms on the motion itself (features de-normalised by `mean`/`std`):
    heading_weight × L1 of the root's integrated yaw, aligned_joint_weight × the root-aligned MPJPE (m),
    extremity_weight × the same over the wrists and feet, extremity_velocity_weight × the error of their
    velocities (m/s), foot_height_weight × L1 of the feet's height (m), contact_weight × the error of
    the distances between wrists, feet and head (m), weighted towards the pairs that touch.

    The ric dims (4 : 4 + 3(J−1), J = (D + 1) / 12) are the root-relative joint positions; T2M-GPT
    calls this term the "velocity" loss although it acts on positions.
    """
    joints = (cfg.feature_dim + 1) // 12
    ric = slice(4, 4 + 3 * (joints - 1))
    feature = F.smooth_l1_loss(reconstruction, target)
    joint = F.smooth_l1_loss(reconstruction[..., ric], target[..., ric])
    total = feature + cfg.joint_weight * joint + cfg.commit_weight * commit_loss
    losses = {"feature": feature, "joint": joint, "commit": commit_loss}
    weights = {name.removesuffix("_weight"): getattr(cfg, name) for name in cfg.MOTION_TERMS}
    if not any(w > 0 for w in weights.values()):
        return {"loss": total, **losses}
    if mean is None or std is None:
        terms = sorted(k for k, w in weights.items() if w > 0)
        raise ValueError(f"the loss terms {terms} need the features' mean and std")
    pred, true = reconstruction * std + mean, target * std + mean
    if weights["heading"] > 0:  # yaw before frame t = sum of the velocities of frames < t (recover_from_ric)
        losses["heading"] = torch.cumsum(pred[..., :-1, 0] - true[..., :-1, 0], dim=-1).abs().mean()
    if any(w > 0 for k, w in weights.items() if k != "heading"):
        spec = skeleton_for_dim(cfg.feature_dim)
        jp, jt = features_to_joints(pred), features_to_joints(true)
        local_p, local_t = jp - jp[..., :1, :], jt - jt[..., :1, :]
        if weights["aligned_joint"] > 0:
            losses["aligned_joint"] = (local_p - local_t).norm(dim=-1).mean()
        ends = [spec.parts["left_arm"][-1], spec.parts["right_arm"][-1], *spec.left_foot, *spec.right_foot]
        if weights["extremity"] > 0:
            losses["extremity"] = (local_p[..., ends, :] - local_t[..., ends, :]).norm(dim=-1).mean()
        if weights["extremity_velocity"] > 0:
            vel_p = torch.diff(local_p[..., ends, :], dim=-3) * spec.fps
            vel_t = torch.diff(local_t[..., ends, :], dim=-3) * spec.fps
            losses["extremity_velocity"] = (vel_p - vel_t).norm(dim=-1).mean()
        if weights["foot_height"] > 0:
            feet = [*spec.left_foot, *spec.right_foot]
            losses["foot_height"] = (jp[..., feet, 1] - jt[..., feet, 1]).abs().mean()
        if weights["contact"] > 0:
            touch = [*ends[:2], spec.left_foot[-1], spec.right_foot[-1], spec.parts["backbone"][-1]]  # + toes, head
            pair_a, pair_b = torch.triu_indices(len(touch), len(touch), offset=1).tolist()
            a, b = [touch[i] for i in pair_a], [touch[i] for i in pair_b]
            dist_p = (jp[..., a, :] - jp[..., b, :]).norm(dim=-1)
            dist_t = (jt[..., a, :] - jt[..., b, :]).norm(dim=-1)
            near = torch.exp(-dist_t / CONTACT_SCALE_M)
            losses["contact"] = (near * (dist_p - dist_t).abs()).sum() / near.sum().clamp_min(1e-8)
    for name, value in list(losses.items()):
        if name in weights:
            total = total + weights[name] * value
    return {"loss": total, **losses}
