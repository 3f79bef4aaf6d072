"""Optimizer groups and learning-rate schedules."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlsmith.errors import ConfigError  # noqa: E402
from mlsmith.train._optim import WarmupCosine, make_optimizer, make_scheduler, param_groups  # noqa: E402


def test_biases_and_norm_weights_get_no_weight_decay() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    decay, plain = param_groups(net, 0.1)
    assert decay["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[3].weight)}
    assert len(plain["params"]) == 6  # 2 biases + LayerNorm (2) + BatchNorm (2)
    opt = make_optimizer(net, "adamw", 1e-3, 0.1)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_unknown_optimizer_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'adam' or 'adamw'"):
        make_optimizer(nn.Linear(2, 1), "adamv", 1e-3, 0.0)


def test_warmup_then_cosine() -> None:
    f = WarmupCosine(warmup=4, total=20)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0
    assert f(12) == pytest.approx(0.5)
    assert f(20) == pytest.approx(0.0, abs=1e-12)
    values = [f(s) for s in range(4, 21)]
    assert values == sorted(values, reverse=True)
    assert WarmupCosine(0, 10, cosine=False)(7) == 1.0


@pytest.mark.parametrize("name", ["warmup_cosine", "constant", "onecycle", "plateau"])
def test_every_schedule_steps(name: str) -> None:
    opt = torch.optim.AdamW(nn.Linear(2, 1).parameters(), lr=1.0)
    sched, interval = make_scheduler(opt, name, 1.0, total_steps=10, warmup=0.2)
    assert interval == ("epoch" if name == "plateau" else "step")
    lrs = []
    for _ in range(10):
        opt.step()
        sched.step(1.0) if interval == "epoch" else sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert all(math.isfinite(v) and v >= 0 for v in lrs)
    if name == "constant":
        assert lrs[-1] == 1.0
    if name == "plateau":  # a loss that never improves halves the rate every 4 epochs
        assert lrs[-1] < 1.0


def test_unknown_schedule() -> None:
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
    with pytest.raises(ConfigError, match="Did you mean 'onecycle'"):
        make_scheduler(opt, "one_cycle", 1.0, 10, 0.0)
