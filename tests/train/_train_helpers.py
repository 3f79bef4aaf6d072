"""Helpers shared by the training-engine tests (imported by name: this folder is on sys.path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent


def load_job(name: str) -> ModuleType:
    """Import one of the job scripts next to this file (they also run as subprocesses)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blobs(n: int = 400, d: int = 6, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable classes: the label is the arg-max of a few linear scores."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, classes))
    return X, np.argmax(X @ W, axis=1).astype(np.int64)


def linear_target(n: int = 400, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A linear regression target with a little noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X @ np.linspace(-1, 1, d) + 0.05 * rng.normal(size=n)).astype(np.float32)


def params_of(module) -> dict:  # type: ignore[no-untyped-def]
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_weights(a, b) -> None:  # type: ignore[no-untyped-def]
    """Bitwise-equal state dicts (modules or dicts)."""
    import torch

    sa = a if isinstance(a, dict) else a.state_dict()
    sb = b if isinstance(b, dict) else b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs"
