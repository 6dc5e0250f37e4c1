"""PL-TMR: body part-level text–motion retrieval (paper, Method; Eq. 2–3; Table 1), its baselines, and
the retrieval database the language model's prompts are built from.

    from remogpt.retrieval import Retriever
    r = Retriever.from_pretrained("runs/demo")
    r.search(text="a person waves", k=5).table()

Names are imported on first use, so `import remogpt.retrieval` stays cheap (no torch/faiss/Lightning).
"""

from __future__ import annotations

from remogpt.lazy import lazy_exports

_EXPORTS = {
    "RetrieverConfig": "config",
    "MotionEncoderConfig": "config",
    "TextEncoderConfig": "config",
    "IndexConfig": "index",
    "RetrievalDatabase": "index",
    "VectorIndex": "index",
    "family_of": "index",
    "SequenceEncoder": "motion",
    "PartLevelMotionEncoder": "motion",
    "WholeBodyMotionEncoder": "motion",
    "ProjectionHead": "motion",
    "RetrievalModel": "model",
    "build_model": "model",
    "info_nce": "model",
    "near_duplicate_mask": "model",
    "TextEncoder": "text",
    "TextEmbeddingCache": "text",
    "train_retriever": "train",
    "encode_split_captions": "train",
    "load_retriever_model": "saved",
    "TrainResult": "train",
    "Retriever": "retriever",
    "SearchResult": "retriever",
    "RetrievalError": "errors",
    "RetrievalInputError": "errors",
    "IndexVersionError": "errors",
    "TruncationWarning": "errors",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
