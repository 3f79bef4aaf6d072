"""Preprocessing recipes per model family, as scikit-learn ColumnTransformers.

Every transformation is fitted inside the fold it is evaluated on, because it is a step of the
model's Pipeline rather than a preprocessed copy of the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from mlsmith.schema import Schema

__all__ = ["DatetimeExpander", "build_preprocessor", "ONEHOT_MAX_LEVELS", "NATIVE_MAX_LEVELS"]

#: categoricals with at most this many levels are one-hot encoded for scale-sensitive models
ONEHOT_MAX_LEVELS = 20
#: categoricals with at most this many levels are handed to a library's native categorical support
NATIVE_MAX_LEVELS = 250
#: ... and only when there are at least this many rows per level on average
MIN_ROWS_PER_LEVEL = 10

DATETIME_PARTS = ("year", "month", "day", "weekday", "hour")


class DatetimeExpander(TransformerMixin, BaseEstimator):
    """Expand datetime columns into year, month, day, weekday and hour (NaN where missing)."""

    def fit(self, X: Any, y: Any = None) -> DatetimeExpander:
        self.n_features_in_ = X.shape[1]
        self.columns_ = list(X.columns) if hasattr(X, "columns") else list(range(X.shape[1]))
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        parts = []
        for col in frame.columns:
            s = pd.to_datetime(frame[col], errors="coerce", format="mixed")
            for part in DATETIME_PARTS:
                values = getattr(s.dt, part) if part != "weekday" else s.dt.day_of_week
                parts.append(values.to_numpy(dtype=np.float64, na_value=np.nan))
        return np.column_stack(parts) if parts else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"{c}_{p}" for c in self.columns_ for p in DATETIME_PARTS], dtype=object)


def _target_type(task: str) -> str:
    return "continuous" if task == "regression" else task


def build_preprocessor(schema: Schema, recipe: str, seed: int = 0) -> tuple[ColumnTransformer, list[int]]:
    """Return the ColumnTransformer for ``recipe`` and the output indices that are categorical.

    Recipes: ``scaled`` (linear, kNN, neural), ``tree`` (forests), ``native`` (boosting
    libraries with their own categorical and missing-value handling).
    """
    numeric = schema.of_role("numeric")
    datetimes = schema.of_role("datetime")
    code_cats = [c.name for c in schema.columns if c.role == "categorical" and c.numeric_codes]
    text_cats = [c.name for c in schema.columns if c.role == "categorical" and not c.numeric_codes]
    levels = {c.name: c.n_unique for c in schema.columns}
    target_type = _target_type(schema.task.kind)
    steps: list[tuple[str, Any, list[str]]] = []
    cat_idx: list[int] = []

    if recipe == "scaled":
        low = [c for c in text_cats + code_cats if levels[c] <= ONEHOT_MAX_LEVELS]
        high = [c for c in text_cats + code_cats if levels[c] > ONEHOT_MAX_LEVELS]
        if numeric:
            steps.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                               StandardScaler()), numeric))
        if datetimes:
            steps.append(("date", make_pipeline(DatetimeExpander(), SimpleImputer(
                strategy="median", keep_empty_features=True), StandardScaler()), datetimes))
        if low:
            steps.append(("onehot", make_pipeline(
                SimpleImputer(strategy="most_frequent", add_indicator=True),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)), low))
        if high:
            steps.append(("target_enc", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="__missing__")
                if any(c in text_cats for c in high) else SimpleImputer(strategy="most_frequent"),
                TargetEncoder(target_type=target_type, random_state=seed), StandardScaler()), high))
    elif recipe in ("tree", "native"):
        native = recipe == "native"
        # a level needs rows behind it: near-unique categories (names, codes) overfit as
        # native categoricals and are target-encoded instead
        max_levels = min(NATIVE_MAX_LEVELS, max(schema.n_rows // MIN_ROWS_PER_LEVEL, 2)) \
            if schema.n_rows else NATIVE_MAX_LEVELS
        low = [c for c in text_cats if levels[c] <= max_levels]
        high = [c for c in text_cats if levels[c] > max_levels]
        if low:
            if native:
                enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                     encoded_missing_value=np.nan, dtype=np.float64)
            else:
                enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                     encoded_missing_value=-1, dtype=np.float64)
            steps.append(("ordinal", enc, low))
            if native:
                cat_idx = list(range(len(low)))
        nums = numeric + code_cats
        if nums:
            steps.append(("num", "passthrough" if native else SimpleImputer(
                strategy="median", add_indicator=True), nums))
        if datetimes:
            steps.append(("date", DatetimeExpander() if native else make_pipeline(
                DatetimeExpander(), SimpleImputer(strategy="median", keep_empty_features=True)),
                datetimes))
        if high:
            steps.append(("target_enc", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="__missing__"),
                TargetEncoder(target_type=target_type, random_state=seed)), high))
    else:
        raise ValueError(f"unknown preprocessing recipe {recipe!r}")
    ct = ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0,
                           verbose_feature_names_out=True)
    return ct, cat_idx


def make_model_pipeline(preprocessor: ColumnTransformer, estimator: Any) -> Pipeline:
    return Pipeline([("prep", preprocessor), ("model", estimator)])
