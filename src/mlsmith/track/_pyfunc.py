"""The MLflow pyfunc model of a fit: raw table rows in, labels (or probabilities) out.

This module imports mlflow when it is imported; :mod:`mlsmith.track` imports it only when a model
is logged, and MLflow imports it again when the model is loaded (the class is pickled by
reference, so loading needs mlsmith installed, which the model's requirements pin).
"""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
import types
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from mlsmith.errors import ConfigError

__all__ = ["MlsmithPyfuncModel", "example_frame", "model_requirements", "OUTPUTS"]

OUTPUTS = ("label", "proba")


class MlsmithPyfuncModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted model and the schema that prepares raw rows for it.

    ``predict(df)`` takes rows as they were loaded (the feature columns; extra columns are
    ignored) and returns, for classification, the predicted labels in their original values as
    a Series ``prediction``; pass ``params={"output": "proba"}`` for a DataFrame of class
    probabilities with one column per class (named ``str(class)``). For regression it returns
    the predicted values.

    Parameters
    ----------
    model : object
        A :class:`mlsmith.select.FittedModel` (anything with ``predict_encoded(X)`` returning
        ``(n, K)`` probabilities or ``(n,)`` values) or a scikit-learn estimator.
    task : {"binary", "multiclass", "regression"}
    classes : list
        Class labels in encoded order (classification).
    schema : mlsmith.schema.Schema or None
        When given, inputs go through :func:`mlsmith.preprocess.prepare_features` first.
    """

    def __init__(self, model: Any, task: str, classes: list[Any] | None = None,
                 schema: Any = None) -> None:
        self.model = model
        self.task = task
        self.classes = list(classes or [])
        self.schema = schema

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def _features(self, model_input: Any) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if self.schema is None:
            return frame
        from mlsmith.preprocess import prepare_features

        return prepare_features(frame, self.schema, where="the model input", warn_extra=False)

    def predict_raw(self, model_input: Any) -> tuple[np.ndarray, list[Any]]:
        """Probabilities ``(n, K)`` with their class labels, or values ``(n,)`` and ``[]``."""
        X = self._features(model_input)
        if hasattr(self.model, "predict_encoded"):
            pred = np.asarray(self.model.predict_encoded(X))
            return pred, self.classes
        if not self.is_classification:
            return np.asarray(self.model.predict(X), dtype=np.float64), []
        proba = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        own = list(getattr(self.model, "classes_", range(proba.shape[1])))
        encoded = [int(c) for c in own] == list(range(len(self.classes))) if self.classes else False
        return proba, (self.classes if encoded else own)

    # MLflow reads the input's type hint as a data contract: a DataFrame hint means "none"
    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.Series | pd.DataFrame:
        """Labels (``params={"output": "proba"}``: probabilities) for raw rows."""
        output = (params or {}).get("output", "label")
        if output not in OUTPUTS:
            raise ValueError(f"params['output'] must be 'label' or 'proba', got {output!r}.")
        pred, labels = self.predict_raw(model_input)
        index = model_input.index if isinstance(model_input, pd.DataFrame) else None
        if not self.is_classification:
            return pd.Series(pred.astype(np.float64), index=index, name="prediction")
        if output == "proba":
            return pd.DataFrame(pred, columns=[str(c) for c in labels], index=index)
        chosen = np.asarray(labels, dtype=object)[np.argmax(pred, axis=1)]
        if labels:
            try:
                chosen = chosen.astype(type(labels[0]))
            except (TypeError, ValueError):
                pass
        return pd.Series(chosen, index=index, name="prediction")


def example_frame(input_example: Any, schema: Any = None, n_rows: int = 5) -> pd.DataFrame:
    """The first ``n_rows`` rows of ``input_example`` as the model's input example.

    With a schema, only its feature columns are kept. Column types stay as loaded, so the
    signature asks for what the training table held (MLflow refuses to cast int64 to double, or
    a float column with missing values to an integer one).
    """
    if not isinstance(input_example, pd.DataFrame):
        raise ConfigError(f"input_example must be a pandas DataFrame of raw rows, got "
                          f"{type(input_example).__name__}: pass df.head(5).")
    frame = input_example.head(n_rows).reset_index(drop=True)
    if schema is None:
        return frame.copy()
    from mlsmith.errors import ColumnNotFoundError

    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise ColumnNotFoundError(f"input_example lacks the feature column {missing[0]!r}: pass "
                                  f"rows of the training table.")
    return frame[list(schema.features)].copy()


class _NullWriter:
    def write(self, data: bytes) -> int:
        return len(data)


def _modules_of(obj: Any) -> set[str]:
    """Top-level modules of every class and function that pickling ``obj`` refers to."""
    seen: set[str] = set()

    class _Spy(pickle.Pickler):
        def persistent_id(self, o: Any) -> None:
            if isinstance(o, type | types.FunctionType | types.BuiltinFunctionType):
                module = getattr(o, "__module__", None)
            else:
                module = type(o).__module__
            if isinstance(module, str):
                seen.add(module.partition(".")[0])
            return None

    _Spy(_NullWriter(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)  # type: ignore[arg-type]
    return seen


def model_requirements(*objects: Any) -> list[str]:
    """Pinned pip requirements for unpickling ``objects``: their libraries, numpy, pandas, mlsmith.

    Found by walking what pickling refers to (milliseconds), instead of MLflow's inference,
    which loads the model in a subprocess (seconds).
    """
    import mlsmith

    modules = {"numpy", "pandas"}
    for obj in objects:
        modules |= _modules_of(obj)
    stdlib = set(sys.stdlib_module_names) | {"builtins", "__main__", "mlsmith"}
    dists = importlib.metadata.packages_distributions()
    pins = {f"mlsmith=={mlsmith.__version__}"}
    for module in sorted(modules - stdlib):
        for dist in dists.get(module, [])[:1]:
            try:
                version = importlib.metadata.version(dist).split("+")[0]  # no local label
                pins.add(f"{dist}=={version}")
            except importlib.metadata.PackageNotFoundError:
                continue
    return sorted(pins)
