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

__all__ = ["Callback", "EarlyStopping", "ProgressBar", "TensorBoardLogger"]

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


class TensorBoardLogger(Callback):
    """Write each epoch's numbers as TensorBoard scalars under ``log_dir``.

    Does nothing (a debug log line says why) when ``tensorboard`` is not installed.
    """

    def __init__(self, log_dir: str) -> None:
        self.log_dir = str(log_dir)
        self._writer: Any = None

    def on_train_begin(self, trainer: Trainer) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            log.debug("tensorboard is not installed: no TensorBoard scalars for %s", self.log_dir)
            self._writer = None
            return
        self._writer = SummaryWriter(log_dir=self.log_dir)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self._writer is None:
            return
        for key, value in trainer.history[-1].items():
            if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool):
                self._writer.add_scalar(key, value, epoch)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __repr__(self) -> str:
        return f"TensorBoardLogger(log_dir={self.log_dir!r})"


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}"
