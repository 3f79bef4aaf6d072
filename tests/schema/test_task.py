"""infer_task: binary / multiclass / regression from the target values, or a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsmith.errors import ConfigError, TargetError
from mlsmith.schema import TASKS, infer_task
from mlsmith.schema._schema import CLASS_INT_MAX


@pytest.mark.parametrize(("values", "kind", "classes"), [
    (["cat", "dog", "cat", "dog"], "binary", ["cat", "dog"]),
    (["a", "b", "c", "a"], "multiclass", ["a", "b", "c"]),
    ([True, False, True], "binary", [False, True]),
    ([3, 1, 2, 3, 1], "multiclass", [1, 2, 3]),
    ([0, 1, 1, 0], "binary", [0, 1]),
    ([1.5, 2.5, 1.5], "binary", [1.5, 2.5]),
    ([0.1, 0.2, 0.35, 0.4], "regression", []),
    ([0.0, 1.0, 2.0, np.nan, 1.0], "multiclass", [0, 1, 2]),  # integer labels with a gap
    (list(range(CLASS_INT_MAX + 1)), "regression", []),
    (list(range(CLASS_INT_MAX)), "multiclass", list(range(CLASS_INT_MAX))),
], ids=["text-2", "text-3", "bool", "int-3", "int-2", "float-2", "float", "float-ints-missing",
        "many-ints", "30-ints"])
def test_inferred(values: list, kind: str, classes: list) -> None:
    task = infer_task(pd.Series(values))
    assert task.kind == kind
    assert task.classes == classes
    assert task.reason


def test_missing_values_are_ignored() -> None:
    assert infer_task(pd.Series(["a", None, "b", np.nan])).classes == ["a", "b"]


def test_default_metrics() -> None:
    assert infer_task(pd.Series(["a", "b"])).default_metric == "roc_auc"
    assert infer_task(pd.Series(["a", "b", "c"])).default_metric == "log_loss"
    assert infer_task(pd.Series([0.5, 1.5, 2.7])).default_metric == "rmse"


def test_override() -> None:
    y = pd.Series([1, 2, 3, 1, 2])
    assert infer_task(y, "regression").kind == "regression"
    assert infer_task(y, "multiclass").classes == [1, 2, 3]
    assert infer_task(pd.Series([0.5, 1.5, 2.5]), "multiclass").kind == "multiclass"
    assert infer_task(pd.Series([0.5, 1.5] * 3), "binary").classes == [0.5, 1.5]


def test_single_class() -> None:
    with pytest.raises(TargetError, match="single class"):
        infer_task(pd.Series(["x"] * 5))
    with pytest.raises(TargetError, match="single class"):
        infer_task(pd.Series([1, 1, 1]), "binary")


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="unknown task 'regresion'.*Did you mean 'regression'"):
        infer_task(pd.Series([1, 2]), "regresion")
    with pytest.raises(TargetError, match="not numeric"):
        infer_task(pd.Series(["a", "b"]), "regression")
    with pytest.raises(TargetError, match="--task binary but the target has 3 classes"):
        infer_task(pd.Series([1, 2, 3]), "binary")


# --- properties --------------------------------------------------------------------------------
labels = st.text(alphabet="abcdefg", min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(labels, min_size=2, max_size=40))
def test_text_is_classification(values: list[str]) -> None:
    y = pd.Series(values, dtype=object)
    uniq = sorted(set(values))
    if len(uniq) < 2:
        with pytest.raises(TargetError):
            infer_task(y)
        return
    task = infer_task(y)
    assert task.kind == ("binary" if len(uniq) == 2 else "multiclass")
    assert task.classes == uniq
    # order of rows does not matter
    assert infer_task(y.sample(frac=1.0, random_state=0)).classes == uniq


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 20), min_size=2, max_size=40))
def test_integers_with_few_values_are_classes(values: list[int]) -> None:
    y = pd.Series(values, dtype=np.int64)
    uniq = sorted(set(values))
    if len(uniq) < 2:
        with pytest.raises(TargetError):
            infer_task(y)
        return
    task = infer_task(y)
    assert task.is_classification
    assert task.classes == uniq


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v != int(v)),
                min_size=3, max_size=40, unique=True))
def test_fractional_floats_are_regression(values: list[float]) -> None:
    task = infer_task(pd.Series(values))
    assert task.kind == "regression"
    assert task.classes == []
    assert task.kind in TASKS
