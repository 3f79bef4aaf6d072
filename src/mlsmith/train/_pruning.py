"""Per-epoch reports to a caller that may stop a run early (a search engine's pruner).

:class:`EpochReporter` is a Trainer callback: after each epoch's validation it hands the epoch's
numbers to a function, and stops the run cleanly when the function says so (the history then
records ``meta["stopped_by"] = "pruned"``). :class:`OptunaEpochPruner` is such a function for
a trial of an Optuna study kept in a journal file or a database: it reports the epoch's score as
the trial's intermediate value and asks the study's pruner. It pickles, so it can travel to the
worker process that trains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlsmith.train._callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from mlsmith.train._trainer import Trainer

__all__ = ["EpochReporter", "OptunaEpochPruner", "open_storage"]

log = logging.getLogger("mlsmith.train")

EpochFn = Callable[[int, float, "float | None"], bool]


class EpochReporter(Callback):
    """Call ``fn(epoch, val_loss, val_score)`` after each epoch; stop the run when it returns True.

    Parameters
    ----------
    fn : callable
        ``fn(epoch, val_loss, val_score) -> bool`` with ``epoch`` counted from 1. Without
        validation data ``val_loss`` is the epoch's training loss and ``val_score`` is None.
    greater_is_better : bool, optional
        Whether the trainer's ``val_metric`` grows with quality; ``val_score`` is the metric
        when True, minus the metric when False. None: inferred for the trainer's default metrics
        (accuracy: True, RMSE: False); with a metric of the caller's own, ``val_score`` is None.

    Notes
    -----
    When ``fn`` returns True the reporter asks the trainer to stop (the run then ends as any
    stopped run does: ``on_train_end`` hooks run, the best epoch's weights are restored), sets
    ``history.meta["stopped_by"] = "pruned"`` and keeps the epoch in :attr:`stopped_at`. In a
    distributed run ``fn`` is called on the main process only and its answer is shared.
    """

    name = "epoch_reporter"  # type: ignore[assignment]

    def __init__(self, fn: EpochFn, greater_is_better: bool | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"EpochReporter: fn must be callable, got {type(fn).__name__}.")
        self.fn = fn
        self.greater_is_better = greater_is_better
        self.stopped_at: int | None = None

    def _sign(self, trainer: Trainer) -> float | None:
        if self.greater_is_better is not None:
            return 1.0 if self.greater_is_better else -1.0
        if trainer.metric is not None:
            return None
        return 1.0 if trainer.classification else -1.0

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        row = trainer.history[-1]
        loss = row.get("val_loss")
        score = None
        if loss is None:
            loss = row.get("train_loss")
        else:
            metric, sign = row.get("val_metric"), self._sign(trainer)
            if metric is not None and sign is not None and math.isfinite(metric):
                score = sign * float(metric)
        stop = bool(self.fn(epoch, float(loss), score)) if trainer.is_main else False
        if trainer.dist.enabled:
            import torch

            from mlsmith.train import _distributed

            flag = torch.tensor([float(stop)], device=trainer.run_device)
            stop = bool(_distributed.all_reduce_sum(flag, trainer.dist).item() > 0)
        if stop:
            self.stopped_at = epoch
            trainer.history.meta["stopped_by"] = "pruned"
            trainer.request_stop(f"pruned after epoch {epoch} by {_name(self.fn)}")

    def __repr__(self) -> str:
        return f"EpochReporter({_name(self.fn)})"


def open_storage(spec: str) -> Any:
    """An Optuna storage from a spec: a database URL (``"sqlite:///x.db"``), else a journal file.

    Opened by :func:`mlsmith.tune.open_storage`, so a journal file is locked the same way as by
    the search engine's processes (a kernel ``fcntl`` lock that dies with its process).
    """
    from mlsmith.tune._study import open_storage as _open

    return _open(spec)


class OptunaEpochPruner:
    """Report epochs to an Optuna trial and say whether its pruner stops it (picklable).

    Made in the process that owns the study, called in the worker that trains: the first call
    loads the study from ``storage`` and attaches to the running trial ``trial_id``; each call
    reports the epoch's value at step ``step_offset + epoch`` and returns
    ``trial.should_prune()``. The value follows the study's direction: ``val_score`` (minus
    ``val_loss`` when there is no score) for a study that maximizes, its negation for one that
    minimizes.

    Parameters
    ----------
    storage : str
        A journal file path or a database URL (:func:`open_storage`).
    study_name : str
        The study's name in the storage.
    trial_id : int
        The running trial's ``trial._trial_id`` (not its ``number``).
    step_offset : int
        Added to the epoch: give each fold of a cross-validation its own range of steps (e.g.
        ``fold * max_epochs``), since a step is reported once per trial.
    pruner : optuna.pruners.BasePruner, optional
        The study's pruner (a pruner is not kept in the storage); Optuna's default
        (``MedianPruner()``) when None.

    Notes
    -----
    The caller decides what a True answer means; with the neural estimators the fit stops and
    ``estimator.pruned_`` is True, and the search engine then marks the trial pruned.
    """

    def __init__(self, storage: str, study_name: str, trial_id: int, step_offset: int = 0,
                 pruner: Any = None) -> None:
        self.storage = str(storage)
        self.study_name = study_name
        self.trial_id = int(trial_id)
        self.step_offset = int(step_offset)
        self.pruner = pruner
        self._trial: Any = None

    def trial(self) -> Any:
        """The ``optuna.trial.Trial`` reported to (loaded on first use)."""
        if self._trial is None:
            import optuna

            study = optuna.load_study(study_name=self.study_name,
                                      storage=open_storage(self.storage), pruner=self.pruner)
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial

    def __call__(self, epoch: int, val_loss: float, val_score: float | None) -> bool:
        from optuna.study import StudyDirection

        trial = self.trial()
        value = float(val_score) if val_score is not None else -float(val_loss)
        if trial.study.direction == StudyDirection.MINIMIZE:
            value = -value
        if not math.isfinite(value):  # a diverged epoch: the worst value there is
            value = -math.inf if trial.study.direction == StudyDirection.MAXIMIZE else math.inf
        trial.report(value, self.step_offset + int(epoch))
        prune = bool(trial.should_prune())
        if prune:
            log.debug("trial %d pruned at step %d (value %.6g)", self.trial_id,
                      self.step_offset + int(epoch), value)
        return prune

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_trial"] = None  # storages hold locks and connections: reopened where unpickled
        return state

    def __repr__(self) -> str:
        return (f"OptunaEpochPruner(storage={self.storage!r}, study_name={self.study_name!r}, "
                f"trial_id={self.trial_id}, step_offset={self.step_offset})")


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
