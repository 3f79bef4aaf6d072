"""The audit checks other than leakage: each takes the context and returns findings.

Thresholds are module constants so that the report and the tests can quote them.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.audit._context import ID_NAME, AuditContext
from mlsmith.audit._report import Finding
from mlsmith.data._load import row_name
from mlsmith.errors import DataError

__all__ = [
    "check_identifiers", "check_constant", "check_duplicates", "check_class_balance",
    "check_rare_class", "check_skewed_target", "check_missing", "check_near_constant",
    "check_high_cardinality", "check_mixed_types", "check_scale", "check_outliers",
    "check_time", "time_order_key",
    "IMBALANCE_SHARE", "SEVERE_IMBALANCE_SHARE", "MISSING_WARN_SHARE", "NEAR_CONSTANT_SHARE",
    "SCALE_RATIO", "OUTLIER_Z", "SKEW_THRESHOLD", "HIGH_CARDINALITY",
]

IMBALANCE_SHARE = 0.20
SEVERE_IMBALANCE_SHARE = 0.05
MISSING_WARN_SHARE = 0.30
NEAR_CONSTANT_SHARE = 0.99
SCALE_RATIO = 100.0
OUTLIER_Z = 5.0
#: report a column's outliers from this share of its rows on
OUTLIER_MIN_SHARE = 0.001
SKEW_THRESHOLD = 2.0
#: categoricals with more distinct values than this are reported
HIGH_CARDINALITY = 50
#: a categorical whose distinct values are more than this share of its rows is nearly a key
NEAR_UNIQUE_SHARE = 0.5
#: fewer distinct rows than this share of the table: duplicates are its structure, kept
DISCRETE_DISTINCT_SHARE = 0.5
#: text columns with at least this share of distinct values are identifiers
ID_UNIQUE_SHARE = 0.98
#: columns to name in one aggregated finding's message
MAX_NAMED = 5
#: SMOTE needs this many minority rows in a training fold (k_neighbors=5, plus the row itself)
SMOTE_MIN_ROWS = 6


def _py(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (so messages show ``0``, not ``np.int64(0)``)."""
    return v.item() if isinstance(v, np.generic) else v


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.2g}%"


def _names(cols: list[str], n: int = MAX_NAMED) -> str:
    shown = ", ".join(repr(c) for c in cols[:n])
    return shown + (f" and {len(cols) - n} more" if len(cols) > n else "")


def _numbers(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


# --- columns the fit drops -------------------------------------------------------------------
def _identifier_reason(name: str, s: pd.Series, role: str) -> tuple[str, dict[str, Any]] | None:
    """Why a column the schema kept is an identifier, with evidence; None when it is not."""
    nonmissing = s.dropna()
    n_nonmissing = len(nonmissing)
    if n_nonmissing < 20 or role == "datetime":
        return None
    try:
        n_unique = int(nonmissing.nunique())
    except TypeError:
        return None
    unique_share = n_unique / n_nonmissing
    evidence: dict[str, Any] = {"n_unique": n_unique, "unique_share": unique_share,
                                "missing_share": 1 - n_nonmissing / len(s)}
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        x = _numbers(nonmissing)
        integral = bool(np.all(np.isfinite(x)) and np.all(x == np.round(x)))
        if not integral or n_unique != n_nonmissing:
            if ID_NAME.search(name) and unique_share >= 0.9 and integral:
                return "a key by its name, nearly unique per row", evidence
            return None
        d = np.diff(x)
        monotonic = bool(np.all(d > 0) or np.all(d < 0))
        dense = bool(x.max() - x.min() + 1 == n_nonmissing)
        evidence.update(monotonic=monotonic, consecutive=dense)
        if monotonic:
            return "a counter: whole numbers, unique and increasing with the row", evidence
        if dense:
            return "whole numbers unique per row covering a consecutive range", evidence
        if ID_NAME.search(name):
            return "a key by its name, unique per row", evidence
        return None
    if role == "categorical" and not pd.api.types.is_bool_dtype(s.dtype):
        if unique_share >= ID_UNIQUE_SHARE and n_unique > 20:
            return "text nearly unique per row", evidence
        if ID_NAME.search(name) and unique_share >= 0.9:
            return "a key by its name, nearly unique per row", evidence
    return None


def check_identifiers(ctx: AuditContext) -> list[Finding]:
    """Identifiers: the schema's ``id`` columns and the keys and counters it kept."""
    out = []
    allowed = "identifier" in ctx.allow
    for info in ctx.schema.columns:
        name = info.name
        if name == ctx.time_column or name not in ctx.df.columns:
            continue
        if info.role == "id":
            if info.reason == "dropped by the user":
                continue
            reason, evidence, applied = info.reason, {"n_unique": info.n_unique,
                                                      "unique_share": info.n_unique / max(
                                                          ctx.n - info.n_missing, 1)}, True
            fix = "dropped (the schema marks it as an identifier)"
        elif info.role in ("numeric", "categorical"):
            found = _identifier_reason(name, ctx.df[name], info.role)
            if found is None:
                continue
            reason, evidence = found
            applied = not allowed
            fix = ("dropped before modelling; keep it with --allow identifier if it is a real "
                   "feature" if applied else "kept: --allow identifier")
        else:
            continue
        if applied:
            ctx.drop_columns.append(name)
        out.append(Finding(
            "identifier", "warning", f"Column {name!r} is an identifier",
            f"column {name!r} is an identifier ({reason}; {evidence['n_unique']} distinct "
            f"values){': dropped' if applied else ''}",
            [name], evidence, fix, applied))
    return out


def check_constant(ctx: AuditContext) -> list[Finding]:
    """Columns the schema found constant (a single value, all missing, unhashable cells)."""
    cols = [c for c in ctx.schema.columns if c.role == "constant" and c.name in ctx.df.columns]
    if not cols:
        return []
    for c in cols:
        ctx.drop_columns.append(c.name)
    names = [c.name for c in cols]
    return [Finding(
        "constant", "info", f"{len(cols)} constant column{'s' if len(cols) > 1 else ''} dropped",
        f"{_names(names)} hold{'s' if len(cols) == 1 else ''} a single value: dropped",
        names, {"reason": {c.name: c.reason for c in cols}}, "dropped: it carries no signal",
        True)]


# --- rows ---------------------------------------------------------------------------------------
def _group_ids(frame: pd.DataFrame) -> np.ndarray:
    """One integer per row, equal for identical rows (missing cells compare equal)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return pd.factorize(hashed)[0]


def _chance_pairs(distinct: pd.DataFrame, n: int) -> float:
    """Identical pairs expected among ``n`` rows if the columns were independent.

    Each column's chance that two rows agree is estimated on the distinct rows (without
    replacement, so that a column of unique numbers never agrees), and the chances multiply.
    """
    m = len(distinct)
    if m < 2:
        return 0.0
    q = 1.0
    for col in distinct.columns:
        counts = distinct[col].value_counts(dropna=False).to_numpy().astype(np.float64)
        q *= float(np.sum(counts * (counts - 1))) / (m * (m - 1))
        if q == 0.0:
            return 0.0
    return n * (n - 1) / 2 * q


def check_duplicates(ctx: AuditContext) -> list[Finding]:
    """Identical rows (removed, first kept) and identical features with different targets.

    When every column takes few values, identical rows are expected by chance: if independent
    columns would produce at least half of the identical pairs seen, the rows are kept (info).
    """
    cols = [c for c in ctx.df.columns if c not in ctx.drop_columns
            and ctx.role(c) != "constant" and not (c != ctx.target and ctx.role(c) is None)]
    if ctx.target not in cols:
        cols.append(ctx.target)
    frame = ctx.df[cols]
    try:
        gid = _group_ids(frame)
    except TypeError:  # unhashable cells
        return []
    out = []
    sizes = np.bincount(gid)
    first = np.zeros(len(gid), dtype=bool)
    first[np.unique(gid, return_index=True)[1]] = True
    dup_rows = np.flatnonzero(~first)
    if dup_rows.size:
        n_dup = int(dup_rows.size)
        pairs = float(np.sum(sizes * (sizes - 1) / 2))
        chance = _chance_pairs(frame[first], len(frame))
        rng = np.random.default_rng(ctx.seed)
        test = np.zeros(len(gid), dtype=bool)
        test[rng.permutation(len(gid))[: int(math.ceil(0.2 * len(gid)))]] = True
        train_per_group = np.bincount(gid[~test], minlength=len(sizes))
        both_sides = int(np.sum(test & (train_per_group[gid] > 0) & (sizes[gid] > 1)))
        evidence = {"n_duplicate_rows": n_dup, "share": n_dup / ctx.n,
                    "n_groups": int(np.sum(sizes > 1)), "largest_group": int(sizes.max()),
                    "identical_pairs": pairs, "pairs_expected_by_chance": chance,
                    "test_rows_with_a_training_copy_in_random_80_20_split": both_sides}
        n_distinct = len(sizes)
        evidence["distinct_share"] = n_distinct / ctx.n
        # identical rows are the data's structure, not copies, when independent columns explain
        # them or when most rows repeat (a few discrete records measured many times)
        natural = chance >= 0.5 * pairs or n_distinct < DISCRETE_DISTINCT_SHARE * ctx.n
        allowed = "duplicates" in ctx.allow
        if natural or allowed:
            if not natural:
                why = "--allow duplicates"
            elif chance >= 0.5 * pairs:
                why = ("the columns take few values, so identical rows are expected by chance "
                       f"({chance:.0f} identical pairs expected, {pairs:.0f} seen)")
            else:
                why = (f"only {n_distinct} distinct rows in {ctx.n}: the table repeats a few "
                       f"discrete records, and removing the repeats would change its "
                       f"distribution")
            out.append(Finding(
                "duplicates", "info", f"{n_dup} duplicate rows kept",
                f"{n_dup} rows ({_pct(n_dup / ctx.n)}) repeat an earlier row: kept, since {why}",
                [], evidence, f"kept: {why}", False))
        else:
            ctx.drop_rows = np.union1d(ctx.drop_rows, dup_rows).astype(np.intp)
            out.append(Finding(
                "duplicates", "warning", f"{n_dup} duplicate rows removed",
                f"{n_dup} rows ({_pct(n_dup / ctx.n)}) repeat an earlier row exactly; in a "
                f"random 80/20 split {both_sides} test rows would have an identical training "
                f"row: removed before the split",
                [], evidence, "removed before the split (the first copy is kept); keep them "
                "with --allow duplicates", True))
    # identical features, different targets
    feats = [c for c in cols if c != ctx.target]
    if feats and len(ctx.kept_rows()):
        kept = ctx.kept_rows()
        try:
            fid = _group_ids(ctx.df.iloc[kept][feats])
        except TypeError:  # pragma: no cover - unhashable cells were caught above
            return out
        yk = ctx.y[kept]
        pairs_xy = np.unique(np.column_stack([fid, pd.factorize(yk)[0]]), axis=0)
        targets_per_x = np.bincount(pairs_xy[:, 0], minlength=fid.max() + 1)
        conflicting = targets_per_x > 1
        if conflicting.any():
            n_rows = int(np.sum(conflicting[fid]))
            share = n_rows / max(len(kept), 1)
            sev = "warning" if share >= 0.01 else "info"
            out.append(Finding(
                "duplicates", sev, "Identical features with different targets",
                f"{n_rows} rows ({_pct(share)}) in {int(conflicting.sum())} groups share all "
                f"feature values but not the target: no model can fit them all",
                [], {"n_rows": n_rows, "share": share, "n_groups": int(conflicting.sum())},
                "kept: they bound the achievable score; check the labels if the share is high",
                False))
    return out


# --- the target ---------------------------------------------------------------------------------
def check_class_balance(ctx: AuditContext) -> list[Finding]:
    """Class imbalance: the minority share (binary) or smallest/(smallest+largest) (several)."""
    if not ctx.classification:
        return []
    counts = np.bincount(ctx.y[ctx.kept_rows()], minlength=ctx.n_classes)
    present = np.flatnonzero(counts > 0)
    if len(present) < 2:
        return []
    lo = int(present[np.argmin(counts[present])])
    hi = int(np.argmax(counts))
    n_lo, n_hi, total = int(counts[lo]), int(counts[hi]), int(counts.sum())
    binary = ctx.n_classes == 2
    share = n_lo / total if binary else n_lo / (n_lo + n_hi)
    if share >= IMBALANCE_SHARE:
        return []
    severe = share < SEVERE_IMBALANCE_SHARE
    train_rows = n_lo * 0.8 * (1 - 1 / ctx.n_folds)
    smote = train_rows >= SMOTE_MIN_ROWS
    ctx.recommendations.update(
        class_weight=True, smote=smote, threshold_tuning=binary,
        lead_metrics=(["pr_auc", "balanced_accuracy", "recall per class"] if binary
                      else ["balanced_accuracy", "f1_macro", "recall per class"]))
    name = _py(ctx.class_names[lo])
    what = (f"the minority class {name!r} is {_pct(share)} of the rows ({n_lo} of {total})"
            if binary else f"the smallest class {name!r} has {n_lo} rows against {n_hi} of "
            f"{_py(ctx.class_names[hi])!r} ({_pct(share)} of the two)")
    fix = ("weight classes by inverse frequency, try a SMOTE candidate inside the CV folds"
           if smote else "weight classes by inverse frequency (too few rows for SMOTE)")
    fix += (", tune the decision threshold on out-of-fold predictions" if binary else "")
    fix += "; judge models by " + ", ".join(ctx.recommendations["lead_metrics"])
    return [Finding(
        "class_imbalance", "warning",
        f"{'Severe c' if severe else 'C'}lass imbalance", f"{'severe ' if severe else ''}"
        f"class imbalance: {what}", [ctx.target],
        {"minority_class": name, "minority_count": n_lo, "majority_class": _py(ctx.class_names[hi]),
         "majority_count": n_hi, "minority_share": share, "ratio": n_lo / n_hi,
         "severe": severe, "threshold": SEVERE_IMBALANCE_SHARE if severe else IMBALANCE_SHARE,
         "class_counts": {str(ctx.class_names[i]): int(counts[i]) for i in range(len(counts))}},
        fix, False)]


def check_rare_class(ctx: AuditContext) -> list[Finding]:
    """Classes with fewer rows than cross-validation folds."""
    if not ctx.classification:
        return []
    counts = np.bincount(ctx.y[ctx.kept_rows()], minlength=ctx.n_classes)
    rare = [i for i in range(ctx.n_classes) if 0 < counts[i] < ctx.n_folds]
    if not rare:
        return []
    names = [ctx.class_names[i] for i in rare]
    listed = ", ".join(f"{_py(ctx.class_names[i])!r} ({int(counts[i])})"
                       for i in rare[:MAX_NAMED])
    singles = [i for i in rare if counts[i] == 1]
    return [Finding(
        "rare_class", "warning", f"{len(rare)} class{'es' if len(rare) > 1 else ''} rarer than "
        f"the {ctx.n_folds} folds", f"{len(rare)} class{'es have' if len(rare) > 1 else ' has'} "
        f"fewer rows than the {ctx.n_folds} CV folds: {listed}"
        + (" ..." if len(rare) > MAX_NAMED else ""), [ctx.target],
        {"classes": {str(n): int(counts[i]) for n, i in zip(names, rare, strict=True)},
         "n_folds": ctx.n_folds, "single_row_classes": len(singles)},
        "kept: some folds miss them and a single-row class never reaches the test set; merge "
        "them into a related class or add rows", False)]


def _skew(x: np.ndarray) -> float:
    """Sample skewness (the biased moment estimator, as ``scipy.stats.skew``)."""
    if len(x) < 3 or np.ptp(x) == 0:
        return 0.0
    d = x - x.mean()
    return float(np.mean(d ** 3) / np.mean(d ** 2) ** 1.5)


def check_skewed_target(ctx: AuditContext) -> list[Finding]:
    """A positive regression target with a long right tail: recommend modelling its log."""
    if ctx.classification:
        return []
    y = ctx.y[ctx.kept_rows()]
    y = y[np.isfinite(y)]
    if len(y) < 20 or y.min() < 0:
        return []
    skewness = _skew(y)
    if skewness <= SKEW_THRESHOLD:
        return []
    after = _skew(np.log1p(y))
    if abs(after) > abs(skewness) / 2:  # the log does not cure it (zeros, or a second mode)
        return []
    ctx.recommendations["log_target"] = True
    return [Finding(
        "skewed_target", "info", "Skewed target",
        f"the target is right-skewed (skewness {skewness:.2f} > {SKEW_THRESHOLD:g}; "
        f"{after:.2f} after log1p)", [ctx.target],
        {"skewness": skewness, "skewness_log1p": after, "min": float(y.min()),
         "threshold": SKEW_THRESHOLD},
        "recommend log_target: fit models on log1p(target) and transform predictions back",
        False)]


# --- columns ------------------------------------------------------------------------------------
def check_missing(ctx: AuditContext) -> list[Finding]:
    """Missing cells per column: a warning per column above 30%, one info for the rest."""
    out = []
    light: dict[str, float] = {}
    for c in ctx.df.columns:
        if c == ctx.target or c in ctx.drop_columns or ctx.role(c) in (None, "constant"):
            continue
        n_miss = int(ctx.df[c].isna().sum())
        if n_miss == 0:
            continue
        share = n_miss / ctx.n
        if share > MISSING_WARN_SHARE:
            out.append(Finding(
                "missing_values", "warning", f"Column {c!r} is mostly empty",
                f"column {c!r} is missing in {_pct(share)} of the rows ({n_miss} of {ctx.n})",
                [c], {"share": share, "n_missing": n_miss, "threshold": MISSING_WARN_SHARE},
                f"imputed with a missing-value indicator; drop it with --drop {c} if the "
                f"values that are there carry little signal", True))
        else:
            light[c] = share
    if light:
        cols = sorted(light, key=lambda c: -light[c])
        out.append(Finding(
            "missing_values", "info", f"Missing values in {len(cols)} columns",
            f"{len(cols)} column{'s have' if len(cols) > 1 else ' has'} missing values: "
            + ", ".join(f"{c!r} {_pct(light[c])}" for c in cols[:MAX_NAMED])
            + (" ..." if len(cols) > MAX_NAMED else ""),
            cols, {"share": {c: light[c] for c in cols}},
            "imputed inside each model's pipeline (median or most frequent value plus a "
            "missing-value indicator; boosting libraries use their own handling)", True))
    return out


def check_near_constant(ctx: AuditContext) -> list[Finding]:
    """Features whose most frequent value fills more than 99% of the rows."""
    out = []
    for c in ctx.feature_columns():
        if ctx.schema.column(c).n_unique > (1 - NEAR_CONSTANT_SHARE) * ctx.n + 1:
            continue  # too many distinct values for one to fill 99% of the rows
        counts = ctx.df[c].value_counts(dropna=True)
        if len(counts) < 2:
            continue
        share = int(counts.iloc[0]) / ctx.n
        if share > NEAR_CONSTANT_SHARE:
            value = _py(counts.index[0])
            out.append(Finding(
                "near_constant", "info", f"Column {c!r} is nearly constant",
                f"column {c!r} holds {value!r} in {_pct(share)} of the rows "
                f"({ctx.n - int(counts.iloc[0])} rows differ)",
                [c], {"share": share, "value": value, "n_other": ctx.n - int(counts.iloc[0]),
                      "threshold": NEAR_CONSTANT_SHARE},
                f"kept: its rare values may still matter; drop it with --drop {c} if they are "
                f"noise", False))
    return out


def check_high_cardinality(ctx: AuditContext) -> list[Finding]:
    """Text categoricals with many distinct values (a warning when nearly one per row)."""
    out = []
    for c in ctx.feature_columns():
        info = ctx.schema.column(c)
        if info.role != "categorical" or info.numeric_codes:
            continue
        s = ctx.df[c].dropna()
        n_unique = int(s.nunique())
        if n_unique <= HIGH_CARDINALITY:
            continue
        share = n_unique / max(len(s), 1)
        near_unique = share > NEAR_UNIQUE_SHARE
        out.append(Finding(
            "high_cardinality", "warning" if near_unique else "info",
            f"Column {c!r} has {n_unique} categories",
            f"categorical column {c!r} has {n_unique} distinct values "
            f"({len(s) / n_unique:.1f} rows per value)",
            [c], {"n_unique": n_unique, "unique_share": share,
                  "rows_per_value": len(s) / n_unique, "threshold": HIGH_CARDINALITY},
            (f"target-encoded inside the CV folds; a value seen about once generalises poorly: "
             f"drop it with --drop {c} unless it groups rows") if near_unique else
            "target-encoded inside the CV folds for models that need numbers", not near_unique))
    return out


def check_mixed_types(ctx: AuditContext) -> list[Finding]:
    """Columns holding both numbers and text (they end up categorical)."""
    out = []
    rng = np.random.default_rng(ctx.seed)
    for c in ctx.df.columns:
        if c == ctx.target or c in ctx.drop_columns or ctx.role(c) in (None, "datetime",
                                                                          "constant"):
            continue
        s = ctx.df[c]
        if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
            continue
        values = s.dropna()
        if len(values) > ctx.sample_rows:
            values = values.iloc[np.sort(rng.choice(len(values), ctx.sample_rows, replace=False))]
        if len(values) < 5:
            continue
        types = {type(v) for v in values.head(1000)}
        py_mixed = bool(types & {int, float, np.int64, np.float64}) and str in types
        parsed = pd.to_numeric(values.astype(str), errors="coerce")
        share = float(parsed.notna().mean())
        if not (py_mixed or 0.2 <= share < 1.0):
            continue
        text = values[parsed.isna()].astype(str).value_counts().index[:3].tolist()
        nums = values[parsed.notna()].astype(str).value_counts().index[:3].tolist()
        out.append(Finding(
            "mixed_types", "warning", f"Column {c!r} mixes numbers and text",
            f"column {c!r} holds numbers ({_pct(share)} of its values, e.g. "
            f"{', '.join(map(repr, nums))}) and text (e.g. {', '.join(map(repr, text))})",
            [c], {"numeric_share": share, "text_examples": text, "number_examples": nums},
            "treated as categorical; if it is numeric, replace the text values with empty "
            "cells so it is read as numbers", False))
    return out


def _spread(x: np.ndarray) -> float:
    q1, q3 = np.quantile(x, [0.25, 0.75])
    if q3 > q1:
        return float(q3 - q1)
    lo, hi = np.quantile(x, [0.01, 0.99])
    if hi > lo:
        return float(hi - lo)
    return float(np.std(x))


def check_scale(ctx: AuditContext) -> list[Finding]:
    """Numeric features whose robust spreads (IQR) differ by more than 100x."""
    spreads = {}
    for c in ctx.numeric_features():
        x = _numbers(ctx.df[c])
        x = x[np.isfinite(x)]
        if len(x) >= 2:
            s = _spread(x)
            if s > 0:
                spreads[c] = s
    if len(spreads) < 2:
        return []
    big = max(spreads, key=spreads.__getitem__)
    small = min(spreads, key=spreads.__getitem__)
    ratio = spreads[big] / spreads[small]
    if ratio <= SCALE_RATIO:
        return []
    ctx.recommendations["scaling_needed"] = True
    return [Finding(
        "scale", "info", "Features on very different scales",
        f"numeric features differ in spread by {ratio:.3g}x ({big!r} IQR {spreads[big]:.3g}, "
        f"{small!r} IQR {spreads[small]:.3g})", [big, small],
        {"ratio": ratio, "threshold": SCALE_RATIO, "largest": {big: spreads[big]},
         "smallest": {small: spreads[small]}},
        "the linear, knn and neural pipelines standardise numeric features; tree models need "
        "no scaling", True)]


def check_outliers(ctx: AuditContext) -> list[Finding]:
    """Per numeric feature, the share of values with a robust z-score above 5."""
    share: dict[str, float] = {}
    count: dict[str, int] = {}
    worst: dict[str, float] = {}
    for c in ctx.numeric_features():
        x = _numbers(ctx.df[c])
        x = x[np.isfinite(x)]
        if len(x) < 20:
            continue
        med = float(np.median(x))
        scale = 1.4826 * float(np.median(np.abs(x - med)))
        if scale == 0:
            q1, q3 = np.quantile(x, [0.25, 0.75])
            scale = float(q3 - q1) / 1.349
        if scale == 0:
            continue
        z = np.abs(x - med) / scale
        n_out = int(np.sum(z > OUTLIER_Z))
        if n_out and n_out / len(x) >= OUTLIER_MIN_SHARE:
            share[c], count[c], worst[c] = n_out / len(x), n_out, float(z.max())
    if not share:
        return []
    cols = sorted(share, key=lambda c: -share[c])
    return [Finding(
        "outliers", "info", f"Outliers in {len(cols)} columns",
        f"{len(cols)} column{'s have' if len(cols) > 1 else ' has'} values beyond {OUTLIER_Z:g} "
        "robust SD of the median: " + ", ".join(f"{c!r} {_pct(share[c])}"
                                                for c in cols[:MAX_NAMED])
        + (" ..." if len(cols) > MAX_NAMED else ""),
        cols, {"share": {c: share[c] for c in cols}, "count": {c: count[c] for c in cols},
               "max_abs_z": {c: worst[c] for c in cols}, "z_threshold": OUTLIER_Z},
        "kept: tree models are insensitive to them; check them for entry errors", False)]


# --- time ---------------------------------------------------------------------------------------
def _as_datetime(s: pd.Series) -> pd.Series | None:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s
    elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return None
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = pd.to_datetime(s, errors="coerce", format="mixed")
            except (ValueError, TypeError):
                return None
            if not pd.api.types.is_datetime64_any_dtype(out.dtype):  # mixed time zones
                try:
                    out = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
                except (ValueError, TypeError):
                    return None
        if out.notna().sum() < 0.95 * s.notna().sum():
            return None
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def time_order_key(df: pd.DataFrame, column: str) -> np.ndarray:
    """The time of each row, for :func:`~mlsmith.split.time_holdout_split`.

    Datetimes (or text parsed as dates) give ``datetime64[ns]`` values, numbers give floats.
    Raises :class:`~mlsmith.errors.DataError` naming the first row whose time is missing or
    unreadable.
    """
    from mlsmith.errors import ColumnNotFoundError, did_you_mean

    if column not in df.columns:
        raise ColumnNotFoundError(f"time column {column!r} not found."
                                  + did_you_mean(column, df.columns))
    s = df[column]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        key = _numbers(s)
        bad = ~np.isfinite(key)
    else:
        parsed = _as_datetime(s)
        if parsed is None:
            example = s.dropna().iloc[0] if s.notna().any() else None
            raise DataError(f"time column {column!r} holds neither dates nor numbers (e.g. "
                            f"{example!r}): give a column of dates or of increasing numbers.")
        key = parsed.to_numpy()
        bad = np.isnat(key)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"time column {column!r} is missing or unreadable in {int(bad.sum())} "
                        f"rows (first: {row_name(df.index, pos)}): fill those times or drop "
                        f"the rows.")
    return key


def check_time(ctx: AuditContext) -> list[Finding]:
    """With a time column: the split follows time; dates later than it are future features."""
    if ctx.time_column is None:
        return []
    col = ctx.time_column
    key = time_order_key(ctx.df, col)
    is_date = np.issubdtype(key.dtype, np.datetime64)
    sorted_in_file = bool(np.all(key[1:] >= key[:-1]))
    first, last = key.min(), key.max()
    out = [Finding(
        "time_order", "info", f"Split by time on {col!r}",
        f"rows are split by {col!r}: the latest {'' if sorted_in_file else '(by time) '}rows "
        f"form the test set and CV folds expand forward in time, instead of shuffling",
        [col], {"time_column": col, "first": str(first) if is_date else float(first),
                "last": str(last) if is_date else float(last),
                "n_distinct": int(len(np.unique(key))), "sorted_in_file": sorted_in_file},
        "a time-ordered split replaces the shuffled one", True)]
    if not is_date:
        return out
    t = pd.Series(key, index=ctx.df.index)
    for c in ctx.df.columns:
        if c in (col, ctx.target) or c in ctx.drop_columns or ctx.role(c) in ("constant", None):
            continue
        if ctx.role(c) != "datetime" and not pd.api.types.is_datetime64_any_dtype(ctx.df[c]):
            continue
        other = _as_datetime(ctx.df[c])
        if other is None:
            continue
        both = other.notna() & t.notna()
        if both.sum() < 10:
            continue
        later = (other[both] > t[both])
        share = float(later.mean())
        if share > 0.5:
            lead_days = float(((other[both] - t[both]).dt.total_seconds() / 86400).median())
            out.append(Finding(
                "future_feature", "warning", f"Column {c!r} lies after the prediction time",
                f"column {c!r} is later than {col!r} in {_pct(share)} of the rows (median "
                f"{lead_days:.3g} days later): it is measured after the prediction time",
                [c], {"share_later": share, "median_lead_days": lead_days, "time_column": col},
                f"drop it with --drop {c} unless its value is known at prediction time", False))
    return out
