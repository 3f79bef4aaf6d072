"""The ``mlsmith`` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import EXAMPLES, make_binary_frame, run_cli

import mlsmith
from mlsmith.cli import build_parser

VERBS = ["fit", "predict", "evaluate", "info"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A penguins run fitted through the CLI."""
    out = tmp_path_factory.mktemp("cli") / "penguins"
    res = run_cli("fit", EXAMPLES / "penguins.csv", "--target", "species", "--time-limit", "15",
                  "--models", "linear,lightgbm", "--seed", "0", "--out", out, "--quiet")
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == str(out)
    assert res.err_lines == []
    return out


# --- fit / predict / evaluate / info -------------------------------------------------------------
def test_fit_writes_a_loadable_run(cli_run: Path) -> None:
    run = mlsmith.load(cli_run)
    assert run.task == "multiclass" and run.metric == "log_loss"
    assert run.config["models"] == ["linear", "lightgbm"] and run.config["seed"] == 0


def test_fit_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "bin"
    make_binary_frame().to_csv(tmp_path / "b.csv", index=False)
    res = run_cli("fit", tmp_path / "b.csv", "-t", "label", "--time-limit", "10", "--models",
                  "linear", "--out", out, "--no-ensemble", "--test-size", "0.25", "--folds", "3",
                  "--metric", "accuracy")
    assert res.rc == 0, res.stderr
    assert "Leaderboard (accuracy, 3-fold CV)" in res.stdout
    assert "Chosen: best single model linear_1" in res.stdout
    assert "Test set (30 rows, scored once)" in res.stdout
    assert f"Run directory: {out}" in res.stdout
    assert "stage: search" in res.stderr  # progress goes to stderr, off the data path


def test_predict_to_stdout(cli_run: Path, penguins_path: Path) -> None:
    res = run_cli("predict", cli_run, penguins_path)
    assert res.rc == 0, res.stderr
    assert res.stdout.splitlines()[0] == "prediction"
    got = pd.read_csv(io.StringIO(res.stdout))
    assert list(got.columns) == ["prediction"]
    want = mlsmith.load(cli_run).predict(pd.read_csv(penguins_path))
    assert got["prediction"].tolist() == want.tolist()


def test_predict_proba_headers_are_class_labels(cli_run: Path, penguins_path: Path) -> None:
    res = run_cli("predict", cli_run, penguins_path, "--proba")
    assert res.rc == 0, res.stderr
    assert res.stdout.splitlines()[0] == "Adelie,Chinstrap,Gentoo"
    got = pd.read_csv(io.StringIO(res.stdout))
    assert len(got) == 344
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)


def test_predict_proba_integer_labels_as_text(binary_run, tmp_path: Path) -> None:
    data = tmp_path / "new.csv"
    make_binary_frame(n=10, seed=5).drop(columns=["label"]).to_csv(data, index=False)
    res = run_cli("predict", binary_run.path, data, "--proba", "--out", tmp_path / "p.csv")
    assert res.rc == 0, res.stderr
    assert res.stdout == ""
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "0,1" and len(lines) == 11
    res = run_cli("predict", binary_run.path, data, "--proba", "--out", tmp_path / "p.parquet")
    assert res.rc == 0, res.stderr
    assert list(pd.read_parquet(tmp_path / "p.parquet").columns) == ["0", "1"]


def test_predict_parquet(cli_run: Path, penguins_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "pred.parquet"
    res = run_cli("predict", cli_run, penguins_path, "--out", out)
    assert res.rc == 0, res.stderr
    got = pd.read_parquet(out)
    assert list(got.columns) == ["prediction"] and len(got) == 344
    assert set(got["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert [p.name for p in out.parent.iterdir()] == ["pred.parquet"]  # no temp file left

    proba = tmp_path / "proba.parquet"
    assert run_cli("predict", cli_run, penguins_path, "--proba", "-o", proba).rc == 0
    assert list(pd.read_parquet(proba).columns) == ["Adelie", "Chinstrap", "Gentoo"]


def test_predict_reads_every_format(cli_run: Path, penguins_df: pd.DataFrame, tmp_path: Path) -> None:
    want = run_cli("predict", cli_run, EXAMPLES / "penguins.csv").stdout
    penguins_df.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    penguins_df.to_csv(tmp_path / "p.csv.gz", index=False, compression="gzip")
    penguins_df.to_parquet(tmp_path / "p.parquet", index=False)
    for name in ("p.tsv", "p.csv.gz", "p.parquet"):
        res = run_cli("predict", cli_run, tmp_path / name)
        assert res.rc == 0, res.stderr
        assert res.stdout == want, name


def test_predict_proba_on_regression_is_a_user_error(tips_run, tips_path: Path) -> None:
    res = run_cli("predict", tips_run.path, tips_path, "--proba")
    assert res.rc == 2
    assert res.err_lines == ["error: --proba applies to classification runs; this run is a "
                             "regression."]


def test_evaluate_json(cli_run: Path, penguins_path: Path) -> None:
    res = run_cli("evaluate", cli_run, penguins_path, "--json")
    assert res.rc == 0, res.stderr
    scores = json.loads(res.stdout)
    want = mlsmith.load(cli_run).evaluate(pd.read_csv(penguins_path))
    assert scores.keys() == want.keys()
    for k in want:
        assert scores[k] == pytest.approx(want[k])


def test_evaluate_table(cli_run: Path, penguins_path: Path) -> None:
    res = run_cli("evaluate", cli_run, penguins_path)
    assert res.rc == 0, res.stderr
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines()}
    assert rows["log_loss"][-1] == "*"  # the run's metric is marked
    assert float(rows["accuracy"][0]) > 0.9


def test_info(cli_run: Path) -> None:
    res = run_cli("info", cli_run)
    assert res.rc == 0, res.stderr
    for text in ("target 'species'", "task multiclass", "metric log_loss", "Leaderboard",
                 "Chosen model parameters", "Schema", "island"):
        assert text in res.stdout
    doc = json.loads(run_cli("info", cli_run, "--json").stdout)
    assert doc["target"] == "species" and doc["task"] == "multiclass"
    assert {row["model"] for row in doc["leaderboard"]} >= {"linear_1", "constant_baseline"}
    assert doc["schema"]["task"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]


# --- help, version, entry point, import cost ------------------------------------------------------
def _options(verb: str) -> list[str]:
    sub = next(a for a in build_parser()._subparsers._group_actions if a.choices)  # noqa: SLF001
    return [opt for action in sub.choices[verb]._actions for opt in action.option_strings]  # noqa: SLF001


@pytest.mark.parametrize("verb", VERBS)
def test_help_for_every_verb(verb: str) -> None:
    res = run_cli(verb, "--help")
    assert res.rc == 0
    assert res.stdout.startswith(f"usage: mlsmith {verb}")
    options = _options(verb)
    assert len(options) >= 3
    for opt in options:
        assert opt in res.stdout, f"{verb} --help does not mention {opt}"


def test_top_level_help_and_version() -> None:
    res = run_cli("--help")
    assert res.rc == 0
    for verb in VERBS:
        assert verb in res.stdout
    assert run_cli("--version").stdout.strip() == mlsmith.__version__
    bare = run_cli()
    assert bare.rc == 2 and "usage: mlsmith" in bare.stdout


def test_unknown_verb_and_missing_option() -> None:
    res = run_cli("fitt")
    assert res.rc == 2 and len(res.err_lines) == 1 and "invalid choice: 'fitt'" in res.stderr
    res = run_cli("fit", "x.csv")
    assert res.rc == 2 and res.err_lines == [
        "error: the following arguments are required: --target/-t (see 'mlsmith fit --help')"]


def test_installed_console_script() -> None:
    exe = shutil.which("mlsmith") or str(Path(sys.executable).parent / "mlsmith")
    assert os.access(exe, os.X_OK), "the mlsmith console script is not installed"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: mlsmith" in proc.stdout
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == mlsmith.__version__


def test_import_is_light() -> None:
    code = ("import sys, mlsmith, mlsmith.cli; mlsmith.cli.build_parser(); "
            "print(','.join(m for m in ('sklearn', 'lightgbm', 'xgboost', 'catboost', 'torch', "
            "'pandas', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"import mlsmith pulled in {proc.stdout.strip()}"
