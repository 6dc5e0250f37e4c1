"""Evaluation: the field's metrics (pure functions), evaluators and the paper's tables."""

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
    rare_motion_metrics,
    rareness,
    retrieval_metrics,
    retrieval_metrics_small_batches,
)

__all__ = [
    "EvalInputError",
    "balanced_mm_dist",
    "caption_metrics",
    "diversity",
    "euclidean_distance_matrix",
    "frechet_distance",
    "mm_dist",
    "multimodality",
    "normalize_caption",
    "r_precision",
    "rare_motion_metrics",
    "rareness",
    "retrieval_metrics",
    "retrieval_metrics_small_batches",
]
