"""Fixtures for the training-engine tests: one torch thread, small seeded data."""

from __future__ import annotations

import numpy as np
import pytest
from _train_helpers import blobs, linear_target


@pytest.fixture(autouse=True)
def one_thread():
    """Each test runs torch on one thread: results do not depend on the machine's cores."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def clf_data() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


@pytest.fixture
def reg_data() -> tuple[np.ndarray, np.ndarray]:
    return linear_target()
