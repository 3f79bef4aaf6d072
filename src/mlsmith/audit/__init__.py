"""The data audit: the first stage of every fit.

>>> from mlsmith.audit import audit
>>> report = audit(df, "price", schema)          # doctest: +SKIP
>>> report.raise_for_errors()                    # doctest: +SKIP
>>> df, schema = report.apply(df, schema)        # doctest: +SKIP

Checks find leaking columns (errors that stop the fit unless allowed), identifiers and duplicate
rows (removed), class imbalance, skew and scale (recommendations for the pipeline), and the
usual data-quality problems (missing values, near-constant columns, mixed types, outliers).
"""

from mlsmith.audit._audit import audit
from mlsmith.audit._checks import time_order_key
from mlsmith.audit._report import CHECKS, SEVERITIES, AuditReport, Finding
from mlsmith.audit._threshold import THRESHOLD_OBJECTIVES, tune_threshold

__all__ = ["audit", "AuditReport", "Finding", "CHECKS", "SEVERITIES", "tune_threshold",
           "THRESHOLD_OBJECTIVES", "time_order_key"]
