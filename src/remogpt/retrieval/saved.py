"""A trained retriever on disk, written and read without the training harness: loading a run for
`generate` or `serve` must not import Lightning (seconds of a command that answers in one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from remogpt.artifacts import (
    ArtifactError,
    Manifest,
    load_weights,
    read_manifest,
    save_weights,
    sha256_file,
    verify_weights,
    write_manifest,
)
from remogpt.config import ConfigError
from remogpt.data import Normalizer
from remogpt.motion import SkeletonSpec, skeleton_for_dim
from remogpt.retrieval.config import RetrieverConfig
from remogpt.retrieval.model import RetrievalModel, build_model
from remogpt.retrieval.text import TextEncoder

__all__ = ["STAGE", "count_parameters", "load_retriever_model", "save_retriever"]

STAGE = "retriever"


def count_parameters(module: torch.nn.Module | None, trainable_only: bool = False) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)



def save_retriever(
    run_dir: Path | str,
    model: RetrievalModel,
    cfg: RetrieverConfig,
    normalizer: Normalizer,
    data_hash: str | None,
    text_identity: str,
    text_dim: int,
    skeleton: SkeletonSpec,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Write weights (without a frozen text model), Mean/Std, config and the manifest; returns the manifest."""
    run_dir = Path(run_dir)
    state = {k: v for k, v in model.state_dict().items()}
    weights_sha = save_weights(run_dir, state)
    normalizer.save(run_dir)
    cfg.to_yaml(run_dir / "config.yaml")
    info = {
        "weights_sha256": weights_sha,
        "stats_sha256": {name: sha256_file(run_dir / name) for name in ("Mean.npy", "Std.npy")},
        "text_model": text_identity,
        "text_dim": text_dim,
        "feature_dim": skeleton.feature_dim,
        "skeleton": skeleton.name,
        "part_level": cfg.motion.part_level,
        "parameters": {
            "motion_encoder": count_parameters(model.motion_encoder),
            "heads": count_parameters(model.motion_head) + count_parameters(model.text_head),
            "text_encoder": count_parameters(model.text_encoder),
        },
        **(extra or {}),
    }
    manifest = Manifest(stage=STAGE, config=cfg.to_dict(), data_hash=data_hash, extra=info)
    write_manifest(run_dir, manifest)
    return manifest


def load_retriever_model(
    run_dir: Path | str, text_encoder: TextEncoder | None = None
) -> tuple[RetrievalModel, TextEncoder, RetrieverConfig, Normalizer, Manifest]:
    """Read a run back: (model in eval mode, the text encoder to use, config, normaliser, manifest).

    The text model found at the configured path must be the one the run was trained with (same
    content hash, pooling and length); otherwise its embeddings would be meaningless to the heads.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir, stage=STAGE)
    try:
        cfg = RetrieverConfig.from_dict(manifest.config)
    except ConfigError as exc:
        raise ArtifactError(f"{run_dir}: manifest config does not fit this remogpt ({exc})") from None
    extra = manifest.extra
    # A shared encoder is only reused when frozen and the same model: fine-tuned weights get loaded into it.
    if text_encoder is None or not cfg.text.frozen or not text_encoder.frozen or not text_encoder.matches(cfg.text):
        text_encoder = TextEncoder.from_config(cfg.text)
    if text_encoder.identity != extra.get("text_model"):
        raise ArtifactError(
            f"{run_dir}: trained with text model {extra.get('text_model')}, but "
            f"{cfg.text.model_path or 'the bundled all-MiniLM-L6-v2'} is {text_encoder.identity}; "
            "point text.model_path at the original model"
        )
    skeleton = skeleton_for_dim(int(extra.get("feature_dim", 263)))
    live = text_encoder if not cfg.text.frozen else None
    model = build_model(cfg, int(extra.get("text_dim", text_encoder.dim)), live, skeleton)
    weights = load_weights(run_dir, expected_sha256=extra.get("weights_sha256"))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{run_dir}: weights do not fit the config ({str(exc).splitlines()[0]})") from None
    model.eval()
    for name, sha in extra.get("stats_sha256", {}).items():  # the statistics are weights too
        verify_weights(run_dir / name, sha)
    normalizer = Normalizer.load(run_dir)
    return model, text_encoder, cfg, normalizer, manifest
