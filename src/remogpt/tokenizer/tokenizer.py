"""`MotionTokenizer`: motion features ↔ discrete codes, with its own normalisation statistics.

The public face of the stage: `from_pretrained(dir)`, `encode`/`decode` (one motion) and
`encode_batch`/`decode_batch` (padded, with lengths), `save_pretrained(dir)`. It takes and returns
raw HumanML3D features (as stored in `new_joint_vecs/`) unless told `normalized=True`: the Mean/Std
travel inside the artifact, so a tokenizer works without its data folder.

Lengths: a motion of T frames gives T / l codes (l = 4); T must be a multiple of l. Encoding a
length that is not is an error unless `crop=True`, which drops the last T mod l frames — explicit,
because a silent crop shifts every later use of the frame count. Codes decode to l frames each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from remogpt.artifacts import (
    MANIFEST_NAME,
    ArtifactError,
    Manifest,
    fingerprint_config,
    load_weights,
    read_manifest,
    save_weights,
    write_manifest,
)
from remogpt.config import ConfigError
from remogpt.data.normalize import Normalizer
from remogpt.tokenizer.config import TokenizerConfig, TokenizerTrainConfig
from remogpt.tokenizer.errors import TokenizerError
from remogpt.tokenizer.model import VQVAE

__all__ = ["CONFIG_NAME", "PAD_CODE", "STAGE", "MotionTokenizer"]

STAGE = "tokenizer"
CONFIG_NAME = "config.yaml"
#: Padding value of `encode_batch`'s code matrix (and what `decode_batch` accepts past each length).
PAD_CODE = -1


def _as_float_tensor(x: Any, name: str) -> Tensor:
    if isinstance(x, Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TokenizerError(f"{name}: not an array ({exc})") from None
        if arr.dtype.kind not in "fiu":
            raise TokenizerError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise TokenizerError(f"{name}: expected numbers, got {t.dtype}")
    return t.float()


def _as_code_tensor(x: Any, name: str) -> Tensor:
    if isinstance(x, Tensor):
        t = x
    else:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TokenizerError(f"{name}: codes must be integers, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.numel() == 0:
        return t.long()
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        if t.is_floating_point() and t.numel() and bool((t == t.round()).all()):
            return t.long()
        raise TokenizerError(f"{name}: codes must be integers, got {t.dtype}")
    return t.long()


def _check_finite(t: Tensor, name: str) -> None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise TokenizerError(f"{name}: {int(bad.sum())} NaN/inf values (first at index {first})")


class MotionTokenizer(nn.Module):
    """A trained VQ-VAE with the statistics it was trained on; always used in eval mode."""

    def __init__(self, config: TokenizerConfig, normalizer: Normalizer, manifest: Manifest | None = None) -> None:
        super().__init__()
        if normalizer.dim != config.feature_dim:
            raise TokenizerError(
                f"statistics have {normalizer.dim} dims but the tokenizer takes {config.feature_dim}-d features"
            )
        self.config = config
        self.vqvae = VQVAE(config)
        self.register_buffer("mean", torch.as_tensor(normalizer.mean, dtype=torch.float32).clone())
        self.register_buffer("std", torch.as_tensor(normalizer.std, dtype=torch.float32).clone())
        self.manifest = manifest
        self.eval()

    # ----------------------------------------------------------------------------------------- facts
    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @property
    def num_quantizers(self) -> int:
        """Code layers: 1, or the residual layers' count (the language model reads the first)."""
        return self.config.num_quantizers

    @property
    def downsample(self) -> int:
        """Frames per code."""
        return self.config.downsample

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def codebook_vectors(self) -> np.ndarray:
        """(K, code_dim) code vectors: the language model starts its motion-token embeddings from them,
        so codes that decode to similar motion start out close."""
        return self.vqvae.quantizer.codebook.detach().cpu().numpy().copy()

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer(self.mean.detach().cpu().numpy(), self.std.detach().cpu().numpy())

    @property
    def fingerprint(self) -> str:
        """Content hash of the config and the current weights: caches of codes record it to detect staleness.

        Computed from the tensors themselves (not read from the manifest), so weights changed in
        memory get a new fingerprint; saving and loading keep it. The motion-level loss weights are left
        out: they shape training only, and leaving them out keeps the fingerprints (and so the caches of
        codes) of tokenizers trained before they existed.
        """
        config = fingerprint_config(STAGE, self.config.to_dict())
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
        for key, value in sorted(self.state_dict().items()):
            digest.update(key.encode() + b"\0")
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------------------- checks, normalise
    def _check_features(self, t: Tensor, name: str, crop: bool) -> Tensor:
        d = self.feature_dim
        if t.shape[-1] != d:
            raise TokenizerError(
                f"{name}: features have {t.shape[-1]} dims, this tokenizer takes {d} "
                f"(a motion from another skeleton, or joints instead of features?)"
            )
        frames = t.shape[-2]
        unit = self.downsample
        if frames < unit:
            raise TokenizerError(f"{name}: {frames} frames; a motion needs at least {unit} frames (one code)")
        if frames % unit:
            if not crop:
                raise TokenizerError(
                    f"{name}: {frames} frames is not a multiple of {unit}; crop it to {frames - frames % unit} "
                    f"(or pass crop=True to drop the last {frames % unit})"
                )
            t = t[..., : frames - frames % unit, :]
        _check_finite(t, name)
        return t

    def _normalize(self, t: Tensor, normalized: bool) -> Tensor:
        t = t.to(self.device)
        return t if normalized else (t - self.mean) / self.std

    def _denormalize(self, t: Tensor, normalized: bool) -> Tensor:
        return t if normalized else t * self.std + self.mean

    def _check_codes(self, codes: Tensor, valid: Tensor, name: str) -> None:
        bad = valid & ((codes < 0) | (codes >= self.codebook_size))
        if bool(bad.any()):
            values = sorted({int(v) for v in codes[bad].flatten()[:10]})
            raise TokenizerError(
                f"{name}: {int(bad.sum())} codes outside the codebook [0, {self.codebook_size}) "
                f"(e.g. {values}); were they made by another tokenizer?"
            )

    # --------------------------------------------------------------------------------- one motion
    @torch.no_grad()
    def encode(self, features: Any, *, crop: bool = False, normalized: bool = False, layers: int = 1) -> Tensor:
        """Features (T, D) → codes (T / l,) LongTensor on the tokenizer's device; (T / l, layers) for
        that many residual layers (`layers` ≤ num_quantizers)."""
        t = _as_float_tensor(features, "features")
        if t.ndim != 2:
            raise TokenizerError(f"features: expected shape (T, {self.feature_dim}), got {tuple(t.shape)}")
        t = self._check_features(t, "features", crop)
        self._check_layers(layers)
        return self.vqvae.encode(self._normalize(t, normalized)[None], layers=layers)[0]

    def _check_layers(self, layers: int) -> None:
        if not 1 <= layers <= self.num_quantizers:
            raise TokenizerError(f"layers: {layers}; this tokenizer has {self.num_quantizers} code layer(s)")

    def _check_layered(self, c: Tensor, ndim: int, name: str) -> None:
        """Codes of ndim (base layer) or ndim + 1 dims (residual layers, at most num_quantizers)."""
        if c.ndim == ndim + 1 and not 1 <= c.shape[-1] <= self.num_quantizers:
            raise TokenizerError(f"{name}: {c.shape[-1]} code layers; this tokenizer has {self.num_quantizers}")

    @torch.no_grad()
    def decode(self, codes: Any, *, normalized: bool = False) -> Tensor:
        """Codes (L,) of the base layer, or (L, q) of the first q residual layers → features (L · l, D)
        float32 on the tokenizer's device."""
        c = _as_code_tensor(codes, "codes")
        if c.ndim not in (1, 2):
            raise TokenizerError(f"codes: expected shape (L,) or (L, layers), got {tuple(c.shape)}")
        self._check_layered(c, 1, "codes")
        if c.numel() == 0:
            raise TokenizerError("codes: empty; decoding needs at least one code")
        self._check_codes(c, torch.ones_like(c, dtype=torch.bool), "codes")
        out = self.vqvae.decode(c.to(self.device)[None])[0]
        return self._denormalize(out, normalized)

    # ------------------------------------------------------------------------------------- batches
    @torch.no_grad()
    def encode_batch(
        self, features: Any, lengths: Any = None, *, crop: bool = False, normalized: bool = False, layers: int = 1
    ) -> tuple[Tensor, Tensor]:
        """Padded features (B, T, D) with `lengths` (B,) → (codes (B, L) padded with PAD_CODE, code lengths);
        codes (B, L, layers) for that many residual layers.

        A list of (T_i, D) motions is also accepted (then `lengths` is implied). Each row's codes
        equal `encode` of that motion alone: padding never leaks into real frames.
        """
        if isinstance(features, Sequence) and not isinstance(features, np.ndarray | Tensor):
            items = [_as_float_tensor(f, f"features[{i}]") for i, f in enumerate(features)]
            if not items:
                raise TokenizerError("features: empty list")
            for i, item in enumerate(items):
                if item.ndim != 2:
                    raise TokenizerError(f"features[{i}]: expected shape (T, D), got {tuple(item.shape)}")
            if lengths is None:
                lengths = [item.shape[0] for item in items]
            t_max = max(item.shape[0] for item in items)
            padded = items[0].new_zeros(len(items), t_max, items[0].shape[-1])
            for i, item in enumerate(items):
                padded[i, : item.shape[0]] = item
            t = padded
        else:
            t = _as_float_tensor(features, "features")
        if t.ndim != 3:
            raise TokenizerError(f"features: expected shape (B, T, {self.feature_dim}), got {tuple(t.shape)}")
        if lengths is None:
            lengths_t = torch.full((t.shape[0],), t.shape[1], dtype=torch.long)
        else:
            lengths_t = torch.as_tensor(lengths, dtype=torch.long).flatten().cpu()
        if lengths_t.shape[0] != t.shape[0]:
            raise TokenizerError(f"lengths: {lengths_t.shape[0]} entries for a batch of {t.shape[0]}")
        if bool((lengths_t > t.shape[1]).any()) or bool((lengths_t < 0).any()):
            raise TokenizerError(f"lengths must be in [0, {t.shape[1]}], got {lengths_t.tolist()}")
        self._check_layers(layers)
        unit = self.downsample
        for i, n in enumerate(lengths_t.tolist()):
            self._check_features(t[i, :n], f"features[{i}]", crop)  # length rules and NaN, per motion
        lengths_t = lengths_t - lengths_t % unit
        t_max = int(lengths_t.max())
        t = t[:, :t_max]
        mask = torch.arange(t_max)[None, :] < lengths_t[:, None]
        x = self._normalize(t, normalized) * mask[..., None].to(self.device)
        codes = self.vqvae.encode(x, mask.to(self.device), layers=layers)
        code_lengths = lengths_t // unit
        code_mask = torch.arange(codes.shape[1])[None, :] < code_lengths[:, None]
        if codes.ndim == 3:
            code_mask = code_mask[..., None]
        codes = codes.masked_fill(~code_mask.to(codes.device), PAD_CODE)
        return codes, code_lengths.to(codes.device)

    @torch.no_grad()
    def decode_batch(self, codes: Any, lengths: Any = None, *, normalized: bool = False) -> tuple[Tensor, Tensor]:
        """Codes (B, L) with `lengths` (B,) (or PAD_CODE padding) → (features (B, L · l, D), frame lengths).
        Codes (B, L, q) decode the first q residual layers."""
        c = _as_code_tensor(codes, "codes")
        if c.ndim not in (2, 3):
            raise TokenizerError(f"codes: expected shape (B, L) or (B, L, layers), got {tuple(c.shape)}")
        self._check_layered(c, 2, "codes")
        base = c if c.ndim == 2 else c[..., 0]
        if lengths is None:
            lengths_t = (base != PAD_CODE).sum(1).cpu()
            if bool(((base == PAD_CODE).long().diff(dim=1) < 0).any()):
                raise TokenizerError("codes: PAD_CODE (-1) in the middle of a row; pass lengths")
        else:
            lengths_t = torch.as_tensor(lengths, dtype=torch.long).flatten().cpu()
            if lengths_t.shape[0] != c.shape[0]:
                raise TokenizerError(f"lengths: {lengths_t.shape[0]} entries for a batch of {c.shape[0]}")
            if bool((lengths_t > c.shape[1]).any()) or bool((lengths_t < 0).any()):
                raise TokenizerError(f"lengths must be in [0, {c.shape[1]}], got {lengths_t.tolist()}")
        if bool((lengths_t < 1).any()):
            raise TokenizerError(f"codes: row {int((lengths_t < 1).nonzero()[0])} is empty; every row needs a code")
        mask = torch.arange(c.shape[1])[None, :] < lengths_t[:, None]
        layer_mask = mask if c.ndim == 2 else mask[..., None].expand_as(c)
        self._check_codes(c, layer_mask, "codes")
        l_max = int(lengths_t.max())
        c, mask, layer_mask = c[:, :l_max], mask[:, :l_max], layer_mask[:, :l_max]
        safe = c.masked_fill(~layer_mask, 0).to(self.device)
        out = self.vqvae.decode(safe, mask.to(self.device))
        frame_lengths = lengths_t * self.downsample
        frame_mask = torch.arange(out.shape[1])[None, :] < frame_lengths[:, None]
        out = self._denormalize(out, normalized) * frame_mask[..., None].to(out.device)
        return out, frame_lengths.to(out.device)

    @torch.no_grad()
    def reconstruct(self, features: Any, *, crop: bool = False, normalized: bool = False, layers: int = 1) -> Tensor:
        """decode(encode(features)): what the tokenizer keeps of a motion (through `layers` code layers)."""
        codes = self.encode(features, crop=crop, normalized=normalized, layers=layers)
        return self.decode(codes, normalized=normalized)

    @torch.no_grad()
    def reconstruct_unquantized(self, features: Any, *, crop: bool = False, normalized: bool = False) -> Tensor:
        """The encoder's output decoded without the codebook: what the codec keeps before quantisation,
        so a round trip's error can be split between the autoencoder and the codes."""
        t = _as_float_tensor(features, "features")
        if t.ndim != 2:
            raise TokenizerError(f"features: expected shape (T, {self.feature_dim}), got {tuple(t.shape)}")
        t = self._check_features(t, "features", crop)
        z = self.vqvae.encode_latent(self._normalize(t, normalized)[None])
        return self._denormalize(self.vqvae.decoder(z.transpose(1, 2)).transpose(1, 2)[0], normalized)

    # --------------------------------------------------------------------------------- artifacts
    def save_pretrained(
        self,
        directory: Path | str,
        *,
        train_config: TokenizerTrainConfig | None = None,
        data_hash: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write `model.safetensors`, `config.yaml` (the TokenizerConfig) and `manifest.json`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sha = save_weights(directory, self.state_dict())
        self.config.to_yaml(directory / CONFIG_NAME)
        info = {"weights_sha256": sha, "feature_dim": self.feature_dim, "codebook_size": self.codebook_size,
                "downsample": self.downsample, **(extra or {})}  # fmt: skip
        if train_config is not None:
            info["train_config"] = train_config.to_dict()
        manifest = Manifest(stage=STAGE, config=self.config.to_dict(), data_hash=data_hash, extra=info)
        write_manifest(directory, manifest)
        self.manifest = manifest
        return directory

    @classmethod
    def from_pretrained(
        cls,
        directory: Path | str,
        *,
        map_location: str | torch.device = "cpu",
        feature_dim: int | None = None,
        codebook_size: int | None = None,
    ) -> MotionTokenizer:
        """Load a tokenizer artifact (the `tokenizer/` folder, or a run folder holding one).

        `feature_dim` / `codebook_size`, when given, are what the caller needs (e.g. the language
        model's motion vocabulary): a tokenizer that differs is refused with a clear error.
        """
        directory = Path(directory)
        if not (directory / MANIFEST_NAME).is_file() and (directory / STAGE / MANIFEST_NAME).is_file():
            directory = directory / STAGE
        if not directory.exists():
            raise ArtifactError(f"{directory}: tokenizer folder not found")
        manifest = read_manifest(directory, stage=STAGE)
        try:
            config = TokenizerConfig.from_dict(manifest.config)
        except ConfigError as exc:
            raise ArtifactError(f"{directory}/{MANIFEST_NAME}: bad tokenizer config ({exc})") from None
        if feature_dim is not None and config.feature_dim != feature_dim:
            raise TokenizerError(
                f"{directory}: tokenizer takes {config.feature_dim}-d features, {feature_dim} were expected"
            )
        if codebook_size is not None and config.codebook_size != codebook_size:
            raise TokenizerError(
                f"{directory}: tokenizer has {config.codebook_size} codes, a vocabulary of {codebook_size} was expected"
            )
        weights = load_weights(directory, expected_sha256=manifest.extra.get("weights_sha256"))
        for key in ("mean", "std"):
            if key not in weights:
                raise ArtifactError(f"{directory}: weights lack the normalisation statistics ({key!r})")
        normalizer = Normalizer(weights["mean"].numpy(), weights["std"].numpy())
        if normalizer.dim != config.feature_dim:
            raise TokenizerError(
                f"{directory}: weights were trained on {normalizer.dim}-d features, config says {config.feature_dim}"
            )
        tokenizer = cls(config, normalizer, manifest)
        tokenizer.load_state_dict_checked(weights, str(directory))
        return tokenizer.to(map_location)

    def load_state_dict_checked(self, weights: dict[str, Tensor], where: str) -> None:
        """`load_state_dict` with a message naming every missing, unexpected or mis-shaped tensor."""
        own = self.state_dict()
        missing = sorted(set(own) - set(weights))
        unexpected = sorted(set(weights) - set(own))
        shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                  if k in weights and weights[k].shape != v.shape]  # fmt: skip
        if missing or unexpected or shapes:
            parts = []
            if shapes:
                parts.append("shape mismatch (checkpoint vs config): " + "; ".join(shapes[:4]))
            if missing:
                parts.append(f"missing {missing[:4]}")
            if unexpected:
                parts.append(f"unexpected {unexpected[:4]}")
            raise TokenizerError(f"{where}: weights do not fit this tokenizer config — {', '.join(parts)}")
        self.load_state_dict(weights)
        if not all(bool(q.initialized) for q in self.vqvae.quantizers):
            raise ArtifactError(f"{where}: the codebook was never trained (saved before the first training step)")
