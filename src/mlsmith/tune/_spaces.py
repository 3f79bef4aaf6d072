"""Search spaces (:mod:`mlsmith.models._space`) translated to Optuna and to grids.

Several families are searched in one study: a categorical ``family`` parameter picks the family,
then that family's parameters are suggested under names prefixed ``<family>__``. One study (not
one per family) lets the sampler spend trials where the scores are good, lets one trial budget
and one pruner cover every family, and gives one trial table. With a single family there is no
``family`` parameter and no prefix, so the trial's parameters are exactly the family's.

Optuna stores categorical choices as JSON scalars; a ``Choice`` whose options are not all
``None``/bool/int/float/str (a tuple of layer sizes, say) is suggested through string labels and
mapped back to the option, so any declared space works.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsmith.errors import ConfigError
from mlsmith.models._space import Choice, Float, Int, Space

__all__ = [
    "FAMILY_PARAM", "SEP", "suggest", "grid", "suggest_config", "grid_configs", "fixed_params",
    "config_from_params", "check_space",
]

#: name of the categorical parameter that picks the family when several are searched
FAMILY_PARAM = "family"
#: separator between a family's name and its parameter's name in a multi-family study
SEP = "__"

_SCALARS = (type(None), bool, int, float, str)


def _plain(options: Sequence[Any]) -> bool:
    return all(isinstance(o, _SCALARS) for o in options)


def _label(option: Any) -> str:
    try:
        return json.dumps(option, sort_keys=True)
    except TypeError:
        return repr(option)


def _labels(dim: Choice) -> list[str]:
    labels = [_label(o) for o in dim.options]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"choice options {dim.options!r} are not distinct once written as "
                          f"text: give options that print differently.")
    return labels


def check_space(space: Space, where: str = "search space") -> None:
    """Raise :class:`ConfigError` for a dimension Optuna cannot sample."""
    for name, dim in space.items():
        if isinstance(dim, (Float, Int)):
            if not dim.low <= dim.high:
                raise ConfigError(f"{where}: {name!r} has low {dim.low} above high {dim.high}: "
                                  f"swap them.")
            if dim.log and dim.low <= 0:
                raise ConfigError(f"{where}: {name!r} is log-scaled but its low bound is "
                                  f"{dim.low}: use a positive low bound or log=False.")
        elif isinstance(dim, Choice):
            if len(dim.options) == 0:
                raise ConfigError(f"{where}: {name!r} is a Choice with no options: add some.")
        else:
            raise ConfigError(f"{where}: {name!r} is {type(dim).__name__}, not Float, Int or "
                              f"Choice from mlsmith.models.")


def suggest(trial: Any, space: Space, prefix: str = "") -> dict[str, Any]:
    """Ask ``trial`` for one value per dimension of ``space``.

    Parameters
    ----------
    trial : optuna.trial.Trial
        The trial to ask.
    space : dict of Float, Int, Choice
        The declared space (``family.search_space(task)``).
    prefix : str
        Prepended to every Optuna parameter name (``"lightgbm__"`` in a multi-family study);
        the returned keys are the space's own names.

    Returns
    -------
    dict
        The configuration, ready for ``family.build(params, ctx)``.

    Examples
    --------
    >>> import optuna
    >>> from mlsmith.models import Float, Choice
    >>> study = optuna.create_study()
    >>> trial = study.ask()
    >>> params = suggest(trial, {"C": Float(1e-3, 1.0, log=True), "w": Choice((None, "balanced"))})
    >>> sorted(params)
    ['C', 'w']
    """
    out: dict[str, Any] = {}
    for name, dim in space.items():
        key = prefix + name
        if isinstance(dim, Float):
            out[name] = trial.suggest_float(key, float(dim.low), float(dim.high), log=dim.log)
        elif isinstance(dim, Int):
            out[name] = trial.suggest_int(key, int(dim.low), int(dim.high), log=dim.log)
        elif isinstance(dim, Choice):
            if _plain(dim.options):
                out[name] = trial.suggest_categorical(key, list(dim.options))
            else:
                labels = _labels(dim)
                out[name] = dim.options[labels.index(trial.suggest_categorical(key, labels))]
        else:
            check_space({name: dim})
    return out


def _points(dim: Float | Int, n: int) -> list[Any]:
    lo, hi = dim.low, dim.high
    if n <= 1 or lo == hi:
        mid = math.sqrt(lo * hi) if dim.log else (lo + hi) / 2
        values = [mid]
    elif dim.log:
        values = list(np.geomspace(lo, hi, n))
    else:
        values = list(np.linspace(lo, hi, n))
    if isinstance(dim, Int):
        ints = [int(min(hi, max(lo, round(v)))) for v in values]
        return list(dict.fromkeys(ints))
    return list(dict.fromkeys(float(v) for v in values))


def grid(space: Space, points: int = 3) -> dict[str, list[Any]]:
    """A grid over ``space`` for :class:`optuna.samplers.GridSampler`.

    ``Choice`` dimensions give all their options; ``Float`` and ``Int`` give ``points`` values
    from low to high (both included), evenly spaced, or geometrically where the dimension is
    log-scaled; integers are rounded and duplicates dropped (``Int(1, 2)`` gives ``[1, 2]`` even
    with ``points=3``). One point gives the middle of the range.

    Examples
    --------
    >>> from mlsmith.models import Float, Int, Choice
    >>> grid({"lr": Float(0.01, 1.0, log=True), "depth": Int(2, 6), "k": Choice(("a", "b"))})
    {'lr': [0.01, 0.1, 1.0], 'depth': [2, 4, 6], 'k': ['a', 'b']}
    """
    if points < 1:
        raise ConfigError(f"grid points must be at least 1: got {points}.")
    check_space(space)
    out: dict[str, list[Any]] = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            out[name] = list(dim.options)
        else:
            out[name] = [round(v, 12) if isinstance(v, float) else v for v in _points(dim, points)]
    return out


def suggest_config(trial: Any, spaces: dict[str, Space]) -> tuple[str, dict[str, Any]]:
    """Suggest a family and its configuration.

    With one family in ``spaces`` its parameters are suggested under their own names; with
    several, a categorical ``family`` picks one and its parameters are named ``<family>__<name>``.
    Returns ``(family name, params)``.
    """
    if not spaces:
        raise ConfigError("no model family to search: name at least one.")
    names = list(spaces)
    if len(names) == 1:
        return names[0], suggest(trial, spaces[names[0]])
    family = trial.suggest_categorical(FAMILY_PARAM, names)
    return family, suggest(trial, spaces[family], prefix=f"{family}{SEP}")


def fixed_params(spaces: dict[str, Space], family: str, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna parameter values that make :func:`suggest_config` return ``(family, params)``:
    for :meth:`optuna.Study.enqueue_trial`. Keys or values of ``params`` outside the family's
    space are an error (the trial could not reproduce them, and the sampler would model points
    it cannot propose). Parameters of the space left out are drawn by the sampler."""
    if family not in spaces:
        raise ConfigError(f"configuration for {family!r}, which is not among the searched "
                          f"families {', '.join(spaces)}.")
    space = spaces[family]
    extra = sorted(set(params) - set(space))
    if extra:
        raise ConfigError(f"{family} configuration has {', '.join(extra)}, outside its search "
                          f"space ({', '.join(space)}): drop them.")
    prefix = f"{family}{SEP}" if len(spaces) > 1 else ""
    out: dict[str, Any] = {FAMILY_PARAM: family} if len(spaces) > 1 else {}
    for name, value in params.items():
        dim = space[name]
        if isinstance(dim, Choice):
            if value not in dim.options:
                raise ConfigError(f"{family} configuration: {value!r} is not an option of "
                                  f"{name!r} ({', '.join(map(repr, dim.options))}).")
            if not _plain(dim.options):
                value = _labels(dim)[list(dim.options).index(value)]
        elif not dim.low <= value <= dim.high:
            raise ConfigError(f"{family} configuration: {name}={value!r} is outside its search "
                              f"space [{dim.low}, {dim.high}]: use a value in range.")
        out[prefix + name] = value
    return out


def config_from_params(spaces: dict[str, Space], params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Read ``(family, configuration)`` back from a finished trial's Optuna parameters."""
    names = list(spaces)
    if len(names) == 1:
        family, prefix = names[0], ""
    else:
        family, prefix = params[FAMILY_PARAM], f"{params[FAMILY_PARAM]}{SEP}"
    space = spaces[family]
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if prefix + name not in params:
            continue
        value = params[prefix + name]
        if isinstance(dim, Choice) and not _plain(dim.options):
            value = dim.options[_labels(dim).index(value)]
        out[name] = value
    return family, out


def grid_configs(spaces: dict[str, Space], points: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """Every grid point of every family, family by family, in a fixed order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for family, space in spaces.items():
        g = grid(space, points)
        names = list(g)
        for values in itertools.product(*(g[n] for n in names)):
            out.append((family, dict(zip(names, values, strict=True))))
    return out
