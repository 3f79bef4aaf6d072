"""Whether MLflow can be used, and importing it with an install hint when it cannot."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from types import ModuleType

from mlsmith.errors import MissingDependencyError

__all__ = ["tracking_available", "require_mlflow", "MIN_MLFLOW"]

MIN_MLFLOW = (3, 1)
_HINT = "pip install 'mlsmith[track]'"


def _installed_version() -> str | None:
    for dist in ("mlflow", "mlflow-skinny"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _major_minor(version: str) -> tuple[int, int]:
    parts = []
    for p in version.split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 2:
        parts.append(0)
    return parts[0], parts[1]


def _problem() -> str | None:
    """None when mlflow is usable, else one line naming the problem and the fix."""
    try:
        found = importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return f"experiment tracking needs mlflow, which is not installed: {_HINT}."
    version = _installed_version()
    if version is not None and _major_minor(version) < MIN_MLFLOW:
        need = ".".join(map(str, MIN_MLFLOW))
        return (f"experiment tracking needs mlflow >= {need}, found {version}: "
                f"pip install -U 'mlsmith[track]'.")
    return None


def tracking_available() -> bool:
    """True when a recent enough mlflow is installed (checked without importing it).

    A fit calls this to skip tracking silently when the user did not ask for it.

    Examples
    --------
    >>> from mlsmith.track import tracking_available
    >>> isinstance(tracking_available(), bool)
    True
    """
    return _problem() is None


def require_mlflow() -> ModuleType:
    """Import and return ``mlflow``; :class:`MissingDependencyError` with the fix otherwise."""
    problem = _problem()
    if problem is not None:
        raise MissingDependencyError(problem)
    try:
        import mlflow
    except ImportError as exc:  # installed but broken (a missing sub-dependency)
        raise MissingDependencyError(
            f"experiment tracking needs mlflow, which failed to import ({exc}): "
            f"pip install -U 'mlsmith[track]'.") from exc
    return mlflow
