"""The retrieval database: embeddings of every clip's motion and captions, searched with faiss.

Vectors are unit-norm, so inner product is cosine similarity. Exact search (`IndexFlatIP`) is the
default; above `exact_max` entries the index is approximate (HNSW by default, or IVF) and its
recall@10 against exact search is measured on a sample of the database and stored in the manifest.
An index remembers the fingerprint of the retriever that embedded it and refuses to serve another.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from remogpt.artifacts import (
    MANIFEST_NAME,
    ArtifactError,
    Manifest,
    atomic_save_npy,
    atomic_write_text,
    hash_folder,
    read_manifest,
    sha256_file,
    write_manifest,
)
from remogpt.config import ConfigBase, ConfigError
from remogpt.data.folder import SampleId
from remogpt.retrieval.errors import IndexVersionError

__all__ = ["INDEX_DIR", "INDEX_STAGE", "IndexConfig", "RetrievalDatabase", "VectorIndex", "family_of"]

INDEX_DIR = "index"
INDEX_STAGE = "retrieval-index"
_INDEX_FILES = ("motion_emb.npy", "text_emb.npy", "caption_sample.npy", "entries.json", "motion.faiss", "text.faiss")


def family_of(sample_id: str) -> str:
    """The clip a sample belongs to, mirror or not: "000123", "M000123" and "000123#1-4" → "000123"."""
    return SampleId(sample_id.partition("#")[0]).family  # no span parsing: user-given ids may have any tail


@dataclasses.dataclass
class IndexConfig(ConfigBase):
    """How the database is searched."""

    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"  # auto: flat up to exact_max entries, else HNSW
    exact_max: int = 100_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_lists: int | None = None  # None: 4·√N
    ivf_probe: int = 32
    recall_queries: int = 1000  # database rows used as queries to measure an approximate index's recall@10

    def __post_init__(self) -> None:
        if self.exact_max < 0 or self.hnsw_m < 2 or self.hnsw_ef_search < 1 or self.ivf_probe < 1:
            raise ConfigError("exact_max ≥ 0, hnsw_m ≥ 2, hnsw_ef_search ≥ 1 and ivf_probe ≥ 1 are required")


class VectorIndex:
    """A faiss inner-product index over unit-norm float32 vectors."""

    def __init__(self, index: Any, kind: str, recall_at_10: float = 1.0) -> None:
        self.index, self.kind, self.recall_at_10 = index, kind, recall_at_10

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, cfg: IndexConfig | None = None) -> VectorIndex:
        import faiss

        cfg = cfg or IndexConfig()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        kind = cfg.kind if cfg.kind != "auto" else ("flat" if n <= cfg.exact_max else "hnsw")
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.hnsw_ef_construction
            index.hnsw.efSearch = cfg.hnsw_ef_search
        else:
            lists = cfg.ivf_lists or max(1, min(n // 39, int(4 * math.sqrt(n))))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            index.nprobe = min(cfg.ivf_probe, lists)
        index.add(x)
        out = cls(index, kind)
        if kind != "flat":
            out.recall_at_10 = out.measure_recall(x, cfg.recall_queries)
        return out

    def measure_recall(self, vectors: np.ndarray, queries: int = 1000, k: int = 10, seed: int = 0) -> float:
        """Share of the exact top-k found, over a sample of the database's own rows as queries.

        Tie-aware: a returned row counts when its score reaches the exact k-th best score, so duplicate
        vectors (identical captions) returned in another order are not counted as misses.
        """
        n = len(vectors)
        k = min(k, n)
        rng = np.random.default_rng(seed)
        q = np.ascontiguousarray(vectors[rng.choice(n, size=min(queries, n), replace=False)], dtype=np.float32)
        kth = np.sort(q @ vectors.T, axis=1)[:, -k]
        _, rows = self.index.search(q, k)
        found = np.where(rows >= 0, np.einsum("qd,qkd->qk", q, vectors[np.maximum(rows, 0)]), -np.inf)
        return float(np.mean((found >= kth[:, None] - 1e-5).sum(1) / k))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, k), rows (Q, k)); rows are -1 where fewer than k were found."""
        k = min(k, self.size)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def save(self, path: Path) -> None:
        import faiss

        tmp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self.index, str(tmp))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, kind: str, recall: float, ef_search: int | None = None) -> VectorIndex:
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ArtifactError(f"{path}: unreadable faiss index ({str(exc).splitlines()[0]})") from None
        if ef_search is not None and hasattr(index, "hnsw"):
            index.hnsw.efSearch = ef_search
        return cls(index, kind, recall)


@dataclasses.dataclass
class RetrievalDatabase:
    """Every sample's motion embedding and every caption's text embedding, with their ids and texts.

    Motions are not copied: they are read from `data_root` by id when a search asks for them.
    """

    sample_ids: list[str]
    motion_emb: np.ndarray  # (N_samples, d) unit-norm
    caption_texts: list[str]
    caption_sample: np.ndarray  # (N_captions,) row of the sample each caption describes
    text_emb: np.ndarray  # (N_captions, d) unit-norm
    data_root: str
    split: str
    motion_index: VectorIndex
    text_index: VectorIndex
    manifest: Manifest | None = None

    def __post_init__(self) -> None:
        families = [family_of(s) for s in self.sample_ids]
        names = sorted(set(families))
        code = {f: i for i, f in enumerate(names)}
        self.family_names = names
        self._family_code = code
        self.sample_family = np.array([code[f] for f in families], dtype=np.int64)
        self.caption_family = self.sample_family[self.caption_sample]
        self._row = {s: i for i, s in enumerate(self.sample_ids)}
        self.first_caption = [""] * len(self.sample_ids)
        for text, row in zip(reversed(self.caption_texts), reversed(self.caption_sample.tolist()), strict=True):
            self.first_caption[row] = text

    def __len__(self) -> int:
        return len(self.sample_ids)

    def row(self, sample_id: str) -> int:
        try:
            return self._row[sample_id]
        except KeyError:
            raise ArtifactError(f"sample {sample_id!r} is not in the database") from None

    def rows(self, sample_ids: Sequence[str]) -> np.ndarray | None:
        """Rows of these samples, or None when one of them is not in the database."""
        rows = [self._row.get(i) for i in sample_ids]
        return None if any(r is None for r in rows) else np.asarray(rows, dtype=np.int64)

    def captions_of(self, row: int) -> list[str]:
        return [self.caption_texts[i] for i in np.flatnonzero(self.caption_sample == row)]

    def family_codes(self, ids: list[str]) -> set[int]:
        """Codes of the families of `ids` that the database holds (others cannot be retrieved anyway)."""
        return {self._family_code[f] for f in (family_of(i) for i in ids) if f in self._family_code}

    @classmethod
    def build(
        cls,
        sample_ids: list[str],
        motion_emb: np.ndarray,
        captions: list[list[str]],
        embed_texts: Callable[[list[str]], np.ndarray],
        data_root: str,
        split: str,
        cfg: IndexConfig | None = None,
    ) -> RetrievalDatabase:
        texts = [t for caps in captions for t in caps]
        owner = np.array([i for i, caps in enumerate(captions) for _ in caps], dtype=np.int64)
        text_emb = np.asarray(embed_texts(texts), dtype=np.float32)
        motion_emb = np.asarray(motion_emb, dtype=np.float32)
        return cls(
            list(sample_ids),
            motion_emb,
            texts,
            owner,
            text_emb,
            str(data_root),
            split,
            VectorIndex.build(motion_emb, cfg),
            VectorIndex.build(text_emb, cfg),
        )

    def save(self, folder: Path | str, retriever: Manifest, cfg: IndexConfig) -> Manifest:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(folder / "motion_emb.npy", self.motion_emb)
        atomic_save_npy(folder / "text_emb.npy", self.text_emb)
        atomic_save_npy(folder / "caption_sample.npy", self.caption_sample)
        atomic_write_text(
            folder / "entries.json",
            json.dumps({"sample_ids": self.sample_ids, "captions": self.caption_texts}, ensure_ascii=False) + "\n",
        )
        self.motion_index.save(folder / "motion.faiss")
        self.text_index.save(folder / "text.faiss")
        files = {name: sha256_file(folder / name) for name in _INDEX_FILES}
        try:
            data_hash: str | None = hash_folder(self.data_root)
        except ArtifactError:
            data_hash = None
        manifest = Manifest(
            stage=INDEX_STAGE,
            config={**cfg.to_dict(), "split": self.split},
            data_hash=data_hash,
            inputs={"retriever": retriever.fingerprint},
            extra={
                "data_root": str(Path(self.data_root).resolve()),
                "samples": len(self.sample_ids),
                "captions": len(self.caption_texts),
                "dim": int(self.motion_emb.shape[1]),
                "motion_index": {"kind": self.motion_index.kind, "recall_at_10": self.motion_index.recall_at_10},
                "text_index": {"kind": self.text_index.kind, "recall_at_10": self.text_index.recall_at_10},
                "files_sha256": files,
            },
        )
        write_manifest(folder, manifest)
        self.manifest = manifest
        return manifest

    @classmethod
    def load(cls, folder: Path | str, retriever: Manifest, data_root: str | Path | None = None) -> RetrievalDatabase:
        """Read an index folder, refusing one that another retriever (another fingerprint) built."""
        folder = Path(folder)
        manifest = read_manifest(folder, stage=INDEX_STAGE)
        built_by = manifest.inputs.get("retriever")
        if built_by != retriever.fingerprint:
            raise IndexVersionError(
                f"{folder}: this index was built by retriever {built_by}, but the retriever loading it is "
                f"{retriever.fingerprint} (retrained or replaced since); its embeddings do not match. "
                f"Rebuild it: remogpt index build {folder.parent}"
            )
        for name, sha in manifest.extra.get("files_sha256", {}).items():
            if name in _INDEX_FILES:  # a flipped byte in an index would serve wrong neighbours, silently
                if not (folder / name).is_file():
                    raise ArtifactError(f"{folder / name}: missing; rebuild it: remogpt index build {folder.parent}")
                if sha256_file(folder / name) != sha:
                    raise ArtifactError(f"{folder / name}: damaged (sha256 differs from {MANIFEST_NAME}); "
                                        f"rebuild it: remogpt index build {folder.parent}")  # fmt: skip
        try:
            entries = json.loads((folder / "entries.json").read_text(encoding="utf-8"))
            motion_emb = np.load(folder / "motion_emb.npy", allow_pickle=False)
            text_emb = np.load(folder / "text_emb.npy", allow_pickle=False)
            caption_sample = np.load(folder / "caption_sample.npy", allow_pickle=False)
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{folder}: incomplete or unreadable index ({str(exc).splitlines()[0]})") from None
        extra, cfg = manifest.extra, manifest.config
        ef = cfg.get("hnsw_ef_search")
        mi = VectorIndex.load(
            folder / "motion.faiss", extra["motion_index"]["kind"], extra["motion_index"]["recall_at_10"], ef
        )
        ti = VectorIndex.load(
            folder / "text.faiss", extra["text_index"]["kind"], extra["text_index"]["recall_at_10"], ef
        )
        ids, texts = entries["sample_ids"], entries["captions"]
        if not (
            len(ids) == len(motion_emb) == mi.size and len(texts) == len(text_emb) == len(caption_sample) == ti.size
        ):
            raise ArtifactError(f"{folder}: index files disagree on the number of entries; rebuild the index")
        root = str(data_root) if data_root is not None else extra.get("data_root", "")
        return cls(
            ids, motion_emb, texts, caption_sample, text_emb, root, str(cfg.get("split", "train")), mi, ti, manifest
        )
