"""Evaluation of a fitted model: what ``evaluation.json`` holds.

Test metrics with seeded percentile-bootstrap intervals (vectorised: 1,000 resamples of every
metric on 10,000 rows take about a second on one core), the CV estimate beside the test value,
curves for the report, train/validation scores with a bias-variance verdict, a learning curve,
permutation importance and SHAP values on the raw columns, and a 2-D view of the rows. Every
function returns a JSON-able dict in the format of ``docs/RUNDIR.md``; the slow ones take a
deadline.

>>> import numpy as np
>>> from mlsmith.evaluate import evaluate_predictions
>>> y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
>>> p = np.array([0.2, 0.9, 0.6, 0.4, 0.7, 0.1, 0.3, 0.8])
>>> evaluate_predictions("binary", y, p, ["no", "yes"], n_boot=200)["metrics"]["roc_auc"]["value"]
0.9333333333333333
"""

from mlsmith.evaluate._bootstrap import bootstrap_metrics, percentile_interval
from mlsmith.evaluate._curves import curves
from mlsmith.evaluate._diagnose import bias_variance, compare_cv_test, models_from_leaderboard
from mlsmith.evaluate._evaluation import evaluate_run
from mlsmith.evaluate._importance import permutation_importance, shap_importance
from mlsmith.evaluate._learning import learning_curve
from mlsmith.evaluate._predictions import best_threshold, evaluate_predictions
from mlsmith.evaluate._projection import numeric_matrix, project_2d

__all__ = [
    "evaluate_predictions",
    "curves",
    "compare_cv_test",
    "learning_curve",
    "bias_variance",
    "permutation_importance",
    "shap_importance",
    "project_2d",
    "evaluate_run",
    "best_threshold",
    "bootstrap_metrics",
    "percentile_interval",
    "models_from_leaderboard",
    "numeric_matrix",
]
