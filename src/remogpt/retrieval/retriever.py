"""`Retriever`: a trained retriever with its database, answering the four searches of the paper.

t→m and t→t for a text prompt, m→t and m→m for a motion prompt (Method, "the top k similar samples
in each score are chosen"). Results are samples: a sample found through several of its captions
appears once, with its best caption. `exclude_ids` removes whole families (a clip, its mirror and
its timed sub-samples), which is what keeps a training sample from retrieving itself.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from remogpt.artifacts import MANIFEST_NAME, ArtifactError, Manifest
from remogpt.data import Normalizer, load_features, load_split
from remogpt.data.folder import DataFormatError, motion_file, parse_sample_id
from remogpt.motion import MotionFormatError, SkeletonSpec, check_feature_values, skeleton_for_dim
from remogpt.retrieval.config import RetrieverConfig
from remogpt.retrieval.errors import RetrievalError, RetrievalInputError, TruncationWarning
from remogpt.retrieval.index import INDEX_DIR, IndexConfig, RetrievalDatabase
from remogpt.retrieval.model import RetrievalModel
from remogpt.retrieval.saved import STAGE, load_retriever_model
from remogpt.retrieval.text import TextEncoder, check_texts

__all__ = ["Retriever", "SearchResult", "resolve_run_dir"]

Target = Literal["motion", "text"]


def resolve_run_dir(path: Path | str) -> Path:
    """A retriever's stage folder from either it or its run folder (`runs/x` → `runs/x/retriever`)."""
    path = Path(path)
    if (path / MANIFEST_NAME).is_file():
        return path
    if (path / STAGE / MANIFEST_NAME).is_file():
        return path / STAGE
    raise ArtifactError(f"{path}: no trained retriever here (train one: remogpt train retriever --out {path})")


@dataclasses.dataclass
class SearchResult:
    """The top-k samples of one query, best first."""

    direction: str  # "t2m", "t2t", "m2t" or "m2m"
    ids: list[str]
    scores: np.ndarray  # cosine similarities, (k,)
    captions: list[str]  # the matched caption (text targets) or the sample's first caption (motion targets)
    motions: list[np.ndarray] | None = None  # raw (T, D) features from the data folder

    def __len__(self) -> int:
        return len(self.ids)

    def table(self) -> str:
        """A ranked table for a terminal."""
        width = max([len(i) for i in self.ids] + [2])
        lines = [f"{'rank':>4}  {'score':>6}  {'id':<{width}}  caption"]
        for r, (i, s, c) in enumerate(zip(self.ids, self.scores, self.captions, strict=True), start=1):
            lines.append(f"{r:>4}  {s:>6.3f}  {i:<{width}}  {c}")
        return "\n".join(lines)


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise RetrievalInputError(f"k must be a positive integer, got {k!r}")


def _as_exclusions(exclude_ids: Any, n: int, batched: bool) -> list[list[str]]:
    if exclude_ids is None:
        return [[] for _ in range(n)]
    if isinstance(exclude_ids, str):
        return [[exclude_ids] for _ in range(n)]
    items = list(exclude_ids)
    if batched and items and all(not isinstance(x, str) for x in items):
        if len(items) != n:
            raise RetrievalInputError(f"exclude_ids has {len(items)} lists for {n} queries")
        return [[x] if isinstance(x, str) else list(x) for x in items]
    if not all(isinstance(x, str) for x in items):
        raise RetrievalInputError("exclude_ids must be ids (strings), or one list of ids per query")
    return [items for _ in range(n)]


class Retriever:
    """A trained PL-TMR (or whole-body) retriever: embeddings of text and motion, and database search."""

    def __init__(
        self,
        model: RetrievalModel,
        text_encoder: TextEncoder,
        config: RetrieverConfig,
        normalizer: Normalizer,
        manifest: Manifest,
        run_dir: Path | None = None,
        database: RetrievalDatabase | None = None,
        cache_dir: Path | str | None = None,
    ) -> None:
        self.model = model.eval()
        self.text_encoder = text_encoder
        self.config = config
        self.normalizer = normalizer
        self.manifest = manifest
        self.run_dir = run_dir
        self.database = database
        self.cache_dir = cache_dir
        self.skeleton: SkeletonSpec = skeleton_for_dim(normalizer.dim)
        self._motion_cache = lru_cache(maxsize=256)(self._read_motion)

    @classmethod
    def from_pretrained(
        cls,
        run_dir: Path | str,
        text_encoder: TextEncoder | None = None,
        load_index: bool = True,
        data_root: Path | str | None = None,
        cache_dir: Path | str | None = None,
    ) -> Retriever:
        """Load `runs/<name>/retriever` (or `runs/<name>`) and, when built, its index.

        An index built by another retriever is refused (`IndexVersionError`). `data_root` overrides
        where the database's motions are read from.
        """
        run_dir = resolve_run_dir(run_dir)
        model, encoder, cfg, normalizer, manifest = load_retriever_model(run_dir, text_encoder)
        database = None
        if load_index and (run_dir / INDEX_DIR / MANIFEST_NAME).is_file():
            database = RetrievalDatabase.load(run_dir / INDEX_DIR, manifest, data_root)
        return cls(model, encoder, cfg, normalizer, manifest, run_dir, database, cache_dir)

    def save_pretrained(self, directory: Path | str) -> Path:
        """Write this retriever (and its database) as an artifact that `from_pretrained` reads back
        with the same fingerprint, so language models trained with it still accept it."""
        from remogpt.retrieval.index import IndexConfig
        from remogpt.retrieval.saved import save_retriever

        directory = Path(directory)
        kept = {k: v for k, v in self.manifest.extra.items() if k not in ("weights_sha256", "stats_sha256")}
        manifest = save_retriever(directory, self.model, self.config, self.normalizer, self.manifest.data_hash,
                                  str(kept.pop("text_model")), int(kept.pop("text_dim")), self.skeleton,
                                  extra=kept)  # fmt: skip
        if manifest.fingerprint != self.manifest.fingerprint:
            raise ArtifactError(f"{directory}: the saved retriever differs from the loaded one (weights changed?)")
        if self.database is not None:
            index_cfg = self.database.manifest.config if self.database.manifest else {}
            known = {k: v for k, v in index_cfg.items() if k in IndexConfig.__dataclass_fields__}
            self.database.save(directory / INDEX_DIR, manifest, IndexConfig.from_dict(known))
        return directory

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    # ---- embeddings ---------------------------------------------------------------------------

    @torch.no_grad()
    def embed_text(self, texts: str | Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Unit-norm (N, latent) embeddings of captions in the shared space."""
        texts = check_texts([texts] if isinstance(texts, str) else list(texts))
        if not texts:
            raise RetrievalInputError("no texts to embed")
        if self.text_encoder.frozen:
            sentences = torch.from_numpy(self.text_encoder.encode(texts, cache_dir=self.cache_dir))
        else:
            sentences = torch.cat(
                [self.text_encoder(texts[s : s + batch_size]) for s in range(0, len(texts), batch_size)]
            )
        return self.model.embed_sentences(sentences).numpy()

    def _prepare_motion(self, motion: Any, index: int, warn: bool = True) -> np.ndarray:
        arr = np.asarray(motion.detach().cpu().numpy() if isinstance(motion, torch.Tensor) else motion)
        name = f"motion #{index}"
        if arr.dtype.kind not in "fiu":
            raise RetrievalInputError(f"{name}: expected numeric features, got dtype {arr.dtype}")
        if arr.ndim == 3:
            raise RetrievalInputError(
                f"{name}: got joints {arr.shape}; the retriever takes features (T, "
                f"{self.normalizer.dim}) (see remogpt.motion.joints_to_features)"
            )
        if arr.ndim != 2 or arr.shape[1] != self.normalizer.dim:
            raise RetrievalInputError(
                f"{name}: expected features (T, {self.normalizer.dim}) ({self.skeleton.name}), got shape {arr.shape}"
            )
        try:
            check_feature_values(arr, name)
        except MotionFormatError as exc:
            raise RetrievalInputError(str(exc)) from None
        stride = self.config.motion.frame_stride
        longest = self.config.data.max_length - self.config.data.max_length % stride
        if len(arr) > longest:
            if warn:
                warnings.warn(
                    f"{name}: {len(arr)} frames, cropped to the first {longest} (the retriever's length)",
                    TruncationWarning,
                    stacklevel=4,
                )
            arr = arr[:longest]
        usable = len(arr) - len(arr) % stride
        if usable < stride:
            raise RetrievalInputError(f"{name}: {len(arr)} frame(s); the retriever needs at least {stride}")
        return self.normalizer.normalize(arr[:usable].astype(np.float32))

    def _motion_batches(self, motions: Any, batch_size: int, warn: bool) -> Any:
        """(rows, padded normalised features, mask) batches of similar lengths, for any input motions."""
        if isinstance(motions, np.ndarray | torch.Tensor):
            if motions.ndim == 2:
                motions = [motions]
            elif motions.ndim != 3 or motions.shape[-1] != self.normalizer.dim:
                raise RetrievalInputError(
                    f"expected features (T, {self.normalizer.dim}) or a batch (B, T, "
                    f"{self.normalizer.dim}), got shape {tuple(motions.shape)}"
                    + (
                        " (joints? convert them with remogpt.motion.joints_to_features)"
                        if motions.shape[-1] == 3
                        else ""
                    )
                )
        prepared = [self._prepare_motion(m, i, warn) for i, m in enumerate(motions)]
        if not prepared:
            raise RetrievalInputError("no motions to embed")
        order = np.argsort([len(m) for m in prepared], kind="stable")
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            t_max = max(len(prepared[i]) for i in idx)
            feats = torch.zeros(len(idx), t_max, self.normalizer.dim)
            mask = torch.zeros(len(idx), t_max, dtype=torch.bool)
            for b, i in enumerate(idx):
                feats[b, : len(prepared[i])] = torch.from_numpy(prepared[i])
                mask[b, : len(prepared[i])] = True
            yield idx, feats, mask, len(prepared)

    @torch.no_grad()
    def embed_motion(
        self,
        motions: np.ndarray | Sequence[np.ndarray],
        batch_size: int = 64,
        drop_parts: Sequence[str] = (),
        warn: bool = True,
    ) -> np.ndarray:
        """Unit-norm (N, latent) embeddings of raw (unnormalised) feature arrays (T, D), any lengths.

        Motions longer than the retriever's length are cropped (with a TruncationWarning when `warn`);
        `drop_parts` zeroes those parts' vectors before the head (a test-time ablation).
        """
        out: np.ndarray | None = None
        for idx, feats, mask, n in self._motion_batches(motions, batch_size, warn):
            if out is None:
                out = np.zeros((n, self.config.latent_dim), np.float32)
            out[idx] = self.model.embed_motion(feats, mask, drop_parts).numpy()
        assert out is not None
        return out

    @torch.no_grad()
    def embed_motion_parts(
        self, motions: Sequence[np.ndarray], batch_size: int = 64, warn: bool = True
    ) -> dict[str, np.ndarray]:
        """Each body part's pooled vector before the head, {part: (N, width)} (part-level retrievers only)."""
        encoder = self.model.motion_encoder
        if not hasattr(encoder, "part_embeddings"):
            raise RetrievalError("a whole-body retriever has no part embeddings")
        out: dict[str, np.ndarray] = {}
        for idx, feats, mask, n in self._motion_batches(motions, batch_size, warn):
            for name, emb in encoder.part_embeddings(feats, mask).items():
                out.setdefault(name, np.zeros((n, emb.shape[1]), np.float32))[idx] = emb.numpy()
        return out

    @torch.no_grad()
    def project_motion_parts(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """Part vectors (as from `embed_motion_parts`, possibly edited) → unit-norm motion embeddings (Eq. 2 + head)."""
        from remogpt.motion import PART_NAMES

        cat = torch.from_numpy(np.concatenate([parts[p] for p in PART_NAMES], axis=1))
        return torch.nn.functional.normalize(self.model.motion_head(cat), dim=-1).numpy()

    # ---- the database -------------------------------------------------------------------------

    def build_index(
        self,
        data_root: Path | str | None = None,
        split: str = "train",
        cfg: IndexConfig | None = None,
        save: bool = True,
    ) -> RetrievalDatabase:
        """Embed every sample (motion and captions) of a split and index them (saved under the run's index/)."""
        cfg = cfg or IndexConfig()
        root = Path(data_root) if data_root is not None else Path(self.config.data.root)
        clips = load_split(root, split, self.skeleton, self.config.data.min_frames, self.config.data.max_frames)
        if not clips:
            raise RetrievalError(f"{root}: the {split} split holds no samples to index")
        motion_emb = self.embed_motion([c.features for c in clips], warn=False)  # cropped as in training
        database = RetrievalDatabase.build(
            [c.id for c in clips],
            motion_emb,
            [[cap.text for cap in c.captions] for c in clips],
            self.embed_text,
            str(root),
            split,
            cfg,
        )
        if save:
            if self.run_dir is None:
                raise ArtifactError("this retriever has no run folder to save an index in")
            database.save(self.run_dir / INDEX_DIR, self.manifest, cfg)
        self.database = database
        return database

    def _read_motion(self, sample_id: str) -> np.ndarray:
        assert self.database is not None
        sample = parse_sample_id(sample_id)
        try:
            features = load_features(motion_file(self.database.data_root, sample.clip_id), self.skeleton)
        except DataFormatError as exc:
            raise RetrievalError(
                f"cannot read the retrieved motion {sample_id!r} ({exc}); pass data_root= to "
                "Retriever.from_pretrained if the data folder moved"
            ) from None
        return features[sample.frames(self.skeleton.fps)]

    def motion(self, sample_id: str) -> np.ndarray:
        """A database sample's raw features (T, D), read from the data folder."""
        self._require_database().row(sample_id)
        return self._motion_cache(sample_id).copy()

    def _require_database(self) -> RetrievalDatabase:
        if self.database is None:
            where = self.run_dir if self.run_dir is not None else "RUN"
            raise RetrievalError(
                f"no retrieval index for {where}: build it with `remogpt index build {where}` "
                "(or Retriever.build_index())"
            )
        return self.database

    # ---- search ---------------------------------------------------------------------------------

    def search(
        self,
        text: str | Sequence[str] | None = None,
        motion: np.ndarray | Sequence[np.ndarray] | None = None,
        k: int = 5,
        target: Target = "motion",
        exclude_ids: str | Iterable[str] | Sequence[Iterable[str]] | None = None,
        with_motions: bool = True,
    ) -> SearchResult | list[SearchResult]:
        """The k database samples most similar to a text or a motion query.

        `target="motion"` compares with the samples' motion embeddings (t→m, m→m), `"text"` with
        their captions' (t→t, m→t). A list of queries gives a list of results. `exclude_ids`
        (ids, or one list per query) removes those samples' whole families: clip, mirror, timed parts.
        """
        if (text is None) == (motion is None):
            raise RetrievalInputError("give exactly one of text= or motion=")
        if target not in ("motion", "text"):
            raise RetrievalInputError(f"target must be 'motion' or 'text', got {target!r}")
        _check_k(k)
        self._require_database()
        if text is not None:
            batched = not isinstance(text, str)
            queries = self.embed_text(text)
            source = "t"
        else:
            batched = not (isinstance(motion, np.ndarray | torch.Tensor) and motion.ndim == 2)
            queries = self.embed_motion(motion)  # type: ignore[arg-type]
            source = "m"
        direction = f"{source}2{target[0]}"
        exclusions = _as_exclusions(exclude_ids, len(queries), batched)
        results = self._search_batch(queries, int(k), target, exclusions, direction, with_motions)
        return results if batched else results[0]

    def search_embeddings(
        self,
        queries: np.ndarray,
        source: Target,
        k: int = 5,
        target: Target = "motion",
        exclude_ids: Sequence[Iterable[str]] | None = None,
        with_motions: bool = True,
    ) -> list[SearchResult]:
        """`search` for queries already embedded (N, latent) — from `embed_text` / `embed_motion` or
        `database_embeddings` — so that one embedding serves both targets."""
        if source not in ("motion", "text") or target not in ("motion", "text"):
            raise RetrievalInputError(f"source and target must be 'motion' or 'text', got {source!r}, {target!r}")
        _check_k(k)
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.config.latent_dim:
            raise RetrievalInputError(f"expected query embeddings (N, {self.config.latent_dim}), got {queries.shape}")
        self._require_database()
        exclusions = _as_exclusions(exclude_ids, len(queries), True)
        return self._search_batch(queries, int(k), target, exclusions, f"{source[0]}2{target[0]}", with_motions)

    def database_embeddings(self, sample_ids: Sequence[str]) -> np.ndarray | None:
        """The stored motion embeddings of database samples (as `embed_motion` gave them when the
        index was built), or None when one of the ids is not in the database."""
        rows = self._require_database().rows(sample_ids)
        return None if rows is None else self._require_database().motion_emb[rows]

    def _search_batch(
        self,
        queries: np.ndarray,
        k: int,
        target: Target,
        exclusions: list[list[str]],
        direction: str,
        with_motions: bool,
    ) -> list[SearchResult]:
        """All queries in one index call (the LM precomputes ~10^5 of them); a query whose filtered
        candidates fall short of k (many exclusions, an approximate index) takes the careful path."""
        db = self._require_database()
        if target == "motion":
            index, family, owner = db.motion_index, db.sample_family, None
        else:
            index, family, owner = db.text_index, db.caption_family, db.caption_sample
        per_family = np.bincount(family, minlength=len(db.family_names))
        codes = [db.family_codes(ex) for ex in exclusions]
        most_excluded = max((int(sum(per_family[c] for c in cs)) for cs in codes), default=0)
        fetch = min(index.size, (k + most_excluded) * (1 if owner is None else 4))
        scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), fetch)
        results: list[SearchResult] = []
        for q, (srow, rrow, excluded) in enumerate(zip(scores, rows, codes, strict=True)):
            ids: list[str] = []
            best: list[float] = []
            captions: list[str] = []
            seen: set[int] = set()
            for score, row in zip(srow.tolist(), rrow.tolist(), strict=True):
                if row < 0 or int(family[row]) in excluded:
                    continue
                sample = row if owner is None else int(owner[row])
                if sample in seen:
                    continue
                seen.add(sample)
                ids.append(db.sample_ids[sample])
                best.append(score)
                captions.append(db.first_caption[sample] if owner is None else db.caption_texts[row])
                if len(ids) == k:
                    break
            if len(ids) < k:
                results.append(self._search_one(queries[q], k, target, exclusions[q], direction, with_motions))
                continue
            motions = [self.motion(i) for i in ids] if with_motions else None
            results.append(SearchResult(direction, ids, np.asarray(best, dtype=np.float32), captions, motions))
        return results

    def _search_one(
        self, query: np.ndarray, k: int, target: Target, exclude: list[str], direction: str, with_motions: bool
    ) -> SearchResult:
        db = self._require_database()
        codes = db.family_codes(exclude)
        excluded_samples = int(np.isin(db.sample_family, list(codes)).sum()) if codes else 0
        available = len(db) - excluded_samples
        if k > available:
            extra = f" ({excluded_samples} excluded)" if excluded_samples else ""
            raise RetrievalInputError(f"k={k} but the database holds {available} samples{extra}")
        if target == "motion":
            index, family, owner = db.motion_index, db.sample_family, None
        else:
            index, family, owner = db.text_index, db.caption_family, db.caption_sample
        excluded_entries = int(np.isin(family, list(codes)).sum()) if codes else 0
        fetch = min(index.size, k + excluded_entries if owner is None else 4 * (k + excluded_entries))
        while True:
            scores, rows = index.search(query[None], fetch)
            ids: list[str] = []
            best: list[float] = []
            captions: list[str] = []
            seen: set[int] = set()
            for score, row in zip(scores[0], rows[0], strict=True):
                if row < 0 or int(family[row]) in codes:
                    continue
                sample = int(row) if owner is None else int(owner[row])
                if sample in seen:
                    continue
                seen.add(sample)
                ids.append(db.sample_ids[sample])
                best.append(float(score))
                captions.append(db.first_caption[sample] if owner is None else db.caption_texts[row])
                if len(ids) == k:
                    break
            if len(ids) == k or fetch >= index.size:
                break
            fetch = min(index.size, fetch * 4)
        if len(ids) < k:  # an approximate index can miss entries; say so rather than return fewer silently
            raise RetrievalError(
                f"the {index.kind} index returned only {len(ids)} of {k} results; "
                "rebuild it with a larger hnsw_ef_search or kind flat"
            )
        motions = [self.motion(i) for i in ids] if with_motions else None
        return SearchResult(direction, ids, np.asarray(best, dtype=np.float32), captions, motions)
