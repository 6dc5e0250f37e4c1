"""Typed views of the results the runners write as JSON, for the code that reads them back.

The runners' JSON is the published format (benchmarks/results, the CLI's `--json`); readers such as the
ablation's aggregation and the benchmarks use these views instead of key paths like
`result["rows"][name]["FID"]["mean"]`, so a missing row or metric is one clear error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remogpt.errors import RemogptError

__all__ = ["Estimate", "InvalidStats", "ProtocolResult", "RecallCurve", "ResultError", "RetrievalResult"]


class ResultError(RemogptError, ValueError):
    """A result file lacks a field its reader needs (written by another version, or not a result)."""


def _field(data: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise ResultError(f"{where}: no field {key!r}")
    return data[key]


@dataclass(frozen=True)
class Estimate:
    """One metric over repeats: mean ± interval (see the result's `interval`), and each repeat's value."""

    mean: float
    interval: float
    values: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Estimate:
        values = tuple(float(v) for v in data.get("values", ()))
        return cls(float(_field(data, "mean", where)), float(data.get("interval", 0.0)), values)


@dataclass(frozen=True)
class InvalidStats:
    """Malformed generations of a text-to-motion run."""

    sequences: int
    invalid_sequences: int
    invalid_fraction: float
    samples: int
    samples_failed: int
    by_kind: Mapping[str, int]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> InvalidStats:
        return cls(int(_field(data, "sequences", where)), int(_field(data, "invalid_sequences", where)),
                   float(_field(data, "invalid_fraction", where)), int(_field(data, "samples", where)),
                   int(_field(data, "samples_failed", where)), dict(data.get("by_kind", {})))  # fmt: skip


@dataclass(frozen=True)
class ProtocolResult:
    """A text-to-motion, motion-to-text or rare-motion result: rows (systems) × metrics."""

    task: str
    label: str | None
    rows: Mapping[str, Mapping[str, Estimate | None]]  # None: a metric the row does not have (Real MModality)
    invalid: Mapping[str, InvalidStats]  # generated rows → their malformed sequences
    raw: Mapping[str, Any]  # the whole JSON, for fields without a view

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "result") -> ProtocolResult:
        rows_raw = _field(data, "rows", where)
        rows = {
            name: {m: None if v is None else Estimate.from_dict(v, f"{where}: row {name!r}, {m}")
                   for m, v in metrics.items()}
            for name, metrics in rows_raw.items()
        }  # fmt: skip
        raw_invalid = data.get("invalid") or {}
        if "sequences" in raw_invalid:  # one generating row (t2m): the stats are its label's
            raw_invalid = {str(_field(data, "label", where)): raw_invalid}
        invalid = {name: InvalidStats.from_dict(v, f"{where}: invalid of {name!r}") for name, v in raw_invalid.items()}
        return cls(str(_field(data, "task", where)), data.get("label"), rows, invalid, data)

    def row(self, name: str) -> Mapping[str, Estimate | None]:
        if name not in self.rows:
            raise ResultError(f"{self.task} result: no row {name!r} (rows: {', '.join(self.rows)})")
        return self.rows[name]

    def mean(self, row: str, metric: str) -> float | None:
        """The mean of `metric` in `row`; None where the row does not have it."""
        value = self.row(row).get(metric)
        return None if value is None else value.mean


@dataclass(frozen=True)
class RecallCurve:
    k: tuple[int, ...]
    t2m: tuple[float, ...]
    m2t: tuple[float, ...]


@dataclass(frozen=True)
class RetrievalResult:
    """Table 1 for one retriever (or the text-to-text row): each protocol's metrics and the recall curve."""

    label: str
    motion_params: int | None
    protocols: Mapping[str, Mapping[str, float]]  # "all", "small_batches" → "t2m/R@1" … "m2t/MedR"
    recall_curve: RecallCurve | None
    raw: Mapping[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "retrieval result") -> RetrievalResult:
        metrics = _field(data, "metrics", where)
        protocols = {p: dict(v) for p, v in metrics.items() if isinstance(v, Mapping) and p != "recall_curve"}
        curve = metrics.get("recall_curve")
        recall = None if curve is None else RecallCurve(tuple(curve["k"]), tuple(curve["t2m"]), tuple(curve["m2t"]))
        return cls(str(_field(data, "label", where)), data.get("motion_params"), protocols, recall, data)

    def protocol(self, name: str) -> Mapping[str, float] | None:
        return self.protocols.get(name) or None
