"""Evaluation: the field's metrics (pure functions), evaluators and the paper's tables."""

from remogpt.eval.metrics import EvalInputError, retrieval_metrics, retrieval_metrics_small_batches

__all__ = ["EvalInputError", "retrieval_metrics", "retrieval_metrics_small_batches"]
