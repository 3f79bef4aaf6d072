"""Bad input, through the CLI and through the API.

CLI: exit code 2, exactly one non-empty line on stderr (``error: ...``), no traceback, and no run
directory or staging folder left beside the requested output. API: a specific exception class
from :mod:`mlsmith.errors` with the same message.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import EXAMPLES, leftovers, make_binary_frame, run_cli

import mlsmith
from mlsmith.errors import (
    ColumnNotFoundError,
    ConfigError,
    DataError,
    DataFileNotFoundError,
    MlsmithError,
    RunDirError,
    TargetError,
)
from mlsmith.preprocess import InputWarning


def assert_user_error(res, pattern: str) -> str:
    assert res.rc == 2, f"exit code {res.rc}, stderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr
    assert len(res.err_lines) == 1, f"expected one line on stderr, got:\n{res.stderr}"
    line = res.err_lines[0]
    assert line.startswith("error: ")
    assert re.search(pattern, line), f"{pattern!r} not in {line!r}"
    return line


# --- fit: data that cannot be used ----------------------------------------------------------------
def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.integers(0, 100, n).astype(float),
                         "c": rng.choice(["u", "v", "w"], n),
                         "y": np.where(x + rng.normal(scale=0.5, size=n) > 0, "yes", "no")})


def _write(df: pd.DataFrame) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        p = folder / "data.csv"
        df.to_csv(p, index=False)
        return p
    return build


def _raw(name: str, content: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(content)
        return p
    return build


def _with(**changes) -> pd.DataFrame:
    df = _frame()
    for col, (rows, value) in changes.items():
        if isinstance(value, str) and df[col].dtype != object:
            df = df.astype({col: object})
        df.loc[rows, col] = value
    return df


def _penguins(folder: Path) -> Path:
    return Path(EXAMPLES / "penguins.csv")


FIT_CASES = {
    # id: (build data, target, pattern of the message, exception class)
    "missing-file": (lambda d: d / "nope.csv", "y", r"data file not found: .*nope\.csv",
                     DataFileNotFoundError),
    "empty-file": (_raw("data.csv", b""), "y", r"data\.csv is empty", DataError),
    "random-bytes-csv": (_raw("data.csv", np.random.default_rng(0).bytes(3000)), "y",
                         r"is not a text table", DataError),
    "corrupt-parquet": (_raw("data.parquet", b"PAR1" + np.random.default_rng(1).bytes(500)),
                        "y", r"cannot read .*data\.parquet as Parquet", DataError),
    "target-not-found": (_penguins, "specie",
                         r"target column 'specie' not found\. Did you mean 'species'\?",
                         ColumnNotFoundError),
    "target-all-missing": (_write(_frame().assign(y=np.nan)), "y",
                           r"target column 'y' has no values", TargetError),
    "one-class": (_write(_frame().assign(y="yes")), "y", r"single class \('yes'\)", TargetError),
    "three-rows": (_raw("data.csv", b"x,y\n1,a\n2,b\n3,a\n"), "y",
                   r"only \d training rows: cross-validation", DataError),
    "duplicate-columns": (_raw("data.csv", b"a,a,b\n1,2,3\n4,5,6\n"), "b",
                          r"duplicate column names: 'a'", DataError),
    "infinite-value": (_write(_with(x=([5], np.inf))), "y",
                       r"column 'x' holds an infinite value at row 6", DataError),
    "stray-text-in-numbers": (_write(_with(z=([9], "oops"))), "y",
                              r"column 'z' is numeric but row 10 holds the text 'oops'", DataError),
}


@pytest.mark.parametrize("case", FIT_CASES)
def test_fit_cli(case: str, tmp_path: Path) -> None:
    build, target, pattern, _ = FIT_CASES[case]
    (tmp_path / "in").mkdir()
    data = build(tmp_path / "in")
    runs = tmp_path / "runs"
    res = run_cli("fit", data, "--target", target, "--out", runs / "r", "--time-limit", "10",
                  "--models", "linear", "--quiet", cwd=tmp_path)
    assert_user_error(res, pattern)
    assert leftovers(runs) == []
    assert sorted(p.name for p in tmp_path.iterdir()) in (["in"], ["in", "runs"])


@pytest.mark.parametrize("case", FIT_CASES)
def test_fit_api(case: str, tmp_path: Path) -> None:
    build, target, pattern, exc_type = FIT_CASES[case]
    (tmp_path / "in").mkdir()
    data = build(tmp_path / "in")
    runs = tmp_path / "runs"
    with pytest.raises(exc_type, match=pattern) as info:
        mlsmith.fit(data, target=target, out=runs / "r", time_limit=10, models=["linear"],
                    quiet=True)
    assert isinstance(info.value, MlsmithError)
    assert leftovers(runs) == []


def test_progress_lines_do_not_hide_the_error(tmp_path: Path) -> None:
    data = _write(_frame().assign(y="yes"))(tmp_path)
    res = run_cli("fit", data, "-t", "y", "--out", tmp_path / "r", "--time-limit", "10")
    assert res.rc == 2 and "Traceback" not in res.stderr
    errors = [line for line in res.err_lines if line.startswith("error: ")]
    assert len(errors) == 1 and "single class" in errors[0]
    assert res.err_lines[-1] == errors[0]
    assert all(re.match(r"\[\s*\d+\.\ds\] ", line) for line in res.err_lines[:-1])


def test_error_after_dropped_rows_names_the_file_row(tmp_path: Path) -> None:
    df = _with(z=([29], "oops"))
    df.loc[1, "y"] = np.nan
    with pytest.raises(DataError, match=r"row 30 holds the text 'oops'"):
        mlsmith.fit(df, "y", out=tmp_path / "r", time_limit=10, quiet=True, models=["linear"])
    # and the infinite-value check
    df = _with(x=([29], np.inf))
    df.loc[1, "y"] = np.nan
    with pytest.raises(DataError, match=r"infinite value at row 30"):
        mlsmith.fit(df, "y", out=tmp_path / "r", time_limit=10, quiet=True, models=["linear"])



# --- fit: options -----------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["0", "-5"])
def test_time_limit_not_positive_cli(limit: str, tmp_path: Path) -> None:
    data = _write(_frame())(tmp_path)
    res = run_cli("fit", data, "-t", "y", "--time-limit", limit, "--out", tmp_path / "r")
    assert_user_error(res, rf"--time-limit: must be a positive number of seconds, got '{limit}'")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("limit", [0, -5, float("nan")])
def test_time_limit_not_positive_api(limit: float, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--time-limit must be a positive number"):
        mlsmith.fit(_frame(), "y", time_limit=limit, out=tmp_path / "r", quiet=True)
    assert leftovers(tmp_path) == []


@pytest.fixture
def busy_folder(tmp_path: Path) -> Path:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("do not delete")
    return busy


def test_out_is_a_non_run_folder_cli(busy_folder: Path) -> None:
    data = _write(_frame())(busy_folder.parent)
    res = run_cli("fit", data, "-t", "y", "--out", busy_folder, "--time-limit", "10", "-q")
    assert_user_error(res, r"--out .*busy exists and is not an mlsmith run")
    assert [p.name for p in busy_folder.iterdir()] == ["thesis.txt"]
    assert sorted(p.name for p in busy_folder.parent.iterdir()) == ["busy", "data.csv"]


def test_out_is_a_non_run_folder_api(busy_folder: Path) -> None:
    with pytest.raises(RunDirError, match="exists and is not an mlsmith run"):
        mlsmith.fit(_frame(), "y", out=busy_folder, time_limit=10, quiet=True)
    assert (busy_folder / "thesis.txt").read_text() == "do not delete"
    assert sorted(p.name for p in busy_folder.parent.iterdir()) == ["busy"]


# --- fit: fixed with a warning ----------------------------------------------------------------------
def _missing_target_frame() -> pd.DataFrame:
    df = _frame()
    df.loc[[3, 7, 11], "y"] = np.nan
    return df


def test_missing_target_rows_are_dropped_with_a_warning_api(tmp_path: Path) -> None:
    events: list[tuple[str, dict]] = []
    run = mlsmith.fit(_missing_target_frame(), "y", out=tmp_path / "r", time_limit=12,
                      models=["linear"], progress=lambda e, d: events.append((e, d)))
    warnings = [d["message"] for e, d in events if e == "warning"]
    assert "3 rows with a missing target were dropped" in warnings
    assert "3 rows with a missing target were dropped" in run.metrics["notes"]
    assert run.metrics["rows"]["missing_target_dropped"] == 3
    assert run.metrics["rows"]["train"] + run.metrics["rows"]["test"] == 57
    assert run.metrics["test"]["roc_auc"] > 0.7


def test_missing_target_rows_are_dropped_with_a_warning_cli(tmp_path: Path) -> None:
    data = _write(_missing_target_frame())(tmp_path)
    res = run_cli("fit", data, "-t", "y", "--out", tmp_path / "r", "--time-limit", "12",
                  "--models", "linear")
    assert res.rc == 0, res.stderr
    assert re.search(r"warning: 3 rows with a missing target were dropped", res.stderr)
    assert mlsmith.load(tmp_path / "r").metrics["rows"]["missing_target_dropped"] == 3


def _mixed_frame() -> pd.DataFrame:
    df = _frame().astype({"z": object})
    df.loc[::2, "z"] = np.random.default_rng(3).choice(["a", "b", "c", "d", "e"], 30)
    return df


def test_column_mixing_numbers_and_text_is_categorical_api(tmp_path: Path) -> None:
    events: list[tuple[str, dict]] = []
    run = mlsmith.fit(_mixed_frame(), "y", out=tmp_path / "r", time_limit=12, models=["linear"],
                      progress=lambda e, d: events.append((e, d)))
    note = "column 'z' mixes numbers and text (50% numeric): treated as categorical"
    assert note in [d["message"] for e, d in events if e == "warning"]
    assert note in run.metrics["notes"]
    assert run.schema.column("z").role == "categorical"


def test_column_mixing_numbers_and_text_is_categorical_cli(tmp_path: Path) -> None:
    data = _write(_mixed_frame())(tmp_path)
    res = run_cli("fit", data, "-t", "y", "--out", tmp_path / "r", "--time-limit", "12",
                  "--models", "linear")
    assert res.rc == 0, res.stderr
    assert "warning: column 'z' mixes numbers and text" in res.stderr


# --- predict / evaluate ------------------------------------------------------------------------------
def _predict_rows(n: int = 20) -> pd.DataFrame:
    return make_binary_frame(n=n, seed=11).drop(columns=["label"])


def test_predict_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "stuff.txt").write_text("x")
    data = tmp_path / "rows.csv"
    _predict_rows().to_csv(data, index=False)
    assert_user_error(run_cli("predict", tmp_path, data), r"is not an mlsmith run directory")
    with pytest.raises(RunDirError, match="is not an mlsmith run directory"):
        mlsmith.load(tmp_path)


def test_predict_missing_data_file(binary_run, tmp_path: Path) -> None:
    assert_user_error(run_cli("predict", binary_run.path, tmp_path / "none.csv"),
                      r"data file not found")
    with pytest.raises(DataFileNotFoundError):
        binary_run.predict(tmp_path / "none.csv")


def test_predict_missing_column(binary_run, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    _predict_rows().drop(columns=["c"]).to_csv(data, index=False)
    assert_user_error(run_cli("predict", binary_run.path, data),
                      r"lacks column 'c' that the model needs")
    with pytest.raises(ColumnNotFoundError, match="lacks column 'c'"):
        binary_run.predict(pd.read_csv(data))


def test_predict_extra_columns_are_ignored_with_a_warning(binary_run, tmp_path: Path) -> None:
    rows = _predict_rows()
    data = tmp_path / "rows.csv"
    rows.assign(extra=1, note="hello").to_csv(data, index=False)
    res = run_cli("predict", binary_run.path, data)
    assert res.rc == 0, res.stderr
    assert res.err_lines == ["warning: the data has 2 column(s) the model does not use, "
                             "ignored: 'extra', 'note'"]
    got = pd.read_csv(io.StringIO(res.stdout))["prediction"].tolist()
    assert got == binary_run.predict(rows).tolist()
    with pytest.warns(InputWarning, match="'extra', 'note'"):
        binary_run.predict(rows.assign(extra=1, note="hello"))


def test_predict_unseen_category(binary_run, tmp_path: Path) -> None:
    rows = _predict_rows().assign(c="never-seen")
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    res = run_cli("predict", binary_run.path, data, "--proba")
    assert res.rc == 0, res.stderr
    got = pd.read_csv(io.StringIO(res.stdout))
    assert got.shape == (20, 2)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    assert set(binary_run.predict(rows)) <= {0, 1}


def test_predict_text_in_numeric_column(binary_run, tmp_path: Path) -> None:
    rows = _predict_rows().astype({"x": object})
    rows.loc[4, "x"] = "bad"
    rows.loc[8, "x"] = "worse"
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    pattern = r"column 'x' is numeric but row 5 of the data holds the text 'bad'"
    assert_user_error(run_cli("predict", binary_run.path, data), pattern)
    with pytest.raises(DataError, match=pattern):
        binary_run.predict(rows)


def test_evaluate_without_the_target(binary_run, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    _predict_rows().to_csv(data, index=False)
    assert_user_error(run_cli("evaluate", binary_run.path, data),
                      r"lacks the target column 'label'")
    with pytest.raises(ColumnNotFoundError, match="lacks the target column 'label'"):
        binary_run.evaluate(pd.read_csv(data))


def test_evaluate_with_an_unknown_label(binary_run) -> None:
    rows = make_binary_frame(n=10, seed=2)
    rows.loc[3, "label"] = 7
    with pytest.raises(DataError, match=r"holds the label 7 at row 4, never seen at fit"):
        binary_run.evaluate(rows)
