"""History: rows per epoch, columns by name, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from mlsmith.train import History  # noqa: E402


def make() -> History:
    h = History(meta={"metric": "accuracy"})
    for epoch, loss in enumerate([0.9, 0.5, 0.7], start=1):
        h.new_epoch(epoch)
        h.record("train_loss", loss)
        if epoch > 1:
            h.record("val_loss", loss + 0.1)
    return h


def test_rows_and_columns() -> None:
    h = make()
    assert len(h) == 3
    assert h[-1] == {"epoch": 3, "train_loss": 0.7, "val_loss": pytest.approx(0.8)}
    assert h["train_loss"] == [0.9, 0.5, 0.7]
    assert h["val_loss"][0] is None
    assert h.last("val_loss") == pytest.approx(0.8)
    assert h.best("val_loss")["epoch"] == 2
    assert h.best("train_loss", mode="max")["epoch"] == 1
    assert h.best("missing") is None


def test_record_needs_an_epoch() -> None:
    with pytest.raises(IndexError, match="new_epoch"):
        History().record("x", 1)


def test_json_round_trip(tmp_path: Path) -> None:
    h = make()
    path = h.save(tmp_path / "sub" / "history.json")
    assert json.loads(path.read_text())["meta"] == {"metric": "accuracy"}
    assert History.load(path) == h
    assert History.from_dict(h.to_dict()) == h
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary left
    assert h.to_frame().shape == (3, 3)
    assert "3 epochs" in repr(h)
