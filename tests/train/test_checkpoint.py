"""Checkpoints: what they hold, atomic writes, exact resume, fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from _train_helpers import assert_same_weights, blobs, load_job  # noqa: E402

from mlsmith.train import (  # noqa: E402
    MLP,
    Callback,
    CheckpointMismatchError,
    History,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)
from mlsmith.train._checkpoint import capture_rng, restore_rng  # noqa: E402

job = load_job("_resume_job")


class Crash(Callback):
    """Stands in for a crash: raises at the start of ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if epoch == self.epoch:
            raise RuntimeError("power cut")


def run_job(ckpt: Path, resume: bool = False, callbacks: tuple = ()) -> tuple:  # type: ignore[type-arg]
    X, y, Xv, yv = job.make_data()
    net = job.make_net()
    history = job.make_trainer(str(ckpt), callbacks).fit(net, (X, y), (Xv, yv), resume=resume)
    return net, history


def test_a_checkpoint_holds_the_whole_state(tmp_path: Path) -> None:
    net, history = run_job(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "history.json", "last.pt"]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == job.MAX_EPOCHS
    assert state["step"] == job.MAX_EPOCHS * 16
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "callbacks", "history",
            "fingerprint"} <= set(state)
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}
    es = state["callbacks"]["early_stopping"]
    assert es["best_epoch"] == history.best_epoch and set(es["best_state"]) == set(net.state_dict())
    assert History.from_dict(state["history"])["train_loss"] == history["train_loss"]
    assert History.load(tmp_path / "history.json") == history
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == history.best_epoch
    assert_same_weights(best["model"], net)  # the model ends with the best epoch's weights


def test_checkpoint_every_n_epochs(tmp_path: Path) -> None:
    X, y = blobs(100)
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
            path = tmp_path / "last.pt"
            seen.append(load_checkpoint(path)["epoch"] if path.exists() else None)

    Trainer(max_epochs=5, batch_size=50, seed=0, device="cpu", verbose=False, callbacks=[Spy()],
            checkpoint_dir=tmp_path, checkpoint_every=2).fit(MLP(6, [4], 2), (X, y))
    # the spy runs before the writer: it sees the previous write; the last epoch is always saved
    assert seen == [None, None, 2, 2, 4]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 5
    assert not (tmp_path / "best.pt").exists()  # no validation data, no best


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"format": 1, "epoch": 1})

    def broken_save(obj, fh):  # type: ignore[no-untyped-def]
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"format": 1, "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the old checkpoint is whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # and no temporary is left


def test_random_states_round_trip() -> None:
    import random

    state = capture_rng()
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_resume_after_a_crash_ends_with_the_same_weights(tmp_path: Path) -> None:
    straight, h_straight = run_job(tmp_path / "straight")
    with pytest.raises(RuntimeError, match="power cut"):
        run_job(tmp_path / "crashed", callbacks=(Crash(epoch=4),))
    assert load_checkpoint(tmp_path / "crashed" / "last.pt")["epoch"] == 3
    resumed, h_resumed = run_job(tmp_path / "crashed", resume=True)
    assert_same_weights(straight, resumed)
    assert h_resumed["train_loss"] == h_straight["train_loss"]
    assert h_resumed["val_loss"] == h_straight["val_loss"]


def test_resuming_a_finished_run_trains_no_more(tmp_path: Path) -> None:
    net, history = run_job(tmp_path)
    again, history2 = run_job(tmp_path, resume=True)
    assert_same_weights(net, again)
    assert history2["train_loss"] == history["train_loss"]


def test_resume_without_a_checkpoint_starts_afresh(tmp_path: Path) -> None:
    net, history = run_job(tmp_path / "new", resume=True)
    fresh, _ = run_job(tmp_path / "other")
    assert_same_weights(net, fresh)


def test_a_checkpoint_of_another_model_or_config_is_refused(tmp_path: Path) -> None:
    X, y, Xv, yv = job.make_data()
    run_job(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="the model architecture") as info:
        job.make_trainer(str(tmp_path)).fit(MLP(10, [64], 2), (X, y), (Xv, yv), resume=True)
    assert "resume=False" in str(info.value)
    other = Trainer(max_epochs=job.MAX_EPOCHS, batch_size=64, lr=3e-3, seed=7,
                    checkpoint_dir=tmp_path, verbose=False, device="cpu")
    with pytest.raises(CheckpointMismatchError, match="batch_size: checkpoint 32, now 64"):
        other.fit(job.make_net(), (X, y), (Xv, yv), resume=True)


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "last.pt")
    with pytest.raises(CheckpointMismatchError, match="not a checkpoint of mlsmith.train"):
        load_checkpoint(tmp_path / "last.pt")
