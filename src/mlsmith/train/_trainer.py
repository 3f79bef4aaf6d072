"""The training loop: small overridable steps, callbacks, one shared History.

``fit`` sets up (device, process group, data, loss, optimizer, schedule, callbacks, resume) and
calls :meth:`Trainer.fit_loop`, which calls :meth:`Trainer.run_epoch` per epoch, which calls
:meth:`Trainer.train_step` per batch; :meth:`Trainer.validate` scores the epoch. Subclasses
override any of these; callbacks hook in between.
"""

from __future__ import annotations

import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mlsmith.errors import ConfigError, did_you_mean
from mlsmith.train import _distributed
from mlsmith.train._callbacks import Callback, EarlyStopping, ProgressBar, TensorBoardLogger
from mlsmith.train._checkpoint import (
    LAST,
    Checkpoint,
    architecture_hash,
    capture_rng,
    check_fingerprint,
    load_checkpoint,
    restore_rng,
)
from mlsmith.train._data import Batches, TensorBatches, make_batches, to_tensor
from mlsmith.train._errors import NonFiniteLossError, ShapeMismatchError, TrainingOutOfMemoryError
from mlsmith.train._history import History
from mlsmith.train._optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_scheduler

__all__ = ["Trainer", "resolve_device"]

log = logging.getLogger("mlsmith.train")

_PRECISIONS = {"32": "32", "fp32": "32", "float32": "32", "32-true": "32",
               "bf16": "bf16", "bfloat16": "bf16", "bf16-mixed": "bf16",
               "16": "16", "fp16": "16", "float16": "16", "16-mixed": "16"}
_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
_SHAPE_WORDS = ("shape", "size", "out of bounds", "mat1", "dimension", "expected input")


def resolve_device(spec: str | torch.device, local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA (this process's GPU under torchrun), else Apple MPS, else the CPU."""
    if isinstance(spec, str) and spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {spec!r} is not a torch device ({exc}); use 'auto', 'cpu', "
                          "'cuda', 'cuda:1' or 'mps'.") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def _describe(obj: Any) -> str:
    """A stable description of a callable or module for fingerprints (no memory addresses)."""
    if obj is None or isinstance(obj, str | int | float):
        return str(obj)
    if isinstance(obj, nn.Module):
        return repr(obj)
    return getattr(obj, "__qualname__", type(obj).__qualname__)


def _accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    return float((output.argmax(dim=-1) == target).float().mean())


def _rmse(output: torch.Tensor, target: torch.Tensor) -> float:
    if output.ndim == target.ndim + 1 and output.shape[-1] == 1:
        output = output.squeeze(-1)
    return float(torch.sqrt(torch.mean((output.float() - target.float()) ** 2)))


_accuracy.__name__ = "accuracy"
_rmse.__name__ = "rmse"


class Trainer:
    """Train a torch module on tabular data: fast batching, AdamW, schedules, checkpoints, resume.

    ``__init__`` only stores the configuration; :meth:`fit` trains a model and returns the run's
    :class:`History`. A Trainer can fit several models one after the other (not at once: it keeps
    the current run's state, for callbacks and subclasses, in attributes).

    Parameters
    ----------
    max_epochs : int
        Epochs to train (fewer when early stopping, a callback or the deadline stops the run).
    batch_size : int
        Rows per step on each process (a distributed run's global batch is
        ``batch_size x world_size``).
    lr, weight_decay : float
        Peak learning rate; weight decay for weights (biases and normalisation weights get none).
    optimizer : {"adamw", "adam", "sgd"} or callable
        A callable is called as ``optimizer(param_groups, lr=lr)``.
    schedule : {"warmup_cosine", "constant", "onecycle", "plateau"}
        Learning-rate schedule, stepped per optimizer step ("plateau": per epoch, on the
        validation loss, else the training loss).
    warmup : float
        Warmup of ``"warmup_cosine"`` / ``"constant"``: a fraction of all steps when below 1,
        else a number of steps.
    accumulation_steps : int
        Batches whose gradients add up before each optimizer step (effective batch
        ``batch_size x accumulation_steps``; each batch's loss is divided accordingly).
    max_grad_norm : float or None
        Clip gradients to this global L2 norm (None: no clipping).
    precision : {"32", "bf16", "16"}
        ``"bf16"``: bfloat16 autocast (CPU and CUDA); ``"16"``: float16 autocast with a gradient
        scaler (CUDA only).
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU) or a torch device string.
    loss : callable, optional
        ``loss(output, target) -> scalar`` (mean over the batch). Default: cross-entropy (with
        ``label_smoothing``) for integer targets, mean squared error for float targets.
    metric : callable, optional
        ``metric(outputs, targets) -> float`` on the whole validation set. Default: accuracy for
        integer targets, RMSE for float targets.
    label_smoothing : float
        Label smoothing of the default cross-entropy loss.
    patience, min_delta : int or None, float
        Early stopping on ``monitor``; with validation data the best epoch is tracked (and its
        weights restored at the end when ``restore_best``) even with ``patience=None``.
    monitor, mode : str
        History key that decides the best epoch, and whether lower (``"min"``) is better.
    seed : int
        Seeds torch (plus the rank in a distributed run), numpy's and Python's global generators
        at the start of a fresh run, and every epoch's batch order. One seed, one run.
    checkpoint_dir : str or Path, optional
        Folder for ``last.pt`` (every ``checkpoint_every`` epochs and at the end), ``best.pt``
        (at each new best epoch) and ``history.json``.
    log_dir : str or Path, optional
        TensorBoard scalars, when tensorboard is installed (skipped silently otherwise).
    callbacks : sequence of Callback
        Run after the built-in early stopping and before the checkpoint writer.
    verbose : bool or None
        Progress bar per epoch; None shows it when stderr is a terminal.
    deadline : float, optional
        A ``time.time()`` after which training stops between steps; the best epoch is kept.
    eval_batch_size : int, optional
        Batch size for validation and :meth:`predict` (default ``4 x batch_size``).
    num_workers : int
        DataLoader workers for a torch Dataset (in-memory data needs none).

    Examples
    --------
    >>> import numpy as np
    >>> from mlsmith.train import MLP, Trainer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(512, 8)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> net = MLP(input_dim=8, hidden_dims=[32], output_dim=2)
    >>> history = Trainer(max_epochs=3, batch_size=64, lr=1e-2, seed=0, verbose=False).fit(
    ...     net, train=(X[:400], y[:400]), val=(X[400:], y[400:]))
    >>> len(history), sorted(history[-1])[:3]
    (3, ['epoch', 'lr', 'steps'])
    """

    def __init__(self, *, max_epochs: int = 20, batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 0.01,
                 optimizer: str | Callable[..., torch.optim.Optimizer] = "adamw",
                 schedule: str = "warmup_cosine", warmup: float = 0.05,
                 accumulation_steps: int = 1, max_grad_norm: float | None = 1.0,
                 precision: str = "32", device: str = "auto",
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
                 label_smoothing: float = 0.0, patience: int | None = None,
                 min_delta: float = 0.0, restore_best: bool = True, monitor: str = "val_loss",
                 mode: str = "min", seed: int = 0,
                 checkpoint_dir: str | os.PathLike[str] | None = None, checkpoint_every: int = 1,
                 log_dir: str | os.PathLike[str] | None = None,
                 callbacks: Sequence[Callback] = (), verbose: bool | None = None,
                 deadline: float | None = None, eval_batch_size: int | None = None,
                 num_workers: int = 0) -> None:
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_name = optimizer
        self.schedule = schedule
        self.warmup = warmup
        self.accumulation_steps = accumulation_steps
        self.max_grad_norm = max_grad_norm
        self.precision = precision
        self.device = device
        self.loss = loss
        self.metric = metric
        self.label_smoothing = label_smoothing
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self.monitor = monitor
        self.mode = mode
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.log_dir = log_dir
        self.callbacks = list(callbacks)
        self.verbose = verbose
        self.deadline = deadline
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self._validate_config()
        self.history = History()
        self.stop_reason: str | None = None

    # --- configuration --------------------------------------------------------------------------
    def _validate_config(self) -> None:
        def positive_int(name: str, value: Any, low: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ConfigError(f"Trainer: {name} must be an integer >= {low}, got {value!r}.")

        positive_int("max_epochs", self.max_epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("accumulation_steps", self.accumulation_steps)
        positive_int("checkpoint_every", self.checkpoint_every)
        positive_int("num_workers", self.num_workers, low=0)
        if self.eval_batch_size is not None:
            positive_int("eval_batch_size", self.eval_batch_size)
        if self.patience is not None:
            positive_int("patience", self.patience)
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"Trainer: lr must be a positive number, got {self.lr!r}.")
        if self.weight_decay < 0:
            raise ConfigError(f"Trainer: weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError("Trainer: max_grad_norm must be positive, or None for no clipping; "
                              f"got {self.max_grad_norm!r}.")
        if not 0 <= self.warmup:
            raise ConfigError(f"Trainer: warmup must be >= 0, got {self.warmup!r}.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"Trainer: unknown schedule {self.schedule!r}."
                              + did_you_mean(self.schedule, SCHEDULES)
                              + f" Choose one of {', '.join(SCHEDULES)}.")
        if isinstance(self.optimizer_name, str) and self.optimizer_name.lower() not in OPTIMIZERS:
            raise ConfigError(f"Trainer: unknown optimizer {self.optimizer_name!r}."
                              + did_you_mean(self.optimizer_name, OPTIMIZERS)
                              + f" Choose one of {', '.join(OPTIMIZERS)}, or pass a callable.")
        if str(self.precision).lower() not in _PRECISIONS:
            raise ConfigError(f"Trainer: unknown precision {self.precision!r}."
                              + did_you_mean(str(self.precision), _PRECISIONS)
                              + " Choose '32', 'bf16' or '16'.")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"Trainer: mode must be 'min' or 'max', got {self.mode!r}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"Trainer: label_smoothing must lie in [0, 1), got {self.label_smoothing!r}.")
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError(f"Trainer: callbacks must be Callback instances, got "
                                  f"{type(cb).__name__}; subclass mlsmith.train.Callback.")

    @property
    def precision_mode(self) -> str:
        """``"32"``, ``"bf16"`` or ``"16"``."""
        return _PRECISIONS[str(self.precision).lower()]

    # --- public API -----------------------------------------------------------------------------
    def fit(self, model: nn.Module, train: Any, val: Any = None, *,
            resume: bool = False) -> History:
        """Train ``model`` in place and return the run's :class:`History`.

        Parameters
        ----------
        model : nn.Module
            Moved to the training device; holds the best epoch's weights afterwards (or the last
            epoch's, without validation data or with ``restore_best=False``).
        train, val : tuple, Dataset or DataLoader
            ``(X, y)`` (numpy arrays, tensors or DataFrames; ``(X1, X2, ..., y)`` for models
            with several inputs), a map-style torch ``Dataset`` of such tuples, or a
            ``DataLoader``.
        resume : bool
            Continue from ``checkpoint_dir/last.pt`` when it exists (a fresh run otherwise).
            The checkpoint must come from the same model and configuration.

        Returns
        -------
        History
            One row per completed epoch; ``history.meta`` has ``best_epoch``, ``stop_reason``.
        """
        if resume and self.checkpoint_dir is None:
            raise ConfigError("Trainer.fit: resume=True needs a checkpoint_dir to resume from.")
        self.dist = _distributed.detect()
        self.run_device = resolve_device(self.device, self.dist.local_rank)
        if self.precision_mode == "16" and self.run_device.type != "cuda":
            raise ConfigError(f"Trainer: precision='16' (float16 with a gradient scaler) needs a "
                              f"CUDA device, and this run is on {self.run_device.type}; use "
                              "precision='bf16' instead.")
        if self.run_device.type == "cuda":
            torch.cuda.set_device(self.run_device)
        self.dist = _distributed.setup(self.dist, self.run_device)
        try:
            self.setup(model, train, val)
            if resume:
                self.resume()
            self.fit_loop()
        finally:
            _distributed.teardown(self.dist)
            if hasattr(self, "module"):
                self.model = self.module  # drop the DistributedDataParallel wrapper
        return self.history

    @torch.no_grad()
    def predict(self, model: nn.Module, X: Any, batch_size: int | None = None) -> torch.Tensor:
        """The model's outputs for ``X`` (array-like, or a tuple of inputs), as a CPU float tensor.

        Runs in eval mode on the device the model's parameters are on, in batches.
        """
        inputs = tuple(to_tensor(x, "x") for x in X) if isinstance(X, tuple) else (to_tensor(X, "x"),)
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        size = batch_size or self.eval_batch_size or 4 * self.batch_size
        batches = TensorBatches(inputs, size, shuffle=False, device=device)
        was_training = model.training
        model.eval()
        try:
            outs = []
            for batch in batches:
                with self._autocast(device):
                    outs.append(model(*batch).float().cpu())
        finally:
            model.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0)

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop at the next step boundary (callbacks call this; first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.debug("stop requested: %s", reason)

    @property
    def stop_requested(self) -> bool:
        return self.stop_reason is not None

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and shows progress (rank 0)."""
        return self.dist.is_main

    @property
    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # --- setup ----------------------------------------------------------------------------------
    def setup(self, model: nn.Module, train: Any, val: Any) -> None:
        """Seed, place the model and data, and build loss, optimizer, schedule and callbacks."""
        self.history = History()
        self.stop_reason = None
        self.epoch = 0          # completed epochs
        self.step = 0           # optimizer steps
        self.batches_seen = 0
        self.micro_splits = 1   # becomes 2 after a CUDA out-of-memory error
        self._seed_everything()

        self.module = model.to(self.run_device)
        self.train_batches: Batches = make_batches(
            train, "train", self.batch_size, True, self.seed, self.run_device,
            self.dist.rank, self.dist.world_size, self.num_workers)
        self.val_batches: Batches | None = None
        if val is not None:
            self.val_batches = make_batches(val, "val", self.eval_batch_size or 4 * self.batch_size,
                                            False, self.seed, self.run_device,
                                            num_workers=self.num_workers)
        try:
            self.steps_per_epoch = len(self.train_batches)
        except TypeError:
            raise ConfigError("Trainer: the training DataLoader has no len(); the schedule and "
                              "gradient accumulation need the number of batches per epoch.") from None
        if self.steps_per_epoch == 0:
            raise ShapeMismatchError(f"the training data gives no batch (rows: "
                                     f"{self.train_batches.n_rows}, world size "
                                     f"{self.dist.world_size}).")

        target_dtype = self._target_dtype(train)
        self.classification = target_dtype is not None and not target_dtype.is_floating_point
        self.loss_fn = self.loss if self.loss is not None else self._default_loss()
        self.metric_fn = self.metric if self.metric is not None else (
            _accuracy if self.classification else _rmse)
        self.history.meta["metric"] = getattr(self.metric_fn, "__name__", "metric")
        for name, batches in (("train", self.train_batches), ("val", self.val_batches)):
            if isinstance(batches, TensorBatches):
                self.check_shapes(batches.tensors, name)

        self.model = _distributed.wrap(self.module, self.dist, self.run_device)
        self._trainable = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.module, self.optimizer_name, self.lr, self.weight_decay)
        groups_per_epoch = math.ceil(self.steps_per_epoch / self.accumulation_steps)
        self.total_steps = groups_per_epoch * self.max_epochs
        self.scheduler, self.schedule_interval = make_scheduler(
            self.optimizer, self.schedule, self.lr, self.total_steps, self.warmup)
        self.scaler = (torch.amp.GradScaler("cuda") if self.precision_mode == "16" else None)
        self._amp = self.precision_mode != "32"
        self.fingerprint = self.make_fingerprint()
        self.active_callbacks = self.build_callbacks()

    def _seed_everything(self) -> None:
        torch.manual_seed(self.seed + self.dist.rank)
        np.random.seed(self.seed % 2**32)
        random.seed(self.seed)

    def _target_dtype(self, data: Any) -> torch.dtype | None:
        if isinstance(self.train_batches, TensorBatches):
            return self.train_batches.tensors[-1].dtype
        dataset = data.dataset if isinstance(data, DataLoader) else data
        try:
            item = dataset[0]
        except Exception:  # iterable datasets and the like: the loss must be given
            return None
        target = item[-1] if isinstance(item, tuple | list) else None
        return to_tensor(target, "y").dtype if target is not None else None

    def _default_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self.classification:
            return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        return nn.MSELoss()

    def build_callbacks(self) -> list[Callback]:
        """Early stopping, the caller's callbacks, checkpoints, then progress and TensorBoard."""
        cbs: list[Callback] = []
        if self.val_batches is not None or self.patience is not None:
            monitor = self.monitor if self.val_batches is not None else "train_loss"
            cbs.append(EarlyStopping(monitor, self.patience, self.min_delta, self.mode,
                                     self.restore_best))
        cbs.extend(self.callbacks)
        if self.checkpoint_dir is not None:
            cbs.append(Checkpoint(self.checkpoint_dir, self.checkpoint_every,
                                  save_best=self.val_batches is not None))
        show = self.verbose if self.verbose is not None else sys.stderr.isatty()
        if show and self.is_main:
            cbs.append(ProgressBar())
        if self.log_dir is not None and self.is_main:
            cbs.append(TensorBoardLogger(str(self.log_dir)))
        return cbs

    def make_fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed: architecture and config."""
        return {
            "architecture": architecture_hash(self.module), "max_epochs": self.max_epochs,
            "batch_size": self.batch_size, "accumulation_steps": self.accumulation_steps,
            "lr": self.lr, "weight_decay": self.weight_decay,
            "optimizer": _describe(self.optimizer_name), "schedule": self.schedule,
            "warmup": self.warmup, "max_grad_norm": self.max_grad_norm,
            "precision": self.precision_mode, "seed": self.seed,
            "loss": _describe(self.loss_fn), "world_size": self.dist.world_size,
            "train_rows": self.train_batches.n_rows, "steps_per_epoch": self.steps_per_epoch,
        }

    def check_shapes(self, tensors: Sequence[torch.Tensor], what: str) -> None:
        """Catch the common mismatches before the first step, each explained in one line."""
        X, y = tensors[0], tensors[-1]
        input_dim = getattr(self.module, "input_dim", None)
        output_dim = getattr(self.module, "output_dim", None)
        if len(tensors) == 2 and X.ndim == 2 and isinstance(input_dim, int) and X.shape[1] != input_dim:
            raise ShapeMismatchError(
                f"{what}: the model takes {input_dim} input features but X has {X.shape[1]} "
                f"columns; build it with input_dim={X.shape[1]}.")
        if self.loss is not None:
            return
        if self.classification:
            if y.ndim != 1:
                raise ShapeMismatchError(f"{what}: class labels must be one column, y has shape "
                                         f"{tuple(y.shape)}.")
            low, high = int(y.min()), int(y.max())
            if low < 0:
                raise ShapeMismatchError(f"{what}: class labels must be 0, 1, 2, ...; y holds {low}.")
            if isinstance(output_dim, int) and high >= output_dim:
                raise ShapeMismatchError(
                    f"{what}: y holds class {high} but the model outputs {output_dim} logits; "
                    f"build it with output_dim={high + 1} (the number of classes).")
        elif isinstance(output_dim, int):
            want = 1 if y.ndim == 1 else y.shape[1]
            if output_dim != want:
                raise ShapeMismatchError(
                    f"{what}: y has {want} target column(s) but the model has {output_dim} "
                    f"outputs; build it with output_dim={want} (or pass integer class labels "
                    "for classification).")

    # --- resume ---------------------------------------------------------------------------------
    def resume(self) -> None:
        """Load ``last.pt`` (when there is one) after checking its fingerprint."""
        assert self.checkpoint_dir is not None
        path = Path(self.checkpoint_dir) / LAST
        if not path.exists():
            log.info("no checkpoint at %s: starting a fresh run", path)
            return
        state = load_checkpoint(path, map_location=self.run_device)
        check_fingerprint(path, state["fingerprint"], self.fingerprint)
        self.load_state_dict(state)
        log.info("resumed from %s after epoch %d (step %d)", path, self.epoch, self.step)

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds. Collective in a distributed run (gathers random states)."""
        rng = _distributed.gather_objects(capture_rng(), self.dist)
        callbacks = {}
        for cb in self.active_callbacks:
            st = cb.state_dict()
            if st is not None:
                callbacks[cb.name] = st
        return {
            "format": 1, "fingerprint": self.fingerprint, "epoch": self.epoch, "step": self.step,
            "batches_seen": self.batches_seen, "micro_splits": self.micro_splits,
            "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng, "callbacks": callbacks, "history": self.history.to_dict(),
            "stop_reason": self.stop_reason,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        restore_rng(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        by_name = {cb.name: cb for cb in self.active_callbacks}
        for name, st in state.get("callbacks", {}).items():
            if name in by_name:
                by_name[name].load_state_dict(st)
        self.history = History.from_dict(state["history"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.batches_seen = int(state["batches_seen"])
        self.micro_splits = int(state.get("micro_splits", 1))
        self.stop_reason = state.get("stop_reason")

    # --- the loop -------------------------------------------------------------------------------
    def fit_loop(self) -> None:
        """Epochs until ``max_epochs``, a stop request or the deadline; then ``on_train_end``."""
        self._notify("on_train_begin")
        while self.epoch < self.max_epochs and not self.stop_requested:
            if self._all_agree(self._deadline_passed()):
                self.request_stop(f"deadline: stopped before epoch {self.epoch + 1}")
                break
            epoch = self.epoch + 1
            self._notify("on_epoch_begin", epoch)
            t0 = time.perf_counter()
            train_loss = self.run_epoch(epoch)
            if train_loss is None:  # stopped between two steps: the partial epoch is dropped
                break
            self.epoch = epoch
            row = self.history.new_epoch(epoch)
            row["train_loss"] = train_loss
            if self.val_batches is not None:
                row.update(self.validate())
            if self.schedule_interval == "epoch":
                self.scheduler.step(row.get("val_loss", train_loss))
            row["lr"] = self.current_lr
            row["steps"] = self.step
            row["time"] = time.perf_counter() - t0
            log.debug("epoch %d/%d: %s", epoch, self.max_epochs,
                      ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
            self._notify("on_epoch_end", epoch)
        self.history.meta["stop_reason"] = self.stop_reason or "max_epochs"
        self.history.meta["epochs"] = self.epoch
        self._notify("on_train_end")
        if self.checkpoint_dir is not None and self.is_main:
            self.history.save(Path(self.checkpoint_dir) / "history.json")

    def run_epoch(self, epoch: int) -> float | None:
        """One pass over the training batches; the mean loss, or None when stopped midway."""
        self.train_batches.set_epoch(epoch)
        self.model.train()
        total = torch.zeros((), device=self.run_device)
        count = 0
        # per-step work kept small: in-memory batches are already on the device, and only the
        # callbacks that override on_batch_end are called
        on_device = isinstance(self.train_batches, TensorBatches)
        batch_hooks = self._overriding("on_batch_end")
        for i, batch in enumerate(self.train_batches):
            loss = self.train_step(batch if on_device else self._to_device(batch), epoch, i)
            total += loss
            count += 1
            self.batches_seen += 1
            for cb in batch_hooks:
                cb.on_batch_end(self, i, loss)
            if self.stop_reason is not None:
                return None
        return float(total / max(count, 1))

    def train_step(self, batch: Sequence[torch.Tensor], epoch: int, i: int) -> torch.Tensor:
        """Forward, backward and (at the end of an accumulation group) an optimizer step.

        Returns the batch's mean loss, detached (over all ranks in a distributed run).
        """
        accum = self.accumulation_steps
        group_start = (i // accum) * accum
        group_size = min(accum, self.steps_per_epoch - group_start)
        last_in_group = i - group_start == group_size - 1
        weight = self.train_batches.rank_weight(i) / group_size
        loss = self.forward_backward(batch, weight, last_in_group, epoch, i)
        if self.dist.enabled:
            rows = float(len(batch[-1]))
            stats = torch.stack([loss.float() * rows, loss.new_tensor(rows, dtype=torch.float32),
                                 loss.new_tensor(float(self._deadline_passed()),
                                                 dtype=torch.float32)])
            _distributed.all_reduce_sum(stats, self.dist)
            loss = stats[0] / stats[1]
            self._check_finite(loss, epoch, i)
            if stats[2] > 0:
                self.request_stop(f"deadline: stopped during epoch {epoch}")
        elif self._deadline_passed():
            self.request_stop(f"deadline: stopped during epoch {epoch}")
        if last_in_group:
            self.optimizer_step()
        return loss

    def forward_backward(self, batch: Sequence[torch.Tensor], weight: float, sync: bool,
                         epoch: int, i: int) -> torch.Tensor:
        """Loss and gradients of one batch; on an out-of-memory error, retry it in two halves once."""
        try:
            return self._forward_backward(batch, weight, sync, epoch, i)
        except _OOM as exc:
            if self.micro_splits > 1:
                raise self._out_of_memory(len(batch[-1]), epoch, i) from exc
            self.optimizer.zero_grad(set_to_none=True)
            if self.run_device.type == "cuda":
                torch.cuda.empty_cache()
            self.micro_splits = 2
            log.warning("out of memory on %s at epoch %d, step %d with %d rows: processing each "
                        "batch in two halves from now on (same effective batch). Lower batch_size "
                        "to avoid this.", self.run_device, epoch, i, len(batch[-1]))
            self.history.meta["micro_splits"] = self.micro_splits
        try:
            return self._forward_backward(batch, weight, sync, epoch, i)
        except _OOM as exc:
            raise self._out_of_memory(len(batch[-1]), epoch, i) from exc

    def _out_of_memory(self, rows: int, epoch: int, i: int) -> TrainingOutOfMemoryError:
        return TrainingOutOfMemoryError(
            f"out of memory on {self.run_device} at epoch {epoch}, step {i}, even with the batch "
            f"of {rows} rows split in {self.micro_splits}; lower batch_size (now "
            f"{self.batch_size}) and raise accumulation_steps, use precision='bf16', or use a "
            "smaller model.")

    def _forward_backward(self, batch: Sequence[torch.Tensor], weight: float, sync: bool,
                          epoch: int, i: int) -> torch.Tensor:
        rows = len(batch[-1])
        if self.micro_splits == 1 and not self.dist.enabled and rows:
            # the common case, without the bookkeeping of micro-batches and gradient sync (the
            # same numbers: a factor of 1.0 and a sum of one part are exact)
            if self._amp:
                with self._autocast():
                    loss = self._loss_of(batch, epoch, i)
            else:
                loss = self._loss_of(batch, epoch, i)
            self._check_finite(loss, epoch, i)
            scaled = loss if weight == 1.0 else loss * weight
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            return loss.detach().float()
        parts = (list(zip(*(t.tensor_split(self.micro_splits) for t in batch), strict=True))
                 if self.micro_splits > 1 else [tuple(batch)])
        parts = [p for p in parts if len(p[-1])]
        total = torch.zeros((), device=self.run_device)
        for j, part in enumerate(parts):
            no_sync = self.dist.enabled and (not sync or j < len(parts) - 1)
            with self.model.no_sync() if no_sync else nullcontext():  # type: ignore[operator]
                with self._autocast():
                    loss = self._loss_of(part, epoch, i)
                if not self.dist.enabled:
                    self._check_finite(loss, epoch, i)
                frac = len(part[-1]) / rows
                scaled = loss * (weight * frac)
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += loss.detach().float() * frac
        return total

    def _loss_of(self, batch: Sequence[torch.Tensor], epoch: int, i: int) -> torch.Tensor:
        inputs, target = batch[:-1], batch[-1]
        output = None
        try:
            output = self.model(*inputs)
            return self.compute_loss(output, target)
        except (RuntimeError, IndexError, ValueError) as exc:
            if isinstance(exc, _OOM) or not any(w in str(exc).lower() for w in _SHAPE_WORDS):
                raise
            shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
            out = "" if output is None else f", model output {tuple(output.shape)}"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShapeMismatchError(
                f"model and data do not fit together at epoch {epoch}, step {i}: input "
                f"{shapes}, target {tuple(target.shape)}{out}: {first}. Check the model's "
                "input and output sizes against X's columns and the number of classes or "
                "target columns.") from exc

    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch (the default MSE takes ``(n, 1)`` outputs for ``(n,)`` targets)."""
        if self.loss is None and not self.classification and output.ndim == target.ndim + 1 \
                and output.shape[-1] == 1:
            output = output.squeeze(-1)
        return self.loss_fn(output, target)

    def optimizer_step(self) -> None:
        """Clip, step (through the grad scaler with float16), zero the gradients, step the schedule."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._trainable, self.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.schedule_interval == "step":
            self.scheduler.step()
        self.step += 1

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation loss and metric over the whole validation set (on every rank)."""
        assert self.val_batches is not None
        self.module.eval()
        loss_sum = torch.zeros((), device=self.run_device, dtype=torch.float64)
        rows = 0
        outputs, targets = [], []
        for batch in self.val_batches:
            batch = self._to_device(batch)
            inputs, target = batch[:-1], batch[-1]
            with self._autocast():
                output = self.module(*inputs)
                loss = self.compute_loss(output, target)
            loss_sum += loss.double() * len(target)
            rows += len(target)
            outputs.append(output.float())
            targets.append(target)
        self.module.train()
        if rows == 0:
            return {}
        return {"val_loss": float(loss_sum / rows),
                "val_metric": float(self.metric_fn(torch.cat(outputs), torch.cat(targets)))}

    # --- helpers --------------------------------------------------------------------------------
    def _check_finite(self, loss: torch.Tensor, epoch: int, i: int) -> None:
        value = loss.item()  # one read (a sync on a GPU), no extra kernel
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the training loss became {value} at epoch {epoch}, step {i} (optimizer step "
                f"{self.step}); lower the learning rate (lr={self.lr:g}, try {self.lr / 10:g}), "
                "keep gradient clipping on (max_grad_norm), or check the data for extreme values.",
                epoch=epoch, step=i)

    def _deadline_passed(self) -> bool:
        return self.deadline is not None and time.time() > self.deadline

    def _all_agree(self, flag: bool) -> bool:
        """True when ``flag`` is true on any rank (every rank then takes the same branch)."""
        if not self.dist.enabled or self.deadline is None:
            return flag
        t = torch.tensor([float(flag)], device=self.run_device)
        return bool(_distributed.all_reduce_sum(t, self.dist).item() > 0)

    def _autocast(self, device: torch.device | None = None) -> AbstractContextManager[Any]:
        mode = self.precision_mode
        if mode == "32":
            return nullcontext()
        device = device or self.run_device
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _to_device(self, batch: Any) -> tuple[torch.Tensor, ...]:
        if isinstance(batch, dict):
            raise ShapeMismatchError("batches must be tuples (inputs..., target), got a dict.")
        out = []
        for j, t in enumerate(batch):
            t = t if isinstance(t, torch.Tensor) else to_tensor(t, "y" if j == len(batch) - 1 else "x")
            if t.device != self.run_device:
                t = t.to(self.run_device, non_blocking=True)
            out.append(t)
        return tuple(out)

    def _notify(self, hook: str, *args: Any) -> None:
        for cb in self.active_callbacks:
            getattr(cb, hook)(self, *args)

    def _overriding(self, hook: str) -> list[Callback]:
        """The active callbacks whose ``hook`` is not the base class's no-op."""
        base = getattr(Callback, hook)
        return [cb for cb in self.active_callbacks
                if getattr(getattr(cb, hook), "__func__", None) is not base]

    def __repr__(self) -> str:
        keys = ("max_epochs", "batch_size", "lr", "schedule", "precision", "device", "seed")
        return f"Trainer({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"

