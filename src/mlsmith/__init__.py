"""mlsmith: a careful ML engineer in a box.

>>> import mlsmith
>>> run = mlsmith.fit("train.csv", target="price", time_limit=120)   # doctest: +SKIP
>>> run.leaderboard(); run.predict(df); run.evaluate(test_df)         # doctest: +SKIP
>>> run = mlsmith.load("runs/price")                                  # doctest: +SKIP

Heavy modules are imported on first use, so ``import mlsmith`` stays fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

logging.getLogger("mlsmith").addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = ["fit", "load", "Run", "MlsmithError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from mlsmith.errors import MlsmithError
    from mlsmith.pipeline import fit
    from mlsmith.run import Run, load

_LAZY = {
    "fit": ("mlsmith.pipeline", "fit"),
    "load": ("mlsmith.run", "load"),
    "Run": ("mlsmith.run", "Run"),
    "MlsmithError": ("mlsmith.errors", "MlsmithError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlsmith' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
