"""ReMoGPT inference: text → motion and motion → text with retrieved context (paper Fig. 3).

    model = ReMoGPT.from_pretrained("runs/demo")
    out = model.generate_motion(["a person jumps twice then waves"], num_samples=1, seed=0)
    out[0].joints            # (T, 22, 3), plus .features, .codes and .references (what was retrieved)
    model.caption([features])  # ["a person ..."]

A run directory holds `tokenizer/`, `retriever/` and `lm/`; loading checks through the manifests
that the language model was trained with exactly these tokenizer and retriever (and refuses
otherwise). Generation never crashes on malformed output: a sequence without <eom> is cut, one
that is too short is sampled again, and what happened is counted in `stats`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remogpt.artifacts import ArtifactError, Manifest, RunFolder, read_manifest, sha256_file, write_manifest
from remogpt.errors import RemogptError, warn_if_no_words
from remogpt.lm.config import RERANK_SCORES, LMConfig, RetrievalPromptConfig
from remogpt.lm.data import DIRECTIONS, context_from
from remogpt.lm.prompts import ContextPair, PromptBuilder
from remogpt.lm.vocab import MotionVocabulary
from remogpt.motion import check_feature_values

__all__ = ["GeneratedMotion", "ReMoGPT"]


@dataclass
class GeneratedMotion:
    text: str
    codes: np.ndarray  # (L,) the base layer's codes (what the model's tokens are)
    features: np.ndarray  # (T, 263) raw features
    joints: np.ndarray  # (T, 22, 3)
    references: list[dict] = field(default_factory=list)  # retrieved pairs used as context
    attempts: int = 1
    problem: str | None = None  # what was wrong with the first sample, if anything
    residual_codes: np.ndarray | None = None  # (L, q − 1) the residual layers' codes (residual tokenizer)


class ReMoGPT:
    """The trained motion–language model of a run, with its tokenizer and retriever."""

    def __init__(self, run_dir: Path, model: Any, vocab: MotionVocabulary, cfg: LMConfig, tokenizer: Any,
                 retriever: Any, prompts: PromptBuilder) -> None:  # fmt: skip
        self.run_dir = run_dir
        self.model = model.eval()
        self.vocab = vocab
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.retriever = retriever
        self.prompts = prompts
        self.retrieval = cfg.retrieval
        self.stats: Counter[str] = Counter()
        self.timings: Counter[str] = Counter()
        # A residual tokenizer's later layers, written by the LM's residual head; False decodes the
        # base layer alone (to measure what the head adds: benchmarks/lm_residual.py).
        self.write_residual_layers = True

    @classmethod
    def from_pretrained(cls, run_dir: Path | str, data_root: Path | str | None = None) -> ReMoGPT:
        from remogpt.retrieval import Retriever
        from remogpt.tokenizer import MotionTokenizer

        run_dir = Path(run_dir)
        RunFolder(run_dir).require("tokenizer", "retriever", "lm")
        manifest = read_manifest(run_dir / "lm", stage="lm")
        tokenizer = MotionTokenizer.from_pretrained(run_dir / "tokenizer")
        retriever = Retriever.from_pretrained(run_dir / "retriever", data_root=data_root)
        expected = manifest.inputs
        if expected.get("tokenizer") != tokenizer.fingerprint:
            raise ArtifactError(f"{run_dir}: the LM was trained with tokenizer {expected.get('tokenizer')}, "
                                f"but tokenizer/ holds {tokenizer.fingerprint}; retrain the LM")  # fmt: skip
        if expected.get("retriever") != retriever.fingerprint:
            raise ArtifactError(f"{run_dir}: the LM was trained with retriever {expected.get('retriever')}, "
                                f"but retriever/ holds {retriever.fingerprint}; retrain the LM")  # fmt: skip
        if retriever.database is None:
            raise ArtifactError(f"{run_dir}: the retriever has no database "
                                f"(run `remogpt index build {run_dir / 'retriever'}`)")  # fmt: skip
        cfg = LMConfig.from_dict(manifest.config)
        vocab = MotionVocabulary.from_pretrained(run_dir / "lm" / "vocabulary", cfg.codebook_size)
        from remogpt.lm.model import load_t5

        model = load_t5(run_dir / "lm", expected_sha256=manifest.extra.get("weights_sha256"))
        return cls(run_dir, model, vocab, cfg, tokenizer, retriever, PromptBuilder.from_file())

    def save_pretrained(self, run_dir: Path | str) -> Path:
        """Write the run (tokenizer/, retriever/ with its database, lm/) to `run_dir`; every stage keeps
        its fingerprint, so the copy loads with `from_pretrained` and behaves the same."""
        run_dir = Path(run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ArtifactError(f"{run_dir}: not empty; save a run into a new folder")
        tok = self.tokenizer.manifest
        kept = {k: v for k, v in tok.extra.items() if k != "weights_sha256"}
        self.tokenizer.save_pretrained(run_dir / "tokenizer", data_hash=tok.data_hash, extra=kept)
        self.retriever.save_pretrained(run_dir / "retriever")
        lm_dir = run_dir / "lm"
        self.model.save_pretrained(str(lm_dir))
        self.vocab.save_pretrained(lm_dir / "vocabulary")
        self.cfg.to_yaml(lm_dir / "config.yaml")
        old = read_manifest(self.run_dir / "lm", stage="lm")
        sha = sha256_file(lm_dir / "model.safetensors")
        manifest = Manifest(stage="lm", config=old.config, data_hash=old.data_hash,
                            inputs={"tokenizer": self.tokenizer.fingerprint, "retriever": self.retriever.fingerprint},
                            extra={**old.extra, "weights_sha256": sha})  # fmt: skip
        write_manifest(lm_dir, manifest)
        return run_dir

    # ------------------------------------------------------------------ retrieval for prompts

    def _contexts(self, task: str, queries: list[str] | list[np.ndarray], retrieval: RetrievalPromptConfig,
                  exclude: list[list[str]] | None, embeddings: np.ndarray | None = None, offset: int = 0,
                  ) -> tuple[list[list[ContextPair]], list[list[dict]]]:  # fmt: skip
        """Retrieved pairs for every query, one batched search per direction. The queries are embedded
        once for both directions; `embeddings` (the retriever's, one row per query) skips even that.
        `offset` shows each retrieved motion from that code on (a continuation's context)."""
        pairs: list[list[ContextPair]] = [[] for _ in queries]
        refs: list[list[dict]] = [[] for _ in queries]
        if retrieval.modality == "none" or retrieval.k == 0:
            return pairs, refs
        cross, same = DIRECTIONS[task]
        chosen = {"both": (cross, same), "t2m": (cross,), "t2t": (same,)}[retrieval.modality]
        t0 = time.perf_counter()
        source = "text" if task == "t2m" else "motion"
        if embeddings is None:
            embeddings = (self.retriever.embed_text(list(queries)) if source == "text"  # type: ignore[arg-type]
                          else self.retriever.embed_motion(list(queries)))  # fmt: skip
        for direction in chosen:
            target = "motion" if direction.endswith("m") else "text"
            results = self.retriever.search_embeddings(
                embeddings, source, k=retrieval.k, target=target,  # type: ignore[arg-type]
                exclude_ids=exclude if exclude else None, with_motions=False)  # fmt: skip
            for q, res in enumerate(results):
                for sample_id, caption, score in zip(res.ids, res.captions, res.scores, strict=True):
                    codes = context_from(self._codes_of(sample_id), offset)[: retrieval.max_context_codes]
                    pairs[q].append(ContextPair(caption, self.vocab.motion_string(codes)))
                    refs[q].append({"direction": direction, "id": sample_id, "caption": caption,
                                    "score": float(score)})  # fmt: skip
        self.timings["retrieval_s"] += time.perf_counter() - t0
        return pairs, refs

    def _residual_codes(self, encoded: dict[str, torch.Tensor], sequences: torch.Tensor) -> np.ndarray | None:
        """(B, T) residual codes of each generated token (B conditional rows), or None without a head."""
        if getattr(self.model, "residual_head", None) is None or not self.write_residual_layers:
            return None
        b = sequences.shape[0]
        t0 = time.perf_counter()
        codes = self.model.residual_codes(encoded["input_ids"][:b], encoded["attention_mask"][:b], sequences)
        self.timings["residual_s"] += time.perf_counter() - t0
        return codes.cpu().numpy()

    def decode_codes(self, codes: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """Features (T, D) of base codes (L,), with the residual layers' codes (L, q − 1) when given."""
        c = np.asarray(codes, dtype=np.int64)
        if residual is not None and len(residual) == len(c):
            c = np.column_stack([c, np.asarray(residual, dtype=np.int64)])
        return self.tokenizer.decode(torch.as_tensor(c)).cpu().numpy()

    def database_codes(self, sample_id: str) -> np.ndarray:
        """The motion codes of a database sample, as its retrieved context shows them (before the
        prompt's cut to `max_context_codes`): what a copy rate compares generated codes with."""
        return self._codes_of(sample_id).copy()

    def _codes_of(self, sample_id: str) -> np.ndarray:
        """Codes of a database sample (encoded on demand from its features, memoised)."""
        cache = self.__dict__.setdefault("_code_cache", {})
        if sample_id not in cache:
            features = self.retriever.motion(sample_id)
            features = features[: len(features) - len(features) % self.tokenizer.downsample]
            cache[sample_id] = self.tokenizer.encode(features).cpu().numpy().astype(np.int64)
        return cache[sample_id]

    # ------------------------------------------------------------------ text → motion

    def _check_texts(self, texts: str | list[str]) -> list[str]:
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            raise RemogptError("no texts given")
        for i, t in enumerate(items):
            if not isinstance(t, str) or not t.strip():
                raise RemogptError(f"text {i} is empty; describe a motion, e.g. 'a person walks forward'")
            warn_if_no_words(t, f"text {i}" if len(items) > 1 else "the text")
        return [t.strip() for t in items]

    def _tokenize(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.vocab.tokenizer(prompts, padding=True, return_tensors="pt")
        if enc.input_ids.shape[1] > self.cfg.max_input_tokens:
            warnings.warn(f"prompt of {enc.input_ids.shape[1]} tokens truncated to {self.cfg.max_input_tokens}",
                          stacklevel=3)  # fmt: skip
            enc = self.vocab.tokenizer(prompts, padding=True, truncation=True, max_length=self.cfg.max_input_tokens,
                                       return_tensors="pt")  # fmt: skip
        return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}

    @torch.no_grad()
    def generate_motion(
        self,
        texts: str | list[str],
        num_samples: int = 1,
        seed: int = 0,
        temperature: float | None = None,
        top_k: int | None = None,
        retrieval: RetrievalPromptConfig | None = None,
        rerank: int | None = None,
        rerank_score: str | None = None,
        guidance_scale: float | None = None,
        max_attempts: int = 3,
        min_codes: int = 2,
        batch_size: int = 32,
        exclude_ids: list[list[str]] | None = None,
        progress: Callable[[int], None] | None = None,
        prefix_codes: np.ndarray | None = None,
        num_codes: int | None = None,
        continues: np.ndarray | None = None,
        context_offset: int = 0,
    ) -> list[GeneratedMotion]:
        """`num_samples` motions per text (in text order), sampled with top-k/temperature (default: the config's).

        Decoding follows the motion grammar (`<som>` codes `<eom>`, at least `min_codes` and at most
        `max_motion_codes` codes), so every sequence is well formed. Sample `s` of a text is drawn
        with its own generator seeded from (seed, text, s): the same text, seed and sample number
        give the same motion whatever else is in the batch. A sequence that still cannot be read
        (only possible with a replaced `generate`) is sampled again, then replaced by the top-1
        retrieved motion, and counted in `stats`. `progress(n)` is told of every n sequences sampled.

        `rerank` N > 1 (default: the config's `rerank_candidates`) samples N candidates for every
        motion returned and keeps the best by `rerank_score` (default: the config's): "retriever",
        the cosine of the PL-TMR embeddings of text and candidate; "captioner", how likely the
        model's own captioner finds the text for the candidate (`caption_log_likelihood`); "both",
        the two standardised within the N candidates and added. A small model's samples vary in how
        well they match; the two judges were trained differently (contrastively, and to write the
        caption), so they miss different things. N× the sampling time. Candidate c of sample s is
        drawn as sample s·N + c, so N = 1 is plain sampling.

        `guidance_scale` S > 1 (default: the config's; 1 = off) samples with classifier-free guidance:
        each step weighs the log-probabilities given the prompt S times against those of the same
        prompt without its text (its retrieved context kept), in one doubled batch.

        `prefix_codes` (L,) are written for every text before sampling starts, as if the model had
        sampled them: the motion then continues them (`remogpt.lm.editing`); the returned codes
        include them. `num_codes` asks for exactly that many codes (prefix included).

        `continues` (L,), the codes of the motion so far, asks for the continuation task (a model
        trained with `continue_rate` > 0): its last `continue_prompt_codes` go into the instruction,
        the text is that of the whole motion, and each retrieved motion is shown from code
        `context_offset` on (where the motion so far has reached in it). `prefix_codes` are then the
        codes the continuation starts with (the last `CONTINUATION_OVERLAP` of the motion so far)."""
        from remogpt.lm.decoding import ClassifierFreeGuidance, MotionGrammar, SeededSampler, row_seed
        from remogpt.motion import features_to_joints

        items = self._check_texts(texts)
        if num_samples < 1:
            raise RemogptError(f"num_samples must be ≥ 1, got {num_samples}")
        temperature = self.cfg.temperature if temperature is None else temperature
        top_k = self.cfg.top_k if top_k is None else top_k
        if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
            raise RemogptError(f"temperature must be a number > 0, got {temperature}")
        if top_k < 1:
            raise RemogptError(f"top_k must be ≥ 1, got {top_k}")
        rerank = self.cfg.rerank_candidates if rerank is None else rerank
        if not isinstance(rerank, int) or rerank < 1:
            raise RemogptError(f"rerank must be an integer ≥ 1 (candidates per motion), got {rerank!r}")
        rerank_score = self.cfg.rerank_score if rerank_score is None else rerank_score
        if rerank_score not in RERANK_SCORES:
            raise RemogptError(f"rerank_score must be one of {', '.join(RERANK_SCORES)}, got {rerank_score!r}")
        guidance_scale = self.cfg.guidance_scale if guidance_scale is None else guidance_scale
        if not (isinstance(guidance_scale, int | float) and math.isfinite(guidance_scale) and guidance_scale >= 1):
            raise RemogptError(f"guidance_scale must be a number ≥ 1 (1: off), got {guidance_scale!r}")
        retrieval = retrieval or self.retrieval
        t0 = time.perf_counter()
        contexts, refs = self._contexts("t2m", items, retrieval, exclude_ids, offset=context_offset)
        if continues is None:
            def build(text: str, pairs: list[ContextPair]) -> str:
                return self.prompts.text_to_motion(text, pairs)
        else:
            shown = self._decoder_prefix(continues, None, "continues")[-self.cfg.continue_prompt_codes :]
            so_far = self.vocab.motion_string(shown)

            def build(text: str, pairs: list[ContextPair]) -> str:
                return self.prompts.continuation(so_far, text, pairs)
        prompts = [build(text, pairs) for text, pairs in zip(items, contexts, strict=True)]
        # Without the text, the same retrieved context: guidance then weighs what the text adds.
        unconditional = [build("", pairs) for pairs in contexts]
        jobs = [(i, s) for i in range(len(items)) for s in range(num_samples * rerank)]
        results: dict[tuple[int, int], tuple[np.ndarray, int, str | None]] = {}
        first_problems: dict[tuple[int, int], str] = {}
        max_codes = max(min_codes, self.cfg.max_motion_codes)
        prefix = self._decoder_prefix(prefix_codes, max_codes)
        if num_codes is not None:
            if not len(prefix) < num_codes <= max_codes:
                raise RemogptError(f"num_codes must be between {len(prefix) + 1} and {max_codes} (the model's "
                                   f"window, {max_codes * self.tokenizer.downsample} frames), got {num_codes}")
            min_codes = max_codes = num_codes
        min_codes = max(min_codes, len(prefix) + 1)
        pending = list(jobs)
        for attempt in range(1, max_attempts + 1):
            if not pending:
                break
            for start in range(0, len(pending), batch_size):
                chunk = pending[start : start + batch_size]
                seeds = [row_seed(seed, items[i], s, attempt) for i, s in chunk]
                rows = [prompts[i] for i, _ in chunk]
                rules: list[Any] = [MotionGrammar(self.vocab, min_codes, max_codes)]
                if guidance_scale > 1:
                    rows, seeds = rows + [unconditional[i] for i, _ in chunk], seeds + seeds
                    rules.insert(0, ClassifierFreeGuidance(guidance_scale))
                rules.append(SeededSampler(seeds, temperature, top_k))
                extra = {}
                if len(prefix):
                    start = int(self.model.config.decoder_start_token_id)
                    ids = [start, self.vocab.som_id, *(self.vocab.motion_offset + prefix).tolist()]
                    extra["decoder_input_ids"] = torch.tensor([ids] * len(rows), dtype=torch.long)
                encoded = self._tokenize(rows)
                out = self.model.generate_from_ids(**encoded, do_sample=False, num_beams=1,
                                                   use_cache=True, max_new_tokens=max_codes + 3 - len(prefix),
                                                   logits_processor=rules, **extra)[: len(chunk)]  # fmt: skip
                residual = self._residual_codes(encoded, out)
                self.stats["sequences"] += len(chunk)
                if progress is not None and attempt == 1:
                    progress(len(chunk))
                for row, (job, ids) in enumerate(zip(chunk, out.tolist(), strict=True)):
                    decoded = self.vocab.decode_motion(ids[1:], min_codes=min_codes)
                    if decoded.problem:
                        self.stats[f"invalid: {decoded.problem.split(' (')[0]}"] += 1
                        first_problems.setdefault(job, decoded.problem)
                    if len(decoded.codes) >= min_codes:
                        layers = None if residual is None else residual[row, decoded.positions]
                        results[job] = (decoded.codes, layers, attempt, first_problems.get(job))
            pending = [j for j in jobs if j not in results]
        outputs = []
        for i, s in jobs:
            layers = None
            if (i, s) in results:
                codes, layers, attempts, problem = results[(i, s)]
            else:
                self.stats["failed (a retrieved motion used instead)"] += 1
                fallback = refs[i][0]["id"] if refs[i] else None
                codes = self._codes_of(fallback) if fallback else np.zeros(min_codes, np.int64)
                attempts, problem = max_attempts, "no valid motion generated"
            features = self.decode_codes(codes, layers)
            outputs.append(GeneratedMotion(items[i], codes, features, features_to_joints(features), refs[i],
                                           attempts, problem, layers))  # fmt: skip
        if rerank > 1:
            outputs = self._best_candidates(outputs, rerank, rerank_score, retrieval)
        self.timings["generate_s"] += time.perf_counter() - t0
        self.timings["motions"] += len(outputs)
        return outputs

    # ------------------------------------------------------------- editing and extending (lm/editing.py)

    def continue_motion(self, text: str, prefix: Any, frames: int | None = None, seed: int = 0, **kw: Any) -> Any:
        """`prefix` (T, D) features kept bit for bit, then `frames` more as `text` says (`editing.continue_motion`)."""
        from remogpt.lm.editing import continue_motion

        return continue_motion(self, text, prefix, frames, seed, **kw)

    def inbetween(self, start: Any, end: Any, frames: int, text: str | None = None, seed: int = 0, **kw: Any) -> Any:
        """`start`, `frames` new frames, then `end` (`editing.inbetween`)."""
        from remogpt.lm.editing import inbetween

        return inbetween(self, start, end, frames, text, seed, **kw)

    def edit_parts(self, motion: Any, text: str, regenerate: str = "arms", seed: int = 0, **kw: Any) -> Any:
        """`motion` with its arms or legs made anew as `text` says (`editing.edit_parts`)."""
        from remogpt.lm.editing import edit_parts

        return edit_parts(self, motion, text, regenerate, seed, **kw)

    def timeline(self, entries: Any, seed: int = 0, **kw: Any) -> Any:
        """Texts with durations → one continuous motion (`editing.timeline`)."""
        from remogpt.lm.editing import timeline

        return timeline(self, entries, seed, **kw)

    @property
    def continuation_trained(self) -> bool:
        """Whether this model learnt continuation as a task of its own (`continue_rate` > 0)."""
        return self.cfg.continue_rate > 0

    def _decoder_prefix(self, prefix_codes: np.ndarray | None, max_codes: int | None,
                        name: str = "prefix_codes") -> np.ndarray:  # fmt: skip
        if prefix_codes is None:
            return np.zeros(0, np.int64)
        prefix = np.asarray(prefix_codes)
        if prefix.ndim != 1 or prefix.dtype.kind not in "iu":
            raise RemogptError(f"{name} must be a 1-d array of integer codes, got {prefix.dtype} {prefix.shape}")
        if len(prefix) and (prefix.min() < 0 or prefix.max() >= self.vocab.codebook_size):
            raise RemogptError(f"{name} must lie in [0, {self.vocab.codebook_size}), "
                               f"got {int(prefix.min())}..{int(prefix.max())}")  # fmt: skip
        if max_codes is not None and len(prefix) >= max_codes:
            raise RemogptError(f"a prefix of {len(prefix)} codes leaves no room in the model's window of {max_codes}")
        return prefix.astype(np.int64)

    def _best_candidates(self, candidates: list[GeneratedMotion], per_motion: int, by: str,
                         retrieval: RetrievalPromptConfig) -> list[GeneratedMotion]:  # fmt: skip
        """Of every run of `per_motion` candidates (one motion's), the best by `by` (see `generate_motion`)."""
        t0 = time.perf_counter()
        groups = len(candidates) // per_motion
        total = np.zeros((groups, per_motion))
        motion_emb = None  # the retriever judge's embeddings of the candidates also find their m→t context
        if by in ("retriever", "both"):
            text_emb = self.retriever.embed_text([c.text for c in candidates[::per_motion]])
            motion_emb = self.retriever.embed_motion([c.features for c in candidates], warn=False)
            cosine = np.einsum("gcd,gd->gc", motion_emb.reshape(groups, per_motion, -1), text_emb)
            total += _standardised(cosine) if by == "both" else cosine
        if by in ("captioner", "both"):
            likelihood = self.caption_log_likelihood([c.text for c in candidates], [c.codes for c in candidates],
                                                     [c.features for c in candidates], retrieval=retrieval,
                                                     motion_embeddings=motion_emb)  # fmt: skip
            likelihood = likelihood.reshape(groups, per_motion)
            total += _standardised(likelihood) if by == "both" else likelihood
        best = total.argmax(axis=1)
        self.timings["rerank_s"] += time.perf_counter() - t0
        return [candidates[g * per_motion + int(c)] for g, c in enumerate(best)]

    @torch.no_grad()
    def caption_log_likelihood(
        self, texts: list[str], codes: list[np.ndarray], features: list[np.ndarray],
        retrieval: RetrievalPromptConfig | None = None, batch_size: int = 32,
        motion_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Mean log-probability per token of each text as the caption of its motion (codes, with the
        features its context is retrieved by), by the model's captioner read with teacher forcing.

        It scores a motion by what the captioning task learnt ("would I describe this motion with
        these words?"), which sees a dropped second action that a single embedding cosine may not.
        Motion tokens are excluded from the softmax, as when captioning. `motion_embeddings` (the
        retriever's `embed_motion` of `features`, when the caller has them) saves embedding them again."""
        if not (len(texts) == len(codes) == len(features)):
            raise RemogptError(f"need one text, codes and features per motion, got {len(texts)}, {len(codes)}, "
                               f"{len(features)}")  # fmt: skip
        retrieval = retrieval or self.retrieval
        contexts, _ = self._contexts("m2t", list(features), retrieval, None, embeddings=motion_embeddings)
        prompts = [self.prompts.motion_to_text(self.vocab.motion_string(c), pairs)
                   for c, pairs in zip(codes, contexts, strict=True)]  # fmt: skip
        motion_ids = torch.as_tensor(self._motion_token_ids)
        scores: list[float] = []
        for start in range(0, len(prompts), batch_size):
            enc = self._tokenize(prompts[start : start + batch_size])
            target = self.vocab.tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                                          max_length=self.cfg.max_target_tokens, return_tensors="pt")  # fmt: skip
            labels = target.input_ids.masked_fill(target.attention_mask == 0, -100)
            logits = self.model(**enc, labels=labels).logits.float()
            logits[..., motion_ids] = float("-inf")
            log_probs = torch.log_softmax(logits, dim=-1)
            mask = labels != -100
            token = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)
            scores += (token.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).tolist()
        return np.asarray(scores, dtype=np.float64)

    # ------------------------------------------------------------------ motion → text

    @torch.no_grad()
    def caption(
        self,
        motions: list[np.ndarray] | np.ndarray,
        num_beams: int = 1,
        retrieval: RetrievalPromptConfig | None = None,
        batch_size: int = 32,
        exclude_ids: list[list[str]] | None = None,
        no_repeat_ngram_size: int = 3,
    ) -> list[str]:
        """Captions of raw feature sequences (each (T, 263), at least 4 frames), greedy or beam search.

        `no_repeat_ngram_size` (0: off) stops the "a person is is is …" loops of small models."""
        from remogpt.tokenizer import TokenizerError

        items = [motions] if isinstance(motions, np.ndarray) and motions.ndim == 2 else list(motions)
        if not items:
            raise RemogptError("no motions given")
        retrieval = retrieval or self.retrieval
        t0 = time.perf_counter()
        arrays, motion_strings = [], []
        for i, m in enumerate(items):
            m = np.asarray(m, dtype=np.float32)
            if m.ndim != 2 or m.shape[1] != self.tokenizer.feature_dim:
                raise RemogptError(f"motion {i}: expected (T, {self.tokenizer.feature_dim}) features, got {m.shape}")
            check_feature_values(m, f"motion {i}")
            try:
                codes = self.tokenizer.encode(m, crop=True).cpu().numpy()
            except TokenizerError as exc:
                raise RemogptError(f"motion {i}: {exc}") from None
            arrays.append(m)
            motion_strings.append(self.vocab.motion_string(codes))
        contexts, _ = self._contexts("m2t", arrays, retrieval, exclude_ids)
        prompts = [self.prompts.motion_to_text(ms, pairs) for ms, pairs in zip(motion_strings, contexts, strict=True)]
        captions = []
        for start in range(0, len(prompts), batch_size):
            enc = self._tokenize(prompts[start : start + batch_size])
            out = self.model.generate_from_ids(**enc, num_beams=num_beams, do_sample=False, use_cache=True,
                                      max_new_tokens=self.cfg.max_target_tokens, min_new_tokens=2,
                                      no_repeat_ngram_size=no_repeat_ngram_size,
                                      suppress_tokens=self._motion_token_ids)  # a caption is words only  # fmt: skip
            captions += [self.vocab.decode_text(ids) for ids in out.tolist()]
        self.timings["caption_s"] += time.perf_counter() - t0
        self.timings["captions"] += len(captions)
        return captions

    @property
    def _motion_token_ids(self) -> list[int]:
        v = self.vocab
        return [*range(v.motion_offset, v.motion_offset + v.codebook_size), v.som_id, v.eom_id]

    @property
    def parameters_count(self) -> int:
        return int(sum(math.prod(p.shape) for p in self.model.parameters()))


def _standardised(scores: np.ndarray) -> np.ndarray:
    """Each row (one motion's candidates) to zero mean and unit variance; a constant row to 0."""
    std = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
