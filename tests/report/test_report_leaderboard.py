"""A leaderboard of a long search stays compact: the best rows in view, every row behind "show
all", hyperparameters shortened with the whole set in a tooltip, a network's structure where
its family can describe it, and the bias/variance table cut the same way."""

from __future__ import annotations

import csv
import json
import re
from html import escape
from pathlib import Path
from typing import Any

import pytest

from mlsmith.report import render_report
from mlsmith.report._html import (
    MAX_BOARD_TOP,
    MAX_BV_TOP,
    parse_params,
    short_params,
    short_value,
)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj))


def section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.DOTALL)
    assert m, f"section {sid!r} missing"
    return m.group(1)


def table_rows(html: str, cls: str | None) -> list[str]:
    """The body rows of the first table whose class attribute ends with ``cls`` (``None``: the
    first table)."""
    start = r"<table>" if cls is None else rf'<table class="[^"]*\b{cls}">'
    m = re.search(start + r".*?<tbody>(.*?)</tbody>", html, re.DOTALL)
    assert m, f"no table {cls!r}"
    return re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.DOTALL)


def model_of(row: str) -> str:
    return re.search(r"<code>(.*?)</code>", row).group(1)


def read_board(run: Path) -> list[dict[str, str]]:
    with open(run / "leaderboard.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def long_html(long_search_run: Path) -> str:
    return render_report(long_search_run)


@pytest.fixture(scope="module")
def chosen(long_search_run: Path) -> list[dict[str, Any]]:
    """The long run's chosen members: the portfolio's best and a trial ranked below the top."""
    return json.loads((long_search_run / "metrics.json").read_text())["chosen"]["members"]


# --- the leaderboard ------------------------------------------------------------------------------
def test_long_leaderboard_lists_the_best_rows_and_hides_the_rest(long_html, long_search_run,
                                                                  chosen):
    members = [m["model"] for m in chosen]
    board = section(long_html, "leaderboard")
    rows = read_board(long_search_run)
    assert len(rows) == 150
    listed = [model_of(r) for r in table_rows(board, "leaderboard")]
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: float(r["cv_log_loss"]))
    best = [r["model"] for r in ok[:MAX_BOARD_TOP]]
    assert listed[:MAX_BOARD_TOP] == best  # the best first, in order
    pinned = {r["model"] for r in rows if r["origin"] in ("ensemble", "portfolio", "baseline")}
    assert set(listed) == set(best) | pinned | set(members)
    assert len(listed) < 40
    # the chosen trial ranks far below the top but stays in view, starred, with its true rank
    trial = next(r for r in table_rows(board, "leaderboard") if model_of(r) == members[1])
    rank = 1 + [r["model"] for r in ok].index(members[1])
    assert rank > MAX_BOARD_TOP and f'data-v="{float(rank)!r}"' in trial and "★" in trial
    # pruned and failed trials are counted above the table, not listed in it
    assert "Without a full CV score: 40 pruned, 3 failed" in board
    assert not any(m.startswith("lightgbm_trial") and int(m[14:]) < 43 for m in listed)


def test_show_all_holds_every_row_in_a_closed_details(long_html, long_search_run):
    board = section(long_html, "leaderboard")
    m = re.search(r"<details class=\"board-all\"><summary>(.*?)</summary>(.*?)</details>", board,
                  re.DOTALL)
    assert m, "no <details> with all the rows"
    summary, inside = m.groups()
    n_listed = len(table_rows(board, "leaderboard"))  # every listed row is a scored one
    assert summary == (f"Show all 150 rows ({150 - n_listed} more: {107 - n_listed} scored, "
                       f"40 pruned, 3 failed)")
    all_rows = [model_of(r) for r in table_rows(inside, "board-all")]
    ranked = [r["model"] for r in read_board(long_search_run)]
    assert sorted(all_rows) == sorted(ranked)
    # ranked like the short table; the pruned and failed rows last
    listed = [model_of(r) for r in table_rows(board, "leaderboard")]
    assert all_rows[:MAX_BOARD_TOP] == listed[:MAX_BOARD_TOP]
    assert all(int(m[14:]) < 43 for m in all_rows[-43:])
    assert "<details open" not in board


def test_long_hyperparameters_are_shortened_with_the_whole_set_in_a_tooltip(long_html,
                                                                            long_search_run,
                                                                            chosen):
    board = section(long_html, "leaderboard")
    rows = {r["model"]: r for r in read_board(long_search_run)}
    for tr in table_rows(board, "leaderboard"):
        model = model_of(tr)
        cell = re.search(r'<td class="params" title="([^"]*)">(.*?)</td>', tr, re.DOTALL)
        assert cell, model
        tip, text = cell.groups()
        assert "<br" not in tr and "\n" not in text
        raw = rows[model]["params"]
        if model.startswith("lightgbm"):
            params = json.loads(raw)
            # the whole set, exactly as the leaderboard holds it, is in the tooltip
            assert escape(json.dumps(params)) in tip
            assert len(text) < 120 and text.endswith("…")
            # the shaping keys first, numbers rounded
            lr = params["learning_rate"]
            assert text.startswith(f"learning_rate={lr:.3g} num_leaves={params['num_leaves']} ")
            assert repr(lr) not in text
    # the long floats are in the page (tooltips), never in the visible text
    lr = chosen[0]["params"]["learning_rate"]
    assert repr(lr) in long_html
    visible = re.sub(r'title="[^"]*"', "", board)
    assert repr(lr) not in visible


def test_the_ensemble_row_shows_its_weights(long_html, chosen):
    board = section(long_html, "leaderboard")
    row = next(r for r in table_rows(board, "leaderboard") if model_of(r) == "ensemble")
    assert f"0.6 {chosen[0]['model']} + 0.4 {chosen[1]['model']}" in row
    assert "greedy ensemble selection" in row  # the note, in the cell and its tooltip


def test_the_table_is_laid_out_to_fit(long_html):
    """One line per row and never wider than the content column: a fixed layout, a width of
    100%, cells that clip with an ellipsis, and a scrolling wrapper on narrow screens."""
    assert re.search(r'<div class="scroll"><table class="sortable board leaderboard">',
                     long_html)
    css = long_html.split("<style>")[1].split("</style>")[0]
    assert "table.board{width:100%;min-width:600px;table-layout:fixed}" in css
    assert "table.board td{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" in css
    assert ".scroll{overflow-x:auto;max-width:100%}" in css


def test_a_short_leaderboard_is_listed_whole(tmp_path):
    run = tmp_path / "short"
    run.mkdir()
    write_json(run / "config.json", {"target": "y", "task": "regression", "metric": "rmse"})
    with open(run / "leaderboard.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["model", "family", "origin", "status", "cv_rmse",
                                           "params", "note"])
        w.writeheader()
        for i in range(12):
            w.writerow({"model": f"linear_trial{i}", "family": "linear", "origin": "search:tpe",
                        "status": "ok" if i != 3 else "pruned",
                        "cv_rmse": 1 + 0.1 * i if i != 3 else "", "params": '{"alpha": 0.5}',
                        "note": ""})
    board = section(render_report(run), "leaderboard")
    assert "<details" not in board
    listed = [model_of(r) for r in table_rows(board, "leaderboard")]
    assert len(listed) == 12 and listed[-1] == "linear_trial3"  # the pruned row last
    assert "Without a full CV score: 1 pruned" in board
    assert "alpha=0.5" in board


# --- neural families describe their structure -----------------------------------------------------
NET = {"architecture": "resmlp", "depth": 3, "width": 256, "activation": "gelu", "norm": "layer",
       "dropout": 0.1, "lr": 0.0007123456789, "batch_size": 256, "weight_decay": 1.3e-05}


def _neural_run(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.mkdir()
    write_json(path / "config.json", {"target": "y", "task": "binary", "metric": "roc_auc"})
    write_json(path / "metrics.json", {
        "metric": "roc_auc", "greater_is_better": True,
        "chosen": {"description": "best single model neural_trial0",
                   "members": [{"model": "neural_trial0", "family": "neural", "params": NET,
                                "weight": 1.0}]}})
    with open(path / "leaderboard.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["model", "family", "origin", "status", "cv_roc_auc",
                                           "params"])
        w.writeheader()
        w.writerows(rows)
    return path


def test_neural_rows_show_their_structure(tmp_path):
    from mlsmith.models import get_family

    try:
        family = get_family("neural")
    except Exception as exc:  # torch missing
        pytest.skip(f"the neural family is not available: {exc}")
    describe = getattr(family, "describe", None)
    if describe is None:
        pytest.skip("this neural family has no describe()")
    other = {**NET, "architecture": "mlp", "depth": 2, "width": 128, "norm": "batch"}
    run = _neural_run(tmp_path / "nn", [
        {"model": "neural_trial0", "family": "neural", "origin": "search:tpe", "status": "ok",
         "cv_roc_auc": 0.91, "params": json.dumps(NET, sort_keys=True)},
        {"model": "neural_trial1", "family": "neural", "origin": "search:tpe", "status": "ok",
         "cv_roc_auc": 0.89, "params": json.dumps(other, sort_keys=True)},
        {"model": "linear_1", "family": "linear", "origin": "portfolio", "status": "ok",
         "cv_roc_auc": 0.85, "params": '{"C": 1.0}'}])
    html = render_report(run)
    board = section(html, "leaderboard")
    for model, params in (("neural_trial0", NET), ("neural_trial1", other)):
        row = next(r for r in table_rows(board, "leaderboard") if model_of(r) == model)
        text = re.search(r'<td class="params"[^>]*>(.*?)</td>', row).group(1)
        assert text == escape(describe(params))  # the structure instead of key=value pairs
        assert escape(json.dumps(params, sort_keys=True)) in row  # the whole set: tooltip
    assert "C=1" in board  # a family without describe() keeps its parameters
    # the chosen model's table names the structure too
    assert escape(describe(NET)) in section(html, "model")


def test_a_describe_that_fails_falls_back_to_the_parameters(tmp_path, monkeypatch):
    import mlsmith.models as models

    class Broken:
        def describe(self, params: dict[str, Any]) -> str:
            raise KeyError("depth")

    class Plain:  # no describe at all
        pass

    class Shaped:
        def describe(self, params: dict[str, Any]) -> str:
            return f"{params['k']} layers <wide>"

    families = {"neural": Broken(), "plain": Plain(), "shaped": Shaped()}

    def fake_get_family(name: str) -> Any:
        if name in families:
            return families[name]
        raise KeyError(name)

    monkeypatch.setattr(models, "get_family", fake_get_family)
    run = _neural_run(tmp_path / "nn", [
        {"model": "neural_trial0", "family": "neural", "origin": "search:tpe", "status": "ok",
         "cv_roc_auc": 0.91, "params": json.dumps(NET, sort_keys=True)},
        {"model": "plain_1", "family": "plain", "origin": "portfolio", "status": "ok",
         "cv_roc_auc": 0.8, "params": '{"k": 3}'},
        {"model": "shaped_1", "family": "shaped", "origin": "portfolio", "status": "ok",
         "cv_roc_auc": 0.7, "params": '{"k": 4}'}])
    html = render_report(run)
    board = section(html, "leaderboard")
    assert 'class="section-error"' not in html
    assert "architecture=resmlp lr=0.000712 depth=3 activation=gelu …" in board
    assert "k=3" in board
    assert "4 layers &lt;wide&gt;</td>" in board  # a working describe(), escaped


# --- shortening, unit by unit ---------------------------------------------------------------------
def test_short_values_and_params() -> None:
    assert short_value(0.12363586624615283) == "0.124"
    assert short_value(2.523028805190406e-06) == "2.52e-06"
    assert short_value(0.12363586624615283, 4) == "0.1236"
    assert short_value(1.0) == "1" and short_value(255) == "255"
    assert short_value(True) == "true" and short_value(None) == "null"
    assert short_value("x" * 40) == "x" * 23 + "…"
    assert short_params({}) == "defaults"
    assert short_params({"a": 1, "b": 2}) == "a=1 b=2"
    assert short_params({"z": 1, "y": 2, "x": 3, "w": 4, "learning_rate": 0.5}) \
        == "learning_rate=0.5 z=1 y=2 x=3 …"
    assert short_params(None) == ""


def test_parse_params_reads_json_and_python_dicts() -> None:
    assert parse_params('{"C": 1.0}') == {"C": 1.0}
    assert parse_params("{'a': 0.5, 'b': 0.5}") == {"a": 0.5, "b": 0.5}  # an ensemble's weights
    assert parse_params("") is None and parse_params(None) is None
    assert parse_params("not json {") == "not json {"
    assert parse_params("{__import__('os')}") == "{__import__('os')}"  # never evaluated


# --- the bias/variance table ----------------------------------------------------------------------
def test_bias_variance_lists_the_chosen_the_best_and_the_baseline(long_html, long_search_run,
                                                                   chosen):
    learning = section(long_html, "learning")
    ev = json.loads((long_search_run / "evaluation.json").read_text())
    models = ev["bias_variance"]["models"]
    first = learning.split("<details")[0]
    listed = [model_of(r) for r in table_rows(first, None)]
    best = [m["model"] for m in sorted(models, key=lambda m: m["validation"])[:MAX_BV_TOP]]
    assert listed[:MAX_BV_TOP] == best
    assert {m["model"] for m in chosen} <= set(listed) and "constant_baseline" in listed
    assert len(listed) <= MAX_BV_TOP + 3
    m = re.search(r"<details><summary>Show all (\d+) models</summary>(.*?)</details>", learning,
                  re.DOTALL)
    assert m and int(m.group(1)) == len(models)
    assert {model_of(r) for r in table_rows(m.group(2), "sortable")} \
        == {x["model"] for x in models}
    assert "Listed: the best 10 by validation score, the chosen model and the baseline." \
        in learning
