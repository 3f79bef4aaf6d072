"""``Run``: a finished fit, loaded from its run directory."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.errors import ColumnNotFoundError, DataError, RunDirError
from mlsmith.run._rundir import read_manifest, verify
from mlsmith.schema import Schema

__all__ = ["Run", "load"]


class Run:
    """A fitted run: predict, evaluate, inspect. Create it with :func:`mlsmith.fit` or
    :func:`mlsmith.load`.

    Examples
    --------
    >>> import mlsmith  # doctest: +SKIP
    >>> run = mlsmith.fit("examples/penguins.csv", target="species", time_limit=30)  # doctest: +SKIP
    >>> run.predict(run_test_frame)  # doctest: +SKIP
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.config: dict[str, Any] = manifest.get("config", {})
        self.schema = Schema.from_dict(json.loads((self.path / "schema.json").read_text()))
        self.metrics: dict[str, Any] = json.loads((self.path / "metrics.json").read_text())
        self._model: Any = None

    # --- properties --------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.schema.task.kind

    @property
    def target(self) -> str:
        return self.schema.target

    @property
    def classes_(self) -> list[Any]:
        return list(self.schema.task.classes)

    @property
    def metric(self) -> str:
        return str(self.config.get("metric"))

    @property
    def model(self) -> Any:
        if self._model is None:
            import joblib

            self._model = joblib.load(self.path / "model.joblib")
        return self._model

    def leaderboard(self) -> pd.DataFrame:
        """Every candidate with its CV score (mean and std), train score, times and status."""
        return pd.read_csv(self.path / "leaderboard.csv")

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "target": self.target,
            "task": self.task,
            "metric": self.metric,
            "chosen": self.metrics.get("chosen", {}),
            "cv": self.metrics.get("cv", {}),
            "test": self.metrics.get("test", {}),
            "n_rows": self.metrics.get("rows", {}),
        }

    # --- prediction ----------------------------------------------------------------------------
    def _frame(self, data: Any, where: str) -> pd.DataFrame:
        from mlsmith.data import load_table

        return load_table(data) if not isinstance(data, pd.DataFrame) else data

    def _predict_encoded(self, data: Any, where: str = "the data") -> tuple[np.ndarray, pd.DataFrame]:
        from mlsmith.preprocess import prepare_features

        df = self._frame(data, where)
        X = prepare_features(df, self.schema, where=where)
        return self.model.predict_encoded(X), df

    def predict_proba(self, data: Any) -> pd.DataFrame:
        """Class probabilities: one column per class (headed by the class label), rows sum to 1."""
        if self.task == "regression":
            raise RunDirError("predict_proba applies to classification; this run is a regression.")
        proba, df = self._predict_encoded(data)
        return pd.DataFrame(proba, columns=self.classes_, index=df.index)

    def predict(self, data: Any) -> pd.Series:
        """Predicted labels (original values) or regression values, as a Series ``prediction``."""
        pred, df = self._predict_encoded(data)
        if self.task == "regression":
            return pd.Series(pred, index=df.index, name="prediction")
        model = self.model
        codes = (model.labels_encoded(pred) if hasattr(model, "labels_encoded")
                 else np.argmax(pred, axis=1))
        labels = np.asarray(self.classes_, dtype=object)[codes]
        try:
            labels = labels.astype(type(self.classes_[0])) if self.classes_ else labels
        except (TypeError, ValueError):
            pass
        return pd.Series(labels, index=df.index, name="prediction")

    def encode_target(self, y: pd.Series, where: str = "the data") -> np.ndarray:
        if self.task == "regression":
            values = pd.to_numeric(y, errors="coerce")
            if values.isna().any():
                pos = int(np.flatnonzero(values.isna().to_numpy())[0])
                raise DataError(f"target {self.target!r} in {where} is not numeric at row {pos + 1} "
                                f"({y.iloc[pos]!r}).")
            return values.to_numpy(dtype=np.float64)
        lookup = {str(c): i for i, c in enumerate(self.classes_)}
        out = np.empty(len(y), dtype=np.int64)
        for i, v in enumerate(y.tolist()):
            key = str(v)
            if key not in lookup and isinstance(v, float) and v.is_integer():
                key = str(int(v))
            if key not in lookup:
                raise DataError(f"target {self.target!r} in {where} holds the label {v!r} at row "
                                f"{i + 1}, never seen at fit (classes: "
                                f"{', '.join(map(str, self.classes_[:10]))}).")
            out[i] = lookup[key]
        return out

    def evaluate(self, data: Any) -> dict[str, float]:
        """Every applicable metric on labelled ``data`` (it must hold the target column)."""
        from mlsmith.metrics import compute_all

        df = self._frame(data, "the data")
        if self.target not in df.columns:
            from mlsmith.errors import did_you_mean

            raise ColumnNotFoundError(f"the data to evaluate lacks the target column "
                                      f"{self.target!r}." + did_you_mean(self.target, df.columns))
        missing = df[self.target].isna()
        if missing.all():
            raise DataError(f"every value of the target {self.target!r} is missing: nothing to score.")
        if missing.any():
            warnings.warn(f"{int(missing.sum())} rows with a missing target were left out of the "
                          f"evaluation.", UserWarning, stacklevel=2)
            df = df.loc[~missing]
        y = self.encode_target(df[self.target])
        pred, _ = self._predict_encoded(df.drop(columns=[self.target]))
        return compute_all(self.task, y, pred)

    def __repr__(self) -> str:
        chosen = self.metrics.get("chosen", {}).get("description", "?")
        return f"Run(path={str(self.path)!r}, task={self.task!r}, target={self.target!r}, model={chosen!r})"


def load(path: str | Path, check_versions: bool = True) -> Run:
    """Load a run directory after checking every file's SHA-256 and the library versions.

    Raises :class:`~mlsmith.errors.RunDirError` for a folder that is not a run and
    :class:`~mlsmith.errors.IntegrityError` when files or versions do not match the manifest.
    """
    path = Path(path)
    manifest = read_manifest(path)
    for w in verify(path, manifest, check_versions=check_versions):
        warnings.warn(f"library version drift since the fit: {w}", UserWarning, stacklevel=2)
    return Run(path, manifest)
