"""The motion–language vocabulary: a text tokenizer plus the motion codebook as added tokens.

V = {V_t, V_m} (paper, "Motion-Language Models"): the text tokenizer's vocabulary, then
`<motion_id_0>` … `<motion_id_{K−1}>` in codebook order (so token id = motion_offset + code), then
`<som>`/`<eom>` delimiting a motion. No pretrained T5 can be downloaded here, so the default text
tokenizer is a byte-level BPE trained on the training captions and the prompt templates (any
Unicode text still encodes, byte by byte); a user's local T5/Flan-T5 tokenizer can be used instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remogpt.errors import RemogptError

__all__ = ["DecodedMotion", "MotionVocabulary", "VocabularyError", "train_text_tokenizer"]

SOM, EOM = "<som>", "<eom>"


class VocabularyError(RemogptError, ValueError):
    """A tokenizer folder or token sequence that does not fit the motion vocabulary."""


def motion_token(code: int) -> str:
    return f"<motion_id_{code}>"


def train_text_tokenizer(texts: Iterable[str], vocab_size: int = 2000):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer (T5-style special tokens: <pad>=0, </s>=1, <unk>=2) trained on texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


@dataclass
class DecodedMotion:
    """Codes read from generated ids, and what was wrong with the sequence, if anything."""

    codes: np.ndarray  # (L,) int64
    ended: bool  # an <eom> closed the motion
    dropped: int  # tokens inside the motion that were not motion codes
    problem: str | None  # None when the sequence is valid
    positions: np.ndarray | None = None  # (L,) where in the ids each code was read

    @property
    def valid(self) -> bool:
        return self.problem is None


class MotionVocabulary:
    """Text tokenizer + motion tokens; converts between codes, token strings and ids."""

    def __init__(self, tokenizer, codebook_size: int) -> None:  # type: ignore[no-untyped-def]
        self.tokenizer = tokenizer
        self.codebook_size = codebook_size
        missing = [t for t in (motion_token(0), motion_token(codebook_size - 1), SOM, EOM)
                   if t not in tokenizer.get_vocab()]  # fmt: skip
        if missing:
            tokenizer.add_tokens([motion_token(i) for i in range(codebook_size)] + [SOM, EOM], special_tokens=True)
        ids = tokenizer.convert_tokens_to_ids([motion_token(i) for i in range(codebook_size)])
        if ids != list(range(ids[0], ids[0] + codebook_size)):
            raise VocabularyError("motion tokens are not contiguous in the tokenizer (built for another codebook?)")
        self.motion_offset = int(ids[0])
        self.som_id = int(tokenizer.convert_tokens_to_ids(SOM))
        self.eom_id = int(tokenizer.convert_tokens_to_ids(EOM))
        extra = [t for t in tokenizer.get_vocab() if t.startswith("<motion_id_")]
        if len(extra) != codebook_size:
            raise VocabularyError(f"tokenizer has {len(extra)} motion tokens, the codebook {codebook_size}")

    @classmethod
    def build(cls, captions: Iterable[str], extra_texts: Iterable[str], codebook_size: int,
              text_vocab_size: int = 2000) -> MotionVocabulary:  # fmt: skip
        tokenizer = train_text_tokenizer([*captions, *extra_texts], text_vocab_size)
        return cls(tokenizer, codebook_size)

    @classmethod
    def from_pretrained(cls, path: Path | str, codebook_size: int) -> MotionVocabulary:
        """A saved vocabulary, or a local T5/Flan-T5 tokenizer folder (motion tokens are added)."""
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise VocabularyError(f"{path}: no usable tokenizer ({str(exc).splitlines()[0]})") from None
        return cls(tokenizer, codebook_size)

    def save_pretrained(self, path: Path | str) -> None:
        self.tokenizer.save_pretrained(str(path))

    def __len__(self) -> int:
        return len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    def motion_string(self, codes: Sequence[int] | np.ndarray) -> str:
        """Codes → "<som><motion_id_3>…<eom>" (the form motions take inside prompts and targets)."""
        arr = np.asarray(codes)
        if arr.size and (arr.min() < 0 or arr.max() >= self.codebook_size):
            raise VocabularyError(f"motion codes must be in [0, {self.codebook_size}), got {arr.min()}…{arr.max()}")
        return SOM + "".join(motion_token(int(c)) for c in arr) + EOM

    def decode_motion(self, ids: Sequence[int], min_codes: int = 1) -> DecodedMotion:
        """The codes of the first motion in generated ids; never raises on malformed output."""
        ids = [int(i) for i in ids]
        start = ids.index(self.som_id) + 1 if self.som_id in ids else 0
        codes: list[int] = []
        positions: list[int] = []
        dropped = 0
        ended = False
        for at, i in enumerate(ids[start:], start):
            if i == self.eom_id:
                ended = True
                break
            if i in (self.eos_id, self.pad_id):
                break
            if self.motion_offset <= i < self.motion_offset + self.codebook_size:
                codes.append(i - self.motion_offset)
                positions.append(at)
            else:
                dropped += 1
        problem = None
        if not ended:
            problem = "no <eom> (generation stopped early)"
        if len(codes) < min_codes:
            problem = f"only {len(codes)} motion codes (need {min_codes})"
        elif dropped:
            problem = problem or f"{dropped} non-motion tokens inside the motion"
        return DecodedMotion(np.asarray(codes, dtype=np.int64), ended, dropped, problem,
                             np.asarray(positions, dtype=np.int64))  # fmt: skip

    def decode_text(self, ids: Sequence[int]) -> str:
        """Generated ids → caption text, with motion and special tokens removed."""
        keep = [int(i) for i in ids if not (self.motion_offset <= int(i) < self.motion_offset + self.codebook_size)
                and int(i) not in (self.som_id, self.eom_id)]  # fmt: skip
        return self.tokenizer.decode(keep, skip_special_tokens=True).strip()
