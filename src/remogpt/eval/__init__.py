"""Evaluation: the field's metrics (pure functions), evaluators, runners and the paper's tables."""

from remogpt.eval.captions import caption_metrics, normalize_caption
from remogpt.eval.metrics import (
    EvalInputError,
    balanced_mm_dist,
    diversity,
    euclidean_distance_matrix,
    frechet_distance,
    mm_dist,
    multimodality,
    r_precision,
    r_precision_per_text,
    rare_motion_metrics,
    rareness,
    retrieval_metrics,
    retrieval_metrics_small_batches,
)
from remogpt.eval.results import ProtocolResult, ResultError, RetrievalResult
from remogpt.eval.runners import (
    eval_m2t,
    eval_rare,
    eval_retrieval,
    eval_t2m,
    eval_text_to_text,
    mean_interval,
)

__all__ = [
    "EvalInputError",
    "ProtocolResult",
    "ResultError",
    "RetrievalResult",
    "balanced_mm_dist",
    "caption_metrics",
    "diversity",
    "euclidean_distance_matrix",
    "eval_m2t",
    "eval_rare",
    "eval_retrieval",
    "eval_t2m",
    "eval_text_to_text",
    "frechet_distance",
    "mean_interval",
    "mm_dist",
    "multimodality",
    "normalize_caption",
    "r_precision",
    "r_precision_per_text",
    "rare_motion_metrics",
    "rareness",
    "retrieval_metrics",
    "retrieval_metrics_small_batches",
]
