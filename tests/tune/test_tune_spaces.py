"""Declared spaces to Optuna: bounds, log scales, choices, grids, several families at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlsmith.errors import ConfigError
from mlsmith.models import Choice, Float, Int, get_family
from mlsmith.tune import grid, suggest, suggest_config
from mlsmith.tune._spaces import config_from_params, fixed_params, grid_configs

optuna = pytest.importorskip("optuna")

SPACE = {
    "lr": Float(1e-4, 1.0, log=True),
    "frac": Float(0.2, 0.8),
    "leaves": Int(2, 256, log=True),
    "depth": Int(1, 6),
    "weight": Choice((None, "balanced")),
    "layers": Choice(((64,), (128, 128), (256, 256, 256))),
}


def _draw(space: dict, n: int = 300, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(suggest(trial, space))
        study.tell(trial, 0.0)
    return out


def test_suggest_respects_bounds_types_and_choices() -> None:
    draws = _draw(SPACE)
    for d in draws:
        assert 1e-4 <= d["lr"] <= 1.0 and 0.2 <= d["frac"] <= 0.8
        assert isinstance(d["leaves"], int) and 2 <= d["leaves"] <= 256
        assert isinstance(d["depth"], int) and 1 <= d["depth"] <= 6
        assert d["weight"] in (None, "balanced")
        # options that are not JSON scalars come back as the declared objects
        assert d["layers"] in SPACE["layers"].options and isinstance(d["layers"], tuple)
    assert {d["depth"] for d in draws} == set(range(1, 7))
    assert {d["layers"] for d in draws} == set(SPACE["layers"].options)
    assert {d["weight"] for d in draws} == {None, "balanced"}


def test_log_dimensions_are_sampled_on_a_log_scale() -> None:
    draws = _draw(SPACE, n=400)
    lr = np.array([d["lr"] for d in draws])
    # log-uniform on [1e-4, 1]: half the draws below 1e-2; a uniform draw would put ~1% there
    assert 0.4 < np.mean(lr < 1e-2) < 0.6
    leaves = np.array([d["leaves"] for d in draws])
    assert 0.35 < np.mean(leaves <= 23) < 0.65  # geometric middle of [2, 256] is 22.6


def test_suggest_records_optuna_distributions_with_prefix() -> None:
    study = optuna.create_study()
    trial = study.ask()
    suggest(trial, SPACE, prefix="fam__")
    dist = trial.distributions
    assert set(dist) == {f"fam__{k}" for k in SPACE}
    assert dist["fam__lr"].log and not dist["fam__frac"].log
    assert dist["fam__leaves"].log and isinstance(dist["fam__leaves"], optuna.distributions.IntDistribution)
    assert dist["fam__weight"].choices == (None, "balanced")


def test_grid_covers_declared_points() -> None:
    g = grid(SPACE, points=3)
    assert g["lr"] == pytest.approx([1e-4, 1e-2, 1.0])
    assert g["frac"] == pytest.approx([0.2, 0.5, 0.8])
    assert g["leaves"] == [2, 23, 256]
    assert g["depth"] == [1, 4, 6] or g["depth"] == [1, 3, 6]
    assert g["weight"] == [None, "balanced"]
    assert g["layers"] == list(SPACE["layers"].options)


def test_grid_deduplicates_integers_and_handles_one_point() -> None:
    assert grid({"k": Int(1, 2)}, points=5) == {"k": [1, 2]}
    assert grid({"k": Int(3, 3)}, points=3) == {"k": [3]}
    one = grid({"lr": Float(1e-4, 1.0, log=True), "x": Float(0.0, 1.0)}, points=1)
    assert one["lr"] == [pytest.approx(1e-2)] and one["x"] == [0.5]
    for values in grid(SPACE, points=7).values():
        assert len(values) == len(set(map(repr, values)))


@pytest.mark.parametrize("space, match", [
    ({"x": Float(0.0, 1.0, log=True)}, "log-scaled"),
    ({"x": Int(5, 1)}, "swap"),
    ({"x": Choice(())}, "no options"),
])
def test_bad_dimensions_are_named(space: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        grid(space)


def test_grid_sampler_accepts_the_grid_of_a_family_space() -> None:
    from mlsmith.tune import make_sampler

    space = get_family("linear").search_space("binary")
    g = grid(space, points=3)
    study = optuna.create_study(sampler=make_sampler("grid", 0, grid=g))
    study.optimize(lambda t: suggest(t, space)["C"], n_trials=20)
    seen = {(t.params["C"], t.params["class_weight"]) for t in study.trials}
    assert len(study.trials) == 6  # the sampler stops when the grid is exhausted
    assert seen == {(c, w) for c in g["C"] for w in g["class_weight"]}


def test_several_families_use_a_family_parameter_and_prefixes() -> None:
    spaces = {"linear": get_family("linear").search_space("binary"),
              "hist_gradient_boosting": get_family("hist_gradient_boosting").search_space("binary")}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    families = set()
    for _ in range(30):
        trial = study.ask()
        family, params = suggest_config(trial, spaces)
        families.add(family)
        assert trial.params["family"] == family
        assert set(params) == set(spaces[family])
        assert all(k == "family" or k.startswith(f"{family}__") for k in trial.params)
        assert config_from_params(spaces, trial.params) == (family, params)
        study.tell(trial, 0.0)
    assert families == set(spaces)


def test_one_family_keeps_plain_names() -> None:
    spaces = {"linear": get_family("linear").search_space("regression")}
    trial = optuna.create_study().ask()
    family, params = suggest_config(trial, spaces)
    assert family == "linear" and set(trial.params) == {"alpha"} == set(params)


def test_fixed_params_round_trip_through_an_enqueued_trial() -> None:
    spaces = {"a": {"layers": SPACE["layers"], "lr": SPACE["lr"]}, "b": {"depth": Int(1, 4)}}
    study = optuna.create_study()
    study.enqueue_trial(fixed_params(spaces, "a", {"layers": (128, 128), "lr": 0.01}))
    family, params = suggest_config(study.ask(), spaces)
    assert family == "a" and params == {"layers": (128, 128), "lr": 0.01}
    with pytest.raises(ConfigError, match="outside its search space"):
        fixed_params(spaces, "b", {"lr": 0.1})
    with pytest.raises(ConfigError, match="not among the searched"):
        fixed_params(spaces, "c", {})
    with pytest.raises(ConfigError, match=r"lr=5.0 is outside its search space \[0.0001, 1.0\]"):
        fixed_params(spaces, "a", {"lr": 5.0})
    with pytest.raises(ConfigError, match="not an option of 'layers'"):
        fixed_params(spaces, "a", {"layers": (1, 2)})


def test_grid_configs_enumerate_each_family_product() -> None:
    spaces = {"a": {"x": Int(1, 3), "w": Choice(("p", "q"))}, "b": {"y": Float(1.0, 100.0, log=True)}}
    configs = grid_configs(spaces, points=3)
    assert len(configs) == 3 * 2 + 3
    assert [c for c in configs if c[0] == "b"] == [("b", {"y": 1.0}), ("b", {"y": 10.0}),
                                                   ("b", {"y": 100.0})]
    assert len({(f, tuple(sorted(p.items()))) for f, p in configs}) == len(configs)
    assert all(math.isfinite(p.get("y", 1.0)) for _, p in configs)
