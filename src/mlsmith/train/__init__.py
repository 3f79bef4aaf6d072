"""Training engine for torch models on tabular data.

``Trainer`` runs a loop of small overridable steps (``fit_loop`` -> ``run_epoch`` ->
``train_step``) with callbacks that share one :class:`History`; ``MLP`` and ``ResMLP`` are
networks for tabular inputs. Importing this package imports torch (``import mlsmith`` does not).

>>> from mlsmith.train import MLP, Trainer
>>> net = MLP(input_dim=50, hidden_dims=[256, 128], output_dim=2, dropout=0.3)
>>> trainer = Trainer(max_epochs=20, batch_size=256, lr=1e-3, seed=0)
"""

from __future__ import annotations

from mlsmith.train._callbacks import (
    Callback,
    EarlyStopping,
    MLflowLogger,
    ProgressBar,
    TensorBoardLogger,
)
from mlsmith.train._checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mlsmith.train._errors import (
                                   CheckpointMismatchError,
                                   NonFiniteLossError,
                                   ShapeMismatchError,
                                   TrainingError,
                                   TrainingOutOfMemoryError,
)
from mlsmith.train._history import History
from mlsmith.train._nets import MLP, PeriodicEmbedding, ResMLP
from mlsmith.train._pruning import EpochReporter, OptunaEpochPruner
from mlsmith.train._trainer import Trainer

__all__ = [
    "Trainer", "History", "MLP", "ResMLP", "PeriodicEmbedding",
    "Callback", "EarlyStopping", "Checkpoint", "ProgressBar", "TensorBoardLogger", "MLflowLogger",
    "save_checkpoint", "load_checkpoint", "EpochReporter", "OptunaEpochPruner",
    "TrainingError", "NonFiniteLossError", "ShapeMismatchError", "CheckpointMismatchError",
    "TrainingOutOfMemoryError",
]
