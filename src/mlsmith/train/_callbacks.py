"""Callbacks: named objects with no-op hooks that the training loop calls at fixed points.

Callbacks talk to each other and to the caller through the trainer's one :class:`History`;
they stop a run by calling ``trainer.request_stop(reason)`` (its own signal, never an exception),
and the loop honours the request between steps.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlsmith.train._trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "ProgressBar", "TensorBoardLogger", "MLflowLogger"]

log = logging.getLogger("mlsmith.train")


class Callback:
    """Base class: every hook does nothing; override the ones you need.

    Hooks run in the order the callbacks are listed, on every process of a distributed run
    (check ``trainer.is_main`` before writing files or printing). ``loss`` in
    :meth:`on_batch_end` is a detached scalar tensor on the training device: calling ``.item()``
    waits for the device, so do it sparingly. A callback with state that a resumed run needs
    returns it from :meth:`state_dict` (tensors, numbers, strings, lists and dicts only) and takes
    it back in :meth:`load_state_dict`; the trainer stores it in every checkpoint under
    :attr:`name`.
    """

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first epoch (also after a resume; the restored state is already loaded)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Before the first step of ``epoch`` (1-based)."""

    def on_batch_end(self, trainer: Trainer, batch: int, loss: Any) -> None:
        """After the step on batch ``batch`` (0-based within the epoch) with its mean ``loss``."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After validation; ``trainer.history[-1]`` holds the epoch's numbers."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch, however the run ended (not after an error)."""

    def state_dict(self) -> dict[str, Any] | None:
        """State to put in checkpoints; None (the default) for none."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EarlyStopping(Callback):
    """Track the best epoch, stop when it is ``patience`` epochs old, restore its weights.

    Parameters
    ----------
    monitor : str
        History key to watch (``"val_loss"`` by default).
    patience : int or None
        Epochs without improvement before the run stops; None never stops (the best weights
        are still restored at the end when ``restore_best``).
    min_delta : float
        An epoch improves only when it beats the best by more than this.
    mode : {"min", "max"}
        Whether lower or higher values of ``monitor`` are better.
    restore_best : bool
        Load the best epoch's weights into the model when training ends (any way it ends,
        deadline included).
    """

    name = "early_stopping"  # type: ignore[assignment]

    def __init__(self, monitor: str = "val_loss", patience: int | None = None,
                 min_delta: float = 0.0, mode: str = "min", restore_best: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}.")
        if patience is not None and patience < 1:
            raise ValueError(f"EarlyStopping: patience must be None or at least 1, got {patience}.")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best = restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_state: dict[str, Any] | None = None

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        value = trainer.history.last(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self._improves(value):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}
            trainer.history.meta["best_epoch"] = epoch
            trainer.history.meta["best_" + self.monitor] = float(value)
            return
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            trainer.request_stop(
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch})")

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.module.load_state_dict(self.best_state)
            log.debug("restored the weights of epoch %s (%s %.6g)", self.best_epoch,
                      self.monitor, self.best)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.wait = int(state["wait"])
        self.best_state = state["best_state"]

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r})")


class ProgressBar(Callback):
    """One rich progress bar per epoch: steps done, running loss, validation loss, learning rate.

    ``console`` is a :class:`rich.console.Console` (stderr by default); tests pass their own.
    The running loss is read from the device every ``refresh_every`` batches only.
    """

    def __init__(self, console: Any = None, refresh_every: int = 10) -> None:
        self.console = console
        self.refresh_every = max(1, int(refresh_every))
        self._progress: Any = None
        self._task: Any = None
        self._smoothed: float | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = self.console if self.console is not None else Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                                  TimeElapsedColumn(), console=console)
        self._progress.start()

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self._smoothed = None
        self._task = self._progress.add_task(f"epoch {epoch}/{trainer.max_epochs}",
                                             total=trainer.steps_per_epoch, stats="")

    def on_batch_end(self, trainer: Trainer, batch: int, loss: Any) -> None:
        stats = None
        if (batch + 1) % self.refresh_every == 0:
            value = float(loss)
            self._smoothed = value if self._smoothed is None else 0.8 * self._smoothed + 0.2 * value
            stats = f"loss {self._smoothed:.4f}  lr {trainer.current_lr:.2e}"
        if stats is None:
            self._progress.advance(self._task)
        else:
            self._progress.update(self._task, advance=1, stats=stats)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        row = trainer.history[-1]
        parts = [f"loss {_fmt(row.get('train_loss'))}"]
        if row.get("val_loss") is not None:
            parts.append(f"val {_fmt(row.get('val_loss'))}")
        if row.get("val_metric") is not None:
            parts.append(f"{trainer.history.meta.get('metric', 'metric')} {_fmt(row['val_metric'])}")
        parts.append(f"lr {row.get('lr', float('nan')):.2e}")
        self._progress.update(self._task, completed=trainer.steps_per_epoch, stats="  ".join(parts))

    def on_train_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class _StepSampler:
    """Says when an optimizer step is due for logging: every ``n`` steps, once per step."""

    def __init__(self, every_n_steps: int | None, owner: str) -> None:
        if every_n_steps is not None and (isinstance(every_n_steps, bool)
                                          or not isinstance(every_n_steps, int)
                                          or every_n_steps < 1):
            from mlsmith.errors import ConfigError

            raise ConfigError(f"{owner}: every_n_steps must be None or an integer >= 1, "
                             f"got {every_n_steps!r}.")
        self.every = every_n_steps
        self.last = -1

    def due(self, trainer: Trainer) -> int | None:
        step = int(trainer.step)
        if self.every is None or step < 1 or step == self.last or step % self.every:
            return None
        self.last = step
        return step


def _epoch_scalars(trainer: Trainer) -> dict[str, float]:
    """The numbers of the last epoch's history row (``epoch`` itself aside)."""
    return {k: float(v) for k, v in trainer.history[-1].items()
            if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)}


class TensorBoardLogger(Callback):
    """Write TensorBoard scalars under ``log_dir``: each epoch's numbers (step = epoch) and,
    every ``every_n_steps`` optimizer steps, ``step/train_loss`` and ``step/lr`` (step =
    optimizer step; None turns these off).

    Does nothing (a debug log line says why) when ``tensorboard`` is not installed.
    """

    def __init__(self, log_dir: str, every_n_steps: int | None = 10) -> None:
        self.log_dir = str(log_dir)
        self.every_n_steps = every_n_steps
        self._sampler = _StepSampler(every_n_steps, "TensorBoardLogger")
        self._writer: Any = None

    def on_train_begin(self, trainer: Trainer) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            log.debug("tensorboard is not installed: no TensorBoard scalars for %s", self.log_dir)
            self._writer = None
            return
        self._writer = SummaryWriter(log_dir=self.log_dir)

    def on_batch_end(self, trainer: Trainer, batch: int, loss: Any) -> None:
        if self._writer is None:
            return
        step = self._sampler.due(trainer)
        if step is not None:
            self._writer.add_scalar("step/train_loss", float(loss), step)
            self._writer.add_scalar("step/lr", trainer.current_lr, step)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self._writer is None:
            return
        for key, value in _epoch_scalars(trainer).items():
            self._writer.add_scalar(key, value, epoch)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __repr__(self) -> str:
        return f"TensorBoardLogger(log_dir={self.log_dir!r}, every_n_steps={self.every_n_steps})"


class MLflowLogger(Callback):
    """Log the training curves to an MLflow run, in batches.

    Every ``every_n_steps`` optimizer steps it records ``step/train_loss`` and ``step/lr``
    (step = optimizer step); after each epoch, that epoch's numbers (``train_loss``,
    ``val_loss``, ``val_metric``, ``lr``, ``time``, ...; step = epoch), and sends all pending
    numbers in one ``log_batch`` call. Only the main process of a distributed run logs.

    Parameters
    ----------
    run_id : str or None
        An existing run to log into (left running at the end). None: a new run in
        ``experiment``, with the trainer's settings as params, ended when training ends.
    tracking_uri : str or None
        Any MLflow tracking URI; None uses MLflow's own default (``MLFLOW_TRACKING_URI``).
    experiment : str
        Experiment of a new run (created when missing).
    run_name : str or None
        Name of a new run.
    every_n_steps : int or None
        Step-level sampling; None logs epoch numbers only. Each sample reads the loss from
        the device (a synchronisation), so keep it at 10 or more on a GPU.

    Raises
    ------
    MissingDependencyError
        mlflow is not installed (``pip install 'mlsmith[track]'``).

    Examples
    --------
    >>> cb = MLflowLogger(tracking_uri="sqlite:///mlflow.db", every_n_steps=20)  # doctest: +SKIP
    >>> Trainer(max_epochs=5, callbacks=[cb]).fit(net, train, val)  # doctest: +SKIP
    >>> cb.run_id  # doctest: +SKIP
    """

    name = "mlflow_logger"  # type: ignore[assignment]

    def __init__(self, run_id: str | None = None, tracking_uri: str | None = None,
                 experiment: str = "mlsmith", run_name: str | None = None,
                 every_n_steps: int | None = 10) -> None:
        from mlsmith.errors import MissingDependencyError
        from mlsmith.track._deps import _problem

        problem = _problem()
        if problem is not None:
            raise MissingDependencyError(problem)
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.every_n_steps = every_n_steps
        self._sampler = _StepSampler(every_n_steps, "MLflowLogger")
        self._owns_run = False
        self._client: Any = None
        self._pending: list[tuple[str, float, int, int]] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        from mlflow import MlflowClient

        from mlsmith.track._tracker import _artifacts_beside_sqlite, _quiet_mlflow, experiment_id

        with _quiet_mlflow():
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            if self.run_id is None:
                exp = experiment_id(self._client, self.experiment,
                                    _artifacts_beside_sqlite(self._client.tracking_uri))
                run = self._client.create_run(exp, run_name=self.run_name,
                                              tags={"mlflow.source.name": "mlsmith.train"})
                self.run_id = run.info.run_id
                self._owns_run = True
                params = {k: v for k, v in vars(trainer).items()
                          if k in _LOGGED_SETTINGS and v is not None}
                self._log_params(params)

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self._client.log_batch(self.run_id, params=[Param(k, str(v)[:6000])
                                                    for k, v in sorted(params.items())])

    def on_batch_end(self, trainer: Trainer, batch: int, loss: Any) -> None:
        if self._client is None:
            return
        step = self._sampler.due(trainer)
        if step is not None:
            now = _now_ms()
            self._pending.append(("step/train_loss", float(loss), now, step))
            self._pending.append(("step/lr", float(trainer.current_lr), now, step))

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self._client is None:
            return
        now = _now_ms()
        self._pending.extend((k, v, now, epoch) for k, v in _epoch_scalars(trainer).items())
        self.flush()

    def flush(self) -> None:
        """Send the pending numbers (at most 1000 per call)."""
        if self._client is None or not self._pending:
            return
        from mlflow.entities import Metric

        pending, self._pending = self._pending, []
        for i in range(0, len(pending), 1000):
            self._client.log_batch(self.run_id, metrics=[Metric(k, v, ts, s)
                                                         for k, v, ts, s in pending[i:i + 1000]])

    def on_train_end(self, trainer: Trainer) -> None:
        if self._client is None:
            return
        self.flush()
        if self._owns_run:
            self._client.set_terminated(self.run_id, "FINISHED")
        self._client = None

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "owns_run": self._owns_run,
                "last_step": self._sampler.last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id") or self.run_id
        self._owns_run = bool(state.get("owns_run", False))
        self._sampler.last = int(state.get("last_step", -1))

    def __repr__(self) -> str:
        return (f"MLflowLogger(run_id={self.run_id!r}, tracking_uri={self.tracking_uri!r}, "
                f"every_n_steps={self.every_n_steps})")


_LOGGED_SETTINGS = ("max_epochs", "batch_size", "lr", "weight_decay", "optimizer_name",
                    "schedule", "warmup", "accumulation_steps", "max_grad_norm", "precision",
                    "label_smoothing", "patience", "seed", "steps_per_epoch", "total_steps")


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}"
