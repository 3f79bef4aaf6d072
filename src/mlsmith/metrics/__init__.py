"""Metric registry and computation."""

from mlsmith.metrics._metrics import (
    METRICS,
    Metric,
    compute_all,
    default_metric,
    get_metric,
    score,
)

__all__ = ["METRICS", "Metric", "compute_all", "default_metric", "get_metric", "score"]
