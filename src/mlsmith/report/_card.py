"""``model_card.md``: what the model is for, what it was trained on, how good it is, its limits.

Built from the same files as the HTML report (:mod:`mlsmith.report._io`); a missing file makes its
part say "not recorded in this run". Identifiers from the data (column names, class labels, model
ids) are written as code spans and free text is backslash-escaped, so a hostile column name
renders as text in any Markdown viewer.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from mlsmith.report._io import (
    NOT_RECORDED,
    RunFiles,
    atomic_write_text,
    fmt,
    fmt_score,
    fmt_seconds,
    is_number,
    origin_kind,
    plural,
    read_run,
    run_versions,
)

__all__ = ["render_model_card", "write_model_card"]

log = logging.getLogger("mlsmith")

_MD_SPECIAL = set("\\`*_[]<>|&~")
SMALL_TEST = 100
IMBALANCE_RATIO = 5.0
MAX_LISTED = 30


def md(text: Any, limit: int = 300) -> str:
    """Free text escaped for Markdown (on one line)."""
    s = " ".join(str(text if text is not None else "").split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)


def code(text: Any, table: bool = False, limit: int = 120) -> str:
    """An identifier as a code span, whatever backticks it holds."""
    s = " ".join(str(text if text is not None else "").split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    run = longest = 0
    for ch in s:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    if table:
        s = s.replace("|", "\\|")
    return f"{fence}{pad}{s}{pad}{fence}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _interval(m: dict[str, Any]) -> str:
    lo, hi = m.get("low"), m.get("high")
    return f"{fmt_score(lo)} to {fmt_score(hi)}" if is_number(lo) and is_number(hi) else "—"


def _class_counts(files: RunFiles) -> list[int] | None:
    import numpy as np

    k = len(files.classes)
    if not k or files.task not in ("binary", "multiclass"):
        return None
    total = np.zeros(k, dtype=np.int64)
    seen = False
    for y in (files.target_counts or {}).values():
        y = np.asarray(y)
        if y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.all(y == np.round(y))):
            yi = y.astype(np.int64)
            total += np.bincount(yi[(yi >= 0) & (yi < k)], minlength=k)
            seen = True
    if not seen:
        per_class = ((files.evaluation or {}).get("test") or {}).get("per_class") or []
        by = {str(p.get("class")): p.get("support") for p in per_class if isinstance(p, dict)}
        if by and all(is_number(by.get(str(c))) for c in files.classes):
            return [int(by[str(c)]) for c in files.classes]
        return None
    return total.tolist()


# --- sections -------------------------------------------------------------------------------------
def _summary(f: RunFiles) -> list[str]:
    met = f.metrics or {}
    chosen = (met.get("chosen") or {}).get("description")
    metric = f.metric
    lines = []
    what = {"binary": "A binary classifier", "multiclass": "A multiclass classifier",
            "regression": "A regression model"}.get(f.task or "", "A model")
    lines.append(f"{what} of {code(f.target)}, fitted by mlsmith"
                 + (f": {md(chosen)}." if chosen else "."))
    test = ((f.evaluation or {}).get("test") or {}).get("metrics") or {}
    if metric and isinstance(test.get(metric), dict) and is_number(test[metric].get("value")):
        m = test[metric]
        ci = test_ci(f)
        lines.append(f"Test {md(metric)}: **{fmt_score(m['value'])}** ({ci} interval "
                     f"{_interval(m)}).")
    elif metric and is_number((met.get("test") or {}).get(metric)):
        lines.append(f"Test {md(metric)}: **{fmt_score(met['test'][metric])}** (no interval "
                     f"recorded).")
    return ["\n".join(lines)]


def test_ci(f: RunFiles) -> str:
    ci = ((f.evaluation or {}).get("test") or {}).get("ci", 0.95)
    return f"{100 * float(ci):.0f}%" if is_number(ci) else "95%"


def _intended_use(f: RunFiles) -> list[str]:
    out = ["## Intended use", ""]
    schema = f.schema or {}
    classes = f.classes
    if f.task in ("binary", "multiclass"):
        shown = ", ".join(code(c) for c in classes[:MAX_LISTED])
        more = f" and {len(classes) - MAX_LISTED} more" if len(classes) > MAX_LISTED else ""
        out.append(f"- **Task:** {md(f.task)} classification of {code(f.target)} into "
                   f"{plural(len(classes), 'class', 'classes')}: {shown}{more}.")
        out.append("- **Predicts:** for each row, the most likely class "
                   "(`mlsmith predict`) and a probability for every class (`--proba`).")
    elif f.task == "regression":
        out.append(f"- **Task:** regression of {code(f.target)}.")
        out.append(f"- **Predicts:** for each row, a number in the units of {code(f.target)}.")
    else:
        out.append(f"- **Task:** {NOT_RECORDED}.")
    cols = [c for c in schema.get("columns") or [] if isinstance(c, dict)]
    used = [c for c in cols if c.get("role") in ("numeric", "categorical", "datetime")]
    if used:
        shown = ", ".join(f"{code(c.get('name'))} ({md(c.get('role'))})" for c in used[:MAX_LISTED])
        more = f", and {len(used) - MAX_LISTED} more" if len(used) > MAX_LISTED else ""
        out.append(f"- **Inputs:** {plural(len(used), 'column')}: {shown}{more}. Other columns "
                   f"are ignored; a missing input column is an error.")
    source = (f.config or {}).get("source")
    src = f" ({code(source)})" if source else ""
    out.append(f"- **Intended for:** rows drawn the way the training table{src} was. The model "
               f"was not validated on any other population or period.")
    return out


def _data(f: RunFiles) -> list[str]:
    out = ["## Data", ""]
    cfg, met, audit, schema = f.config or {}, f.metrics or {}, f.audit or {}, f.schema or {}
    rows = met.get("rows") or {}
    if cfg.get("source"):
        out.append(f"- **Source:** {code(cfg['source'])}")
    loaded = rows.get("loaded", audit.get("n_rows"))
    parts = [f"{fmt(loaded)} loaded"]
    if is_number(rows.get("missing_target_dropped")) and rows["missing_target_dropped"]:
        parts.append(f"{fmt(rows['missing_target_dropped'])} without a target dropped")
    removed = audit.get("removed_rows")
    if isinstance(removed, dict) and removed:
        parts.append("removed by the audit: " + ", ".join(f"{fmt(v)} {md(k)}"
                                                           for k, v in removed.items()))
    out.append(f"- **Rows:** {'; '.join(parts)}.")
    cols = [c for c in schema.get("columns") or [] if isinstance(c, dict)]
    if cols:
        roles = Counter(str(c.get("role")) for c in cols)
        out.append(f"- **Columns:** {len(cols) + 1} ({len(cols)} inputs and the target); roles: "
                   + ", ".join(f"{n} {md(r)}" for r, n in roles.most_common()) + ".")
    else:
        out.append(f"- **Columns:** {f.why_missing('schema.json')}.")
    ts = cfg.get("test_size")
    folds = rows.get("folds", cfg.get("folds"))
    scheme = ("stratified by class" if f.task in ("binary", "multiclass") else "shuffled")
    for key in ("time_column", "time", "order_by"):
        if cfg.get(key):
            scheme = f"time-ordered by {code(cfg[key])}"
    for key in ("group_column", "groups", "group"):
        if cfg.get(key):
            scheme = f"grouped by {code(cfg[key])}"
    if is_number(ts) and float(ts) == 0:
        out.append(f"- **Split:** no test set; {fmt(rows.get('train'))} training rows, "
                   f"{fmt(folds)}-fold cross-validation ({scheme}).")
    elif cfg or rows:
        share = f"{100 * float(ts):.0f}%" if is_number(ts) else "a share"
        out.append(f"- **Split:** {share} of the rows held out as a test set "
                   f"({fmt(rows.get('test'))} rows), cut first and used once; "
                   f"{fmt(rows.get('train'))} training rows with {fmt(folds)}-fold "
                   f"cross-validation ({scheme}); seed {fmt(cfg.get('seed'))}.")
    counts = _class_counts(f)
    if counts:
        total = sum(counts) or 1
        order = sorted(range(len(counts)), key=lambda i: -counts[i])
        out.append("- **Target:** " + ", ".join(
            f"{code(f.classes[i])} {counts[i]:,} ({100 * counts[i] / total:.1f}%)"
            for i in order[:MAX_LISTED]) + ".")
    elif f.task == "regression" and f.target_counts:
        import numpy as np

        y = np.concatenate([np.asarray(v, dtype=float) for v in f.target_counts.values()])
        y = y[np.isfinite(y)]
        if y.size:
            out.append(f"- **Target:** mean {fmt(float(y.mean()))}, std {fmt(float(y.std()))}, "
                       f"from {fmt(float(y.min()))} to {fmt(float(y.max()))}.")
    return out


def _model(f: RunFiles) -> list[str]:
    out = ["## Model", ""]
    chosen = (f.metrics or {}).get("chosen")
    if not isinstance(chosen, dict) or not chosen:
        return out + [f"The chosen model: {f.why_missing('metrics.json')}."]
    out.append(f"**{md(chosen.get('description', '—'))}**")
    out.append("")
    rows = []
    for m in chosen.get("members") or []:
        if not isinstance(m, dict):
            continue
        params = m.get("params")
        if isinstance(params, dict):
            ptxt = ", ".join(code(f"{k}={json.dumps(v, default=str)}", table=True)
                             for k, v in sorted(params.items(), key=lambda kv: str(kv[0])))
            ptxt = ptxt or "library defaults"
        else:
            ptxt = md(params)
        rows.append([code(m.get("model"), table=True), md(m.get("family")),
                     fmt_score(m.get("weight")) if is_number(m.get("weight")) else "—",
                     md(m.get("fitted_on", "—")), ptxt])
    if rows:
        out.append(_table(["member", "family", "weight", "fitted on", "hyperparameters"], rows))
        out.append("")
    board = f.leaderboard or []
    if board:
        kinds = Counter(origin_kind(r.get("origin")) for r in board)
        out.append(f"Chosen by cross-validated {md(f.metric or 'score')} among "
                   f"{plural(f.leaderboard_total or len(board), 'candidate')} ("
                   + ", ".join(f"{n} {md(k + 's' if k == 'search trial' and n != 1 else k)}"
                               for k, n in kinds.most_common()) + ").")
    return out


def _metrics(f: RunFiles) -> list[str]:
    out = ["## Metrics", ""]
    met = f.metrics or {}
    ev = f.evaluation or {}
    sel = f.metric
    cv = met.get("cv") or {}
    test = (ev.get("test") or {}).get("metrics") if isinstance(ev.get("test"), dict) else None
    cvt = {str(r.get("metric")): r for r in ev.get("cv_vs_test") or [] if isinstance(r, dict)}
    if isinstance(test, dict) and test:
        n = (ev.get("test") or {}).get("n_rows")
        boot = (ev.get("test") or {}).get("n_boot")
        out.append(f"On {fmt(n)} held-out test rows, with {test_ci(f)} bootstrap intervals "
                   f"({fmt(boot)} resamples); CV is the mean over the folds of the training "
                   f"rows.")
        out.append("")
        rows = []
        for k in sorted(test, key=lambda k: (k != sel, k)):
            m = test[k] if isinstance(test[k], dict) else {"value": test[k]}
            cv_v = cv.get(k, (cvt.get(k) or {}).get("cv"))
            name = f"**{md(k)}** (selection)" if k == sel else md(k)
            g = m.get("greater_is_better")
            arrow = "" if not isinstance(g, bool) else (" ↑" if g else " ↓")
            rows.append([name + arrow, fmt_score(m.get("value")), _interval(m),
                         fmt_score(cv_v)])
        out.append(_table(["metric", "test", f"{test_ci(f)} interval", "CV"], rows))
        out.append("")
        out.append("↑ higher is better, ↓ lower is better.")
    elif met.get("test") or cv:
        tm = met.get("test") or {}
        out.append(f"Intervals: {f.why_missing('evaluation.json')}.")
        out.append("")
        names = sorted(set(tm) | set(cv), key=lambda k: (k != sel, k))
        rows = [[f"**{md(k)}** (selection)" if k == sel else md(k), fmt_score(tm.get(k)),
                 fmt_score(cv.get(k))] for k in names]
        out.append(_table(["metric", "test", "CV"], rows))
    else:
        out.append(f"Metrics: {f.why_missing('metrics.json')}.")
    return out


def _audit(f: RunFiles) -> list[str]:
    out = ["## Audit findings", ""]
    if f.audit is None:
        return out + [f"The data audit: {f.why_missing('audit.json')}."]
    findings = [x for x in f.audit.get("findings") or [] if isinstance(x, dict)]
    allowed = {str(a) for a in f.audit.get("allowed") or []}
    serious = [x for x in findings if x.get("severity") in ("error", "warning")]
    serious.sort(key=lambda x: 0 if x.get("severity") == "error" else 1)
    if not serious:
        out.append("The audit raised no errors or warnings.")
    for x in serious[:MAX_LISTED]:
        state = []
        if x.get("applied"):
            state.append("fix applied")
        if str(x.get("check")) in allowed:
            state.append("allowed by the user")
        tail = f" ({', '.join(state)})" if state else " (not fixed)"
        fix = ""
        if x.get("fix") and not x.get("applied"):
            fix = " Fix: " + md(str(x["fix"]).rstrip(".")) + "."
        out.append(f"- **{md(x.get('severity'))}** {code(x.get('check'))}: "
                   f"{md(x.get('title') or x.get('message'))}{tail}.{fix}")
    if len(serious) > MAX_LISTED:
        out.append(f"- … and {len(serious) - MAX_LISTED} more in audit.json.")
    info = len(findings) - len(serious)
    if info:
        out.append("")
        out.append(f"{plural(info, 'informational note')} more in the report.")
    return out


def _limits(f: RunFiles) -> list[str]:
    out = ["## Known limits", ""]
    items: list[str] = []
    cfg, met, ev, audit = f.config or {}, f.metrics or {}, f.evaluation or {}, f.audit or {}
    rows = met.get("rows") or {}
    n_test = rows.get("test")
    if is_number(cfg.get("test_size")) and float(cfg["test_size"]) == 0:
        items.append("No test set was held out: the only estimate of quality is "
                     "cross-validation, which is slightly optimistic after model selection.")
    elif is_number(n_test) and n_test < SMALL_TEST:
        items.append(f"Small test set ({fmt(n_test)} rows): the test metrics are uncertain; "
                     f"read them with their intervals.")
    for r in ev.get("cv_vs_test") or []:
        if isinstance(r, dict) and r.get("agree") is False:
            items.append(f"CV and test disagree on {md(r.get('metric'))} (CV "
                         f"{fmt_score(r.get('cv'))}, test {fmt_score(r.get('test'))}, interval "
                         f"{_interval(r)}): the test rows may differ from the training rows "
                         f"(distribution shift), or the CV estimate is optimistic.")
    counts = _class_counts(f)
    checks = {str(x.get("check")) for x in audit.get("findings") or [] if isinstance(x, dict)}
    if counts and min(counts) > 0 and max(counts) / min(counts) >= IMBALANCE_RATIO:
        small = min(range(len(counts)), key=lambda i: counts[i])
        items.append(f"Imbalanced classes (largest to smallest {max(counts) / min(counts):.1f} "
                     f"to 1): accuracy flatters the model; check the recall of "
                     f"{code(f.classes[small])} ({counts[small]:,} rows).")
    elif checks & {"class_imbalance", "rare_class"}:
        items.append("The audit found imbalanced or rare classes: check per-class recall.")
    dropped: list[str] = []
    for c in (f.schema or {}).get("columns") or []:
        if isinstance(c, dict) and c.get("role") not in ("numeric", "categorical", "datetime"):
            dropped.append(f"{code(c.get('name'))} ({md(c.get('role'))})")
    for d in audit.get("dropped_columns") or []:
        if not any(code(d) in x for x in dropped):
            dropped.append(f"{code(d)} (audit)")
    for d in cfg.get("drop") or []:
        if not any(code(d) in x for x in dropped):
            dropped.append(f"{code(d)} (--drop)")
    if dropped:
        items.append("Columns not used, so the model cannot react to them: "
                     + ", ".join(dropped[:MAX_LISTED])
                     + (f" and {len(dropped) - MAX_LISTED} more" if len(dropped) > MAX_LISTED
                        else "") + ".")
    bv = ev.get("bias_variance")
    if isinstance(bv, dict) and bv.get("verdict") in ("overfitting", "underfitting"):
        items.append(f"Bias/variance verdict: **{md(bv['verdict'])}**: {md(bv.get('reason'))}.")
    open_findings = [x for x in audit.get("findings") or [] if isinstance(x, dict)
                     and x.get("severity") in ("error", "warning") and not x.get("applied")]
    if open_findings:
        items.append(f"{plural(len(open_findings), 'audit finding')} of severity error or "
                     f"warning not fixed (above).")
    members = ((met.get("chosen") or {}).get("members")) or []
    if len(members) > 1:
        items.append("The model is an ensemble chosen on the same folds it is scored on: its "
                     "CV score is slightly optimistic.")
    skipped = ev.get("skipped")
    if isinstance(skipped, dict):
        for k, v in skipped.items():
            items.append(f"Not evaluated: {md(k)} ({md(v)}).")
    for n in (met.get("notes") or [])[:5]:
        items.append(f"Fit note: {md(n)}.")
    items.append("Quality was measured on rows like the training data only; measure it again "
                 "on new labelled data (`mlsmith evaluate`) before relying on it, and refit "
                 "when the data drift.")
    out += [f"- {x}" for x in items]
    return out


def _how_to_use(f: RunFiles, run_dir: Path) -> list[str]:
    path = str((f.config or {}).get("out") or run_dir)
    quoted = path if path.replace("/", "").replace("-", "").replace("_", "").replace(".", "") \
        .isalnum() else json.dumps(path)
    proba = f.task in ("binary", "multiclass")
    lines = ["## How to use", "", "```bash",
             f"mlsmith predict {quoted} new_rows.csv --out predictions.csv"]
    if proba:
        lines.append(f"mlsmith predict {quoted} new_rows.csv --proba --out probabilities.csv")
    lines += [f"mlsmith evaluate {quoted} labelled_rows.csv", f"mlsmith info {quoted}", "```",
              "", "```python", "import mlsmith", "", f"run = mlsmith.load({json.dumps(path)})",
              "predictions = run.predict(df)"]
    if proba:
        lines.append("probabilities = run.predict_proba(df)")
    lines += ["```", "",
              "`mlsmith.load` checks every file's SHA-256 and the library versions before it "
              "unpickles the model."]
    return lines


def _versions(f: RunFiles) -> list[str]:
    out = ["## Versions", ""]
    versions = run_versions(f)
    man = f.manifest or {}
    if versions:
        out.append(", ".join(f"{md(k)} {md(v)}" for k, v in versions.items()) + ".")
    else:
        out.append(f"Library versions: {f.why_missing('manifest.json')}.")
    extra = []
    if man.get("created"):
        extra.append(f"fitted {md(man['created'])}")
    if is_number(man.get("elapsed_s")):
        extra.append(f"in {fmt_seconds(man['elapsed_s'])}")
    if is_number((f.config or {}).get("time_limit")):
        extra.append(f"time limit {fmt_seconds(f.config['time_limit'])}")
    if extra:
        out += ["", "Run: " + ", ".join(extra) + "."]
    return out


def render_model_card(run_dir: str | os.PathLike[str]) -> str:
    """The model card of a run directory, as Markdown.

    Parameters
    ----------
    run_dir : path
        A run directory, or a fit's staging folder (``manifest.json`` is not needed).

    Returns
    -------
    str
        Markdown with the sections Intended use, Data, Model, Metrics, Audit findings, Known
        limits, How to use and Versions.

    Raises
    ------
    RunDirError
        When ``run_dir`` is not a folder holding at least one of ``config.json``,
        ``schema.json``, ``metrics.json``.

    Examples
    --------
    >>> from mlsmith.report import render_model_card
    >>> print(render_model_card("runs/penguins"))  # doctest: +SKIP
    """
    f = read_run(run_dir)
    builders = [_summary, _intended_use, _data, _model, _metrics, _audit, _limits,
                lambda f: _how_to_use(f, Path(run_dir)), _versions]
    headings = ["", "## Intended use", "## Data", "## Model", "## Metrics", "## Audit findings",
                "## Known limits", "## How to use", "## Versions"]
    parts = [[f"# Model card: {md(f.target or 'model')}", ""]]
    for build, heading in zip(builders, headings, strict=True):
        try:
            parts.append(build(f))
        except Exception as exc:  # one odd file must not cost the whole card
            log.warning("model card part %r failed: %s: %s", heading, type(exc).__name__, exc)
            parts.append([heading, "", f"This part could not be written: "
                                       f"{md(type(exc).__name__)}: {md(exc)}."] if heading
                         else [])
        parts.append([""])
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def write_model_card(run_dir: str | os.PathLike[str],
                     out: str | os.PathLike[str] | None = None) -> Path:
    """Render the model card of ``run_dir`` and write it atomically.

    Parameters
    ----------
    run_dir : path
        The run directory (or a fit's staging folder).
    out : path, optional
        The Markdown file to write; default ``run_dir/model_card.md``.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> from mlsmith.report import write_model_card
    >>> write_model_card("runs/penguins")  # doctest: +SKIP
    PosixPath('runs/penguins/model_card.md')
    """
    text = render_model_card(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / "model_card.md"
    return atomic_write_text(target, text)
