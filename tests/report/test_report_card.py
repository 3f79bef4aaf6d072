"""model_card.md: its sections, the run's numbers, its known limits, graceful gaps, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlsmith.errors import RunDirError
from mlsmith.report import NOT_RECORDED, render_model_card, write_model_card
from mlsmith.report._card import code, md
from mlsmith.report._io import fmt, fmt_score

SECTIONS = ["Intended use", "Data", "Model", "Metrics", "Audit findings", "Known limits",
            "How to use", "Versions"]


def part(card: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.M | re.S)
    assert m, f"section {title!r} missing"
    return m.group(1)


def load(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


@pytest.fixture(scope="module")
def cards(full_runs: dict[str, Path]) -> dict[str, str]:
    return {name: render_model_card(path) for name, path in full_runs.items()}


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_sections_in_order(cards, name) -> None:
    card = cards[name]
    heads = re.findall(r"^## (.+)$", card, re.M)
    assert heads == SECTIONS
    assert card.startswith("# Model card: ")
    assert NOT_RECORDED not in card  # every file is there


def test_intended_use_names_task_target_classes_and_inputs(cards, full_runs) -> None:
    use = part(cards["penguins"], "Intended use")
    schema = load(full_runs["penguins"], "schema.json")
    assert "multiclass classification of `species` into 3 classes" in use
    for c in schema["task"]["classes"]:
        assert f"`{c}`" in use
    for col in schema["columns"]:
        assert f"`{col['name']}` ({col['role']})" in use
    assert "--proba" in use
    tips = part(cards["tips"], "Intended use")
    assert "regression of `tip`" in tips and "--proba" not in tips


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_data_rows_source_and_split(cards, full_runs, name) -> None:
    data = part(cards[name], "Data")
    rows = load(full_runs[name], "metrics.json")["rows"]
    cfg = load(full_runs[name], "config.json")
    assert f"`{cfg['source']}`" in data
    assert f"{fmt(rows['loaded'])} loaded" in data
    assert "removed by the audit: 12 duplicates" in data
    assert (f"20% of the rows held out as a test set ({rows['test']} rows)" in data)
    assert f"{rows['train']} training rows with {rows['folds']}-fold cross-validation" in data


def test_class_distribution(cards, full_runs) -> None:
    data = part(cards["penguins"], "Data")
    counts = np.zeros(3, dtype=int)
    for name in ("oof_predictions.npz", "test_predictions.npz"):
        p = full_runs["penguins"] / name
        if p.is_file():
            with np.load(p) as d:
                counts += np.bincount(d["y"], minlength=3)
    classes = load(full_runs["penguins"], "schema.json")["task"]["classes"]
    for c, n in zip(classes, counts, strict=True):
        assert f"`{c}` {n:,} ({100 * n / counts.sum():.1f}%)" in data


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_model_members_and_hyperparameters(cards, full_runs, name) -> None:
    model = part(cards[name], "Model")
    chosen = load(full_runs[name], "metrics.json")["chosen"]
    assert md(chosen["description"]) in model
    for m in chosen["members"]:
        assert f"| `{m['model']}` | {md(m['family'])} |" in model
        for k, v in m["params"].items():
            assert f"`{k}={json.dumps(v)}`" in model
    assert "candidates (" in model


@pytest.mark.parametrize("name", ["penguins", "tips"])
def test_metrics_test_with_intervals_and_cv(cards, full_runs, name) -> None:
    metrics = part(cards[name], "Metrics")
    ev = load(full_runs[name], "evaluation.json")
    cv = load(full_runs[name], "metrics.json")["cv"]
    sel = ev["metric"]
    rows = [line for line in metrics.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1].startswith(f"| **{md(sel)}** (selection)")
    for k, m in ev["test"]["metrics"].items():
        line = next(r for r in rows if r.startswith(f"| {md(k)} ") or
                    r.startswith(f"| **{md(k)}**"))
        assert f"| {fmt_score(m['value'])} | {fmt_score(m['low'])} to {fmt_score(m['high'])} |" \
            in line
        if k in cv:
            assert line.endswith(f"| {fmt_score(cv[k])} |")
    summary = cards[name].split("## Intended use")[0]
    m = ev["test"]["metrics"][sel]
    assert f"**{fmt_score(m['value'])}**" in summary


def test_audit_findings_that_matter(cards) -> None:
    audit = part(cards["penguins"], "Audit findings")
    assert "- **error** `target_leakage`: Column 'island' restates the target (not fixed). " \
           "Fix: drop it with --drop island, or --allow target\\_leakage." in audit
    assert "- **warning** `missing_values`" in audit and "(fix applied)" in audit
    assert "duplicate" not in audit.split("\n\n")[0]  # info findings are only counted
    assert "1 informational note more" in audit


def test_known_limits(cards, full_runs) -> None:
    limits = part(cards["penguins"], "Known limits")
    n_test = load(full_runs["penguins"], "metrics.json")["rows"]["test"]
    assert f"Small test set ({n_test} rows)" in limits
    assert "`row_id` (audit)" in limits
    assert "Bias/variance verdict: **overfitting**" in limits
    assert "1 audit finding of severity error or warning not fixed" in limits
    tips = part(cards["tips"], "Known limits")
    assert "Not evaluated: shap (shap is not installed)." in tips


def test_limits_for_shift_imbalance_and_no_test_set(big_run, copy_of) -> None:
    run = copy_of(big_run)
    ev = load(run, "evaluation.json")
    ev["cv_vs_test"][0].update(cv=0.95, agree=False)
    (run / "evaluation.json").write_text(json.dumps(ev))
    y = np.zeros(40_000, dtype=np.int64)
    y[:1000] = 1
    np.savez_compressed(run / "oof_predictions.npz", y=y)
    (run / "test_predictions.npz").unlink()
    limits = part(render_model_card(run), "Known limits")
    assert "CV and test disagree on roc\\_auc (CV 0.9500, test 0.9050" in limits
    assert "distribution shift" in limits
    assert "Imbalanced classes (largest to smallest 39.0 to 1)" in limits
    cfg = load(run, "config.json")
    cfg["test_size"] = 0
    (run / "config.json").write_text(json.dumps(cfg))
    assert "No test set was held out" in part(render_model_card(run), "Known limits")


def test_how_to_use_points_at_the_run(cards, full_runs) -> None:
    use = part(cards["penguins"], "How to use")
    out = load(full_runs["penguins"], "config.json")["out"]
    assert f"mlsmith predict {out} new_rows.csv --out predictions.csv" in use
    assert f'run = mlsmith.load("{out}")' in use
    assert "run.predict_proba(df)" in use
    assert "predict_proba" not in part(cards["tips"], "How to use")


def test_versions(cards) -> None:
    versions = part(cards["penguins"], "Versions")
    from mlsmith import __version__

    assert f"mlsmith {__version__}" in versions and "scikit-learn" in versions
    assert "time limit 15.0 s" in versions


def test_missing_files_say_not_recorded(full_runs, copy_of) -> None:
    run = copy_of(full_runs["tips"])
    for name in ("audit.json", "evaluation.json", "leaderboard.csv", "manifest.json",
                 "oof_predictions.npz", "test_predictions.npz"):
        (run / name).unlink(missing_ok=True)
    card = render_model_card(run)
    assert re.findall(r"^## (.+)$", card, re.M) == SECTIONS
    assert f"The data audit: {NOT_RECORDED} (no audit.json)." in card
    assert f"Intervals: {NOT_RECORDED} (no evaluation.json)." in card
    test_rmse = load(run, "metrics.json")["test"]["rmse"]
    assert fmt_score(test_rmse) in part(card, "Metrics")
    assert "scikit-learn" in part(card, "Versions")  # a staging folder: today's versions


def test_hostile_names_stay_inside_code_spans(big_run, hostile) -> None:
    name, label = hostile
    card = render_model_card(big_run)
    outside = re.sub(r"(`+)(.*?)\1", "", card)  # drop code spans
    outside = re.sub(r"```.*?```", "", outside, flags=re.S)
    assert "<script>" not in outside and "<i>" not in outside
    assert f"`{name}`" in card and f"`{label}`" in card
    assert "\\<script\\>alert(1)\\</script\\>" in card  # free text is escaped


def test_markdown_helpers() -> None:
    assert md("a|b <c> *d*") == "a\\|b \\<c\\> \\*d\\*"
    assert code("x`y") == "``x`y``"
    assert code("a|b", table=True) == "`a\\|b`"
    assert code("`edge`") == "`` `edge` ``"


def test_write_model_card(full_runs, copy_of, tmp_path) -> None:
    run = copy_of(full_runs["penguins"])
    path = write_model_card(run)
    assert path == run / "model_card.md"
    assert path.read_text() == render_model_card(run)
    assert write_model_card(run, tmp_path / "card.md").is_file()
    with pytest.raises(RunDirError):
        render_model_card(tmp_path / "nothing-here")
