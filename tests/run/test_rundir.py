"""The run directory: manifest hashes, version checks, atomic staging."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import EXAMPLES

import mlsmith
from mlsmith.errors import IntegrityError, RunDirError, TargetError
from mlsmith.run import (
    MANIFEST,
    RunWriter,
    check_destination,
    is_run_dir,
    library_versions,
    read_manifest,
    verify,
)

EXPECTED_FILES = {"audit.json", "config.json", "leaderboard.csv", "metrics.json", "model.joblib",
                  "oof_predictions.npz", "schema.json", "splits.npz", "test_predictions.npz",
                  "evaluation.json", "report.html", "model_card.md"}


def test_manifest_lists_every_file_with_its_hash(penguins_run) -> None:
    path = Path(penguins_run.path)
    manifest = read_manifest(path)
    # the search's study appears when the session fit had time left for it
    assert EXPECTED_FILES <= set(manifest["files"])
    assert all(f.startswith("study/") for f in set(manifest["files"]) - EXPECTED_FILES)
    for rel, info in manifest["files"].items():
        data = (path / rel).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert info["bytes"] == len(data)
    assert verify(path, manifest) == []
    versions = manifest["versions"]
    assert versions["scikit-learn"] == library_versions()["scikit-learn"]
    assert versions["mlsmith"] == mlsmith.__version__
    assert manifest["config"]["target"] == "species"
    # nothing but the run's own files: no scratch data, no temp files
    assert {p.name for p in path.iterdir()} - {"study"} == EXPECTED_FILES | {MANIFEST}


@pytest.mark.parametrize("victim", ["model.joblib", "metrics.json"])
def test_tampered_file_is_named(penguins_run, copy_run, victim: str) -> None:
    path = copy_run(penguins_run)
    with open(path / victim, "ab") as fh:
        fh.write(b" ")
    with pytest.raises(IntegrityError, match=rf"{victim} has changed since the fit"):
        mlsmith.load(path)


def test_missing_file_is_named(penguins_run, copy_run) -> None:
    path = copy_run(penguins_run)
    (path / "schema.json").unlink()
    with pytest.raises(IntegrityError, match="schema.json is missing"):
        mlsmith.load(path)


def _set_version(path: Path, lib: str, version: str) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["versions"][lib] = version
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_other_sklearn_minor_version_is_refused(penguins_run, copy_run) -> None:
    path = copy_run(penguins_run)
    _set_version(path, "scikit-learn", "0.1.0")
    with pytest.raises(IntegrityError, match=r"scikit-learn 0\.1\.0 at fit, .* now"):
        mlsmith.load(path)
    run = mlsmith.load(path, check_versions=False)
    assert run.task == "multiclass"


def test_patch_level_drift_only_warns(penguins_run, copy_run) -> None:
    path = copy_run(penguins_run)
    major, minor = library_versions()["scikit-learn"].split(".")[:2]
    _set_version(path, "scikit-learn", f"{major}.{minor}.999")
    with pytest.warns(UserWarning, match="library version drift since the fit: scikit-learn"):
        mlsmith.load(path)


def test_library_missing_now_is_refused(penguins_run, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlsmith.run._rundir as rundir

    real = rundir.library_versions()
    monkeypatch.setattr(rundir, "library_versions",
                        lambda: {k: v for k, v in real.items() if k != "lightgbm"})
    with pytest.raises(IntegrityError, match=rf"lightgbm {real['lightgbm']} is not installed"):
        mlsmith.load(penguins_run.path)


def test_corrupt_manifest(penguins_run, copy_run) -> None:
    path = copy_run(penguins_run)
    (path / MANIFEST).write_text("{not json")
    with pytest.raises(IntegrityError, match="manifest.json is corrupt"):
        mlsmith.load(path)


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="is not an mlsmith run directory"):
        mlsmith.load(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        mlsmith.load(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(RunDirError, match="is not a folder"):
        mlsmith.load(tmp_path / "f.txt")


# --- writer ---------------------------------------------------------------------------------------
def test_writer_commits_atomically(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    w = RunWriter(dest)
    assert w.staging.parent == tmp_path and w.staging.name == ".run.partial"
    w.write_json("a.json", {"x": np.int64(3), "arr": np.arange(2)})
    w.write_text("sub/b.txt", "hello")
    w.write_bytes("scratch/big.bin", b"0" * 10)
    assert not dest.exists()
    w.commit({"k": 1})
    assert is_run_dir(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # staging renamed into place
    manifest = read_manifest(dest)
    assert set(manifest["files"]) == {"a.json", "sub/b.txt"}
    assert not (dest / "scratch").exists()
    assert json.loads((dest / "a.json").read_text()) == {"x": 3, "arr": [0, 1]}
    assert verify(dest, manifest) == []

    # a second run replaces the first in one step, leaving no old copy behind
    w2 = RunWriter(dest)
    w2.write_text("c.txt", "new")
    w2.commit({"k": 2})
    assert set(read_manifest(dest)["files"]) == {"c.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    w = RunWriter(tmp_path / "run")
    w.write_text("x.txt", "x")
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_check_destination(tmp_path: Path) -> None:
    check_destination(tmp_path / "new")  # absent: fine
    (tmp_path / "empty").mkdir()
    check_destination(tmp_path / "empty")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="exists and is not an mlsmith run"):
        check_destination(busy)
    with pytest.raises(RunDirError, match="exists and is not an mlsmith run"):
        RunWriter(busy)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        check_destination(tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty", "file"]


def test_failed_fit_leaves_no_staging_folder(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(40.0), "y": ["same"] * 40})
    parent = tmp_path / "runs"
    with pytest.raises(TargetError, match="single class"):
        mlsmith.fit(df, "y", time_limit=10, out=parent / "r", quiet=True, models=["linear"])
    assert list(parent.iterdir()) == []


def _fit_command(data: Path, out: Path, limit: int) -> list[str]:
    return [sys.executable, "-m", "mlsmith.cli", "fit", str(data), "--target", "species",
            "--out", str(out), "--time-limit", str(limit), "--quiet", "--models", "linear,lightgbm"]


@pytest.mark.parametrize("kill_after", [1.5, 4.0])
def test_sigkill_never_leaves_a_run_that_loads(tmp_path: Path, kill_after: float) -> None:
    """A fit killed with SIGKILL leaves either no run or a complete one, and the next fit to the
    same folder clears the dead fit's staging folder."""
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen(_fit_command(EXAMPLES / "penguins.csv", out, 30),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(kill_after)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if out.exists():  # the fit got as far as committing: the run must be whole
        mlsmith.load(out)
    else:
        with pytest.raises(RunDirError):
            mlsmith.load(out)
    # the next fit to the same folder succeeds and removes the dead fit's staging folder
    done = subprocess.run(_fit_command(EXAMPLES / "penguins.csv", out, 15), capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    mlsmith.load(out)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
