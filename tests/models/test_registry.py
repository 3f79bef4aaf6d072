"""The registry: lookup by name or alias, clear errors, families for a task."""

from __future__ import annotations

import pytest

from mlsmith.errors import ConfigError, MissingDependencyError
from mlsmith.models import ALIASES, REGISTRY, families_for, get_family
from mlsmith.models._base import Capabilities, ModelFamily


def test_expected_families_registered() -> None:
    assert {"linear", "knn", "random_forest", "extra_trees", "hist_gradient_boosting",
            "lightgbm", "xgboost", "catboost"} <= set(REGISTRY)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_resolve(alias: str) -> None:
    target = REGISTRY[ALIASES[alias]]
    if not target.available():
        pytest.skip(f"{target.requires} is not installed")
    assert get_family(alias.upper()) is target


def test_unknown_family_suggests() -> None:
    with pytest.raises(ConfigError, match="unknown model 'lightgb'. Did you mean .*'lightgbm'"):
        get_family("lightgb")


def test_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    class Ghost(ModelFamily):
        name = "ghost"
        requires = "mlsmith_no_such_package"
        extra = "ghost"
        capabilities = Capabilities(tasks=frozenset({"regression"}), preprocessing="scaled",
                                    relative_cost=1.0)

        def build(self, params, ctx):  # pragma: no cover - never built
            raise AssertionError

        def portfolio(self, task):
            return [{}]

        def search_space(self, task):
            return {}

    monkeypatch.setitem(REGISTRY, "ghost", Ghost())
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlsmith\[ghost\]'"):
        get_family("ghost")
    assert "ghost" not in [f.name for f in families_for("regression")]


def test_families_for() -> None:
    names = [f.name for f in families_for("binary", ["lr", "lgbm", "linear"])]
    assert names == ["linear", "lightgbm"]
    all_binary = families_for("binary")
    assert all(f.available() and f.supports("binary") for f in all_binary)
    assert "linear" in [f.name for f in all_binary]
