"""Each audit check: a table with a planted defect makes it fire with the right evidence, a clean
table keeps it quiet."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsmith.audit import AuditReport, Finding, audit
from mlsmith.audit._leakage import mapping_evidence
from mlsmith.errors import ColumnNotFoundError, DataError
from mlsmith.schema import coerce_frame, infer_schema


def run(df: pd.DataFrame, target: str, **kwargs: Any) -> AuditReport:
    schema, _ = infer_schema(df, target)
    return audit(df, target, schema, **kwargs)


def only(report: AuditReport, check: str, severity: str | None = None) -> Finding:
    found = [f for f in report.by_check(check) if severity is None or f.severity == severity]
    assert len(found) == 1, [f.message for f in report.by_check(check)]
    return found[0]


def clean_binary(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    c = rng.choice(["u", "v", "w"], size=n)
    y = (x - z + (c == "u") + rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"x": x, "z": z, "c": c, "y": y})


def clean_regression(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 3, size=n)
    b = rng.normal(0, 3, size=n)
    x = rng.normal(size=n)
    y = 2 * x + rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "x": x, "y": y})


# --- target_leakage ------------------------------------------------------------------------------
def test_clean_tables_raise_no_leakage() -> None:
    for df, target in ((clean_binary(), "y"), (clean_regression(), "y")):
        report = run(df, target)
        assert report.by_check("target_leakage") == []
        assert report.errors == []


def test_numeric_copy_of_a_class_is_leakage() -> None:
    df = clean_binary()
    rng = np.random.default_rng(1)
    df["score"] = df["y"] * 2.0 + rng.uniform(0, 1.5, size=len(df))  # unique per row, separable
    f = only(run(df, "y"), "target_leakage")
    assert f.severity == "error" and f.columns == ["score"]
    assert f.evidence["cv_auc"] > 0.999
    assert f.evidence["threshold"] == 0.99 and f.evidence["n_rows"] == 400
    assert "mapping" not in f.evidence  # every value is unique: no mapping evidence
    assert "--drop score" in f.fix and "--allow target_leakage" in f.fix


def test_category_mapping_to_the_target_is_leakage() -> None:
    df = clean_binary()
    df["status"] = np.where(df["y"] == 1, "closed-won", "closed-lost")
    f = only(run(df, "y"), "target_leakage")
    assert f.columns == ["status"]
    assert f.evidence["mapping"]["direction"] == "column -> target"
    assert f.evidence["mapping"]["chance_probability"] < 1e-50
    assert "deterministically" in f.message


def test_coarsened_multiclass_target_is_leakage() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.choice(["a", "b", "c", "d"], size=n)
    df = pd.DataFrame({"x": rng.normal(size=n), "y": y,
                       "group": np.where(np.isin(y, ["a", "b"]), "ab", "cd")})
    f = only(run(df, "y"), "target_leakage")
    assert f.columns == ["group"]
    assert f.evidence["mapping"]["direction"] == "target -> column"


def test_arithmetic_reconstruction_is_leakage() -> None:
    df = clean_regression()
    df["total"] = df["y"] + df["a"] + df["b"]  # alone it explains only ~1/3 of the target
    report = run(df, "y")
    f = only(report, "target_leakage")
    assert f.columns[0] == "total" and set(f.columns) == {"total", "a", "b"}
    assert f.evidence["cv_r2"] > 0.9999
    assert f.evidence["coefficients"] == pytest.approx({"total": 1.0, "a": -1.0, "b": -1.0})
    assert "--drop total" in f.fix


def test_monotone_copy_with_a_long_tail_is_leakage() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=1000)})
    df["y"] = np.exp(2 * df["x"] + rng.normal(size=1000))
    df["leak"] = np.log(df["y"]) ** 3  # same order as the target, very different shape
    f = only(run(df, "y"), "target_leakage")
    assert f.columns == ["leak"] and f.evidence["cv_r2_ranks"] > 0.999
    assert f.evidence["cv_r2_values"] < 0.99  # bins on the raw values alone would miss it


def test_flag_for_a_zero_spike_is_not_leakage() -> None:
    rng = np.random.default_rng(0)
    buy = rng.random(2000) < 0.05
    df = pd.DataFrame({"visited": np.where(buy, "yes", "no"), "x": rng.normal(size=2000),
                       "amount": np.where(buy, rng.lognormal(3, 1, 2000), 0.0)})
    assert run(df, "amount").by_check("target_leakage") == []


def test_strong_but_imperfect_category_is_not_leakage() -> None:
    # like mushroom's odor: pure for most values, one value mixed (AUC about 0.97)
    rng = np.random.default_rng(0)
    n = 1000
    smell = rng.choice(["foul", "fishy", "almond", "anise", "none"], size=n)
    y = np.where(np.isin(smell, ["foul", "fishy"]), 1, 0)
    mixed = (smell == "none") & (rng.random(n) < 0.1)
    y[mixed] = 1
    df = pd.DataFrame({"smell": smell, "x": rng.normal(size=n), "y": y})
    report = run(df, "y")
    assert report.by_check("target_leakage") == []
    assert mapping_evidence(df["smell"], y, True) is None


def test_pure_by_chance_groups_are_not_a_mapping() -> None:
    # 95% negatives, values in pairs: all 20 pairs pure is likely by chance
    y = np.zeros(40, dtype=int)
    y[[0, 1]] = 1
    col = pd.Series(np.repeat(np.arange(20), 2))
    assert mapping_evidence(col, y, True) is None
    # the same purity over 400 groups of a balanced target is no chance
    yb = np.repeat(np.arange(400) % 2, 2)
    assert mapping_evidence(pd.Series(np.repeat(np.arange(400), 2)), yb, True) is not None


def test_too_few_rows_for_a_leakage_test() -> None:
    df = clean_binary(n=20)
    f = only(run(df, "y"), "target_leakage")
    assert f.severity == "info" and f.evidence["n_rows"] == 20


# --- identifier ----------------------------------------------------------------------------------
def test_identifiers_are_dropped() -> None:
    df = clean_binary(n=200)
    rng = np.random.default_rng(0)
    df["row_id"] = np.arange(200)  # the schema marks it
    record = rng.permutation(np.arange(10_000, 10_200)).astype(float) * 7
    record[[3, 9]] = np.nan
    df["record_id"] = record  # floats with gaps: a key by its name
    counter = np.arange(200, dtype=float) * 3 + 5
    counter[50] = np.nan
    df["counter"] = counter  # increasing whole numbers with a missing cell
    email = np.array([f"user{i}@example.com" for i in range(200)], dtype=object)
    email[[1, 2, 3]] = None
    df["email"] = email
    df["store_id"] = rng.integers(0, 20, size=200)  # repeated: a real grouping, kept
    report = run(df, "y")
    found = {f.columns[0]: f for f in report.by_check("identifier")}
    assert set(found) == {"row_id", "record_id", "counter", "email"}
    assert all(f.applied and f.severity == "warning" for f in found.values())
    assert found["counter"].evidence["monotonic"] is True
    assert found["email"].evidence["unique_share"] == 1.0
    assert set(report.drop_columns) == {"row_id", "record_id", "counter", "email"}
    assert report.by_check("target_leakage") == []


def test_continuous_unique_numbers_are_not_identifiers() -> None:
    df = clean_binary(n=200)
    df["income"] = np.random.default_rng(3).integers(20_000, 200_000, size=200)  # may repeat
    report = run(df, "y")
    assert report.by_check("identifier") == []
    assert report.drop_columns == []


def test_allow_identifier_keeps_the_column() -> None:
    df = clean_binary(n=200)
    counter = np.arange(200, dtype=float)
    counter[5] = np.nan
    df["counter"] = counter
    f = only(run(df, "y", allow=("identifier",)), "identifier")
    assert not f.applied
    assert run(df, "y", allow=("identifier",)).drop_columns == []


# --- duplicates ----------------------------------------------------------------------------------
def test_duplicate_rows_are_removed() -> None:
    df = clean_regression(n=200)
    copies = df.iloc[[5, 6, 7, 8, 9] * 3]
    df = pd.concat([df, copies], ignore_index=True)
    df["row_id"] = np.arange(len(df))  # ids differ, the records are still copies
    report = run(df, "y")
    f = only(report, "duplicates", "warning")
    assert f.applied
    assert f.evidence["n_duplicate_rows"] == 15 and f.evidence["n_groups"] == 5
    assert f.evidence["largest_group"] == 4
    assert report.drop_rows.tolist() == list(range(200, 215))
    assert report.removed_rows == {"duplicates": 15}
    both = f.evidence["test_rows_with_a_training_copy_in_random_80_20_split"]
    assert 0 <= both <= 20


def test_duplicates_with_few_columns_and_a_row_index() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=100), "y": rng.integers(0, 2, 100)},
                      index=rng.permutation(1000)[:100])
    df = pd.concat([df, df.iloc[[4, 7, 9]]])  # the copies keep their index labels
    report = run(df, "y")
    assert report.drop_rows.tolist() == [100, 101, 102]
    assert only(report, "duplicates", "warning").evidence["pairs_expected_by_chance"] == 0
    kept, _ = report.apply(df, infer_schema(df, "y")[0])
    assert kept.index.equals(df.index[:100])


def test_conflicting_targets_are_counted_not_removed() -> None:
    df = clean_regression(n=200)
    twins = df.iloc[[1, 2, 3]].copy()
    twins["y"] += 10.0
    df = pd.concat([df, twins], ignore_index=True)
    report = run(df, "y")
    f = only(report, "duplicates")
    assert f.evidence == {"n_rows": 6, "share": pytest.approx(6 / 203, rel=1e-5),
                          "n_groups": 3}
    assert f.severity == "warning" and not f.applied
    assert report.drop_rows.size == 0


def test_duplicates_of_a_discrete_table_are_kept() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"q{i}": rng.integers(0, 3, size=600) for i in range(3)})
    df["y"] = (df["q0"] + rng.integers(0, 2, size=600) > 1).astype(int)
    report = run(df, "y")
    f = [f for f in report.by_check("duplicates") if "n_duplicate_rows" in f.evidence][0]
    assert f.severity == "info" and not f.applied
    assert report.drop_rows.size == 0


def test_allow_duplicates_keeps_rows() -> None:
    df = clean_regression(n=200)
    df = pd.concat([df, df.iloc[:4]], ignore_index=True)
    assert run(df, "y", allow=["duplicates"]).drop_rows.size == 0
    assert run(df, "y").drop_rows.tolist() == [200, 201, 202, 203]


def test_no_duplicates_no_finding() -> None:
    assert run(clean_regression(), "y").by_check("duplicates") == []


# --- class_imbalance and rare_class --------------------------------------------------------------
def _imbalanced(n: int, n_pos: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, n_pos, replace=False)] = 1
    return pd.DataFrame({"x": rng.normal(size=n) + y, "y": y})


def test_imbalance_warns_and_recommends() -> None:
    report = run(_imbalanced(500, 50), "y")
    f = only(report, "class_imbalance")
    assert f.severity == "warning" and f.evidence["minority_share"] == pytest.approx(0.1)
    assert f.evidence["severe"] is False and f.evidence["minority_class"] == 1
    rec = report.recommendations
    assert rec["class_weight"] and rec["smote"] and rec["threshold_tuning"]
    assert rec["lead_metrics"] == ["pr_auc", "balanced_accuracy", "recall per class"]


def test_severe_imbalance_says_so() -> None:
    f = only(run(_imbalanced(1000, 30), "y"), "class_imbalance")
    assert f.evidence["severe"] is True and f.evidence["minority_share"] == pytest.approx(0.03)
    assert "severe" in f.message


def test_balanced_classes_stay_quiet() -> None:
    report = run(_imbalanced(500, 200), "y")
    assert report.by_check("class_imbalance") == []
    assert report.recommendations["class_weight"] is False
    assert report.recommendations["lead_metrics"] == ["roc_auc", "accuracy"]


def test_multiclass_imbalance_and_rare_class() -> None:
    rng = np.random.default_rng(0)
    y = np.array(["a"] * 300 + ["b"] * 300 + ["c"] * 12 + ["d"] * 3)
    df = pd.DataFrame({"x": rng.normal(size=len(y)), "y": y})
    report = run(df, "y")
    f = only(report, "class_imbalance")
    assert f.evidence["minority_class"] == "d" and f.evidence["severe"] is True
    assert report.recommendations["threshold_tuning"] is False
    rare = only(report, "rare_class")
    assert rare.evidence["classes"] == {"d": 3} and rare.severity == "warning"
    assert run(df, "y", n_folds=3).by_check("rare_class") == []


# --- scale, outliers, skewed_target --------------------------------------------------------------
def test_scale_ratio() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"small": rng.normal(size=2000), "big": rng.normal(0, 1000, size=2000)})
    df["y"] = df["small"] + rng.normal(size=2000)
    report = run(df, "y")
    f = only(report, "scale")
    assert f.columns == ["big", "small"] and f.evidence["ratio"] == pytest.approx(1000, rel=0.1)
    assert report.recommendations["scaling_needed"] is True
    assert "linear, knn and neural" in f.fix
    df["big"] /= 100
    report = run(df, "y")
    assert report.by_check("scale") == [] and report.recommendations["scaling_needed"] is False


def test_outliers_share() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000)
    x[:20] = 100.0
    df = pd.DataFrame({"x": x, "clean": rng.normal(size=1000), "y": rng.normal(size=1000)})
    f = only(run(df, "y"), "outliers")
    assert f.columns == ["x"]
    assert f.evidence["share"] == {"x": 0.02} and f.evidence["count"] == {"x": 20}


def test_skewed_target_recommends_log() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=1000)})
    df["y"] = 50 * np.exp(1.5 * df["x"] + rng.normal(size=1000))  # prices, say
    report = run(df, "y")
    f = only(report, "skewed_target")
    assert f.evidence["skewness"] > 2 and abs(f.evidence["skewness_log1p"]) < 0.5
    assert report.recommendations["log_target"] is True
    df["y"] = np.log(df["y"])  # symmetric
    assert run(df, "y").recommendations["log_target"] is False
    df["y"] = -np.exp(df["y"])  # negative values: no log
    assert run(df, "y").by_check("skewed_target") == []


# --- missing, constant, near-constant, cardinality, mixed types -----------------------------------
def test_missing_values() -> None:
    df = clean_binary(n=200)
    df.loc[:99, "x"] = np.nan  # 50%
    df.loc[:19, "z"] = np.nan  # 10%
    report = run(df, "y")
    warn = only(report, "missing_values", "warning")
    assert warn.columns == ["x"] and warn.evidence["share"] == 0.5
    info = only(report, "missing_values", "info")
    assert info.evidence["share"] == {"z": 0.1}
    assert run(clean_binary(), "y").by_check("missing_values") == []


def test_constant_and_near_constant() -> None:
    df = clean_binary(n=1000)
    df["const"] = 7
    flag = np.zeros(1000, dtype=int)
    flag[:5] = 1
    df["flag"] = flag
    report = run(df, "y")
    const = only(report, "constant")
    assert const.columns == ["const"] and const.applied and "const" in report.drop_columns
    near = only(report, "near_constant")
    assert near.columns == ["flag"] and near.evidence["share"] == 0.995
    assert near.evidence["value"] == 0 and not near.applied
    assert run(clean_binary(), "y").by_check("near_constant") == []


def test_high_cardinality() -> None:
    rng = np.random.default_rng(0)
    df = clean_binary(n=400)
    df["city"] = rng.choice([f"city{i}" for i in range(80)], size=400)
    df["name"] = [f"n{i}" for i in rng.integers(0, 320, size=400)]
    report = run(df, "y")
    found = {f.columns[0]: f for f in report.by_check("high_cardinality")}
    assert set(found) == {"city", "name"}
    assert found["city"].severity == "info" and found["city"].evidence["n_unique"] == 80
    assert found["name"].severity == "warning" and found["name"].evidence["unique_share"] > 0.5


def test_mixed_types() -> None:
    rng = np.random.default_rng(0)
    df = clean_binary(n=300)
    size = rng.normal(10, 2, size=300).round(1).astype(str).astype(object)
    size[rng.choice(300, 90, replace=False)] = rng.choice(["unknown", "see notes"], size=90)
    df["size"] = size
    df, notes = coerce_frame(df, exclude=("y",))
    f = only(run(df, "y"), "mixed_types")
    assert f.columns == ["size"] and f.evidence["numeric_share"] == pytest.approx(0.7)
    assert set(f.evidence["text_examples"]) == {"unknown", "see notes"}
    assert run(clean_binary(), "y").by_check("mixed_types") == []


# --- time_order and future_feature ---------------------------------------------------------------
def _orders(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ordered = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 365, size=n), "D")
    df = pd.DataFrame({"ordered_at": ordered, "x": rng.normal(size=n)})
    df["y"] = (df["x"] + rng.normal(size=n) > 0).astype(int)
    return df


def test_time_column_gives_time_order_and_future_features() -> None:
    df = _orders()
    shipped = df["ordered_at"] + pd.Timedelta(days=3)
    shipped[:20] = df["ordered_at"][:20] - pd.Timedelta(days=1)  # 90% later
    df["shipped_at"] = shipped.astype(str)  # read from a file: text dates
    df["signed_up"] = df["ordered_at"] - pd.Timedelta(days=30)
    report = run(df, "y", time_column="ordered_at")
    order = only(report, "time_order")
    assert order.severity == "info" and order.applied
    assert order.evidence["time_column"] == "ordered_at"
    future = only(report, "future_feature")
    assert future.columns == ["shipped_at"] and future.evidence["share_later"] == 0.9
    assert future.evidence["median_lead_days"] == 3.0
    assert "--drop shipped_at" in future.fix
    quiet = run(df, "y")
    assert quiet.by_check("time_order") == [] and quiet.by_check("future_feature") == []


def test_bad_time_columns() -> None:
    df = _orders()
    with pytest.raises(ColumnNotFoundError, match="ordered_at"):
        run(df, "y", time_column="orderd_at")
    df.loc[7, "ordered_at"] = pd.NaT
    with pytest.raises(DataError, match="missing or unreadable in 1 rows .first: row 8"):
        run(df, "y", time_column="ordered_at")
