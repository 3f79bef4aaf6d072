"""The data audit: run every check on the loaded table and collect an :class:`AuditReport`."""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.audit import _checks as checks
from mlsmith.audit._context import AuditContext
from mlsmith.audit._leakage import (
    ARITHMETIC_R2,
    CV_THRESHOLD,
    MIN_ROWS,
    arithmetic_leak,
    mapping_evidence,
    oof_score,
    rankdata,
)
from mlsmith.audit._report import CHECKS, AuditReport, Finding, default_recommendations
from mlsmith.errors import ColumnNotFoundError, ConfigError, did_you_mean
from mlsmith.schema import Schema

__all__ = ["audit", "DEFAULT_SAMPLE_ROWS", "MAPPING_MAX_ROWS"]

#: the model-based checks look at most at this many rows
DEFAULT_SAMPLE_ROWS = 5000
#: the deterministic-mapping test looks at most at this many rows
MAPPING_MAX_ROWS = 100_000


def _encode_target(df: pd.DataFrame, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """Class codes in the schema's class order (or floats) and the mask of usable rows."""
    y = df[schema.target]
    if schema.task.is_classification:
        lookup = {v: i for i, v in enumerate(schema.task.classes)}
        codes = y.map(lambda v: lookup.get(v, -1) if not pd.isna(v) else -1)
        codes = codes.to_numpy(dtype=np.int64)
        if np.any(codes < 0) and y.notna().any():  # labels read back with another type
            by_text = {str(v): i for i, v in enumerate(schema.task.classes)}
            alt = y.map(lambda v: by_text.get(str(v), -1) if not pd.isna(v) else -1)
            codes = np.where(codes < 0, alt.to_numpy(dtype=np.int64), codes)
        valid = codes >= 0
        return np.where(valid, codes, 0).astype(np.intp), valid
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    valid = np.isfinite(values)
    return np.where(valid, values, 0.0), valid


def _drop_hint(column: str) -> str:
    return f"--drop {shlex.quote(column)}"


def _leak_finding(column: str, metric: str | None, value: float | None,
                  mapping: dict[str, Any] | None, base: dict[str, Any]) -> Finding:
    evidence = dict(base)
    parts = []
    if metric is not None and value is not None and value > CV_THRESHOLD:
        evidence[metric] = value
        evidence["threshold"] = CV_THRESHOLD
        what = "ROC AUC" if metric == "cv_auc" else "R²"
        parts.append(f"alone predicts the target out of fold ({what} {value:.4f} > "
                     f"{CV_THRESHOLD:g})")
    elif metric is not None and value is not None:
        evidence[metric] = value
    if mapping is not None:
        evidence["mapping"] = mapping
        if mapping["direction"] == "column -> target":
            parts.append(f"maps to the target deterministically (each of its "
                         f"{mapping['n_values']} values has a single target value; chance "
                         f"{mapping['chance_probability']:.1g})")
        else:
            parts.append(f"is a function of the target (each class has one of its "
                         f"{mapping['n_values']} values; chance "
                         f"{mapping['chance_probability']:.1g})")
    return Finding(
        "target_leakage", "error", f"Column {column!r} restates the target",
        f"column {column!r} " + " and ".join(parts), [column], evidence,
        f"drop it with {_drop_hint(column)}, or --allow target_leakage if its value is known "
        f"at prediction time", False)


def check_leakage(ctx: AuditContext) -> list[Finding]:
    """Target leakage, column by column, then arithmetic reconstruction (regression)."""
    rows = ctx.kept_rows()
    cols = ctx.feature_columns()
    if not cols:
        return []
    if len(rows) < MIN_ROWS:
        return [Finding(
            "target_leakage", "info", "Leakage not tested",
            f"only {len(rows)} rows: too few to test columns for target leakage "
            f"(needs {MIN_ROWS})", [], {"n_rows": len(rows), "min_rows": MIN_ROWS},
            "check by hand that no column is derived from the target", False)]
    rng = np.random.default_rng(ctx.seed)
    sample = rows if len(rows) <= ctx.sample_rows else np.sort(
        rng.choice(rows, ctx.sample_rows, replace=False))
    k = int(min(max(ctx.n_folds, 2), 10, len(sample) // 5))
    fold = (rng.permutation(len(sample)) % k).astype(np.intp)
    y = ctx.y[sample]
    y_rank = None
    if not ctx.classification and len(np.unique(y)) >= 0.5 * len(y):
        # ranks catch a monotone restatement with a long tail; with many tied targets (a spike
        # at zero) they would reward merely telling the spike apart, so they are left out
        y_rank = rankdata(y) / len(y)
    max_bins = int(min(256, max(4, len(sample) // 10)))
    map_rows = rows if len(rows) <= MAPPING_MAX_ROWS else np.sort(
        rng.choice(rows, MAPPING_MAX_ROWS, replace=False))
    base = {"n_rows": int(len(sample)), "folds": k,
            "model": "per-bin target " + ("rates" if ctx.classification else "means")}
    out: list[Finding] = []
    flagged: list[str] = []
    skipped: list[str] = []
    for i, c in enumerate(cols):
        if ctx.out_of_time():
            skipped = cols[i:]
            break
        s = ctx.df[c]
        if ctx.role(c) == "datetime" and not pd.api.types.is_datetime64_any_dtype(s.dtype):
            parsed = checks._as_datetime(s)
            s = parsed if parsed is not None else s
        score = oof_score(c, s.iloc[sample], y, ctx.classification, ctx.n_classes, fold, k,
                          max_bins, y_rank)
        mapping = mapping_evidence(s.iloc[map_rows], ctx.y[map_rows], ctx.classification)
        leak = (not math.isnan(score.value) and score.value > CV_THRESHOLD) or mapping is not None
        if leak:
            flagged.append(c)
            out.append(_leak_finding(c, score.metric, score.value, mapping,
                                     {**base, **{k_: v for k_, v in score.extra.items()
                                                 if k_ != "bins"}}))
    if not ctx.classification and not skipped:
        if ctx.out_of_time():
            skipped = ["(arithmetic combinations)"]
        else:
            num = [c for c in ctx.numeric_features(codes=True) if c not in flagged]
            if len(num) >= 2:
                X = np.column_stack([ctx.df[c].iloc[sample].to_numpy(dtype=np.float64,
                                                                      na_value=np.nan)
                                     for c in num])
                found = arithmetic_leak(X, num, y, fold, k)
                if found is not None:
                    lead = found["columns"][0]
                    names = ", ".join(repr(c) for c in found["columns"])
                    out.append(Finding(
                        "target_leakage", "error",
                        f"Columns {names} reconstruct the target",
                        f"columns {names} reconstruct the target arithmetically (target = "
                        f"{found['formula']}; out-of-fold R² {found['cv_r2']:.6f} > "
                        f"{ARITHMETIC_R2:g})", found["columns"],
                        {**found, "threshold": ARITHMETIC_R2, "folds": k},
                        f"drop {lead!r} with {_drop_hint(lead)} (or the column derived from "
                        f"the target), or --allow target_leakage if these values are known at "
                        f"prediction time", False))
    if skipped:
        out.append(Finding(
            "target_leakage", "info", "Leakage check incomplete",
            f"the audit's time budget ran out: {len(skipped)} of {len(cols)} columns were not "
            f"tested for leakage", skipped, {"skipped_columns": skipped},
            "give the audit more time (a longer time limit) to test every column", False))
    return out


def audit(df: pd.DataFrame, target: str, schema: Schema, *, allow: Iterable[str] = (),
          time_column: str | None = None, n_folds: int = 5, seed: int = 0,
          time_budget: float = 5.0, sample_rows: int = DEFAULT_SAMPLE_ROWS,
          clock: Callable[[], float] | None = None) -> AuditReport:
    """Audit a table before modelling: leakage, identifiers, duplicates, imbalance, ...

    Parameters
    ----------
    df : pandas.DataFrame
        The loaded table (rows with a missing target already dropped), target included.
    target : str
        The target column.
    schema : Schema
        The schema inferred for ``df`` (:func:`mlsmith.schema.infer_schema`).
    allow : iterable of str
        Check ids (:data:`CHECKS`) the user allows: their errors do not stop the fit, and the
        fixes ``identifier`` and ``duplicates`` would apply are not applied (identifiers the
        schema itself marks stay dropped: give those columns a different name or role).
    time_column : str, optional
        A column giving each row's time: the fit splits by time, and dates later than it are
        reported as future features.
    n_folds : int
        Cross-validation folds of the fit (rare classes are judged against it; the leakage
        test uses as many, at most 10).
    seed : int
        Seed of the samples and folds the audit draws.
    time_budget : float
        Seconds for the expensive checks; when they run out, the rest of the leakage test is
        skipped with an ``info`` finding.
    sample_rows : int
        Rows the model-based checks look at.
    clock : callable, optional
        Returns seconds (default :func:`time.perf_counter`); tests inject one.

    Returns
    -------
    AuditReport
        Call :meth:`AuditReport.raise_for_errors` to stop on errors, then
        :meth:`AuditReport.apply` to remove the rows and columns it found.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlsmith.schema import infer_schema
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=200), "row_id": np.arange(200)})
    >>> df["y"] = np.where(df["x"] + rng.normal(size=200) > 0, "yes", "no")
    >>> df["y_copy"] = df["y"]
    >>> report = audit(df, "y", infer_schema(df, "y")[0])
    >>> [(f.check, f.columns) for f in report.errors]
    [('target_leakage', ['y_copy'])]
    >>> report.drop_columns
    ['row_id']
    """
    clock = clock or time.perf_counter
    t0 = clock()
    if target not in df.columns:
        raise ColumnNotFoundError(f"target column {target!r} not found."
                                  + did_you_mean(target, df.columns))
    if schema.target != target:
        raise ConfigError(f"the schema is for target {schema.target!r}, not {target!r}: infer "
                          f"the schema with the same target.")
    allow = [allow] if isinstance(allow, str) else list(allow)
    for a in allow:
        if a not in CHECKS:
            raise ConfigError(f"unknown audit check {a!r} given to --allow: use one of "
                              f"{', '.join(CHECKS)}." + did_you_mean(a, CHECKS))
    if n_folds < 2:
        raise ConfigError(f"--folds must be at least 2: got {n_folds}.")
    if not time_budget > 0:
        raise ConfigError(f"the audit's time budget must be positive: got {time_budget}.")
    if time_column is not None:
        if time_column not in df.columns:
            raise ColumnNotFoundError(f"time column {time_column!r} not found."
                                      + did_you_mean(time_column, df.columns))
        if time_column == target:
            raise ConfigError(f"the time column {time_column!r} is the target: give the column "
                              f"that says when each row was observed.")
    y, valid = _encode_target(df, schema)
    classification = schema.task.is_classification
    ctx = AuditContext(
        df=df, target=target, schema=schema, y=y, valid=valid, classification=classification,
        n_classes=len(schema.task.classes) if classification else 0,
        class_names=list(schema.task.classes), n_folds=int(n_folds), seed=int(seed),
        time_column=time_column, allow=frozenset(allow), clock=clock,
        deadline=t0 + float(time_budget), sample_rows=int(sample_rows),
        recommendations=default_recommendations(schema.task.kind))
    findings: list[Finding] = []
    for check in (checks.check_time, checks.check_identifiers, checks.check_constant,
                  checks.check_duplicates, check_leakage, checks.check_class_balance,
                  checks.check_rare_class, checks.check_skewed_target, checks.check_missing,
                  checks.check_near_constant, checks.check_high_cardinality,
                  checks.check_mixed_types, checks.check_scale, checks.check_outliers):
        findings.extend(check(ctx))
    n_dup = int(len(ctx.drop_rows))
    return AuditReport(
        target=target, task=schema.task.kind, n_rows=len(df),
        n_columns=int(len(df.columns) - 1), findings=findings,
        drop_columns=list(dict.fromkeys(ctx.drop_columns)),
        drop_rows=np.asarray(ctx.drop_rows, dtype=np.intp),
        removed_rows={"duplicates": n_dup} if n_dup else {},
        recommendations=ctx.recommendations, allowed=sorted(set(allow), key=list(CHECKS).index),
        seconds=clock() - t0)
