"""Hyperparameter search: Optuna studies over the model families' declared search spaces.

One entry point, :func:`tune`, takes a data bundle (features, target, CV folds), the families to
search, a strategy (``tpe``, ``random``, ``grid``), a budget (trials and / or time) and a trial
store, runs trials in worker processes with fold-level pruning, and returns the trial table.
:func:`run_worker` joins a study another process started (``mlsmith worker STUDY --storage``).

``tune(..., backend="ray")`` runs the trials as Ray Tune trials with ASHA scheduling instead,
on a local Ray instance or an existing cluster (``ray_address``; needs ``mlsmith[scale]``).

Optuna and Ray are imported on first use, so ``import mlsmith.tune`` is cheap.

>>> from mlsmith.tune import prepare_bundle, tune                    # doctest: +SKIP
>>> prepare_bundle("train.csv", "label", "bundle.joblib")             # doctest: +SKIP
>>> tune("bundle.joblib", ["lightgbm"], n_trials=100, storage="study/journal.log")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "tune", "run_worker", "prepare_study", "trials_table", "to_results", "load_study",
    "search_spaces", "epoch_curves",
    "prepare_bundle", "suggest", "suggest_config", "grid", "make_sampler", "make_pruner",
    "open_storage", "create_study", "recover_stale", "tree_rss_bytes", "MemoryMonitor",
    "SearchSpec", "cmd_tune", "cmd_worker", "add_tune_arguments", "add_worker_arguments",
    "tune_ray", "to_results_ray",
]

if TYPE_CHECKING:  # pragma: no cover
    from mlsmith.tune._cli import add_tune_arguments, add_worker_arguments, cmd_tune, cmd_worker
    from mlsmith.tune._data import prepare_bundle
    from mlsmith.tune._memory import MemoryMonitor, tree_rss_bytes
    from mlsmith.tune._ray import to_results_ray, tune_ray
    from mlsmith.tune._runner import SearchSpec
    from mlsmith.tune._spaces import grid, suggest, suggest_config
    from mlsmith.tune._study import (
        create_study,
        make_pruner,
        make_sampler,
        open_storage,
        recover_stale,
    )
    from mlsmith.tune._tune import (
        epoch_curves,
        load_study,
        prepare_study,
        run_worker,
        search_spaces,
        to_results,
        trials_table,
        tune,
    )

_WHERE = {
    "tune": "_tune", "run_worker": "_tune", "prepare_study": "_tune", "trials_table": "_tune",
    "to_results": "_tune", "load_study": "_tune", "epoch_curves": "_tune", "search_spaces": "_tune", "prepare_bundle": "_data",
    "suggest": "_spaces", "suggest_config": "_spaces", "grid": "_spaces",
    "make_sampler": "_study", "make_pruner": "_study", "open_storage": "_study",
    "create_study": "_study", "recover_stale": "_study", "tree_rss_bytes": "_memory",
    "MemoryMonitor": "_memory", "SearchSpec": "_runner", "cmd_tune": "_cli",
    "cmd_worker": "_cli", "add_tune_arguments": "_cli", "add_worker_arguments": "_cli",
    "tune_ray": "_ray", "to_results_ray": "_ray",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f"mlsmith.tune.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlsmith.tune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
