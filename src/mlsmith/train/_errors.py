"""The exceptions the training engine raises.

All derive from :class:`mlsmith.errors.MlsmithError` (through :class:`TrainingError`), with a
built-in base where callers already catch one (``ValueError``, ``FloatingPointError``,
``MemoryError``).
"""

from __future__ import annotations

from mlsmith.errors import MlsmithError

__all__ = [
    "TrainingError",
    "NonFiniteLossError",
    "ShapeMismatchError",
    "CheckpointMismatchError",
    "TrainingOutOfMemoryError",
]


class TrainingError(MlsmithError):
    """Training could not go on; the message says where it stopped and what to change."""


class NonFiniteLossError(TrainingError, FloatingPointError):
    """The loss became NaN or infinite; ``epoch`` and ``step`` say where."""

    def __init__(self, message: str, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step


class ShapeMismatchError(TrainingError, ValueError):
    """The data and the model do not fit together (features, rows, classes, outputs)."""


class CheckpointMismatchError(TrainingError, ValueError):
    """A checkpoint was written by another model or another training configuration."""


class TrainingOutOfMemoryError(TrainingError, MemoryError):
    """The accelerator ran out of memory even after the batch was split in two."""
