"""The T5 motion–language model (Hugging Face `T5ForConditionalGeneration`) over the joint vocabulary."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from remogpt.lm.config import LMConfig
from remogpt.lm.vocab import MotionVocabulary

__all__ = ["build_t5"]


def build_t5(cfg: LMConfig, vocab: MotionVocabulary, codebook: np.ndarray | None = None) -> Any:
    """A T5 of the configured size from scratch, or the local pretrained one of `cfg.lm_init`,
    with its embeddings resized to the text + motion vocabulary; with `cfg.motion_embedding_init ==
    "codebook"` the motion-token rows start from `codebook` (the tokenizer's (K, D) code vectors)."""
    model = _t5(cfg, vocab)
    if cfg.motion_embedding_init == "codebook":
        if codebook is None or codebook.shape[0] != vocab.codebook_size:
            raise ValueError(f"codebook initialisation needs the tokenizer's {vocab.codebook_size} code vectors")
        init_motion_embeddings(model, vocab, codebook, seed=0)
    return model


def init_motion_embeddings(model: Any, vocab: MotionVocabulary, codebook: np.ndarray, seed: int = 0) -> None:
    """Write the codebook into the motion-token rows of the input (and, untied, output) embeddings.

    The centred code vectors are mapped to d_model by PCA (D ≥ d_model) or a random orthonormal
    map (D < d_model), both of which keep their distances up to scale, then scaled to the spread of
    the text-token rows, so neither kind of token dominates at the start."""
    emb = model.get_input_embeddings().weight
    d_model = emb.shape[1]
    c = np.asarray(codebook, dtype=np.float64)
    c = c - c.mean(axis=0)
    if c.shape[1] >= d_model:
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        x = c @ vt[:d_model].T
    else:
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d_model, c.shape[1])))
        x = c @ q.T
    rows = slice(vocab.motion_offset, vocab.motion_offset + vocab.codebook_size)
    with torch.no_grad():
        text_std = float(emb[: vocab.motion_offset].std())
        x = x / max(float(x.std()), 1e-8) * text_std
        emb[rows] = torch.as_tensor(x, dtype=emb.dtype)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            scale = float(out.weight[: vocab.motion_offset].std()) / text_std
            out.weight[rows] = torch.as_tensor(x, dtype=out.weight.dtype) * scale


def _t5(cfg: LMConfig, vocab: MotionVocabulary) -> Any:
    from transformers import T5Config, T5ForConditionalGeneration

    if cfg.lm_init is not None:
        from remogpt.lm.vocab import VocabularyError

        try:
            model = T5ForConditionalGeneration.from_pretrained(str(cfg.lm_init), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise VocabularyError(f"{cfg.lm_init}: not a loadable T5 folder ({str(exc).splitlines()[0]})") from None
        model.resize_token_embeddings(len(vocab))
        return model.train()  # from_pretrained returns eval mode (dropout off)
    t5_cfg = T5Config(
        vocab_size=len(vocab),
        d_model=cfg.d_model,
        d_kv=cfg.d_kv,
        d_ff=cfg.d_ff,
        num_layers=cfg.num_layers,
        num_decoder_layers=cfg.num_decoder_layers,
        num_heads=cfg.num_heads,
        dropout_rate=cfg.dropout_rate,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=cfg.tie_embeddings,
        pad_token_id=vocab.pad_id,
        eos_token_id=vocab.eos_id,
        decoder_start_token_id=vocab.pad_id,
    )
    return T5ForConditionalGeneration(t5_cfg)
