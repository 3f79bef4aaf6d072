"""Experiment tracking with MLflow: each fit an MLflow run, each trial a nested run.

Needs the ``track`` extra (``pip install 'mlsmith[track]'``); importing this package does not
import MLflow. By default the store is a SQLite file inside the run directory, nothing to start:

    mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow.db

>>> from mlsmith.track import FitTracker, tracking_available
>>> if tracking_available():                                    # doctest: +SKIP
...     run_id = FitTracker("runs/price").log_fit(config, trials, final, metrics, model=model,
...                                               schema=schema, input_example=df.head(5))
"""

from __future__ import annotations

from mlsmith.track._deps import require_mlflow, tracking_available
from mlsmith.track._records import trials_from_results
from mlsmith.track._tracker import (
    MLFLOW_STATUS,
    RECORD_FILE,
    FitTracker,
    TrackingJob,
    default_tracking_uri,
)

__all__ = [
    "FitTracker", "TrackingJob", "default_tracking_uri", "tracking_available", "require_mlflow",
    "trials_from_results", "MLFLOW_STATUS", "RECORD_FILE",
]
