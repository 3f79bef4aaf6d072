"""The Trainer: learning, inputs, losses, accumulation, clipping, precision, stops and errors."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
from _train_helpers import assert_same_weights, blobs, linear_target  # noqa: E402
from torch import nn  # noqa: E402

from mlsmith.errors import ConfigError, MlsmithError  # noqa: E402
from mlsmith.train import (  # noqa: E402
    MLP,
    Callback,
    NonFiniteLossError,
    ShapeMismatchError,
    Trainer,
    TrainingOutOfMemoryError,
)


def net(d: int = 6, out: int = 2, seed: int = 0, dropout: float = 0.0) -> MLP:
    torch.manual_seed(seed)
    return MLP(d, [32], out, dropout=dropout)


def quick(**kw) -> Trainer:  # type: ignore[no-untyped-def]
    opts = dict(max_epochs=4, batch_size=32, lr=1e-2, seed=0, device="cpu", verbose=False)
    opts.update(kw)
    return Trainer(**opts)


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


def test_learns_and_records_a_history(clf_data) -> None:
    X, y = clf_data
    model = net()
    history = quick(max_epochs=5).fit(model, (X[:300], y[:300]), val=(X[300:], y[300:]))
    assert len(history) == 5
    assert set(history[-1]) == {"epoch", "train_loss", "val_loss", "val_metric", "lr", "steps", "time"}
    assert history["epoch"] == [1, 2, 3, 4, 5]
    assert history[-1]["steps"] == 5 * 10                        # ceil(300 / 32) steps per epoch
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.meta["metric"] == "accuracy"
    assert history[-1]["val_metric"] > 0.9
    assert accuracy(model, X[300:], y[300:]) == pytest.approx(
        history.best("val_loss")["val_metric"])                 # the best epoch's weights
    assert history.meta["stop_reason"] == "max_epochs"
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)     # cosine ends at zero


def test_one_seed_one_run(clf_data) -> None:
    X, y = clf_data
    a, b, c = net(dropout=0.2), net(dropout=0.2), net(dropout=0.2)
    ha = quick().fit(a, (X, y))
    hb = quick().fit(b, (X, y))
    quick(seed=1).fit(c, (X, y))
    assert_same_weights(a, b)
    assert ha["train_loss"] == hb["train_loss"]
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


@pytest.mark.parametrize("kind", ["dataframe", "tensor", "dataset"])
def test_inputs_of_every_kind_train_the_same(kind: str, clf_data) -> None:
    X, y = clf_data
    ref = net()
    quick(max_epochs=2).fit(ref, (X, y))
    if kind == "dataframe":
        train = (pd.DataFrame(X), pd.Series(y))
    elif kind == "tensor":
        train = (torch.from_numpy(X), torch.from_numpy(y))
    else:  # a torch Dataset goes through a DataLoader in the same seeded order
        train = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    other = net()
    quick(max_epochs=2).fit(other, train)
    assert_same_weights(ref, other)


def test_a_dataloader_is_used_as_it_is(clf_data) -> None:
    X, y = clf_data
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=50, shuffle=False)
    history = quick(max_epochs=3).fit(net(), loader, val=loader)
    assert history[-1]["steps"] == 3 * 8
    assert history[-1]["val_metric"] > 0.8


def test_float_targets_get_mean_squared_error(reg_data) -> None:
    X, y = reg_data
    model = MLP(5, [16], 1)
    history = quick(max_epochs=6).fit(model, (X[:300], y[:300]), val=(X[300:], y[300:]))
    assert history.meta["metric"] == "rmse"
    assert history[-1]["val_loss"] < 0.1 * float(np.var(y))
    assert history[-1]["val_metric"] == pytest.approx(np.sqrt(history[-1]["val_loss"]), rel=1e-4)


def test_a_given_loss_and_metric_are_used(clf_data) -> None:
    X, y = clf_data
    calls = []

    def loss(out, target):  # type: ignore[no-untyped-def]
        calls.append(out.shape)
        return nn.functional.cross_entropy(out, target)

    def top1(out, target) -> float:  # type: ignore[no-untyped-def]
        return 42.0

    history = quick(max_epochs=1, loss=loss, metric=top1).fit(net(), (X, y), val=(X, y))
    assert calls and history[-1]["val_metric"] == 42.0 and history.meta["metric"] == "top1"


def test_several_inputs(reg_data) -> None:
    X, y = reg_data

    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 1), nn.Linear(2, 1)

        def forward(self, x1, x2):  # type: ignore[no-untyped-def]
            return self.a(x1) + self.b(x2)

    model = TwoInputs()
    trainer = quick(max_epochs=8, lr=0.05)
    history = trainer.fit(model, (X[:, :3], X[:, 3:], y))
    assert history[-1]["train_loss"] < 0.05 * float(np.var(y))
    assert trainer.predict(model, (X[:5, :3], X[:5, 3:])).shape == (5, 1)


def test_gradient_accumulation_equals_a_bigger_batch(clf_data) -> None:
    X, y = clf_data
    big, accumulated = net(), net()
    quick(batch_size=64, max_epochs=2).fit(big, (X, y))
    h = quick(batch_size=32, accumulation_steps=2, max_epochs=2).fit(accumulated, (X, y))
    assert h[-1]["steps"] == 2 * 7  # ceil(13 batches / 2) optimizer steps per epoch
    for (k, a), b in zip(big.state_dict().items(), accumulated.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


class GradNorms(Callback):
    """Record the global gradient norm just before each optimizer step (after clipping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        def hook(opt, args, kwargs):  # type: ignore[no-untyped-def]
            grads = [p.grad for p in trainer.module.parameters() if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

        trainer.optimizer.register_step_pre_hook(hook)


@pytest.mark.parametrize("clip", [None, 0.05])
def test_gradients_are_clipped_by_global_norm(clip, clf_data) -> None:
    X, y = clf_data
    spy = GradNorms()
    quick(max_epochs=1, max_grad_norm=clip, lr=1e-3, callbacks=[spy]).fit(net(), (X, y))
    assert len(spy.norms) == 13
    if clip is None:
        assert max(spy.norms) > 0.05
    else:
        assert max(spy.norms) <= clip * (1 + 1e-4)


def test_bf16_autocast_on_cpu(clf_data) -> None:
    X, y = clf_data
    model = net()
    history = quick(precision="bf16", max_epochs=5).fit(model, (X[:300], y[:300]),
                                                       val=(X[300:], y[300:]))
    assert model.layers[0].weight.dtype == torch.float32  # weights stay float32
    assert history[-1]["val_metric"] > 0.85


def test_float16_needs_cuda(clf_data) -> None:
    with pytest.raises(ConfigError, match="needs a CUDA device.*bf16"):
        quick(precision="16").fit(net(), clf_data)


def test_configuration_errors_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'warmup_cosine'"):
        Trainer(schedule="warmup-cosine")
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        Trainer(batch_size=0)
    with pytest.raises(ConfigError, match="resume=True needs a checkpoint_dir"):
        quick().fit(net(), blobs(), resume=True)
    with pytest.raises(ConfigError, match="Callback instances"):
        Trainer(callbacks=[print])  # type: ignore[list-item]


class LRs(Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_batch_end(self, trainer: Trainer, batch: int, loss) -> None:  # type: ignore[no-untyped-def]
        self.lrs.append(trainer.current_lr)


@pytest.mark.parametrize("schedule", ["warmup_cosine", "constant", "onecycle"])
def test_schedules_step_per_optimizer_step(schedule: str, clf_data) -> None:
    spy = LRs()
    quick(schedule=schedule, warmup=0.2, max_epochs=2, lr=0.01, callbacks=[spy]).fit(
        net(), clf_data)
    lrs = spy.lrs
    assert len(lrs) == 26
    if schedule == "constant":
        assert lrs[5:] == [0.01] * 21 and lrs[0] < 0.01          # after 5 warmup steps
    else:
        peak = int(np.argmax(lrs))
        assert 0 < peak < 25 and max(lrs) == pytest.approx(0.01, rel=0.05)
        assert lrs[-1] < 0.01 * 0.05


def test_early_stopping_stops_and_restores_the_best_epoch() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    y = rng.integers(0, 2, size=200)  # noise: the validation loss soon stops improving
    model = net()
    trainer = quick(max_epochs=50, patience=3, lr=3e-2, schedule="constant")
    history = trainer.fit(model, (X[:150], y[:150]), val=(X[150:], y[150:]))
    assert len(history) < 50
    assert history.stop_reason.startswith("early stopping: val_loss did not improve for 3 epochs")
    best = history.best("val_loss")
    assert history.best_epoch == best["epoch"] == len(history) - 3
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(torch.from_numpy(X[150:])), torch.from_numpy(y[150:]))
    assert float(loss) == pytest.approx(best["val_loss"], rel=1e-5)


class Slow(Callback):
    def on_batch_end(self, trainer: Trainer, batch: int, loss) -> None:  # type: ignore[no-untyped-def]
        time.sleep(0.002)


def test_the_deadline_stops_between_steps_and_keeps_the_best_epoch(clf_data) -> None:
    X, y = clf_data
    model = net()
    t0 = time.time()
    history = quick(max_epochs=1000, deadline=t0 + 0.5, callbacks=[Slow()]).fit(
        model, (X[:300], y[:300]), val=(X[300:], y[300:]))
    assert time.time() - t0 < 3.0
    assert history.stop_reason.startswith("deadline")
    assert 1 <= len(history) < 1000
    assert accuracy(model, X[300:], y[300:]) == pytest.approx(history.best("val_loss")["val_metric"])


def test_a_passed_deadline_trains_nothing(clf_data) -> None:
    history = quick(deadline=time.time() - 1).fit(net(), clf_data)
    assert len(history) == 0 and history.stop_reason.startswith("deadline")


def test_a_callback_stops_the_run_with_its_own_signal(clf_data) -> None:
    class StopAtTwo(Callback):
        def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
            if epoch == 2:
                trainer.request_stop("enough")

    history = quick(max_epochs=10, callbacks=[StopAtTwo()]).fit(net(), clf_data)
    assert len(history) == 2 and history.stop_reason == "enough"


def test_callback_hooks_are_called_in_order(clf_data) -> None:
    events: list[str] = []

    class Spy(Callback):
        def on_train_begin(self, trainer: Trainer) -> None:
            events.append("train_begin")

        def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
            events.append(f"epoch_begin {epoch}")

        def on_batch_end(self, trainer: Trainer, batch: int, loss) -> None:  # type: ignore[no-untyped-def]
            assert loss.ndim == 0
            events.append("batch")

        def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
            assert trainer.history[-1]["epoch"] == epoch and "val_loss" in trainer.history[-1]
            events.append(f"epoch_end {epoch}")

        def on_train_end(self, trainer: Trainer) -> None:
            events.append("train_end")

    X, y = clf_data
    quick(max_epochs=2, batch_size=200, callbacks=[Spy()]).fit(net(), (X, y), val=(X, y))
    assert events == ["train_begin", "epoch_begin 1", "batch", "batch", "epoch_end 1",
                      "epoch_begin 2", "batch", "batch", "epoch_end 2", "train_end"]


def test_progress_bar_shows_loss_val_loss_and_lr(clf_data) -> None:
    import io

    from rich.console import Console

    from mlsmith.train import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(console=Console(file=out, width=150, force_terminal=False), refresh_every=2)
    X, y = clf_data
    quick(max_epochs=2, callbacks=[bar]).fit(net(), (X, y), val=(X, y))
    text = out.getvalue()
    assert "epoch 2/2" in text and "val " in text and "lr " in text and "loss " in text


def test_tensorboard_is_skipped_quietly_when_missing(clf_data, tmp_path) -> None:
    try:
        import tensorboard  # noqa: F401
        has_tb = True
    except ImportError:
        has_tb = False
    quick(max_epochs=1, log_dir=tmp_path / "tb").fit(net(), clf_data, val=clf_data)
    assert (tmp_path / "tb").exists() == has_tb


def test_tensorboard_scalars_are_written_per_epoch(clf_data, tmp_path, monkeypatch) -> None:
    import sys
    import types

    written: list[tuple[str, float, int]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            self.log_dir = log_dir

        def add_scalar(self, key: str, value: float, step: int) -> None:
            written.append((key, value, step))

        def close(self) -> None:
            written.append(("closed", 0.0, 0))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    quick(max_epochs=2, log_dir=tmp_path).fit(net(), clf_data, val=clf_data)
    keys = {k for k, _, _ in written}
    assert {"train_loss", "val_loss", "val_metric", "lr"} <= keys and "epoch" not in keys
    assert sorted({s for k, _, s in written if k == "val_loss"}) == [1, 2]
    assert written[-1][0] == "closed"


def test_a_non_finite_loss_names_epoch_and_step(reg_data) -> None:
    X, y = reg_data
    y = y.copy()
    y[123] = np.inf
    with pytest.raises(NonFiniteLossError) as info:
        quick().fit(MLP(5, [8], 1), (X, y))
    err = info.value
    assert isinstance(err, MlsmithError) and isinstance(err, FloatingPointError)
    assert err.epoch == 1 and 0 <= err.step < 13
    assert f"at epoch 1, step {err.step}" in str(err)
    assert "lower the learning rate (lr=0.01, try 0.001)" in str(err)


def test_shape_mismatches_are_explained_in_one_line(clf_data) -> None:
    X, y = clf_data
    with pytest.raises(ShapeMismatchError, match=r"takes 7 input features but X has 6 columns; "
                                                  r"build it with input_dim=6") as info:
        quick().fit(MLP(7, [4], 2), (X, y))
    assert "\n" not in str(info.value)
    with pytest.raises(ShapeMismatchError, match="y holds class 2 but the model outputs 2 logits"):
        quick().fit(MLP(6, [4], 2), blobs(classes=3))
    with pytest.raises(ShapeMismatchError, match="y has 1 target column.*3 outputs"):
        quick().fit(MLP(5, [4], 3), linear_target())
    # a model without input_dim: torch's own error, re-raised in one line with the shapes
    with pytest.raises(ShapeMismatchError, match=r"epoch 1, step 0: input \(32, 6\), target \(32,\)"
                                                  r".*mat1 and mat2") as info:
        quick().fit(nn.Sequential(nn.Linear(5, 2)), (X, y))
    assert "\n" not in str(info.value)


class OOMAbove(nn.Module):
    """Raises an out-of-memory error for batches above ``limit`` rows (a stand-in for CUDA)."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit

    def forward(self, x):  # type: ignore[no-untyped-def]
        if self.training and len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return self.inner(x)


def test_out_of_memory_halves_the_batch_once(clf_data, caplog) -> None:
    X, y = clf_data
    ref, halved = net(), net()
    quick(max_epochs=2).fit(ref, (X, y))
    with caplog.at_level(logging.WARNING, logger="mlsmith.train"):
        history = quick(max_epochs=2).fit(OOMAbove(halved, limit=16), (X, y))
    assert "two halves" in caplog.text
    assert history.meta["micro_splits"] == 2
    for (k, a), b in zip(ref.state_dict().items(), halved.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)  # same effective batch
    with pytest.raises(TrainingOutOfMemoryError, match="even with the batch of 32 rows split in 2"):
        quick().fit(OOMAbove(net(), limit=8), (X, y))


def test_predict_returns_outputs_on_cpu(clf_data) -> None:
    X, y = clf_data
    model = net()
    trainer = quick(max_epochs=1)
    trainer.fit(model, (X, y))
    out = trainer.predict(model, X, batch_size=64)
    assert out.shape == (400, 2) and out.device.type == "cpu"
    with torch.no_grad():
        torch.testing.assert_close(out, model(torch.from_numpy(X)))
    assert model.training  # mode restored
