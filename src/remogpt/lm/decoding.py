"""Decoding rules for generation: what may be emitted, and how each text is sampled.

Two Hugging Face `LogitsProcessor`s, used with `generate(do_sample=False)`:

* `MotionGrammar` lets a motion be only `<som>` code … code `<eom>` `</s>`, with between
  `min_codes` and `max_codes` codes. A small model then cannot produce a malformed sequence: the
  grammar makes it impossible instead of repairing it afterwards.
* `SeededSampler` samples every row with its own random generator (temperature and top-k, then the
  Gumbel-max trick, so the greedy arg-max *is* a sample from the filtered distribution). A text's
  motion then depends on its text, seed and sample number only, never on what else is in the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from remogpt.lm.vocab import MotionVocabulary

__all__ = ["ClassifierFreeGuidance", "MotionGrammar", "SeededSampler", "row_seed"]


def row_seed(seed: int, text: str, sample: int, attempt: int = 1) -> int:
    """A 63-bit seed from (seed, text, sample number, attempt), stable across processes and platforms."""
    digest = hashlib.sha256(f"{seed}\0{text}\0{sample}\0{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class MotionGrammar(LogitsProcessor):
    """Only `<som>`, then motion codes, `<eom>` once `min_codes` are out (forced at `max_codes`), then `</s>`.

    The decoder's first input is its start token, so the generated part is `input_ids[:, 1:]`.
    """

    def __init__(self, vocab: MotionVocabulary, min_codes: int, max_codes: int) -> None:
        if not 1 <= min_codes <= max_codes:
            raise ValueError(f"need 1 ≤ min_codes ≤ max_codes, got {min_codes}, {max_codes}")
        self.som, self.eom, self.eos = vocab.som_id, vocab.eom_id, vocab.eos_id
        self.first, self.last = vocab.motion_offset, vocab.motion_offset + vocab.codebook_size
        self.min_codes, self.max_codes = min_codes, max_codes

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, 1:]
        allowed = torch.zeros_like(scores, dtype=torch.bool)
        if generated.shape[1] == 0:
            allowed[:, self.som] = True
        else:
            is_code = (generated >= self.first) & (generated < self.last)
            n_codes = is_code.sum(dim=1)
            closed = ((generated == self.eom) | (generated == self.eos)).any(dim=1)
            open_rows = ~closed
            allowed[:, self.first : self.last] = (open_rows & (n_codes < self.max_codes))[:, None]
            allowed[:, self.eom] = open_rows & (n_codes >= self.min_codes)
            allowed[:, self.eos] = closed
        return scores.masked_fill(~allowed, float("-inf"))


class SeededSampler(LogitsProcessor):
    """Temperature, top-k, then Gumbel noise from the row's own generator: arg-max = a sample.

    `seeds` has one entry per row of the batch (per returned sequence: beams are not supported).
    """

    def __init__(self, seeds: Sequence[int], temperature: float = 1.0, top_k: int | None = None) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be ≥ 1, got {top_k}")
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature, self.top_k = temperature, top_k

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} seeds")
        logits = scores.float() / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        logp = torch.log_softmax(logits, dim=-1)
        uniform = torch.stack([torch.rand(logits.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        return logp + gumbel.to(logp.device)


class ClassifierFreeGuidance(LogitsProcessor):
    """Classifier-free guidance over a doubled batch: rows [0, B) hold the prompts, rows [B, 2B) the
    same prompts without their text. Every row gets log p_u + scale · (log p_c − log p_u) of its pair.

    Both halves then carry the same scores, and (given the same seeds, the same grammar) sample the
    same token, so the unconditional rows follow the conditional ones and are dropped afterwards.
    A scale above 1 pushes each step towards what the text adds over the prior of motions; the
    retrieved context is in both prompts, so only the text's contribution is amplified.
    """

    def __init__(self, scale: float) -> None:
        if not scale >= 1:
            raise ValueError(f"guidance scale must be ≥ 1, got {scale}")
        self.scale = float(scale)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] % 2:
            raise ValueError(
                f"classifier-free guidance needs an even batch (prompts, then unconditional), got {scores.shape[0]}"
            )
        conditional, unconditional = torch.log_softmax(scores.float(), dim=-1).chunk(2)
        guided = unconditional + self.scale * (conditional - unconditional)
        guided = torch.where(torch.isfinite(conditional), guided, conditional)  # keep what the model rules out
        return torch.cat([guided, guided]).to(scores.dtype)
