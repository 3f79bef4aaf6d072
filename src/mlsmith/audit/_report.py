"""What the audit found: :class:`Finding` and :class:`AuditReport` (``audit.json``)."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsmith.errors import AuditError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from mlsmith.schema import Schema

__all__ = ["CHECKS", "SEVERITIES", "Finding", "AuditReport", "AUDIT_VERSION"]

AUDIT_VERSION = 1

#: every check the audit runs, by stable id (the value of ``--allow``), with what it looks for
CHECKS: dict[str, str] = {
    "target_leakage": "a column that restates the target (alone, by a fixed mapping, or "
                      "arithmetically with a few others)",
    "identifier": "row keys, row numbers and counters (dropped)",
    "duplicates": "identical rows (removed before the split) and identical features with "
                  "different targets",
    "class_imbalance": "a minority class under 20% of the rows (severe under 5%)",
    "scale": "numeric features whose spreads differ by more than 100x",
    "missing_values": "empty cells per column (warning above 30%)",
    "constant": "a column with a single value (dropped)",
    "near_constant": "a column whose most frequent value fills more than 99% of the rows",
    "high_cardinality": "a categorical column with very many distinct values",
    "mixed_types": "a column holding both numbers and text",
    "outliers": "values more than 5 robust standard deviations from the median",
    "skewed_target": "a positive regression target with a long right tail",
    "rare_class": "a class with fewer rows than cross-validation folds",
    "future_feature": "a date later than the prediction time in most rows",
    "time_order": "a time column: the split follows time instead of shuffling",
}

#: most severe first
SEVERITIES = ("error", "warning", "info")


def _jsonable(value: Any) -> Any:
    """Numbers, lists and dicts that ``json.dumps`` accepts (numpy scalars and NaN included)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else float(f"{v:.6g}")
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass
class Finding:
    """One thing the audit noticed.

    Attributes
    ----------
    check : str
        Stable id from :data:`CHECKS` (also the value of ``--allow``).
    severity : str
        ``error`` (stops the fit unless allowed), ``warning`` or ``info``.
    title : str
        A short heading for the report.
    message : str
        One line for the terminal, with the numbers behind it.
    columns : list of str
        The columns concerned.
    evidence : dict
        Numbers that justify the finding (JSON-serialisable).
    fix : str
        What to do, or what the fit does about it.
    applied : bool
        True when the fit applies the fix itself (a dropped column, removed rows).
    """

    check: str
    severity: str
    title: str
    message: str
    columns: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""
    applied: bool = False

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"unknown audit check {self.check!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}: use one of {SEVERITIES}")
        self.columns = [str(c) for c in self.columns]
        self.evidence = _jsonable(self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**{k: d[k] for k in ("check", "severity", "title", "message")},
                   columns=list(d.get("columns", [])), evidence=dict(d.get("evidence", {})),
                   fix=d.get("fix", ""), applied=bool(d.get("applied", False)))


def _rank(f: Finding) -> tuple[int, int]:
    return SEVERITIES.index(f.severity), list(CHECKS).index(f.check)


def default_recommendations(task: str) -> dict[str, Any]:
    """Recommendations when nothing in the data asks for more."""
    lead = {"binary": ["roc_auc", "accuracy"], "multiclass": ["log_loss", "accuracy"],
            "regression": ["rmse", "r2"]}.get(task, [])
    return {"class_weight": False, "smote": False, "threshold_tuning": False,
            "lead_metrics": lead, "log_target": False, "scaling_needed": False}


@dataclass
class AuditReport:
    """The audit's findings and the changes it asks the fit to make.

    Attributes
    ----------
    target, task : str
        The target column and the task kind.
    n_rows, n_columns : int
        Rows audited and columns other than the target.
    findings : list of Finding
        In the order the checks ran; :meth:`sorted_findings` gives most severe first.
    drop_columns : list of str
        Columns to remove before modelling (identifiers, constants). Leaking columns are never
        dropped here: they stop the fit, or the user allowed them.
    drop_rows : numpy.ndarray
        Row positions (``iloc``) to remove before the split (duplicate copies, first kept).
    removed_rows : dict
        How many rows each reason removes (``{"duplicates": 12}``).
    recommendations : dict
        Read by the pipeline: ``class_weight``, ``smote``, ``threshold_tuning``,
        ``lead_metrics``, ``log_target``, ``scaling_needed``.
    allowed : list of str
        Checks the user allowed (``--allow``): their errors do not stop the fit.
    seconds : float
        Time the audit took.
    """

    target: str
    task: str
    n_rows: int
    n_columns: int
    findings: list[Finding] = field(default_factory=list)
    drop_columns: list[str] = field(default_factory=list)
    drop_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.intp))
    removed_rows: dict[str, int] = field(default_factory=dict)
    recommendations: dict[str, Any] = field(default_factory=dict)
    allowed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # --- queries ---------------------------------------------------------------------------------
    @property
    def errors(self) -> list[Finding]:
        """Findings that stop the fit: severity ``error`` and the check not allowed."""
        return [f for f in self.findings if f.severity == "error" and f.check not in self.allowed]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def by_check(self, check: str) -> list[Finding]:
        """The findings of one check."""
        return [f for f in self.findings if f.check == check]

    def sorted_findings(self) -> list[Finding]:
        """Most severe first; within a severity, in the order of :data:`CHECKS`."""
        return sorted(self.findings, key=_rank)

    # --- acting on it ----------------------------------------------------------------------------
    def raise_for_errors(self) -> None:
        """Raise :class:`~mlsmith.errors.AuditError` if a finding stops the fit.

        The message is one line: the check, the column(s) and the evidence of the first error,
        the fix, and how many more errors there are.
        """
        errors = sorted(self.errors, key=_rank)
        if not errors:
            return
        first = errors[0]
        more = ""
        if len(errors) > 1:
            others = ", ".join(f"{f.check} on {', '.join(map(repr, f.columns))}"
                               for f in errors[1:4])
            more = f" ({len(errors) - 1} more: {others}{' ...' if len(errors) > 4 else ''})"
        raise AuditError(f"data audit: {first.check}: {first.message}. Fix: {first.fix}.{more}",
                         findings=errors)

    def apply(self, df: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, Schema]:
        """Remove :attr:`drop_rows` from ``df`` and mark :attr:`drop_columns` as dropped.

        Returns a new frame (rows removed by position, the index keeps the original row labels)
        and a copy of ``schema`` in which every dropped column has the role ``id`` and says why.
        ``schema.n_rows`` is updated.
        """
        keep = np.ones(len(df), dtype=bool)
        keep[np.asarray(self.drop_rows, dtype=np.intp)] = False
        out = df.iloc[np.flatnonzero(keep)]
        new = copy.deepcopy(schema)
        why = {c: f.check for f in self.findings if f.applied for c in f.columns}
        for info in new.columns:
            if info.name in self.drop_columns and info.role in ("numeric", "categorical",
                                                                "datetime", "text"):
                info.role = "id"
                info.reason = f"dropped by the audit ({why.get(info.name, 'identifier')})"
        new.n_rows = len(out)
        return out, new

    # --- output ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ``audit.json`` document (see ``docs/RUNDIR.md``)."""
        return {
            "version": AUDIT_VERSION,
            "target": self.target,
            "task": self.task,
            "n_rows": int(self.n_rows),
            "n_columns": int(self.n_columns),
            "seconds": round(float(self.seconds), 3),
            "findings": [f.to_dict() for f in self.findings],
            "dropped_columns": list(self.drop_columns),
            "removed_rows": {k: int(v) for k, v in self.removed_rows.items()},
            "recommendations": _jsonable(self.recommendations),
            "allowed": list(self.allowed),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditReport:
        """Read ``audit.json`` back (row positions are not stored: :attr:`drop_rows` is empty)."""
        return cls(target=d["target"], task=d["task"], n_rows=d["n_rows"],
                   n_columns=d["n_columns"],
                   findings=[Finding.from_dict(f) for f in d.get("findings", [])],
                   drop_columns=list(d.get("dropped_columns", [])),
                   removed_rows=dict(d.get("removed_rows", {})),
                   recommendations=dict(d.get("recommendations", {})),
                   allowed=list(d.get("allowed", [])), seconds=float(d.get("seconds", 0.0)))

    def summary_lines(self, max_lines: int | None = None) -> list[str]:
        """Short lines for the terminal, most severe first.

        Each line is ``SEVERITY check: message`` and, for errors and warnings, the fix;
        ``(fixed)`` marks what the fit does itself and ``(allowed)`` errors the user allowed.
        """
        lines = []
        for f in self.sorted_findings():
            tag = f.severity
            if f.severity == "error" and f.check in self.allowed:
                tag = "error (allowed)"
            line = f"{tag}: {f.check}: {f.message}"
            if f.applied:
                line += " (fixed)"
            elif f.severity != "info" and f.fix:
                line += f"; fix: {f.fix}"
            lines.append(line)
        if max_lines is not None and len(lines) > max_lines:
            lines = lines[:max_lines] + [f"... and {len(lines) - max_lines} more findings"]
        return lines
