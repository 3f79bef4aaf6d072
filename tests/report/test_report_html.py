"""The HTML report: every section from a real run, graceful gaps, escaping, no external
resources, size guards."""

from __future__ import annotations

import json
import re
import shutil
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsmith.errors import RunDirError
from mlsmith.report import NOT_RECORDED, render_report, write_report
from mlsmith.report._html import SECTIONS, short_value
from mlsmith.report._io import fmt, fmt_score, origin_kind, origin_label, trailing_int


def section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.DOTALL)
    assert m, f"section {sid!r} missing"
    return m.group(1)


def load(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


@pytest.fixture(scope="module")
def reports(full_runs: dict[str, Path], big_run: Path) -> dict[str, str]:
    out = {name: render_report(path) for name, path in full_runs.items()}
    out["big"] = render_report(big_run)
    return out


# --- every section, with the run's own numbers ----------------------------------------------------
@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_every_section_is_present_and_drawn(reports: dict[str, str], name: str) -> None:
    html = reports[name]
    assert html.startswith("<!DOCTYPE html>")
    for sid, title in SECTIONS:
        body = section(html, sid)
        assert f"<h2>{title}</h2>" in html
        assert 'class="section-error"' not in body, (sid, body[:500])
        assert f'href="#{sid}"' in html  # the table of contents links it


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_data_section_shows_rows_columns_and_roles(reports, full_runs, name) -> None:
    data = section(reports[name], "data")
    run = full_runs[name]
    metrics, schema = load(run, "metrics.json"), load(run, "schema.json")
    assert f"<td>{fmt(metrics['rows']['loaded'])}</td>" in data
    assert f"{metrics['rows']['train']:,} / {metrics['rows']['test']:,}" in data
    for col in schema["columns"]:
        assert f"<code>{col['name']}</code>" in data
        assert f"<td>{col['role']}</td>" in data
    assert "12 duplicates" in data  # rows removed by the audit
    assert "<svg" in data  # target distribution


def test_target_distribution_counts_the_classes(reports, full_runs) -> None:
    data = section(reports["penguins"], "data")
    with np.load(full_runs["penguins"] / "oof_predictions.npz") as d:
        counts = np.bincount(d["y"], minlength=3)
    classes = load(full_runs["penguins"], "schema.json")["task"]["classes"]
    for c, n in zip(classes, counts, strict=True):
        assert re.search(rf"<code>{c}</code></td>.*?data-v=\"{float(n)!r}\"", data)


def test_regression_target_distribution_has_statistics(reports, full_runs) -> None:
    data = section(reports["tips"], "data")
    with np.load(full_runs["tips"] / "oof_predictions.npz") as d:
        y = d["y"]
    assert f"<td>{fmt(float(y.max()))}</td>" in data
    assert "Distribution of tip" in data


def test_audit_findings_are_coloured_with_evidence_and_fix(reports, full_runs) -> None:
    audit_html = section(reports["penguins"], "audit")
    audit = load(full_runs["penguins"], "audit.json")
    assert "3 findings in 420 ms: 1 error, 1 warning, 1 note." in audit_html
    positions = []
    for f in audit["findings"]:
        assert f'class="finding sev-{f["severity"]}"' in audit_html
        title = f["title"].replace("'", "&#x27;")
        assert title in audit_html
        assert f"Fix: {f['fix']}" in audit_html
        positions.append(audit_html.index(title))
    assert positions == sorted(positions)  # error, then warning, then info
    assert "0.9996" in audit_html and "rows_checked" in audit_html
    assert audit_html.count("fix applied") == 2
    assert "<code>row_id</code>" in audit_html


@pytest.mark.parametrize("name,scheme", [("penguins", "stratified by class"),
                                         ("tips", "shuffled (random)")])
def test_split_section(reports, full_runs, name, scheme) -> None:
    split = section(reports[name], "split")
    rows = load(full_runs[name], "metrics.json")["rows"]
    assert f"20.0% of the rows held out ({rows['test']} rows)" in split
    assert f"{rows['folds']} folds, {scheme}" in split


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_leaderboard_lists_every_candidate_best_first(reports, full_runs, name) -> None:
    board_html = section(reports[name], "leaderboard")
    board = pd.read_csv(full_runs[name] / "leaderboard.csv")
    metric = load(full_runs[name], "metrics.json")["metric"]
    for model in board["model"]:
        assert f"<code>{model}</code>" in board_html
    for origin in board["origin"].unique():
        assert f'title="{origin_label(origin)}"' in board_html
    # the listed table is ranked: scores only get worse down the rows (ties in any order)
    listed = re.search(r'<table class="sortable board leaderboard">.*?</table>', board_html,
                       re.DOTALL).group(0)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", listed, re.DOTALL)[1:]
    order = [re.search(r"<code>(.*?)</code>", r).group(1) for r in rows]
    cv_cells = [re.findall(r"<td[^>]*>", r)[3] for r in rows]  # #, model, origin, CV
    scores = [float(re.search(r'data-v="([^"]*)"', c).group(1)) for c, r in zip(
        cv_cells, rows, strict=True) if 'data-v=""' not in c and "b-muted" not in r]
    assert scores == sorted(scores)  # losses: lower first
    assert f"CV {metric}" in board_html
    best = board.loc[board["status"] == "ok", f"cv_{metric}"].min()
    assert scores[0] == pytest.approx(best, rel=1e-12)
    assert order[0] in set(board.loc[board[f"cv_{metric}"] == best, "model"])
    assert fmt_score(best) in board_html
    assert "★" in board_html


def test_origin_kinds() -> None:
    assert origin_kind("portfolio") == "portfolio"
    assert origin_kind("search") == "search trial"
    assert origin_kind("optuna_trial") == "search trial"
    assert origin_kind("ensemble") == "ensemble"
    assert origin_kind(None) == "—"
    assert origin_label("search:random") == "search trial (random)"
    assert origin_label("initial") == "search trial (initial)"


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_chosen_model_and_hyperparameters(reports, full_runs, name) -> None:
    model = section(reports[name], "model")
    chosen = load(full_runs[name], "metrics.json")["chosen"]
    assert chosen["description"] in model
    for m in chosen["members"]:
        assert f"<code>{m['model']}</code>" in model
        for k, v in m["params"].items():
            exact = json.dumps(v)
            if isinstance(v, float) and short_value(v, 4) != exact:
                # rounded to four digits, the exact value in the tooltip
                assert f'<code title="{escape(exact)}">{k}={short_value(v, 4)}</code>' in model
            else:
                assert f"<code>{k}={escape(exact)}</code>" in model
    assert fmt_score(chosen["cv_score"]) in model


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_test_metrics_with_intervals(reports, full_runs, name) -> None:
    test = section(reports[name], "test")
    ev = load(full_runs[name], "evaluation.json")
    metric = ev["metric"]
    for k, m in ev["test"]["metrics"].items():
        row = re.search(rf"<tr><td>(<b>)?{k}(</b> \(selection\))?</td>(.*?)</tr>", test)
        assert row, k
        assert fmt_score(m["value"]) in row.group(3)
        assert f"{fmt_score(m['low'])} to {fmt_score(m['high'])}" in row.group(3)
    assert f"<b>{metric}</b> (selection)" in test
    assert test.index(f"<b>{metric}</b>") < test.index("direction</th>") + 400  # listed first
    assert "Cross-validation against test" in test and "agree" in test
    header = section(reports[name], "split")
    assert header  # the header cards sit outside sections
    assert f"Test {metric}" in reports[name].split('<section id="data">')[0]


def test_per_class_and_confusion_matrix(reports, full_runs) -> None:
    ev = load(full_runs["penguins"], "evaluation.json")
    test = section(reports["penguins"], "test")
    for p in ev["test"]["per_class"]:
        assert f"<code>{p['class']}</code>" in test
    diag = section(reports["penguins"], "diagnostics")
    cm = ev["test"]["confusion_matrix"]
    cells = re.findall(r'<td style="background:[^"]*">([\d,]+)<small>', diag)
    assert [int(c.replace(",", "")) for c in cells] == [v for row in cm for v in row]


def test_classification_curves_per_class(reports, full_runs) -> None:
    diag = section(reports["penguins"], "diagnostics")
    ev = load(full_runs["penguins"], "evaluation.json")
    assert diag.count("<svg") == 3  # ROC, PR, calibration
    for c in ev["curves"]["roc"]:
        assert f"{c['label']} (AUC {c['auc']:.3f})" in diag
    for c in ev["curves"]["pr"]:
        assert f"{c['label']} (AP {c['ap']:.3f})" in diag
    assert "Calibration (test set)" in diag


def test_regression_residual_plots(reports) -> None:
    diag = section(reports["tips"], "diagnostics")
    assert '<img src="data:image/png;base64,' in diag
    assert "49 test rows drawn" in diag or "test rows drawn" in diag
    assert "ROC" not in diag


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_learning_curve_and_verdict(reports, full_runs, name) -> None:
    learning = section(reports[name], "learning")
    bv = load(full_runs[name], "evaluation.json")["bias_variance"]
    assert f'<span class="badge b-warning">{bv["verdict"]}</span>' in learning
    assert bv["reason"] in learning
    for m in bv["models"]:
        assert f"<code>{m['model']}</code>" in learning
    assert "Learning curve (" in learning and "<svg" in learning


def test_importance_permutation_and_shap(reports, full_runs) -> None:
    imp = section(reports["penguins"], "importance")
    ev = load(full_runs["penguins"], "evaluation.json")
    assert imp.count("<svg") == 2
    for f in ev["importance"]["features"]:
        assert f"<code>{f['feature']}</code>" in imp
    assert "mean |SHAP value|" in imp
    tips = section(reports["tips"], "importance")
    assert tips.count("<svg") == 1
    assert f"SHAP values: {NOT_RECORDED} (shap is not installed)." in tips


@pytest.mark.parametrize("name,colour_by", [("penguins", "the class"),
                                            ("tips", "the target value")])
def test_projection(reports, full_runs, name, colour_by) -> None:
    proj = section(reports[name], "projection")
    n = len(load(full_runs[name], "evaluation.json")["projection"]["x"])
    assert '<img src="data:image/png;base64,' in proj
    assert f"{n} rows drawn, coloured by {colour_by}" in proj


def test_search_history(reports, full_runs, copy_of) -> None:
    without_search = copy_of(full_runs["tips"])  # the fit may have searched: drop its trials
    tips_board = pd.read_csv(without_search / "leaderboard.csv")
    tips_board = tips_board[tips_board["origin"].map(origin_kind) != "search trial"]
    tips_board.to_csv(without_search / "leaderboard.csv", index=False)
    search = section(reports["penguins"], "search")
    board = pd.read_csv(full_runs["penguins"] / "leaderboard.csv")
    trials = board[board["origin"] == "search:tpe"]
    best = trials.loc[trials["cv_log_loss"].idxmin()]
    assert f"{len(trials)} search trials" in search
    # the fit's own trials (if it searched) have no trial column: their name's number
    number = int(best["trial"]) if pd.notna(best["trial"]) else trailing_int(best["model"])
    assert f"<code>{best['model']}</code> (trial {number})" in search
    assert f"scored {fmt_score(best['cv_log_loss'])}" in search
    unfinished = trials["status"] != "ok"
    assert f"{unfinished.sum()} did not finish (" in search
    assert f"{(trials['status'] == 'pruned').sum()} pruned" in search
    assert "<svg" in search and "seconds since the search started" in search
    assert "search (tpe)" in section(reports["penguins"], "leaderboard")
    assert "No search in this run" in section(render_report(without_search), "search")
    big = section(reports["big"], "search")  # numeric finished_s; 3000 trials drawn as PNG
    assert "3000 search trials" in big and "data:image/png" in big


def test_notes_and_timings(reports, full_runs) -> None:
    notes = section(reports["penguins"], "notes")
    timings = load(full_runs["penguins"], "metrics.json")["timings_s"]
    for stage in timings:
        assert f"<td>{stage}</td>" in notes
    assert "time limit 15.0 s" in notes


# --- graceful gaps --------------------------------------------------------------------------------
def test_missing_optional_files_say_not_recorded(full_runs, copy_of) -> None:
    run = copy_of(full_runs["penguins"])
    for name in ("audit.json", "evaluation.json", "leaderboard.csv", "oof_predictions.npz",
                 "test_predictions.npz", "manifest.json"):
        (run / name).unlink(missing_ok=True)
    html = render_report(run)
    for sid in ("audit", "leaderboard", "diagnostics", "learning", "importance", "projection",
                "search"):
        body = section(html, sid)
        assert NOT_RECORDED in body, sid
        assert "section-error" not in body
    assert "(no audit.json)" in section(html, "audit")
    assert "(no evaluation.json)" in section(html, "diagnostics")
    assert "Intervals: not recorded in this run" in section(html, "test")
    # the point values from metrics.json still show
    test_value = load(run, "metrics.json")["test"]["log_loss"]
    assert fmt_score(test_value) in section(html, "test")
    # no manifest (a staging folder): the versions are today's, which are the fit's
    assert "scikit-learn" in html.split("<footer>")[1]


def test_only_config_is_enough(tmp_path, full_runs) -> None:
    run = tmp_path / "bare"
    run.mkdir()
    shutil.copy(full_runs["tips"] / "config.json", run / "config.json")
    html = render_report(run)
    for sid, _ in SECTIONS:
        assert "section-error" not in section(html, sid), sid
    assert "Report: predicting tip" in html
    assert f"Column roles: {NOT_RECORDED}" in section(html, "data")


def test_partial_and_odd_evaluation(full_runs, copy_of) -> None:
    run = copy_of(full_runs["penguins"])
    ev = load(run, "evaluation.json")
    ev["curves"] = {"roc": ev["curves"]["roc"], "calibration": "oops"}
    ev["importance"] = [1, 2, 3]
    del ev["learning_curve"], ev["projection"]
    ev["skipped"] = {"learning_curve": "no time left (1.2 s)", "pr": "too few positives"}
    (run / "evaluation.json").write_text(json.dumps(ev))
    html = render_report(run)
    assert "The learning curve: not recorded in this run (no time left (1.2 s))." in html
    assert "Precision-recall curves: not recorded in this run (too few positives)." in html
    assert "Calibration curve: not recorded in this run" in html
    assert f"The 2-D view: {NOT_RECORDED}" in html
    assert f"Permutation importance: {NOT_RECORDED}" in html
    assert section(html, "diagnostics").count("<svg") == 1


def test_corrupt_audit_is_reported_not_raised(full_runs, copy_of) -> None:
    run = copy_of(full_runs["penguins"])
    (run / "audit.json").write_text("{not json")
    html = render_report(run)
    assert "audit.json could not be read: JSONDecodeError" in section(html, "audit")


def test_a_failing_section_does_not_cost_the_report(full_runs, copy_of, monkeypatch) -> None:
    import mlsmith.report._html as h

    def boom(ctx):
        raise ValueError("odd file")

    monkeypatch.setitem(h._BUILDERS, "learning", boom)
    html = render_report(full_runs["penguins"])
    assert "This section could not be drawn: ValueError: odd file." in section(html, "learning")
    assert "<svg" in section(html, "importance")


def test_without_matplotlib_the_tables_remain(full_runs, monkeypatch) -> None:
    import mlsmith.report._plots as p

    monkeypatch.setattr(p, "available", lambda: False)
    html = render_report(full_runs["penguins"])
    assert "<svg" not in html and "data:image/png" not in html
    assert "Plots need matplotlib" in section(html, "diagnostics")
    assert "<table" in section(html, "leaderboard")


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_not_a_run_directory(tmp_path, kind) -> None:
    path = tmp_path / "x"
    if kind == "file":
        path.write_text("hello")
    elif kind == "empty":
        path.mkdir()
    with pytest.raises(RunDirError) as err:
        render_report(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --- writing --------------------------------------------------------------------------------------
def test_write_report_default_and_out(full_runs, copy_of, tmp_path) -> None:
    run = copy_of(full_runs["tips"])
    path = write_report(run)
    assert path == run / "report.html"
    assert path.read_text() == render_report(run)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp file left
    other = write_report(run, tmp_path / "elsewhere.html")
    assert other.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(RunDirError, match="does not exist"):
        write_report(run, tmp_path / "no" / "such" / "r.html")


# --- safety ---------------------------------------------------------------------------------------
def test_strings_from_the_data_are_escaped(reports, hostile) -> None:
    HOSTILE, HOSTILE_CLASS = hostile
    html = reports["big"]
    assert HOSTILE not in html
    assert HOSTILE_CLASS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;i&gt;yes&lt;/i&gt;" in html  # class label: tables and SVG legends
    assert html.count("<script>") == 1  # the report's own sort script only
    assert "cost $ per $ unit" in html  # a dollar sign is text, not mathtext


_EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.mark.parametrize("name", ["penguins", "tips", "big"])
def test_no_external_resources(reports, name) -> None:
    html = reports[name]
    assert not _EXTERNAL.search(html)
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(http" not in html
    assert not re.search(r"<script[^>]+src", html, re.I)
    assert "@font-face" not in html


def test_a_50000_row_run_stays_small(reports) -> None:
    html = reports["big"]
    assert len(html.encode()) < 5_000_000
    # curves of 50,000 points are thinned: no SVG path holds more than a few hundred vertices
    longest = max(len(re.findall(r"[ML] ?-?[\d.]+", d)) for d in re.findall(r' d="([^"]+)"', html))
    assert longest <= 2 * 400 + 10
    assert "Showing the first 500 of 3001 rows" in html
    assert "2,000 rows drawn" in section(html, "projection")


def test_garbled_files_never_break_the_report(full_runs, copy_of) -> None:
    """Values of the wrong type anywhere in the JSON files: every section still draws."""
    import random

    from mlsmith.report import render_model_card

    run = copy_of(full_runs["penguins"])
    names = ("evaluation.json", "audit.json", "metrics.json", "config.json", "schema.json")
    docs = {n: load(run, n) for n in names}
    garbage = [None, 1, "x", [], {}, [1, "a", None], {"a": [1, 2]}, True, -1.5]
    rng = random.Random(0)

    def garble(o, p):
        if isinstance(o, dict):
            return {k: rng.choice(garbage) if rng.random() < p else garble(v, p)
                    for k, v in o.items()}
        if isinstance(o, list):
            return [rng.choice(garbage) if rng.random() < p else garble(v, p) for v in o[:4]]
        return o

    for p in (0.05, 0.15, 0.3, 0.5):
        for n, doc in docs.items():
            (run / n).write_text(json.dumps(garble(doc, p)))
        html = render_report(run)
        assert 'class="section-error"' not in html
        assert "could not be written" not in render_model_card(run)
