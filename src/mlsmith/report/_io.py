"""Reading a run directory tolerantly, and writing a file atomically.

The report is built only from the files of a run directory (docs/RUNDIR.md). Every file except
the folder itself is optional here: a reader that meets a missing or unreadable file records why
in :attr:`RunFiles.problems` and the section that needs it says "not recorded in this run".
``manifest.json`` is never required, because the fit writes the report into its staging folder
before the manifest exists.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsmith.errors import RunDirError

__all__ = ["RunFiles", "read_run", "atomic_write_text", "NOT_RECORDED"]

#: the words every section uses when its input is missing
NOT_RECORDED = "not recorded in this run"

#: files at least one of which makes a folder a run directory
_CORE = ("config.json", "schema.json", "metrics.json")
#: leaderboard rows read at most (a long search must not make the report huge)
MAX_LEADERBOARD_ROWS = 5000


@dataclass
class RunFiles:
    """The parsed files of one run directory; absent files are ``None``.

    ``problems`` maps a file name to why it could not be used (missing, corrupt).
    """

    path: Path
    config: dict[str, Any] | None = None
    schema: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    leaderboard: list[dict[str, Any]] | None = None
    leaderboard_columns: list[str] = field(default_factory=list)
    leaderboard_total: int = 0
    target_counts: dict[str, Any] | None = None
    problems: dict[str, str] = field(default_factory=dict)

    # --- convenience accessors ------------------------------------------------------------------
    @property
    def task(self) -> str | None:
        for src in (self.schema and self.schema.get("task", {}).get("kind"),
                    self.config and self.config.get("task"),
                    self.evaluation and self.evaluation.get("task"),
                    self.audit and self.audit.get("task")):
            if isinstance(src, str) and src:
                return src
        return None

    @property
    def target(self) -> str | None:
        for src in (self.schema and self.schema.get("target"),
                    self.config and self.config.get("target"),
                    self.audit and self.audit.get("target")):
            if src is not None and src != "":
                return str(src)
        return None

    @property
    def classes(self) -> list[Any]:
        if self.schema and self.schema.get("task", {}).get("classes"):
            return list(self.schema["task"]["classes"])
        if self.evaluation and self.evaluation.get("classes"):
            return list(self.evaluation["classes"])
        return []

    @property
    def metric(self) -> str | None:
        for src in (self.metrics and self.metrics.get("metric"),
                    self.config and self.config.get("metric"),
                    self.evaluation and self.evaluation.get("metric")):
            if isinstance(src, str) and src:
                return src
        return None

    @property
    def greater_is_better(self) -> bool | None:
        if self.metrics and isinstance(self.metrics.get("greater_is_better"), bool):
            return self.metrics["greater_is_better"]
        ev = (self.evaluation or {}).get("test", {}).get("metrics", {})
        m = self.metric
        if isinstance(ev, dict) and m in ev and isinstance(ev[m], dict):
            g = ev[m].get("greater_is_better")
            if isinstance(g, bool):
                return g
        return None

    def why_missing(self, name: str) -> str:
        """``"not recorded in this run (no audit.json)"`` or the file's problem."""
        return f"{NOT_RECORDED} ({self.problems.get(name, f'no {name}')})"


#: the types the readers rely on; a value of another type is dropped (read as not recorded)
_SHAPES: dict[str, dict[str, Any]] = {
    "config.json": {"target": (str, int, float), "metric": str, "task": str, "source": str,
                    "out": str, "drop": list},
    "schema.json": {"target": (str, int, float), "columns": list,
                    "task": {"kind": str, "classes": list, "reason": str}},
    "metrics.json": {"metric": str, "greater_is_better": bool, "cv": dict, "test": dict,
                     "rows": dict, "timings_s": dict, "notes": list,
                     "chosen": {"description": str, "members": list}},
    "audit.json": {"findings": list, "dropped_columns": list, "removed_rows": dict,
                   "recommendations": dict, "allowed": list},
    "evaluation.json": {"classes": list, "metric": str, "task": str, "cv_vs_test": list,
                        "test": {"metrics": dict, "per_class": list, "confusion_matrix": list,
                                 "threshold": dict},
                        "curves": {"roc": list, "pr": list, "calibration": list,
                                   "residuals": dict},
                        "bias_variance": {"models": list}, "learning_curve": {"points": list},
                        "importance": {"features": list}, "shap": {"features": list},
                        "projection": {"x": list, "y": list, "explained_variance": list},
                        "skipped": dict},
    "manifest.json": {"versions": dict},
}


def _conform(doc: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for key, want in shape.items():
        if key not in out:
            continue
        if out[key] is None:
            del out[key]
            continue
        if isinstance(want, dict):
            out[key] = _conform(out[key], want) if isinstance(out[key], dict) else None
        elif not isinstance(out[key], want) or isinstance(out[key], bool) and want is not bool:
            out[key] = None
        if out[key] is None:
            del out[key]
    return out


def _read_json(path: Path, problems: dict[str, str]) -> dict[str, Any] | None:
    name = path.name
    if not path.is_file():
        problems[name] = f"no {name}"
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems[name] = f"{name} could not be read: {type(exc).__name__}"
        return None
    if not isinstance(obj, dict):
        problems[name] = f"{name} does not hold a JSON object"
        return None
    return _conform(obj, _SHAPES.get(name, {}))


def _cell(text: str) -> Any:
    """A CSV cell as a float where it is a number, ``None`` where empty, else the text."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _read_leaderboard(path: Path, files: RunFiles) -> None:
    if not path.is_file():
        files.problems[path.name] = f"no {path.name}"
        return
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = []
            total = 0
            for row in reader:
                total += 1
                if len(rows) < MAX_LEADERBOARD_ROWS:
                    rows.append({k: _cell(v) for k, v in row.items() if k is not None})
            files.leaderboard_columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        files.problems[path.name] = f"{path.name} could not be read: {type(exc).__name__}"
        return
    files.leaderboard = rows
    files.leaderboard_total = total


def _read_target_counts(path: Path, files: RunFiles) -> None:
    """Training and test target values from the prediction files, for the target's distribution."""
    out: dict[str, Any] = {}
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a core dependency
        return
    for part, name in (("train", "oof_predictions.npz"), ("test", "test_predictions.npz")):
        p = path / name
        if not p.is_file():
            continue
        try:
            with np.load(p, allow_pickle=False) as data:
                if "y" in data.files:
                    y = np.asarray(data["y"])
                    if y.ndim == 1 and len(y):
                        out[part] = y
        except (OSError, ValueError, KeyError) as exc:
            files.problems[name] = f"{name} could not be read: {type(exc).__name__}"
    files.target_counts = out or None


def read_run(run_dir: str | os.PathLike[str]) -> RunFiles:
    """Parse every file of ``run_dir`` that the report uses.

    Raises
    ------
    RunDirError
        When ``run_dir`` does not exist, is not a folder, or holds none of ``config.json``,
        ``schema.json`` and ``metrics.json``.
    """
    path = Path(run_dir)
    if not path.exists():
        raise RunDirError(f"{path} does not exist: give the run directory a fit wrote (its --out).")
    if not path.is_dir():
        raise RunDirError(f"{path} is not a folder: give the run directory a fit wrote "
                          f"(its --out).")
    if not any((path / n).is_file() for n in _CORE):
        raise RunDirError(f"{path} is not an mlsmith run directory (none of {', '.join(_CORE)}): "
                          f"give the folder a fit wrote (its --out).")
    files = RunFiles(path=path)
    p = files.problems
    files.config = _read_json(path / "config.json", p)
    files.schema = _read_json(path / "schema.json", p)
    files.metrics = _read_json(path / "metrics.json", p)
    files.audit = _read_json(path / "audit.json", p)
    files.evaluation = _read_json(path / "evaluation.json", p)
    files.manifest = _read_json(path / "manifest.json", p)
    _read_leaderboard(path / "leaderboard.csv", files)
    _read_target_counts(path, files)
    return files


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a hidden temp file in the same folder and a rename."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise RunDirError(f"{path} is a folder: give a file name for the output.")
    if not path.parent.is_dir():
        raise RunDirError(f"the folder {path.parent} does not exist: create it or choose another "
                          f"output path.")
    from mlsmith.run._rundir import _atomic_write_bytes

    _atomic_write_bytes(path, text.encode("utf-8"))
    os.chmod(path, 0o644)  # readable like any report, not private as a temp file is
    return path


# --- small helpers shared by the HTML and the model card ----------------------------------------
def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: Any, digits: int = 4) -> str:
    """A number for people: ``0.9906``, ``1,234``, ``1.5e-05``; ``—`` for missing values."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—" if math.isnan(v) else ("∞" if v > 0 else "−∞")
        if v.is_integer() and abs(v) < 1e15 and abs(v) >= 1:
            return f"{int(v):,}"
        if abs(v) >= 1e4:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def fmt_seconds(v: Any) -> str:
    if not is_number(v):
        return "—"
    v = float(v)
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    return f"{v / 60:.1f} min"


def origin_kind(value: Any) -> str:
    """``portfolio``, ``search trial``, ``ensemble``, ``baseline``, or the text as it is."""
    s = str(value or "").lower().replace("_", " ").replace("-", " ").strip()
    if "ensemble" in s:
        return "ensemble"
    if any(w in s for w in ("search", "trial", "tun", "optuna")) or s == "initial":
        return "search trial"
    if "baseline" in s:
        return "baseline"
    if "portfolio" in s:
        return "portfolio"
    return s or "—"


def origin_label(value: Any) -> str:
    """:func:`origin_kind` with the search strategy: ``search trial (tpe)``."""
    kind = origin_kind(value)
    raw = str(value or "").strip()
    if kind == "search trial" and ":" in raw:
        return f"search trial ({raw.split(':', 1)[1]})"
    if kind == "search trial" and raw.lower() == "initial":
        return "search trial (initial)"
    return kind


_TRAILING_INT = re.compile(r"(\d+)$")


def trailing_int(name: Any) -> int | None:
    m = _TRAILING_INT.search(str(name))
    return int(m.group(1)) if m else None


def fmt_score(v: Any) -> str:
    """A metric value with four significant digits kept (``1.000``, ``0.9275``, ``1.53e-05``)."""
    if not is_number(v):
        return "—"
    v = float(v)
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:#.4g}".rstrip(".")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 finding"``, ``"3 findings"``."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def run_versions(files: RunFiles) -> dict[str, str]:
    """Library versions from the manifest; in a staging folder (no manifest yet), the current
    ones, which are the fit's own."""
    versions = (files.manifest or {}).get("versions")
    if isinstance(versions, dict) and versions:
        return {str(k): str(v) for k, v in versions.items()}
    if files.manifest is None:
        from mlsmith.run._rundir import library_versions

        return library_versions()
    return {}

