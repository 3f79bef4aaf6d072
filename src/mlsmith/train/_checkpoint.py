"""Checkpoints: everything a killed run needs to continue exactly, written atomically.

A checkpoint is one ``torch.save`` file holding the model, optimizer, scheduler and grad-scaler
states, the epoch and step counters, the random states of torch, numpy and Python (per process
of a distributed run), each callback's state (early stopping included), the history, and a
fingerprint of the architecture and the configuration. It is written to a temporary file in the
same folder and moved over the old one with ``os.replace``, so a kill at any moment leaves
either the old checkpoint or the new one, never half of one. Files hold plain data only and are
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mlsmith.train._callbacks import Callback
from mlsmith.train._errors import CheckpointMismatchError

if TYPE_CHECKING:  # pragma: no cover
    from mlsmith.train._trainer import Trainer

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "capture_rng", "restore_rng",
           "architecture_hash", "check_fingerprint", "LAST", "BEST"]

FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, fsync, replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (plain data only)."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointMismatchError(
            f"{path} is not a checkpoint of mlsmith.train (format {FORMAT}); "
            "point checkpoint_dir at a fresh folder or pass resume=False.")
    return state


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> None:
    """Delete temporary files a killed writer left behind in ``folder``."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


# --- random states ------------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """The random states of torch (CPU and CUDA), numpy's global generator and Python's."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                  int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned."""
    torch.set_rng_state(state["torch"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuples(obj: Any) -> Any:
    if isinstance(obj, list | tuple):
        return tuple(_as_tuples(o) for o in obj)
    return obj


# --- fingerprints -------------------------------------------------------------------------------
def architecture_hash(module: torch.nn.Module) -> str:
    """A hash of the module's structure: its repr and every state entry's name, shape and dtype."""
    h = hashlib.sha256(repr(module).encode())
    for name, value in module.state_dict().items():
        h.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
    return h.hexdigest()[:16]


def check_fingerprint(path: str | os.PathLike[str], stored: dict[str, Any],
                      current: dict[str, Any]) -> None:
    """Raise :class:`CheckpointMismatchError` naming every difference between two fingerprints."""
    if stored == current:
        return
    diffs = []
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            what = "the model architecture" if key == "architecture" else key
            diffs.append(f"{what}: checkpoint {stored.get(key)!r}, now {current.get(key)!r}")
    raise CheckpointMismatchError(
        f"cannot resume from {path}: it was written by a different model or configuration "
        f"({'; '.join(diffs)}). Resume with the same model and settings, or start afresh with "
        "resume=False (or another checkpoint_dir).")


# --- the callback -------------------------------------------------------------------------------
class Checkpoint(Callback):
    """Write ``last.pt`` every ``every`` epochs (and at the last epoch) and ``best.pt`` at each new best.

    The trainer appends it after every other callback, so that what it saves includes their
    updated state. Only the main process writes; all processes of a distributed run take part in
    gathering the random states.
    """

    name = "checkpoint"  # type: ignore[assignment]

    def __init__(self, folder: str | os.PathLike[str], every: int = 1, save_best: bool = True) -> None:
        if every < 1:
            raise ValueError(f"Checkpoint: every must be at least 1, got {every}.")
        self.folder = Path(folder)
        self.every = int(every)
        self.save_best = save_best

    def on_train_begin(self, trainer: Trainer) -> None:
        if trainer.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.folder)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        final = trainer.stop_requested or epoch >= trainer.max_epochs
        is_best = self.save_best and trainer.history.meta.get("best_epoch") == epoch
        if not (epoch % self.every == 0 or final or is_best):
            return
        state = trainer.state_dict()  # collective in a distributed run: every rank calls it
        if not trainer.is_main:
            return
        if epoch % self.every == 0 or final:
            save_checkpoint(self.folder / LAST, state)
            trainer.history.save(self.folder / "history.json")
        if is_best:
            save_checkpoint(self.folder / BEST, state)

    def __repr__(self) -> str:
        return f"Checkpoint(folder={str(self.folder)!r}, every={self.every})"
