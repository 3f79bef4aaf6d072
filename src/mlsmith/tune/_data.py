"""The data bundle a search runs on: features, encoded target, schema and CV folds in one file.

``fit`` writes its own bundle (the training part after the held-out test set is cut);
:func:`prepare_bundle` writes one for ``mlsmith tune``, which cross-validates on every row. The
bundle is deterministic given the table and its options, so a worker on another machine can
rebuild the same folds from the same file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlsmith.errors import ColumnNotFoundError, DataError, TargetError, did_you_mean

__all__ = ["prepare_bundle", "bundle_info"]


def prepare_bundle(data: Any, target: str, path: str | os.PathLike[str], *, folds: int = 5,
                   seed: int = 0, task: str | None = None,
                   drop: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Load ``data``, infer its schema, encode the target, cut ``folds`` CV folds and write the
    bundle (``schema``, ``X``, ``y``, ``folds``) to ``path`` with joblib.

    Rows with a missing target are dropped. Returns :func:`bundle_info` of the bundle.
    """
    import joblib
    import pandas as pd

    from mlsmith.data import load_table
    from mlsmith.preprocess import prepare_features
    from mlsmith.schema import coerce_frame, infer_schema
    from mlsmith.split import make_folds

    df = load_table(data)
    if target not in df.columns:
        raise ColumnNotFoundError(f"target column {target!r} not found." + did_you_mean(target, df.columns)
                                  + f" The table has {len(df.columns)} columns.")
    df = df.loc[df[target].notna()]
    if df.empty:
        raise TargetError(f"the target column {target!r} has no values: every row is missing.")
    df, _ = coerce_frame(df, exclude=(target,))
    schema, _ = infer_schema(df, target, task=task, drop=tuple(drop))
    X = prepare_features(df, schema, where="the training data", warn_extra=False)
    kind = schema.task.kind
    if kind == "regression":
        y = pd.to_numeric(df[target], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise TargetError(f"the target {target!r} holds infinite or non-numeric values: "
                              f"fix them or drop those rows.")
    else:
        lookup = {v: i for i, v in enumerate(schema.task.classes)}
        y = df[target].map(lookup).to_numpy(dtype=np.int64)
    schema.n_rows = len(df)
    bundle = {"schema": schema, "X": X.reset_index(drop=True), "y": y,
              "folds": make_folds(y, kind != "regression", int(folds), int(seed))}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    joblib.dump(bundle, tmp)
    os.replace(tmp, out)
    return bundle_info(bundle)


#: bundle_info of files already read, by (path, size, modification time)
_INFO_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def bundle_info(bundle: dict[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """What the search needs to know of a bundle: task, classes, rows, folds.

    A file is read once per process (the parent of a search never keeps the data itself)."""
    if not isinstance(bundle, dict):
        import joblib

        path = Path(bundle)
        if not path.exists():
            raise DataError(f"data bundle not found: {bundle}. Check the path (workers on other "
                            f"machines need it on a shared folder, or the source table).")
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _INFO_CACHE:
            _INFO_CACHE[key] = bundle_info(joblib.load(path))
        return dict(_INFO_CACHE[key])
    for key in ("schema", "X", "y", "folds"):
        if key not in bundle:
            raise DataError(f"the data bundle has no {key!r}: write it with "
                            f"mlsmith.tune.prepare_bundle.")
    schema = bundle["schema"]
    return {"task": schema.task.kind, "n_classes": len(schema.task.classes),
            "n_rows": int(len(bundle["y"])), "n_folds": len(bundle["folds"]),
            "default_metric": schema.task.default_metric}
