"""Training samples of the language model: motion codes, captions and their retrieved context.

Retrievals are computed once per run from the training database and cached (keyed by the
retriever's fingerprint, the data and k): a text-to-motion sample gets the captions' t→m and t→t
neighbours, a captioning sample its motion's m→t and m→m neighbours, never its own clip, its
mirror or their timed parts (the retriever excludes whole families by id). With `answer_exclusions`
a sample's context also leaves out every clip that is its answer under another name: one that
shares a caption with it, or (embedded data) shows the same composition.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset

from remogpt.artifacts import atomic_write_text
from remogpt.config import DataConfig
from remogpt.lm.config import RetrievalPromptConfig
from remogpt.lm.prompts import ContextPair, PromptBuilder
from remogpt.lm.vocab import MotionVocabulary

__all__ = [
    "CONTINUATION_OVERLAP",
    "DIRECTIONS",
    "LMDataset",
    "LMSample",
    "LengthBucketBatchSampler",
    "RetrievalTable",
    "answer_exclusions",
    "codes_for",
    "context_from",
    "lm_collate",
    "samples_from_split",
]

#: Codes of the motion so far that a continuation's target starts with (and that the decoder is
#: handed at inference): 16 frames, enough to carry pose and pace over the cut.
CONTINUATION_OVERLAP = 4

#: Retrieval directions per task: (the "t2m"-side modality, the "t2t"-side modality).
DIRECTIONS = {"t2m": ("t2m", "t2t"), "m2t": ("m2t", "m2m")}


@dataclass
class LMSample:
    id: str  # a clip id, or "<clip>#<start>-<end>" for a timed caption's segment
    clip_id: str
    captions: list[str]
    codes: np.ndarray  # (L,) motion codes (the tokenizer's base layer)
    residual: np.ndarray | None = None  # (L, q − 1) codes of a residual tokenizer's later layers


def codes_for(sample_id: str, clip_codes: dict[str, np.ndarray], fps: float = 20.0, unit: int = 4) -> np.ndarray:
    """Codes of a sample: the clip's, or the slice of a timed segment (frames // unit)."""
    from remogpt.data import parse_sample_id

    sample = parse_sample_id(sample_id)
    codes = clip_codes[sample.clip_id]
    if not sample.is_segment:
        return codes
    frames = sample.frames(fps)
    return codes[frames.start // unit : frames.stop // unit]


def samples_from_split(
    data: DataConfig | Path | str, split: str, clip_codes: dict[str, np.ndarray], with_features: bool = False
) -> tuple[list[LMSample], list[np.ndarray]]:
    """The split's samples (reference loading rules, the config's frame limits) with their codes;
    optionally their raw features. Codes (L, q) of a residual tokenizer give each sample its base
    layer as `codes` and the rest as `residual`."""
    from remogpt.data import split_clips

    samples, features = [], []
    for clip in split_clips(data, split):
        if clip.clip_id not in clip_codes:
            continue
        codes = codes_for(clip.id, clip_codes)
        if len(codes) == 0:
            continue
        base, residual = (codes[:, 0], codes[:, 1:]) if codes.ndim == 2 else (codes, None)
        samples.append(LMSample(clip.id, clip.clip_id, [c.text for c in clip.captions], base, residual))
        if with_features:
            features.append(clip.features)
    return samples, features


def context_from(codes: np.ndarray, offset: int) -> np.ndarray:
    """A retrieved motion's codes from `offset` on (a continuation's context: the retrieved motion
    from the point the motion so far has reached), keeping at least its last code."""
    return codes[min(max(offset, 0), max(len(codes) - 1, 0)) :]


def _normal_caption(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").replace(",", " ").split())


def answer_exclusions(samples: Sequence[LMSample], mode: str, compositions: dict[str, str] | None = None
                      ) -> dict[str, list[str]]:  # fmt: skip
    """Sample id → the other training clips its context must not offer, because they are its answer.

    "self": none beyond what the retriever always leaves out (the sample, its mirror, their parts).
    "caption": every clip with one of the sample's captions (case and punctuation aside).
    "composition": also, for a whole clip, every clip whose `compositions` key (clip id → key, from
    `remogpt.data.composition_keys`) is the same; a data set without keys gets "caption" only.
    The retriever leaves out a named clip's whole family, so a mirror of a same-composition clip
    goes too, though its sides are swapped: a little more than the answer, never less."""
    if mode not in ("self", "caption", "composition"):
        raise ValueError(f"context exclusion must be self, caption or composition, got {mode!r}")
    if mode == "self":
        return {}
    by_caption: dict[str, set[str]] = {}
    for s in samples:
        for c in s.captions:
            by_caption.setdefault(_normal_caption(c), set()).add(s.clip_id)
    by_key: dict[str, set[str]] = {}
    keys = compositions or {}
    if mode == "composition":
        for s in samples:
            if s.id == s.clip_id and s.clip_id in keys:
                by_key.setdefault(keys[s.clip_id], set()).add(s.clip_id)
    out: dict[str, list[str]] = {}
    for s in samples:
        found: set[str] = set()
        for c in s.captions:
            found |= by_caption[_normal_caption(c)]
        if s.id == s.clip_id and s.clip_id in keys:
            found |= by_key.get(keys[s.clip_id], set())
        found.discard(s.clip_id)
        if found:
            out[s.id] = sorted(found)
    return out


class RetrievalTable:
    """Per-sample retrieved ids (and their captions), for every direction, up to k_max each."""

    def __init__(self, key: dict[str, Any], entries: dict[str, list[list[str]]]) -> None:
        self.key = key
        self.entries = entries  # "t2m:<sample>:<caption>" / "m2t:<sample>" → [[id, caption], …]

    @staticmethod
    def make_key(retriever_fingerprint: str, data_hash: str, k_max: int, sample_ids: Sequence[str],
                 exclude: str = "self") -> dict[str, Any]:  # fmt: skip
        import hashlib

        ids_hash = hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()[:16]
        key = {"retriever": retriever_fingerprint, "data_hash": data_hash, "k_max": k_max, "samples": ids_hash}
        if exclude != "self":  # tables made before the setting keep their key
            key["exclude"] = exclude
        return key

    @classmethod
    def compute(cls, retriever: Any, samples: Sequence[LMSample], features: Sequence[np.ndarray], k_max: int,
                key: dict[str, Any], progress: Any = None,
                exclusions: dict[str, list[str]] | None = None) -> RetrievalTable:  # fmt: skip
        """Each query is embedded once (motions: the database's stored embeddings when the samples
        are its own) and searched against both targets, leaving out the sample and `exclusions[id]`."""
        entries: dict[str, list[list[str]]] = {}
        exclusions = exclusions or {}
        texts, text_keys, text_excl = [], [], []
        for s in samples:
            left_out = [s.id, *exclusions.get(s.id, ())]
            for j, cap in enumerate(s.captions):
                texts.append(cap)
                text_keys.append(f"{s.id}:{j}")
                text_excl.append(left_out)
        motion_keys = [s.id for s in samples]
        motion_excl = [[s.id, *exclusions.get(s.id, ())] for s in samples]
        queries = [("t", "text", texts, text_keys, text_excl), ("m", "motion", features, motion_keys, motion_excl)]
        for source, kind, items, keys, excl in queries:
            if not items:
                continue
            vectors = retriever.database_embeddings(motion_keys) if kind == "motion" else None
            if vectors is None:
                vectors = _embed(retriever, kind, items)
            directions = (("t2m", "motion"), ("t2t", "text")) if source == "t" else (("m2t", "text"), ("m2m", "motion"))
            for direction, target in directions:
                chunk = 512
                for a in range(0, len(keys), chunk):
                    results = retriever.search_embeddings(
                        vectors[a : a + chunk], kind, k_max, target, excl[a : a + chunk], with_motions=False
                    )
                    for key_, res in zip(keys[a : a + chunk], results, strict=True):
                        entries[f"{direction}:{key_}"] = [[i, c] for i, c in zip(res.ids, res.captions, strict=True)]
                    if progress:
                        progress(len(results))
        return cls(key, entries)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({"key": self.key, "entries": self.entries}) + "\n")

    @classmethod
    def load_if_current(cls, path: Path, key: dict[str, Any]) -> RetrievalTable | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if data.get("key") != key:
            return None
        return cls(data["key"], data["entries"])

    def pairs(self, direction: str, sample: LMSample, caption_index: int | None, k: int) -> list[list[str]]:
        key = f"{direction}:{sample.id}" if caption_index is None else f"{direction}:{sample.id}:{caption_index}"
        return self.entries.get(key, [])[:k]


class LMDataset(Dataset):
    """One item per (task, sample, caption): the prompt (with or without context) and its target."""

    def __init__(self, samples: Sequence[LMSample], clip_codes: dict[str, np.ndarray], vocab: MotionVocabulary,
                 prompts: PromptBuilder, retrieval: RetrievalPromptConfig | None, table: RetrievalTable | None,
                 tasks: Sequence[str] = ("t2m", "m2t"), seed: int = 0, gold_rate: float = 0.0,
                 text_dropout: float = 0.0, context_dropout: float = 0.0, pair_dropout: float = 0.0,
                 continue_rate: float = 0.0, continue_prompt_codes: int = 12, transition_rate: float = 0.0,
                 ) -> None:  # fmt: skip
        if retrieval is not None and retrieval.modality != "none" and retrieval.k > 0 and table is None:
            raise ValueError("a retrieval table is needed for prompts with context")
        self.samples = list(samples)
        self.clip_codes = clip_codes
        self.vocab = vocab
        self.prompts = prompts
        self.retrieval = retrieval
        self.table = table
        self.seed = seed
        self.gold_rate = gold_rate
        self.text_dropout = text_dropout
        self.context_dropout = context_dropout
        self.pair_dropout = pair_dropout
        self.continue_rate = continue_rate
        self.continue_prompt_codes = continue_prompt_codes
        self.transition_rate = transition_rate
        self.epoch = 0
        self.items: list[tuple[str, int, int]] = []
        for i, s in enumerate(self.samples):
            if "t2m" in tasks:
                self.items += [("t2m", i, j) for j in range(len(s.captions))]
            if "m2t" in tasks:
                self.items.append(("m2t", i, -1))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def approx_lengths(self) -> list[int]:
        """A cheap estimate of each item's prompt length in tokens (codes + caption characters / 4)."""
        cfg = self.retrieval
        lengths = []
        for task, i, j in self.items:
            sample = self.samples[i]
            n = len(sample.captions[j]) // 4 if task == "t2m" else len(sample.codes)
            if cfg is not None and cfg.modality != "none" and cfg.k > 0 and self.table is not None:
                cross, same = DIRECTIONS[task]
                chosen = {"both": (cross, same), "t2m": (cross,), "t2t": (same,)}[cfg.modality]
                for direction in chosen:
                    for sample_id, caption in self.table.pairs(direction, sample, j if task == "t2m" else None, cfg.k):
                        n += min(len(codes_for(sample_id, self.clip_codes)), cfg.max_context_codes) + len(caption) // 4
            lengths.append(n)
        return lengths

    def __len__(self) -> int:
        return len(self.items)

    def context(self, task: str, sample: LMSample, caption_index: int | None,
                rng: np.random.Generator | None = None, offset: int = 0) -> list[ContextPair]:  # fmt: skip
        """The retrieved pairs of an item; with `rng` and a `gold_rate`, sometimes the sample's own pair.

        With probability `gold_rate` one pair is replaced by the sample itself: another of its
        captions (the same when it has one) with its own motion. With `gold_slot == "cross"` it is
        the first cross-modal pair (text→motion for generation, motion→text for captioning), with
        "same" the first same-modality pair (text→text, motion→motion), or the first pair when the
        modality has none; with "any" a pair drawn at random. The copy signal is
        then exact, so a small model learns early to read its context; at inference the context is
        always retrieved. `offset` > 0 (a continuation) shows every motion from that code on."""
        cfg = self.retrieval
        if cfg is None or cfg.modality == "none" or cfg.k == 0 or self.table is None:
            return []
        cross, same = DIRECTIONS[task]
        chosen = {"both": (cross, same), "t2m": (cross,), "t2t": (same,)}[cfg.modality]
        retrieved = [(direction, sample_id, caption) for direction in chosen
                     for sample_id, caption in self.table.pairs(direction, sample, caption_index, cfg.k)]  # fmt: skip
        if cfg.gold_slot == "any":
            slots = list(range(len(retrieved)))
        elif cfg.gold_slot == "cross":  # the first cross-modal pair, if the modality has one
            slots = [n for n, (direction, _, _) in enumerate(retrieved) if direction == cross][:1]
        else:  # "same": the first same-modality pair, else the first pair (modality t2m)
            slots = [n for n, (direction, _, _) in enumerate(retrieved) if direction == same][:1]
            slots = slots or ([0] if retrieved else [])
        gold_at = -1
        if rng is not None and self.gold_rate > 0 and rng.random() < self.gold_rate and slots:
            gold_at = slots[int(rng.integers(len(slots)))] if len(slots) > 1 else slots[0]
        pairs = []
        for n, (_, sample_id, caption) in enumerate(retrieved):
            if n == gold_at:
                others = [c for k, c in enumerate(sample.captions) if k != caption_index] or sample.captions
                caption = others[int(rng.integers(len(others)))]  # type: ignore[union-attr]
                codes = context_from(sample.codes, offset)[: cfg.max_context_codes]
            else:
                codes = context_from(codes_for(sample_id, self.clip_codes), offset)[: cfg.max_context_codes]
            pairs.append(ContextPair(caption, self.vocab.motion_string(codes)))
        return pairs

    def _cut(self, sample: LMSample, index: int) -> tuple[int, LMSample | None] | None:
        """With `continue_rate`, where a text→motion item becomes a continuation: the codes before the
        cut are the motion so far, the target starts `CONTINUATION_OVERLAP` codes before it. Of those,
        with `transition_rate`, the motion so far is another training sample's (returned with the
        cut 0): the target is its last codes, then this sample's motion from its start, as a
        timeline's next segment. A stream of its own, as the dropouts'."""
        if self.continue_rate <= 0 or len(sample.codes) < 2:
            return None
        draw = np.random.default_rng((self.seed, self.epoch, index, 3))
        if draw.random() >= self.continue_rate:
            return None
        cut = int(draw.integers(1, len(sample.codes)))
        if self.transition_rate > 0 and len(self.samples) > 1 and draw.random() < self.transition_rate:
            other = self.samples[int(draw.integers(len(self.samples)))]
            if other.clip_id != sample.clip_id and len(other.codes):
                return 0, other
        return cut, None

    def _dropped(self, pairs: list[ContextPair], index: int) -> list[ContextPair]:
        """With `context_dropout` no context at all, else each pair kept with 1 − `pair_dropout`: the
        prompt's input must then carry the answer. A stream of its own (as text dropout's), so that
        the item's other draws are the same with or without it."""
        if not pairs or (self.context_dropout <= 0 and self.pair_dropout <= 0):
            return pairs
        draw = np.random.default_rng((self.seed, self.epoch, index, 2)).random(len(pairs) + 1)
        if draw[0] < self.context_dropout:
            return []
        return [p for p, u in zip(pairs, draw[1:], strict=True) if u >= self.pair_dropout]

    @property
    def residual_layers(self) -> int:
        """Code layers after the base one that the samples carry (0: a one-codebook tokenizer)."""
        first = self.samples[0].residual if self.samples else None
        return 0 if first is None else int(first.shape[1])

    def __getitem__(self, index: int) -> tuple[str, str] | tuple[str, str, np.ndarray | None]:
        """(prompt, target); with residual layers also the (n, q − 1) residual codes of the target's
        n motion codes, in order (None for a caption target)."""
        prompt, target, residual = self._item(index)
        if not self.residual_layers:
            return prompt, target
        return prompt, target, residual

    def _item(self, index: int) -> tuple[str, str, np.ndarray | None]:
        task, i, j = self.items[index]
        sample = self.samples[i]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        motion = self.vocab.motion_string(sample.codes)
        if task == "t2m":
            cut, before = self._cut(sample, index) or (None, None)
            start = 0 if cut is None or before is not None else cut - min(CONTINUATION_OVERLAP, cut)
            context = self._dropped(self.context("t2m", sample, j, rng, offset=start), index)
            # A stream of its own: the item's template and context are the same with or without it.
            drop = (
                self.text_dropout > 0
                and np.random.default_rng((self.seed, self.epoch, index, 1)).random() < self.text_dropout
            )
            caption = "" if drop else sample.captions[j]
            if cut is None:
                return self.prompts.text_to_motion(caption, context, rng), motion, sample.residual
            if before is not None:  # a change of action: another motion so far, this one from its start
                so_far = before.codes[-self.continue_prompt_codes :]
                kept = min(CONTINUATION_OVERLAP, len(before.codes))
                overlap = before.codes[len(before.codes) - kept :]
                rest = self.vocab.motion_string(np.concatenate([overlap, sample.codes]))
                residual = None
                if sample.residual is not None and before.residual is not None:
                    residual = np.concatenate([before.residual[len(before.codes) - kept :], sample.residual])
                prompt = self.prompts.continuation(self.vocab.motion_string(so_far), caption, context, rng)
                return prompt, rest, residual
            so_far = self.vocab.motion_string(sample.codes[max(0, cut - self.continue_prompt_codes) : cut])
            rest = self.vocab.motion_string(sample.codes[start:])
            residual = None if sample.residual is None else sample.residual[start:]
            return self.prompts.continuation(so_far, caption, context, rng), rest, residual
        caption = sample.captions[int(rng.integers(len(sample.captions)))]
        context = self._dropped(self.context("m2t", sample, None, rng), index)
        return self.prompts.motion_to_text(motion, context, rng), caption, None


class LengthBucketBatchSampler(BatchSampler):
    """Batches of prompts of similar length (less padding, so more samples/s), in random order.

    The inner sampler gives the shuffled order (a RandomSampler, or the DistributedSampler that
    Lightning puts in its place under DDP: the signature is BatchSampler's, so it can); each window
    of `WINDOW` batches is sorted by the dataset's `approx_lengths()` and cut into batches, and the
    batches are shuffled, seeded by that order. Every item still comes once per epoch."""

    WINDOW = 32

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last)
        source = getattr(sampler, "dataset", None) or getattr(sampler, "data_source", None)
        if source is None or not hasattr(source, "approx_lengths"):
            raise ValueError("the sampler's data source must have approx_lengths()")
        self.lengths = source.approx_lengths()

    def _windows(self, n: int) -> list[int]:
        w = self.batch_size * self.WINDOW
        return [min(w, n - a) for a in range(0, n, w)]

    def __len__(self) -> int:
        sizes = self._windows(len(self.sampler))  # type: ignore[arg-type]
        if self.drop_last:
            return sum(s // self.batch_size for s in sizes)
        return sum(-(-s // self.batch_size) for s in sizes)

    def __iter__(self) -> Any:
        indices = [int(i) for i in self.sampler]
        batches: list[list[int]] = []
        a = 0
        for size in self._windows(len(indices)):
            part = sorted(indices[a : a + size], key=self.lengths.__getitem__)
            a += size
            batches += [part[b : b + self.batch_size] for b in range(0, size, self.batch_size)
                        if not self.drop_last or b + self.batch_size <= size]  # fmt: skip
        seed = int(np.asarray(indices[:64], dtype=np.int64).dot(np.arange(1, min(64, len(indices)) + 1))) % 2**31
        for i in np.random.default_rng(seed).permutation(len(batches)):
            yield batches[i]


class lm_collate:  # noqa: N801 - used like a function
    """Tokenise a batch of (prompt, target) strings; padded label positions are −100.

    With `residual_layers` > 0, items (prompt, target, residual) also give `residual_labels`
    (B, T, residual_layers): each label that is a motion code gets the residual codes of that code
    (the n-th motion label the n-th row), −100 elsewhere and for items without residual codes; a
    target cut by `max_target` keeps the rows of the codes it kept."""

    def __init__(self, vocab: MotionVocabulary, max_input: int, max_target: int, residual_layers: int = 0) -> None:
        self.vocab, self.max_input, self.max_target = vocab, max_input, max_target
        self.residual_layers = residual_layers

    def __call__(self, batch: list[tuple[str, str]] | list[tuple[str, str, np.ndarray | None]]
                 ) -> dict[str, torch.Tensor]:  # fmt: skip
        tok = self.vocab.tokenizer
        enc = tok([b[0] for b in batch], padding=True, truncation=True, max_length=self.max_input,
                  return_tensors="pt")  # fmt: skip
        tgt = tok([b[1] for b in batch], padding=True, truncation=True, max_length=self.max_target,
                  return_tensors="pt")  # fmt: skip
        labels = tgt.input_ids.masked_fill(tgt.attention_mask == 0, -100)
        out = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "labels": labels}
        if self.residual_layers:
            out["residual_labels"] = self._residual_labels(labels, [b[2] if len(b) == 3 else None for b in batch])
        return out

    def _residual_labels(self, labels: torch.Tensor, residuals: list[Any]) -> torch.Tensor:
        first, end = self.vocab.motion_offset, self.vocab.motion_offset + self.vocab.codebook_size
        out = torch.full((*labels.shape, self.residual_layers), -100, dtype=torch.long)
        is_code = (labels >= first) & (labels < end)
        for row, residual in enumerate(residuals):
            if residual is None:
                continue
            residual = np.asarray(residual)
            if residual.ndim != 2 or residual.shape[1] != self.residual_layers:
                raise ValueError(f"residual codes of item {row}: expected (n, {self.residual_layers}), "
                                 f"got {residual.shape}")  # fmt: skip
            at = torch.nonzero(is_code[row]).flatten()
            n = min(len(at), len(residual))
            out[row, at[:n]] = torch.as_tensor(residual[:n], dtype=torch.long)
        return out


def _embed(retriever: Any, kind: str, items: Sequence[Any]) -> np.ndarray:
    if kind == "text":
        return retriever.embed_text(list(items))
    return retriever.embed_motion(list(items), warn=False)  # long motions cropped as in its training, silently
