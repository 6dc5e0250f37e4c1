"""The T5 motion–language model (Hugging Face `T5ForConditionalGeneration`) over the joint vocabulary."""

from __future__ import annotations

from typing import Any

from remogpt.lm.config import LMConfig
from remogpt.lm.vocab import MotionVocabulary

__all__ = ["build_t5"]


def build_t5(cfg: LMConfig, vocab: MotionVocabulary) -> Any:
    """A T5 of the configured size from scratch, or the local pretrained one of `cfg.lm_init`,
    with its embeddings resized to the text + motion vocabulary."""
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
        tie_word_embeddings=False,
        pad_token_id=vocab.pad_id,
        eos_token_id=vocab.eos_id,
        decoder_start_token_id=vocab.pad_id,
    )
    return T5ForConditionalGeneration(t5_cfg)
