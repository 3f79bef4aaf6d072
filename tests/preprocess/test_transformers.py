"""The per-family ColumnTransformers and the DatetimeExpander."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlsmith.preprocess import (
    ONEHOT_MAX_LEVELS,
    DatetimeExpander,
    build_preprocessor,
    prepare_features,
)
from mlsmith.schema import infer_schema


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({
        "num": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
        "code": rng.integers(1, 4, size=n),
        "cat": rng.choice(["a", "b", "c", None], size=n),
        "many": rng.choice([f"v{i}" for i in range(ONEHOT_MAX_LEVELS + 10)], size=n),
        "when": pd.date_range("2022-01-01", periods=n, freq="13h").astype(str),
        "y": rng.integers(0, 2, size=n),
    })
    schema, _ = infer_schema(df, "y")
    return schema, prepare_features(df, schema), df["y"].to_numpy()


def test_datetime_expander_parts_and_missing() -> None:
    frame = pd.DataFrame({"t": ["2021-03-04 05:06:07", None, "2024-12-31 23:00"]})
    exp = DatetimeExpander().fit(frame)
    out = exp.transform(frame)
    assert out.shape == (3, 5)
    assert out[0].tolist() == [2021, 3, 4, 3, 5]  # a Thursday
    assert out[2].tolist() == [2024, 12, 31, 1, 23]  # a Tuesday
    assert np.isnan(out[1]).all()
    assert clone(exp).get_params() == exp.get_params()


def test_scaled_recipe(data) -> None:
    schema, X, y = data
    ct, cat_idx = build_preprocessor(schema, "scaled")
    out = ct.fit_transform(X, y)
    assert cat_idx == []
    assert not np.isnan(out).any()
    names = list(ct.get_feature_names_out())
    assert "num__num" in names and "num__missingindicator_num" in names
    assert {"onehot__cat_a", "onehot__cat_b", "onehot__cat_c"} <= set(names)
    assert any(n.startswith("onehot__code_") for n in names)
    assert {f"date__when_{p}" for p in ("year", "month", "day", "weekday", "hour")} <= set(names)
    assert any(n.startswith("target_enc__") for n in names)  # more levels than ONEHOT_MAX_LEVELS
    num = out[:, names.index("num__num")]
    assert num.mean() == pytest.approx(0, abs=1e-9) and num.std() == pytest.approx(1, abs=1e-9)


def test_native_recipe_flags_categoricals(data) -> None:
    schema, X, y = data
    schema.n_rows = 1000  # ten rows per level or more: both text columns go native
    ct, cat_idx = build_preprocessor(schema, "native")
    out = ct.fit_transform(X, y)
    names = list(ct.get_feature_names_out())
    assert [names[i] for i in cat_idx] == ["ordinal__cat", "ordinal__many"]
    # missing values are kept for the library to handle
    assert np.isnan(out[:, names.index("num__num")]).sum() == X["num"].isna().sum()
    assert np.isnan(out[:, names.index("ordinal__cat")]).sum() == X["cat"].isna().sum()


def test_native_recipe_target_encodes_near_unique_categories(data) -> None:
    """30 levels in 60 rows is a name, not a category: native handling would overfit it."""
    schema, X, y = data
    ct, cat_idx = build_preprocessor(schema, "native")
    ct.fit(X, y)
    names = list(ct.get_feature_names_out())
    assert [names[i] for i in cat_idx] == ["ordinal__cat"]
    assert any(n.startswith("target_enc__many") for n in names)


def test_tree_recipe_has_no_missing_values(data) -> None:
    schema, X, y = data
    ct, cat_idx = build_preprocessor(schema, "tree")
    out = ct.fit_transform(X, y)
    assert cat_idx == []
    assert not np.isnan(out).any()
    unseen = X.assign(cat="zzz")
    assert not np.isnan(ct.transform(unseen)).any()


def test_unknown_recipe(data) -> None:
    schema, _, _ = data
    with pytest.raises(ValueError, match="unknown preprocessing recipe"):
        build_preprocessor(schema, "bogus")
