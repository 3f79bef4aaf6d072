"""The audit's public API: errors and --allow, audit.json, terminal lines, applying the fixes,
the time budget, input validation, and tune_threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsmith.audit import CHECKS, AuditReport, Finding, audit, tune_threshold
from mlsmith.errors import AuditError, ConfigError, DataError, MlsmithError
from mlsmith.schema import infer_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FINDING_KEYS = {"check", "severity", "title", "message", "columns", "evidence", "fix", "applied"}
REPORT_KEYS = {"version", "target", "task", "n_rows", "n_columns", "seconds", "findings",
               "dropped_columns", "removed_rows", "recommendations", "allowed"}
RECOMMENDATION_KEYS = {"class_weight", "smote", "threshold_tuning", "lead_metrics", "log_target",
                       "scaling_needed"}
DOCUMENTED_CHECKS = ("target_leakage identifier duplicates class_imbalance scale missing_values "
                     "constant near_constant high_cardinality mixed_types outliers skewed_target "
                     "rare_class future_feature time_order").split()


@pytest.fixture
def leaky() -> pd.DataFrame:
    """A binary table with a leaking column, an identifier, duplicates and imbalance."""
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    y = (x + rng.normal(size=n) > 1.6).astype(int)  # about 12% positives
    df = pd.DataFrame({"x": x, "amount": rng.lognormal(3, 1, size=n) * 1000,
                       "refund_flag": np.where(y == 1, "yes", "no"), "y": y})
    df = pd.concat([df, df.iloc[:6]], ignore_index=True)
    df.insert(0, "row_id", np.arange(len(df)))
    return df


def run(df: pd.DataFrame, target: str = "y", **kwargs) -> AuditReport:
    schema, _ = infer_schema(df, target)
    return audit(df, target, schema, **kwargs)


def test_check_ids_are_the_documented_ones() -> None:
    assert list(CHECKS) == DOCUMENTED_CHECKS


def test_raise_for_errors_names_check_column_evidence_and_fix(leaky: pd.DataFrame) -> None:
    report = run(leaky)
    assert [f.columns for f in report.errors] == [["refund_flag"]]
    with pytest.raises(AuditError) as info:
        report.raise_for_errors()
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("data audit: target_leakage: column 'refund_flag' alone predicts")
    assert "ROC AUC 1.0000 > 0.99" in msg
    assert "--drop refund_flag" in msg and "--allow target_leakage" in msg
    assert isinstance(info.value, DataError) and isinstance(info.value, MlsmithError)
    assert info.value.findings == report.errors


def test_allow_downgrades_the_error(leaky: pd.DataFrame) -> None:
    report = run(leaky, allow=("target_leakage",))
    report.raise_for_errors()  # no error left
    assert report.errors == []
    leak = report.by_check("target_leakage")[0]
    assert leak.severity == "error" and leak.columns == ["refund_flag"]
    assert "refund_flag" not in report.drop_columns  # allowed leaks are kept
    assert report.allowed == ["target_leakage"]
    assert report.summary_lines()[0].startswith("error (allowed): target_leakage:")


def test_two_errors_are_counted_in_one_line() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    df = pd.DataFrame({"x": rng.normal(size=200), "a": y * 3, "b": np.where(y, "p", "q"),
                       "y": y})
    with pytest.raises(AuditError, match=r"\(1 more: target_leakage on 'b'\)$"):
        run(df).raise_for_errors()


def test_unknown_allow_is_a_config_error(leaky: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'target_leakage'"):
        run(leaky, allow=["target_leak"])


def test_to_dict_is_the_documented_json(leaky: pd.DataFrame) -> None:
    report = run(leaky)
    d = report.to_dict()
    assert set(d) == REPORT_KEYS
    assert set(d["recommendations"]) == RECOMMENDATION_KEYS
    assert d["version"] == 1 and d["target"] == "y" and d["task"] == "binary"
    assert d["n_rows"] == 306 and d["n_columns"] == 4
    assert d["dropped_columns"] == ["row_id"]
    assert d["removed_rows"] == {"duplicates": 6}
    assert d["allowed"] == []
    for f in d["findings"]:
        assert set(f) == FINDING_KEYS
        assert f["check"] in CHECKS and f["severity"] in ("error", "warning", "info")
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN, no numpy types
    assert json.loads(text) == d
    again = AuditReport.from_dict(json.loads(text))
    assert again.to_dict() == d
    assert [f.check for f in again.errors] == ["target_leakage"]


def test_findings_are_sorted_most_severe_first(leaky: pd.DataFrame) -> None:
    report = run(leaky)
    lines = report.summary_lines()
    severities = [line.split(":")[0] for line in lines]
    rank = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=rank.__getitem__)
    assert severities[0] == "error" and "warning" in severities
    assert any(line.startswith("warning: duplicates: 6 rows") and line.endswith("(fixed)")
               for line in lines)
    assert len(report.summary_lines(max_lines=2)) == 3


def test_apply_removes_rows_and_columns(leaky: pd.DataFrame) -> None:
    report = run(leaky, allow=["target_leakage"])
    schema, _ = infer_schema(leaky, "y")
    df, new_schema = report.apply(leaky, schema)
    assert len(df) == 300 and df.index[-1] == 299  # the 6 copies at the end are gone
    assert new_schema.n_rows == 300
    assert "row_id" not in new_schema.features and "refund_flag" in new_schema.features
    assert schema.n_rows == 306 and "row_id" in [c.name for c in schema.columns]  # untouched


def test_audit_applies_drop_columns_the_schema_kept() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100)})
    counter = np.arange(100, dtype=float)
    counter[3] = np.nan
    df["counter"] = counter
    schema, _ = infer_schema(df, "y")
    assert "counter" in schema.features
    report = audit(df, "y", schema)
    _, new_schema = report.apply(df, schema)
    assert new_schema.features == ["x"]
    assert new_schema.column("counter").reason == "dropped by the audit (identifier)"
    assert "counter" in schema.features  # not modified in place


def test_time_budget_skips_the_leakage_test(leaky: pd.DataFrame) -> None:
    ticks = iter(np.arange(0.0, 1000.0, 10.0))
    report = run(leaky, time_budget=5.0, clock=lambda: float(next(ticks)))
    assert report.errors == []  # the leak is not found: it was not tested
    skipped = [f for f in report.by_check("target_leakage") if f.severity == "info"]
    assert len(skipped) == 1 and skipped[0].columns == ["x", "amount", "refund_flag"]
    assert "time budget" in skipped[0].message
    assert report.by_check("duplicates")  # the cheap checks still ran


def test_shipped_examples_are_clean() -> None:
    for name, target in (("penguins.csv", "species"), ("tips.csv", "tip")):
        df = pd.read_csv(EXAMPLES / name)
        report = run(df.loc[df[target].notna()], target)
        assert report.errors == [], report.summary_lines()
        assert report.by_check("target_leakage") == []


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_folds": 1}, ConfigError, "at least 2"),
    ({"time_budget": 0}, ConfigError, "positive"),
    ({"time_column": "y"}, ConfigError, "is the target"),
])
def test_bad_arguments(leaky: pd.DataFrame, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        run(leaky, **kwargs)


def test_schema_for_another_target(leaky: pd.DataFrame) -> None:
    schema, _ = infer_schema(leaky, "y")
    with pytest.raises(ConfigError, match="schema is for target 'y'"):
        audit(leaky, "x", schema)


def test_finding_rejects_unknown_ids() -> None:
    with pytest.raises(ValueError, match="unknown audit check"):
        Finding("leak", "error", "t", "m")
    with pytest.raises(ValueError, match="unknown severity"):
        Finding("scale", "fatal", "t", "m")


# --- tune_threshold ------------------------------------------------------------------------------
def test_tune_threshold_beats_the_default_on_imbalanced_data() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = (rng.random(n) < 0.08).astype(int)
    # an informative but badly calibrated score: positives rarely pass 0.5
    proba = 1 / (1 + np.exp(-(2.0 * y + rng.normal(size=n) - 3.0)))
    result = tune_threshold(y, proba, "f1")
    assert result["value"] < 0.3
    assert result["score"] > result["score_at_default"] + 0.2
    pred = proba >= result["value"]
    tp = np.sum(pred & (y == 1))
    f1 = 2 * tp / (pred.sum() + y.sum())
    assert result["score"] == pytest.approx(f1)
    bal = tune_threshold(y, proba, "balanced_accuracy")
    assert bal["objective"] == "balanced_accuracy" and bal["score"] > bal["score_at_default"]


def test_tune_threshold_exact_small_case() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.35, 0.4, 0.8, 0.9])
    result = tune_threshold(y, p, "f1")
    # cutting at 0.325 predicts 4 positives, 3 right: F1 = 6/7, the best possible here
    assert result["value"] == pytest.approx(0.325)
    assert result["score"] == pytest.approx(6 / 7)
    assert result["score_at_default"] == pytest.approx(0.8)


@pytest.mark.parametrize("y, p, objective, error", [
    ([0, 0, 0], [0.1, 0.2, 0.3], "f1", DataError),
    ([0, 2, 1], [0.1, 0.2, 0.3], "f1", DataError),
    ([0, 1], [0.1, np.nan], "f1", DataError),
    ([0, 1], [0.1], "f1", DataError),
    ([0, 1], [0.1, 0.9], "accuracy", ConfigError),
])
def test_tune_threshold_errors(y: list, p: list, objective: str, error: type) -> None:
    with pytest.raises(error):
        tune_threshold(np.array(y), np.array(p), objective)
