"""The model zoo: one registry of families, one module per family."""

from __future__ import annotations

from mlsmith.errors import ConfigError, MissingDependencyError, did_you_mean
from mlsmith.models._base import BuildContext, Capabilities, ModelFamily
from mlsmith.models._catboost import CatBoostFamily
from mlsmith.models._forest import ExtraTreesFamily, RandomForestFamily
from mlsmith.models._hgb import HistGradientBoostingFamily
from mlsmith.models._knn import KNNFamily
from mlsmith.models._lightgbm import LightGBMFamily
from mlsmith.models._linear import LinearFamily
from mlsmith.models._neural import NeuralFamily
from mlsmith.models._space import Choice, Float, Int, Space, sample_space
from mlsmith.models._xgboost import XGBoostFamily

__all__ = [
    "ModelFamily", "Capabilities", "BuildContext", "Float", "Int", "Choice", "Space",
    "sample_space", "REGISTRY", "ALIASES", "get_family", "families_for", "register",
]

REGISTRY: dict[str, ModelFamily] = {}

ALIASES = {
    "logistic": "linear", "ridge": "linear", "lr": "linear",
    "rf": "random_forest", "randomforest": "random_forest",
    "et": "extra_trees", "extratrees": "extra_trees",
    "hgb": "hist_gradient_boosting", "histgb": "hist_gradient_boosting",
    "lgbm": "lightgbm", "lgb": "lightgbm",
    "xgb": "xgboost", "cat": "catboost",
    "nn": "neural", "mlp": "neural", "resmlp": "neural",
}


def register(family: ModelFamily) -> ModelFamily:
    """Add a family to the registry (a user's own family too); returns it."""
    REGISTRY[family.name] = family
    return family


for _f in (LinearFamily(), KNNFamily(), RandomForestFamily(), ExtraTreesFamily(),
           HistGradientBoostingFamily(), LightGBMFamily(), XGBoostFamily(), CatBoostFamily(),
           NeuralFamily()):
    register(_f)


def get_family(name: str) -> ModelFamily:
    """Look up a family by name or alias; a clear error when unknown or not installed."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}." + did_you_mean(name, list(REGISTRY) + list(ALIASES))
                          + f" Known models: {', '.join(REGISTRY)}.")
    fam = REGISTRY[key]
    if not fam.available():
        raise MissingDependencyError(
            f"model {fam.name!r} needs the package {fam.requires!r}: "
            f"pip install 'mlsmith[{fam.extra}]'.")
    return fam


def families_for(task: str, names: list[str] | None = None) -> list[ModelFamily]:
    """The families to try for ``task``: the named ones, or every installed one that is part of
    the default portfolio (a family whose accuracy has not been benchmarked yet is opt-in)."""
    if names:
        fams = [get_family(n) for n in names]
        unsupported = [f.name for f in fams if not f.supports(task)]
        if unsupported:
            raise ConfigError(f"model(s) {', '.join(unsupported)} do not support {task}.")
        return list(dict.fromkeys(fams))
    return [f for f in REGISTRY.values()
            if f.available() and f.supports(task) and f.in_default_portfolio]
