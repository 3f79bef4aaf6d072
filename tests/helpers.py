"""Helpers shared by the tests: paths, small generated frames, a CLI runner.

They live here, not in conftest.py, so that test files can import them (``from helpers import
...``) without clashing with the conftest.py files of subfolders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: keyword arguments for fits where the family list does not matter
FAST = {"models": ["linear", "lightgbm"], "quiet": True, "seed": 0}


# --- generated frames ---------------------------------------------------------------------------
def make_binary_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two informative numbers, a 3-level text category, an integer 0/1 target ``label``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    c = rng.choice(["u", "v", "w"], size=n)
    logit = 2.0 * x - 1.0 * z + np.where(c == "u", 1.0, 0.0)
    label = (logit + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
    return pd.DataFrame({"x": x, "z": z, "c": c, "label": label})


def make_regression_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.uniform(0, 10, size=n)
    c = rng.choice(["lo", "hi"], size=n)
    y = 3.0 * x + 0.5 * z + np.where(c == "hi", 2.0, 0.0) + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"x": x, "z": z, "c": c, "y": y})


def make_multiclass_frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    y = np.select([x < -0.4, x > 0.4], ["low", "high"], "mid")
    return pd.DataFrame({"x": x + rng.normal(scale=0.1, size=n), "z": z, "y": y})


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(*args: Any, cwd: Path | None = None, timeout: float = 120) -> CliResult:
    """Run ``python -m mlsmith.cli ARGS`` in a subprocess."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env["COLUMNS"] = "200"
    proc = subprocess.run([sys.executable, "-m", "mlsmith.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def leftovers(folder: Path) -> list[str]:
    """Entries of ``folder`` (hidden ones too): used to prove a failed fit left nothing behind."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- CI: a skip is a failure ------------------------------------------------------------------
