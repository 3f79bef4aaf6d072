"""The one record a training run and its callbacks share: a row of numbers per epoch."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, overload

__all__ = ["History"]


class History:
    """Per-epoch records of a run, plus a few facts about the run as a whole.

    Every epoch gets one row (a dict) with the keys the trainer writes — ``epoch`` (1-based),
    ``train_loss``, ``val_loss``, ``val_metric``, ``lr``, ``time`` (seconds), ``steps`` (optimizer
    steps so far) — and whatever callbacks add with :meth:`record`. ``meta`` holds run-level facts:
    ``metric`` (the name of ``val_metric``), ``best_epoch``, ``stop_reason``.

    Index with an int for a row and with a str for a column::

        history[-1]["val_loss"]      # the last epoch's validation loss
        history["train_loss"]        # every epoch's training loss (None where missing)

    A History is plain data: it pickles, and :meth:`to_dict` / :meth:`from_dict` round-trip it
    through JSON and checkpoints.
    """

    def __init__(self, rows: list[dict[str, Any]] | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows or []]
        self.meta: dict[str, Any] = dict(meta or {})

    # --- writing --------------------------------------------------------------------------------
    def new_epoch(self, epoch: int) -> dict[str, Any]:
        """Start the row of ``epoch`` and return it."""
        row: dict[str, Any] = {"epoch": epoch}
        self.rows.append(row)
        return row

    def record(self, key: str, value: Any) -> None:
        """Set ``key`` in the current (last) epoch's row."""
        if not self.rows:
            raise IndexError("History.record: no epoch has started yet; call new_epoch first.")
        self.rows[-1][key] = value

    # --- reading --------------------------------------------------------------------------------
    @overload
    def __getitem__(self, key: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, key: str) -> list[Any]: ...

    def __getitem__(self, key: int | str) -> dict[str, Any] | list[Any]:
        if isinstance(key, str):
            return [row.get(key) for row in self.rows]
        return self.rows[key]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def last(self, key: str, default: Any = None) -> Any:
        """The last epoch's value of ``key`` (``default`` when there is none)."""
        return self.rows[-1].get(key, default) if self.rows else default

    def best(self, key: str = "val_loss", mode: str = "min") -> dict[str, Any] | None:
        """The row with the lowest (``mode="min"``) or highest value of ``key``; None if no row has it."""
        rows = [r for r in self.rows if _is_number(r.get(key))]
        if not rows:
            return None
        pick = min if mode == "min" else max
        return pick(rows, key=lambda r: r[key])

    @property
    def best_epoch(self) -> int | None:
        return self.meta.get("best_epoch")

    @property
    def stop_reason(self) -> str | None:
        return self.meta.get("stop_reason")

    # --- conversion -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows], "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(data.get("rows"), data.get("meta"))

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame, one row per epoch."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the history as JSON, atomically (a temporary file, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=1, default=_jsonable)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        shown = ", ".join(f"{k}={_short(v)}" for k, v in last.items())
        return f"History({len(self.rows)} epochs; last: {shown or '-'})"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy / torch scalars
        return v.item()
    return str(v)
