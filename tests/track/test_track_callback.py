"""Training curves by step: the MLflowLogger and TensorBoardLogger callbacks."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlflow")

from mlsmith.errors import ConfigError, MissingDependencyError  # noqa: E402
from mlsmith.train import MLP, MLflowLogger, TensorBoardLogger, Trainer  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n: int = 160, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def _fit(callbacks: list[Any], max_epochs: int = 2, **kw: Any) -> Trainer:
    torch.manual_seed(0)
    X, y = _data()
    trainer = Trainer(max_epochs=max_epochs, batch_size=32, lr=1e-2, seed=0, device="cpu",
                      verbose=False, callbacks=callbacks, **kw)
    trainer.fit(MLP(4, [16], 2), (X[:128], y[:128]), val=(X[128:], y[128:]))
    return trainer  # 4 optimizer steps per epoch


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"


def test_step_and_epoch_curves_are_logged_to_a_new_run(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    logger = MLflowLogger(tracking_uri=_uri(tmp_path), experiment="nets", run_name="mlp",
                          every_n_steps=3)
    trainer = _fit([logger], max_epochs=3)
    client = MlflowClient(_uri(tmp_path))
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "mlp"
    assert client.get_experiment(run.info.experiment_id).name == "nets"
    assert run.data.params["batch_size"] == "32" and run.data.params["max_epochs"] == "3"

    steps = client.get_metric_history(logger.run_id, "step/train_loss")
    assert sorted(m.step for m in steps) == [3, 6, 9, 12]  # 12 optimizer steps, every 3rd
    assert all(np.isfinite(m.value) and m.value > 0 for m in steps)
    lrs = client.get_metric_history(logger.run_id, "step/lr")
    assert sorted(m.step for m in lrs) == [3, 6, 9, 12]

    val = sorted(client.get_metric_history(logger.run_id, "val_loss"), key=lambda m: m.step)
    assert [m.step for m in val] == [1, 2, 3]
    assert [m.value for m in val] == pytest.approx([row["val_loss"] for row in trainer.history])
    assert {"train_loss", "val_metric", "lr"} <= set(run.data.metrics)
    assert "epoch" not in run.data.metrics


def test_logging_into_an_existing_run_leaves_it_running(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(_uri(tmp_path))
    exp = client.create_experiment("mine", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(exp).info.run_id
    logger = MLflowLogger(run_id=run_id, tracking_uri=_uri(tmp_path), every_n_steps=None)
    _fit([logger], max_epochs=2)
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING" and run.data.params == {}
    assert "step/train_loss" not in run.data.metrics  # every_n_steps=None: epochs only
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [1, 2]
    assert logger.state_dict()["run_id"] == run_id


def test_a_resumed_logger_continues_the_same_run(tmp_path: Path) -> None:
    first = MLflowLogger(tracking_uri=_uri(tmp_path), every_n_steps=2)
    first.run_id, first._owns_run = "abc", True
    first._sampler.last = 8
    second = MLflowLogger(tracking_uri=_uri(tmp_path), every_n_steps=2)
    second.load_state_dict(first.state_dict())
    assert (second.run_id, second._owns_run, second._sampler.last) == ("abc", True, 8)


def test_tensorboard_gets_step_curves(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[tuple[str, float, int]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            self.log_dir = log_dir

        def add_scalar(self, key: str, value: float, step: int) -> None:
            written.append((key, value, step))

        def close(self) -> None:
            pass

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _fit([TensorBoardLogger("unused", every_n_steps=2)], max_epochs=2)
    assert [s for k, _, s in written if k == "step/train_loss"] == [2, 4, 6, 8]
    assert [s for k, _, s in written if k == "step/lr"] == [2, 4, 6, 8]
    assert [s for k, _, s in written if k == "val_loss"] == [1, 2]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_every_n_steps_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ConfigError, match="every_n_steps must be None or an integer >= 1"):
        MLflowLogger(every_n_steps=bad)
    with pytest.raises(ConfigError, match="every_n_steps"):
        TensorBoardLogger("x", every_n_steps=bad)


def test_mlflow_logger_without_mlflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlsmith\[track\]'"):
        MLflowLogger()
