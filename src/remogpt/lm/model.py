"""The T5 motion–language model (Hugging Face `T5ForConditionalGeneration`) over the joint vocabulary.

`MotionT5` is T5 plus one optional addition, learned *motion position* embeddings: a motion token's
offset from its `<som>` (in the prompt's retrieved motions) or from the start of the output motion
gets one shared vector, added to the token's embedding. T5 has only relative position biases, and
cross-attention has none, so a decoder can copy a retrieved motion only by content ("find the code
I just wrote, write the next"); motion codes come in runs and repeats (a held pose is one code many
times), which makes that ambiguous, and a small model then learns to copy very slowly. With the
shared offsets, writing code t of a motion next to code t of the retrieved one is one attention
step. With `motion_positions = 0` (the paper preset) the model is exactly T5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import T5ForConditionalGeneration

from remogpt.lm.config import LMConfig
from remogpt.lm.vocab import MotionVocabulary

__all__ = ["MotionT5", "build_t5", "load_t5"]


class MotionT5(T5ForConditionalGeneration):
    """T5 with optional motion position embeddings (see the module docstring); saved in Hugging Face layout."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        n = int(getattr(config, "motion_positions", 0) or 0)
        self.motion_position = nn.Embedding(n, config.d_model) if n else None
        if n:
            nn.init.normal_(self.motion_position.weight, std=config.initializer_factor)

    def _motion_mask(self, ids: torch.Tensor) -> torch.Tensor:
        first = self.config.motion_offset
        return (ids >= first) & (ids < first + self.config.motion_codes)

    def embed_encoder_inputs(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings, plus each motion code's offset from the last `<som>` before it."""
        embeds = self.shared(input_ids)
        if self.motion_position is None:
            return embeds
        index = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        som_at = torch.where(input_ids == self.config.som_token_id, index, torch.full_like(index, -1))
        last_som = som_at.cummax(1).values
        offset = (index - last_som - 1).clamp(0, self.motion_position.num_embeddings - 1)
        keep = self._motion_mask(input_ids) & (last_som >= 0)
        return embeds + self.motion_position(offset) * keep[..., None].to(embeds.dtype)

    def embed_decoder_inputs(self, decoder_input_ids: torch.Tensor, past: int) -> torch.Tensor:
        """Output motions start at decoder position 2 (start token, `<som>`), so code t sits at t + 2."""
        embeds = self.shared(decoder_input_ids)
        if self.motion_position is None:
            return embeds
        position = past + torch.arange(decoder_input_ids.shape[1], device=decoder_input_ids.device)
        offset = (position - 2).clamp(0, self.motion_position.num_embeddings - 1).expand_as(decoder_input_ids)
        keep = self._motion_mask(decoder_input_ids)
        return embeds + self.motion_position(offset) * keep[..., None].to(embeds.dtype)

    def forward(self, input_ids: Any = None, attention_mask: Any = None, decoder_input_ids: Any = None,
                **kwargs: Any) -> Any:  # fmt: skip
        if self.motion_position is not None:
            if input_ids is not None and kwargs.get("encoder_outputs") is None and kwargs.get("inputs_embeds") is None:
                kwargs["inputs_embeds"], input_ids = self.embed_encoder_inputs(input_ids), None
            labels = kwargs.get("labels")
            if decoder_input_ids is None and kwargs.get("decoder_inputs_embeds") is None and labels is not None:
                decoder_input_ids = self._shift_right(labels)
            if decoder_input_ids is not None and kwargs.get("decoder_inputs_embeds") is None:
                cache = kwargs.get("cache") if kwargs.get("cache") is not None else kwargs.get("past_key_values")
                past = int(cache.get_seq_length()) if cache is not None else 0
                kwargs["decoder_inputs_embeds"] = self.embed_decoder_inputs(decoder_input_ids, past)
                decoder_input_ids = None
        return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                               decoder_input_ids=decoder_input_ids, **kwargs)  # fmt: skip

    def generate_from_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        """`generate` on token ids; the encoder gets its motion positions too (generate calls it directly)."""
        if self.motion_position is None:
            return self.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return self.generate(inputs_embeds=self.embed_encoder_inputs(input_ids), attention_mask=attention_mask,
                             **kwargs)  # fmt: skip


def load_t5(path: Path | str) -> MotionT5:
    """A saved language model (Hugging Face folder), in eval mode."""
    return MotionT5.from_pretrained(str(path), local_files_only=True).eval()



def build_t5(cfg: LMConfig, vocab: MotionVocabulary, codebook: np.ndarray | None = None) -> Any:
    """A T5 of the configured size from scratch, or the local pretrained one of `cfg.lm_init`,
    with its embeddings resized to the text + motion vocabulary; with `cfg.motion_embedding_init ==
    "codebook"` the motion-token rows start from `codebook` (the tokenizer's (K, D) code vectors)."""
    model = _t5(cfg, vocab)
    model.config.update({"motion_offset": vocab.motion_offset, "motion_codes": vocab.codebook_size,
                         "som_token_id": vocab.som_id})  # fmt: skip
    if cfg.motion_positions and model.motion_position is None:  # a local pretrained T5 gains them
        model.config.motion_positions = cfg.motion_positions
        model.motion_position = nn.Embedding(cfg.motion_positions, model.config.d_model)
        nn.init.normal_(model.motion_position.weight, std=model.config.initializer_factor)
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
    from transformers import T5Config

    if cfg.lm_init is not None:
        from remogpt.lm.vocab import VocabularyError

        try:
            model = MotionT5.from_pretrained(str(cfg.lm_init), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise VocabularyError(f"{cfg.lm_init}: not a loadable T5 folder ({str(exc).splitlines()[0]})") from None
        model.resize_token_embeddings(len(vocab))
        model.config.motion_positions = 0
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
        motion_positions=cfg.motion_positions,
        motion_offset=vocab.motion_offset,
        motion_codes=vocab.codebook_size,
        som_token_id=vocab.som_id,
    )
    return MotionT5(t5_cfg)
