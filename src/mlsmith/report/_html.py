"""The HTML report: one self-contained file built from a run directory's files.

Every section is a function of :class:`~mlsmith.report._io.RunFiles` that returns HTML. A section
whose input is missing says "not recorded in this run" and why; a section that fails on an
unexpected file says so in red and the rest of the report is still written. Every string that
comes from the data is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import ast
import html
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsmith.report import _plots as plots
from mlsmith.report._io import (
    NOT_RECORDED,
    RunFiles,
    atomic_write_text,
    fmt,
    fmt_score,
    fmt_seconds,
    is_number,
    origin_kind,
    origin_label,
    plural,
    read_run,
    run_versions,
    trailing_int,
)
from mlsmith.report._style import CSS, JS, SEVERITY_COLOURS

__all__ = ["render_report", "write_report", "SECTIONS"]

log = logging.getLogger("mlsmith")

#: (id, heading) of every section, in order
SECTIONS = (
    ("data", "Data at a glance"),
    ("audit", "Audit findings"),
    ("split", "Split and cross-validation"),
    ("leaderboard", "Leaderboard"),
    ("model", "Chosen model"),
    ("test", "Test metrics"),
    ("diagnostics", "Errors and curves"),
    ("learning", "Learning curve and bias/variance"),
    ("importance", "Feature importance"),
    ("projection", "2-D view of the data"),
    ("search", "Search history"),
    ("notes", "Notes and timings"),
)
MAX_TABLE_ROWS = 100
#: leaderboard rows listed before "show all" (plus the ensemble, portfolio, baseline, chosen)
MAX_BOARD_TOP = 25
#: a leaderboard this many rows longer than MAX_BOARD_TOP is still listed whole
BOARD_SLACK = 5
#: leaderboard rows written into the page at all (the csv has every one)
MAX_BOARD_ROWS = 500
#: models of the bias/variance table listed before "show all" (plus the chosen and baseline)
MAX_BV_TOP = 10
#: key=value pairs of a shortened parameter set
PARAMS_SHOWN = 4
#: characters of a parameter set kept in its tooltip
MAX_PARAMS_TEXT = 4000
MAX_COLUMN_ROWS = 300
MAX_FINDINGS = 200
MAX_EVIDENCE_ITEMS = 20
MAX_TEXT = 400
MAX_CM_CLASSES = 30
MAX_FEATURES_PLOT = 25
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def e(value: Any, limit: int = MAX_TEXT) -> str:
    """Escape text from the data for HTML, cut to ``limit`` characters."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def missing(what: str, why: str | None = None) -> str:
    reason = f" ({e(why)})" if why else ""
    return f'<p class="missing">{e(what)}: {NOT_RECORDED}{reason}.</p>'


def _num_td(v: Any, text: str | None = None) -> str:
    data = f' data-v="{float(v)!r}"' if is_number(v) else ' data-v=""'
    return f'<td class="num"{data}>{e(text if text is not None else fmt(v))}</td>'


def _score_td(v: Any) -> str:
    return _num_td(v, fmt_score(v))


def _interval(lo: Any, hi: Any) -> str:
    return f"{fmt_score(lo)} to {fmt_score(hi)}" if is_number(lo) and is_number(hi) else "—"


def _kv_table(rows: list[tuple[str, str]]) -> str:
    """Two-column table; values are already HTML."""
    body = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _table(header: list[str], rows: list[str], cls: str = "",
           num_cols: tuple[int, ...] = ()) -> str:
    ths = "".join(f'<th{" class=num" if i in num_cols else ""}>{e(h)}</th>'
                  for i, h in enumerate(header))
    klass = f' class="{cls}"' if cls else ""
    return (f'<div class="scroll"><table{klass}><thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _figure(content: str, caption: str = "", alt: str = "") -> str:
    if content.startswith("data:image/png"):
        body = f'<img src="{content}" alt="{e(alt)}">'
    else:
        body = content
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{body}{cap}</figure>"


def _skipped(files: RunFiles, key: str) -> str | None:
    sk = (files.evaluation or {}).get("skipped")
    if isinstance(sk, dict) and sk.get(key):
        return str(sk[key])
    return None


def _plots_missing() -> str:
    return ('<p class="missing">Plots need matplotlib, which is not installed: '
            "<code>pip install matplotlib</code>, then <code>mlsmith report RUN_DIR</code>.</p>")


def _percent(v: Any) -> str:
    return f"{100 * float(v):.1f}%" if is_number(v) else "—"


def _find_describer(family: str) -> Callable[[Any], Any] | None:
    if family in ("", "ensemble"):
        return None
    try:
        from mlsmith import models

        try:
            fam = models.get_family(family)
        except Exception:  # unknown, or its library is not installed: the registry may have it
            fam = getattr(models, "REGISTRY", {}).get(family)
    except Exception:
        return None
    fn = getattr(fam, "describe", None)
    return fn if callable(fn) else None


# --- context shared by the sections ---------------------------------------------------------------
@dataclass
class _Ctx:
    files: RunFiles
    plots: bool
    _describers: dict[str, Callable[[Any], Any] | None] = field(default_factory=dict)

    def describer(self, family: str) -> Callable[[Any], Any] | None:
        """The family's ``describe(params) -> str``, where it has one (looked up once)."""
        if family not in self._describers:
            self._describers[family] = _find_describer(family)
        return self._describers[family]

    @property
    def ev(self) -> dict[str, Any]:
        return self.files.evaluation or {}

    @property
    def is_classification(self) -> bool:
        return self.files.task in ("binary", "multiclass")

    def class_index(self, label: Any) -> int | None:
        classes = [str(c) for c in self.files.classes]
        try:
            return classes.index(str(label))
        except ValueError:
            return None

    def colours_for(self, curves: list[dict[str, Any]]) -> list[str]:
        out = []
        for i, c in enumerate(curves):
            idx = self.class_index(c.get("label"))
            out.append(plots.class_colour(idx if idx is not None else i))
        return out

    def chosen_ids(self) -> set[str]:
        chosen = (self.files.metrics or {}).get("chosen") or {}
        ids = {str(m.get("model")) for m in chosen.get("members", []) if isinstance(m, dict)}
        if len(ids) > 1:
            ids.add("ensemble")
        return ids


# --- the header -----------------------------------------------------------------------------------
def _card(k: str, v: str, d: str = "", wide: bool = False) -> str:
    dd = f'<div class="d">{d}</div>' if d else ""
    cls = "card wide" if wide else "card"
    return f'<div class="{cls}"><div class="k">{e(k)}</div><div class="v">{v}</div>{dd}</div>'


def _when(stamp: Any) -> str:
    """``2026-11-30T06:56:35+0000`` as ``2026-11-30 06:56 UTC``; other text as it is."""
    from datetime import datetime, timedelta

    text = str(stamp)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        try:
            t = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return text
    off = t.utcoffset()
    zone = ("" if off is None else " UTC" if off == timedelta(0)
            else f" (UTC{t.strftime('%z')[:3]}:{t.strftime('%z')[3:]})")
    return f"{t:%Y-%m-%d %H:%M}{zone}"


def _header(ctx: _Ctx) -> str:
    f = ctx.files
    target = f.target or "?"
    task = f.task or "unknown task"
    cfg, met = f.config or {}, f.metrics or {}
    metric = f.metric
    gib = f.greater_is_better
    cards = []
    classes = f.classes
    cards.append(_card("Task", e(task), e(f"{len(classes)} classes") if classes else ""))
    if metric:
        direction = "" if gib is None else ("higher is better" if gib else "lower is better")
        cards.append(_card("Selection metric", e(metric), e(direction)))
    chosen = met.get("chosen") or {}
    if chosen.get("description"):
        cards.append(_card("Chosen model", e(chosen["description"], 160), wide=True))
    if is_number(chosen.get("cv_score")):
        cards.append(_card(f"CV {metric or 'score'}", e(fmt_score(chosen["cv_score"])),
                           "out-of-fold, training rows"))
    test = (ctx.ev.get("test") or {}).get("metrics") or {}
    if metric and isinstance(test.get(metric), dict) and is_number(test[metric].get("value")):
        m = test[metric]
        ci = _interval(m.get("low"), m.get("high"))
        cards.append(_card(f"Test {metric}", e(fmt_score(m["value"])),
                           e(f"interval {ci}" if ci != "—" else "")))
    elif metric and is_number((met.get("test") or {}).get(metric)):
        cards.append(_card(f"Test {metric}", e(fmt_score(met["test"][metric])), "no interval"))
    rows = met.get("rows") or {}
    if is_number(rows.get("loaded")):
        cards.append(_card("Rows", e(fmt(int(rows["loaded"]))),
                           e(f"{fmt(rows.get('train'))} train, {fmt(rows.get('test'))} test")))
    bv = ctx.ev.get("bias_variance") or {}
    if bv.get("verdict"):
        cards.append(_card("Bias/variance", e(bv["verdict"])))
    findings = (f.audit or {}).get("findings")
    if isinstance(findings, list):
        c = Counter(str(x.get("severity")) for x in findings if isinstance(x, dict))
        serious = (f"{plural(c['error'], 'error')}, {plural(c['warning'], 'warning')}"
                   if c["error"] or c["warning"] else "no errors or warnings")
        cards.append(_card("Audit", e(serious), e(plural(c["info"], "note"))))
    source = cfg.get("source") or ""
    created = (f.manifest or {}).get("created")
    sub = [f"A {e(task)} model of <code>{e(target)}</code>"]
    if source:
        sub.append(f"from <code>{e(source)}</code>")
    if created:
        sub.append(f"fitted {e(_when(created))}")
    return (f"<header><h1>Report: predicting {e(target)}</h1>"
            f'<p class="sub">{" ".join(sub)}.</p><div class="cards">{"".join(cards)}</div>'
            f"</header>")


# --- data at a glance -----------------------------------------------------------------------------
def _data(ctx: _Ctx) -> str:
    f = ctx.files
    schema, met, audit, cfg = f.schema or {}, f.metrics or {}, f.audit or {}, f.config or {}
    rows = met.get("rows") or {}
    out = []
    facts: list[tuple[str, str]] = []
    if cfg.get("source"):
        facts.append(("source", f"<code>{e(cfg['source'])}</code>"))
    loaded = rows.get("loaded", audit.get("n_rows"))
    facts.append(("rows loaded", e(fmt(loaded))))
    if is_number(rows.get("missing_target_dropped")) and rows["missing_target_dropped"]:
        facts.append(("rows without a target (dropped)", e(fmt(rows["missing_target_dropped"]))))
    removed = audit.get("removed_rows")
    if isinstance(removed, dict) and removed:
        facts.append(("rows removed by the audit",
                      e(", ".join(f"{fmt(v)} {k}" for k, v in removed.items()))))
    if "train" in rows or "test" in rows:
        facts.append(("training / test rows",
                      e(f"{fmt(rows.get('train'))} / {fmt(rows.get('test'))}")))
    columns = ([c for c in schema["columns"] if isinstance(c, dict)]
               if isinstance(schema.get("columns"), list) else None)
    if columns is not None:
        roles = Counter(str(c.get("role")) for c in columns)
        used = sum(roles[r] for r in ("numeric", "categorical", "datetime"))
        facts.append(("columns", e(f"{len(columns) + 1} ({len(columns)} inputs + the target); "
                                   f"{used} used as features")))
    elif is_number(audit.get("n_columns")):
        facts.append(("columns", e(fmt(audit["n_columns"]))))
    target = f.target
    facts.append(("target", f"<code>{e(target)}</code>" if target else e("—")))
    task = schema.get("task") or {}
    if f.task:
        reason = f" ({e(task.get('reason'))})" if task.get("reason") else ""
        facts.append(("task", e(f.task) + reason))
    if f.classes:
        shown = ", ".join(f"<code>{e(c, 60)}</code>" for c in f.classes[:30])
        more = f" and {len(f.classes) - 30} more" if len(f.classes) > 30 else ""
        facts.append(("classes", shown + e(more)))
    out.append(_kv_table(facts))

    if columns is None:
        out.append(missing("Column roles", f.problems.get("schema.json", "no schema.json")))
    else:
        roles = Counter(str(c.get("role")) for c in columns)
        chips = "".join(f"<span>{e(r)}: {n}</span>" for r, n in roles.most_common())
        out.append(f'<h3>Column roles</h3><div class="chips">{chips}</div>')
        n_rows = schema.get("n_rows") or loaded
        trs = []
        for c in columns[:MAX_COLUMN_ROWS]:
            nm = c.get("n_missing")
            share = (f" ({_percent(nm / n_rows)})" if is_number(nm) and is_number(n_rows)
                     and n_rows and nm else "")
            trs.append(f"<tr><td><code>{e(c.get('name'), 120)}</code></td>"
                       f"<td>{e(c.get('role'))}</td>"
                       f"<td>{e(c.get('dtype'))}</td>{_num_td(nm, fmt(nm) + share)}"
                       f"{_num_td(c.get('n_unique'))}<td>{e(c.get('reason'))}</td></tr>")
        table = _table(["column", "role", "dtype", "missing", "distinct", "why this role"], trs,
                       "sortable", num_cols=(3, 4))
        more = (f'<p class="missing">{len(columns) - MAX_COLUMN_ROWS} more columns are listed in '
                f"schema.json.</p>" if len(columns) > MAX_COLUMN_ROWS else "")
        opened = " open" if len(columns) <= 30 else ""
        out.append(f"<details{opened}><summary>{len(columns)} input columns</summary>{table}{more}"
                   f"</details>")

    out.append("<h3>Target distribution</h3>")
    out.append(_target_distribution(ctx))
    return "".join(out)


def _target_distribution(ctx: _Ctx) -> str:
    import numpy as np

    f = ctx.files
    parts = f.target_counts or {}
    target = f.target or "target"
    if ctx.is_classification and f.classes:
        k = len(f.classes)
        counts: dict[str, list[int]] = {}
        for part, y in parts.items():
            y = np.asarray(y)
            if y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.all(y == np.round(y))):
                yi = y.astype(np.int64)
                yi = yi[(yi >= 0) & (yi < k)]
                counts[part] = np.bincount(yi, minlength=k).tolist()
        source = "training and test rows"
        if not counts:
            per_class = (ctx.ev.get("test") or {}).get("per_class") or []
            by = {str(p.get("class")): p.get("support") for p in per_class if isinstance(p, dict)}
            if by and all(is_number(by.get(str(c))) for c in f.classes):
                counts = {"test": [int(by[str(c)]) for c in f.classes]}
                source = "test rows only"
        if not counts:
            return missing("Target distribution", "no oof_predictions.npz or test_predictions.npz")
        total = [sum(v[i] for v in counts.values()) for i in range(k)]
        grand = sum(total) or 1
        order = sorted(range(k), key=lambda i: -total[i])
        trs = []
        for i in order[:MAX_TABLE_ROWS]:
            cells = "".join(_num_td(counts[p][i]) for p in counts)
            trs.append(f"<tr><td><code>{e(f.classes[i], 80)}</code></td>{cells}"
                       f"{_num_td(total[i])}{_num_td(total[i] / grand, _percent(total[i] / grand))}"
                       f"</tr>")
        table = _table(["class", *counts, "rows", "share"], trs, num_cols=tuple(
            range(1, len(counts) + 3)))
        fig = ""
        if ctx.plots:
            labels = [f.classes[i] for i in order]
            fig = _figure(plots.class_counts(labels, {p: [v[i] for i in order]
                                                      for p, v in counts.items()}, target),
                          e(f"Counted on the {source}."))
        return f'<div class="figs"><div>{table}</div>{fig}</div>'
    # regression
    arrays = {p: np.asarray(y, dtype=np.float64) for p, y in parts.items()
              if np.asarray(y).dtype.kind in "iuf"}
    if not arrays:
        return missing("Target distribution", "no oof_predictions.npz or test_predictions.npz")
    allv = np.concatenate(list(arrays.values()))
    allv = allv[np.isfinite(allv)]
    if not allv.size:
        return missing("Target distribution", "no finite target values")
    stats = [("rows", fmt(int(allv.size))), ("mean", fmt(float(allv.mean()))),
             ("std", fmt(float(allv.std()))), ("min", fmt(float(allv.min()))),
             ("median", fmt(float(np.median(allv)))), ("max", fmt(float(allv.max())))]
    table = _kv_table([(k, e(v)) for k, v in stats])
    fig = _figure(plots.value_histogram(arrays, target)) if ctx.plots else ""
    return f'<div class="figs"><div>{table}</div>{fig}</div>'


# --- audit ----------------------------------------------------------------------------------------
def _evidence(ev: Any) -> str:
    if not isinstance(ev, dict) or not ev:
        return ""
    items = []
    for k, v in list(ev.items())[:MAX_EVIDENCE_ITEMS]:
        if isinstance(v, float):
            text = fmt(v)
        elif isinstance(v, (list, tuple)):
            shown = ", ".join(fmt(x) if isinstance(x, float) else str(x) for x in v[:12])
            text = f"[{shown}{', …' if len(v) > 12 else ''}]"
        elif isinstance(v, dict):
            text = ", ".join(f"{k2}: {fmt(v2) if isinstance(v2, float) else v2}"
                             for k2, v2 in list(v.items())[:12])
            text += ", …" if len(v) > 12 else ""
        else:
            text = fmt(v)
        items.append(f"<tr><th>{e(k, 80)}</th><td>{e(text, 200)}</td></tr>")
    return f'<table class="kv evidence"><tbody>{"".join(items)}</tbody></table>'


def _audit(ctx: _Ctx) -> str:
    f = ctx.files
    if f.audit is None:
        return missing("The data audit", f.problems.get("audit.json"))
    audit = f.audit
    findings = [x for x in audit.get("findings") or [] if isinstance(x, dict)]
    findings.sort(key=lambda x: SEVERITY_ORDER.get(str(x.get("severity")), 3))
    c = Counter(str(x.get("severity")) for x in findings)
    took = f" in {fmt_seconds(audit.get('seconds'))}" if is_number(audit.get("seconds")) else ""
    out = [f"<p>{e(plural(len(findings), 'finding'))}{e(took)}: "
           f"{e(plural(c['error'], 'error'))}, {e(plural(c['warning'], 'warning'))}, "
           f"{e(plural(c['info'], 'note'))}.</p>"]
    if not findings:
        out.append("<p>The audit found nothing to report.</p>")
    allowed = {str(a) for a in audit.get("allowed") or []}
    for x in findings[:MAX_FINDINGS]:
        sev = str(x.get("severity", "info"))
        colour, bg = SEVERITY_COLOURS.get(sev, ("#5b6570", "#f6f8fa"))
        badges = [f'<span class="badge b-{e(sev) if sev in SEVERITY_COLOURS else "muted"}">'
                  f"{e(sev)}</span>"]
        if x.get("applied"):
            badges.append('<span class="badge b-ok">fix applied</span>')
        if str(x.get("check")) in allowed:
            badges.append('<span class="badge b-muted">allowed</span>')
        cols = x.get("columns") or []
        cols_html = ""
        if isinstance(cols, list) and cols:
            cols_html = ("<p>Columns: "
                         + ", ".join(f"<code>{e(col, 80)}</code>" for col in cols[:20])
                         + (e(f" and {len(cols) - 20} more") if len(cols) > 20 else "") + "</p>")
        fix = f'<p class="fix">Fix: {e(x.get("fix"))}</p>' if x.get("fix") else ""
        message = f"<p>{e(x.get('message'))}</p>" if x.get("message") else ""
        out.append(
            f'<div class="finding sev-{e(sev)}" style="border-left-color:{colour};background:{bg}">'
            f"<h3>{' '.join(badges)} {e(x.get('title') or x.get('check'))} "
            f"<code>{e(x.get('check'))}</code></h3>{message}{cols_html}"
            f"{_evidence(x.get('evidence'))}{fix}</div>")
    if len(findings) > MAX_FINDINGS:
        out.append(f'<p class="missing">{len(findings) - MAX_FINDINGS} more findings are in '
                   f"audit.json.</p>")
    extra: list[tuple[str, str]] = []
    dropped = audit.get("dropped_columns")
    if isinstance(dropped, list):
        extra.append(("columns dropped", ", ".join(f"<code>{e(d, 80)}</code>" for d in dropped[:50])
                      or "none"))
    removed = audit.get("removed_rows")
    if isinstance(removed, dict):
        extra.append(("rows removed", e(", ".join(f"{fmt(v)} {k}" for k, v in removed.items())
                                        or "none")))
    if allowed:
        extra.append(("allowed (--allow)",
                      ", ".join(f"<code>{e(a)}</code>" for a in sorted(allowed))))
    rec = audit.get("recommendations")
    if isinstance(rec, dict) and rec:
        parts = []
        for k, v in rec.items():
            val = ", ".join(map(str, v)) if isinstance(v, list) else fmt(v)
            parts.append(f"<code>{e(k)}</code>: {e(val)}")
        extra.append(("recommendations", "<br>".join(parts)))
    if extra:
        out.append(_kv_table(extra))
    return "".join(out)


# --- split ----------------------------------------------------------------------------------------
def _scheme(ctx: _Ctx) -> str:
    cfg = ctx.files.config or {}
    for key in ("time_column", "time", "order_by"):
        if cfg.get(key):
            return (f"time-ordered by <code>{e(cfg[key])}</code> "
                    f"(every fold validates on later rows)")
    for key in ("group_column", "groups", "group"):
        if cfg.get(key):
            return f"grouped by <code>{e(cfg[key])}</code> (a group never spans two folds)"
    split = cfg.get("split")
    if isinstance(split, str) and split:
        return e(split)
    if ctx.is_classification:
        return "stratified by class, shuffled"
    if ctx.files.task == "regression":
        return "shuffled (random)"
    return "—"


def _split(ctx: _Ctx) -> str:
    f = ctx.files
    cfg, rows = f.config or {}, (f.metrics or {}).get("rows") or {}
    if not cfg and not rows:
        return missing("The split", "no config.json or metrics.json")
    facts: list[tuple[str, str]] = []
    ts = cfg.get("test_size")
    n_test, n_train = rows.get("test"), rows.get("train")
    if is_number(ts) and float(ts) == 0.0:
        facts.append(("test set", "none held out (<code>--test-size 0</code>): every row trained "
                                  "the model, so there are no test metrics"))
    else:
        size = _percent(ts) if is_number(ts) else "—"
        facts.append(("test set", e(f"{size} of the rows held out ({fmt(n_test)} rows), "
                                    f"cut first and scored once, at the end")))
    facts.append(("training rows", e(fmt(n_train))))
    folds = rows.get("folds", cfg.get("folds"))
    facts.append(("cross-validation", e(f"{fmt(folds)} folds" if folds is not None else "—")
                  + ", " + _scheme(ctx)))
    if is_number(folds) and is_number(n_train) and folds:
        facts.append(("rows per validation fold", e(f"about {fmt(int(n_train // folds))}")))
    if "seed" in cfg:
        facts.append(("seed", e(fmt(cfg["seed"]))))
    if is_number(cfg.get("time_limit")):
        facts.append(("time limit", e(fmt_seconds(cfg["time_limit"]))))
    return (_kv_table(facts) + "<p>Model choice, ensembling and thresholds used only the "
            "cross-validation folds of the training rows; the test rows were touched once.</p>")


# --- hyperparameters, shortened -------------------------------------------------------------------
#: keys a shortened parameter list shows first: the ones that shape a model most
_KEY_PRIORITY = ("architecture", "learning_rate", "lr", "num_leaves", "max_depth", "depth",
                 "n_estimators", "max_iter", "C", "alpha", "n_neighbors", "max_leaf_nodes",
                 "min_data_in_leaf", "min_samples_leaf", "max_features")


def parse_params(raw: Any) -> Any:
    """A leaderboard's params cell as an object: JSON, or the Python dict of weights an ensemble
    row holds; the text itself when it is neither, ``None`` when empty."""
    if raw is None or isinstance(raw, (dict, list)):
        return raw
    text = str(raw).strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text[0] in "{[" and len(text) <= 20_000:
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    return text


def short_value(v: Any, digits: int = 3) -> str:
    """A hyperparameter value in a few characters: ``0.147``, ``1.12e-05``, ``true``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.{digits}g}"
    text = v if isinstance(v, str) else json.dumps(v, default=str, separators=(",", ":"))
    return text if len(text) <= 24 else text[:23] + "…"


def short_params(params: Any, limit: int = PARAMS_SHOWN) -> str:
    """The first ``limit`` ``key=value`` pairs, numbers rounded, the shaping keys first."""
    if params is None:
        return ""
    if isinstance(params, dict):
        if not params:
            return "defaults"
        rank = {k: i for i, k in enumerate(_KEY_PRIORITY)}
        keys = sorted(params, key=lambda k: rank.get(str(k), len(rank)))  # stable for the rest
        text = " ".join(f"{k}={short_value(params[k])}" for k in keys[:limit])
        return text + (" …" if len(keys) > limit else "")
    text = str(params) if not isinstance(params, list) else json.dumps(params, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def _weights_text(params: Any) -> str | None:
    """An ensemble's ``{member: weight}`` as ``0.52 lightgbm_trial79 + 0.48 lightgbm_3``."""
    if not (isinstance(params, dict) and params and all(is_number(w) for w in params.values())):
        return None
    items = sorted(params.items(), key=lambda kv: -float(kv[1]))
    text = " + ".join(f"{short_value(w)} {k}" for k, w in items[:PARAMS_SHOWN])
    return text + (" + …" if len(items) > PARAMS_SHOWN else "")


def full_params(raw: Any, params: Any) -> str:
    """The whole parameter set as JSON (as the leaderboard wrote it where it was JSON)."""
    if isinstance(params, (dict, list)):
        return json.dumps(params, default=str)
    return "" if raw is None else str(raw)


# --- leaderboard ----------------------------------------------------------------------------------
def _score_columns(files: RunFiles) -> tuple[str | None, str | None, str | None]:
    cols = files.leaderboard_columns
    m = files.metric
    if m and f"cv_{m}" in cols:
        cv = f"cv_{m}"
    else:
        cv = next((c for c in cols if c.startswith("cv_") and not c.endswith("_std")
                   and not c.endswith("_time_s") and c != "cv_time_s"), None)
    if cv is None:
        return None, None, None
    std = f"{cv}_std" if f"{cv}_std" in cols else None
    train = "train_" + cv[3:]
    return cv, std, train if train in cols else None


def _status(r: dict[str, Any]) -> str:
    s = r.get("status")
    return "ok" if s is None or str(s) in ("", "ok", "None") else str(s)


def _ranked(rows: list[dict[str, Any]], cv: str | None, greater: bool) -> list[dict[str, Any]]:
    """Finished rows best first, then the rest; the ensemble row stays where its score puts it."""
    if cv is None:
        return list(rows)

    def key(r: dict[str, Any]) -> tuple[int, float]:
        v = r.get(cv)
        if not is_number(v):
            return (1, 0.0)
        return (0 if _status(r) == "ok" else 1, -float(v) if greater else float(v))

    return sorted(rows, key=key)


#: origins whose rows stay in the short leaderboard whatever their rank
_PINNED = ("ensemble", "portfolio", "baseline")
#: the leaderboard's columns: (class of the <col>, numeric)
_BOARD_COLS = (("rank", True), ("model", False), ("origin", False), ("cv", True),
               ("train", True), ("time", True), ("params", False))


def _and(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _origin_short(value: Any) -> str:
    """:func:`origin_label`, short enough for a narrow column: ``search (tpe)``."""
    return origin_label(value).replace("search trial", "search")


def _structure(ctx: _Ctx, family: Any, params: Any) -> str | None:
    """The family's own one-line description of ``params`` (``describe``), where it has one."""
    if not family or not isinstance(params, dict):
        return None
    fn = ctx.describer(str(family))
    if fn is None:
        return None
    try:
        text = fn(params)
    except Exception:  # a describer must never cost the leaderboard
        return None
    return str(text) if isinstance(text, str) and text.strip() else None


def _board_row(ctx: _Ctx, rank: int, r: dict[str, Any], cols: tuple[Any, Any, Any],
               chosen: set[str]) -> str:
    cv, std, train = cols
    model = str(r.get("model") or "")
    mark = " ★" if model in chosen else ""
    status = _status(r)
    badge = f' <span class="badge b-muted">{e(status, 30)}</span>' if status != "ok" else ""
    family = r.get("family")
    tip = model + (f" (family {family})" if family else "")
    origin = r.get("origin")
    raw = r.get("params")
    params = parse_params(raw)
    if origin_kind(origin) == "ensemble" or family == "ensemble":
        text = _weights_text(params) or short_params(params)
    else:
        text = _structure(ctx, family, params) or short_params(params)
    full = full_params(raw, params)
    note = str(r.get("note") or "")
    cell_tip = "\n".join(t for t in (full, note) if t)
    note_html = f'<span class="note"> — {e(note, 160)}</span>' if note else ""
    v, s = (r.get(cv) if cv else None), (r.get(std) if std else None)
    sd = f'<small class="sd"> ± {e(fmt(s, 3))}</small>' if is_number(s) and is_number(v) else ""
    data = f' data-v="{float(v)!r}"' if is_number(v) else ' data-v=""'
    fit_s, pred_s = r.get("fit_time_s"), r.get("predict_time_s")
    times = ("—" if not (is_number(fit_s) or is_number(pred_s))
             else f"{fmt_seconds(fit_s)} / {fmt_seconds(pred_s)}")
    return (f'<tr{" class=chosen" if model in chosen else ""}>{_num_td(rank)}'
            f'<td class="model" title="{e(tip)}"><code>{e(model, 80)}</code>{mark}{badge}</td>'
            f'<td title="{e(origin_label(origin))}">{e(_origin_short(origin))}</td>'
            f'<td class="num"{data}>{e(fmt_score(v))}{sd}</td>'
            f"{_score_td(r.get(train) if train else None)}{_num_td(fit_s, times)}"
            f'<td class="params" title="{e(cell_tip, MAX_PARAMS_TEXT)}">{e(text, 200)}'
            f"{note_html}</td></tr>")


def _board_table(header: list[str], rows: list[str], cls: str) -> str:
    cols = "".join(f'<col class="c-{c}">' for c, _ in _BOARD_COLS)
    ths = "".join(f'<th{" class=num" if num else ""}>{e(h)}</th>'
                  for h, (_, num) in zip(header, _BOARD_COLS, strict=True))
    return (f'<div class="scroll"><table class="sortable board {cls}"><colgroup>{cols}'
            f'</colgroup><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody>'
            f"</table></div>")


def _leaderboard(ctx: _Ctx) -> str:
    f = ctx.files
    if f.leaderboard is None:
        return missing("The leaderboard", f.problems.get("leaderboard.csv"))
    rows = f.leaderboard
    if not rows:
        return "<p>The leaderboard is empty: no candidate finished.</p>"
    cols = _score_columns(f)
    cv = cols[0]
    rows = _ranked(rows, cv, f.greater_is_better is not False)
    metric = cv[3:] if cv else "score"
    chosen = ctx.chosen_ids()
    total = max(f.leaderboard_total, len(rows))
    kinds = Counter(origin_kind(r.get("origin")) for r in rows)
    words = {"search trial": ("search trial", "search trials"),
             "portfolio": ("from the portfolio", "from the portfolio")}
    summary = ", ".join(f"{n} {words.get(k, (k, k))[n != 1]}" for k, n in kinds.most_common())
    unfinished = Counter(_status(r) for r in rows if _status(r) != "ok")

    numbered = list(enumerate(rows[:MAX_BOARD_ROWS], start=1))
    if len(numbered) <= MAX_BOARD_TOP + BOARD_SLACK:
        top, rest = numbered, []
    else:
        def pinned(r: dict[str, Any]) -> bool:
            return (origin_kind(r.get("origin")) in _PINNED
                    or str(r.get("model") or "") in chosen)

        top = [(i, r) for i, r in numbered
               if (i <= MAX_BOARD_TOP and _status(r) == "ok") or pinned(r)]
        shown = {i for i, _ in top}
        rest = [(i, r) for i, r in numbered if i not in shown]
    header = ["#", "model", "origin", f"CV {metric}", f"train {metric}", "fit / predict",
              "hyperparameters"]
    gib = f.greater_is_better
    direction = "" if gib is None else (" Lower is better." if gib is False
                                        else " Higher is better.")
    out = [f"<p>{total} rows: {e(summary)}. Scores are cross-validated on the training rows "
           f"(± one standard deviation over the folds), in the metric's natural units."
           f"{e(direction)} ★ marks the chosen model and its members; click a header to sort; "
           f"point at the hyperparameters for the whole set.</p>"]
    if rest:
        listed = [f"the best {MAX_BOARD_TOP}"]
        if chosen:
            listed.append("the chosen model" + ("'s members" if len(chosen) > 1 else ""))
        listed += [w for w, k in (("the ensemble", "ensemble"), ("the portfolio", "portfolio"),
                                  ("the baseline", "baseline")) if kinds.get(k)]
        out.append(f'<p class="counts">Listed: {e(_and(listed))}; “show all” below lists '
                   f"every row.</p>")
    if unfinished:
        counts = ", ".join(f"{n} {s}" for s, n in unfinished.most_common())
        why = (" (a pruned trial was stopped after its first folds scored worse than earlier "
               "trials)" if "pruned" in unfinished else "")
        out.append(f'<p class="counts">Without a full CV score: {e(counts)}{why}.</p>')
    out.append(_board_table(header, [_board_row(ctx, i, r, cols, chosen) for i, r in top],
                            "leaderboard"))
    if rest:
        n_ok = sum(1 for _, r in rest if _status(r) == "ok")
        parts = [f"{n_ok} scored"] if n_ok else []
        parts += [f"{n} {s}" for s, n in Counter(_status(r) for _, r in rest
                                                  if _status(r) != "ok").most_common()]
        which = (f"all {len(numbered)}" if total == len(numbered)
                 else f"the first {len(numbered)} of {total}")
        out.append(f'<details class="board-all"><summary>Show {which} rows '
                   f"({len(rest)} more: {e(', '.join(parts))})</summary>"
                   + _board_table(header, [_board_row(ctx, i, r, cols, chosen)
                                           for i, r in numbered], "board-all")
                   + "</details>")
    if total > len(numbered):
        out.append(f'<p class="missing">Showing the first {len(numbered)} of {total} rows; '
                   f"all of them are in leaderboard.csv.</p>")
    return "".join(out)


# --- chosen model ---------------------------------------------------------------------------------
def _params_html(params: Any) -> str:
    """Every ``key=value`` of a parameter set, numbers to four digits (the exact value in the
    tooltip)."""
    params = parse_params(params)
    if isinstance(params, str):
        return f"<code>{e(params)}</code>"
    if not isinstance(params, dict):
        return e(fmt(params))
    if not params:
        return '<span class="missing">library defaults</span>'
    out = []
    for k, v in sorted(params.items(), key=lambda kv: str(kv[0])):
        exact = json.dumps(v, default=str)
        shown = short_value(v, 4) if isinstance(v, float) else exact
        tip = f' title="{e(exact, 200)}"' if shown != exact else ""
        out.append(f"<code{tip}>{e(k, 80)}={e(shown, 120)}</code>")
    return " ".join(out)


def _model(ctx: _Ctx) -> str:
    met = ctx.files.metrics or {}
    chosen = met.get("chosen")
    if not isinstance(chosen, dict) or not chosen:
        return missing("The chosen model", ctx.files.problems.get("metrics.json",
                                                                  "metrics.json has no 'chosen'"))
    out = [f"<p><b>{e(chosen.get('description', '—'))}</b></p>"]
    if is_number(chosen.get("cv_score")):
        out.append(f"<p>Cross-validated {e(ctx.files.metric or 'score')}: "
                   f"<b>{e(fmt_score(chosen['cv_score']))}</b> (out-of-fold predictions of the "
                   f"chosen blend).</p>")
    members = [m for m in chosen.get("members") or [] if isinstance(m, dict)]
    if members:
        trs = []
        for m in members:
            w = m.get("weight")
            structure = _structure(ctx, m.get("family"), parse_params(m.get("params")))
            shape = f'<div class="structure">{e(structure, 200)}</div>' if structure else ""
            trs.append(f'<tr><td class="model"><code>{e(m.get("model"), 80)}</code></td>'
                       f"<td>{e(m.get('family'))}</td>"
                       f"{_num_td(w, fmt(w, 3))}<td>{e(m.get('fitted_on', '—'))}</td>"
                       f'<td class="kvs">{shape}{_params_html(m.get("params"))}</td></tr>')
        out.append(_table(["member", "family", "weight", "fitted on", "hyperparameters"], trs,
                          num_cols=(2,)))
    return "".join(out)


# --- test metrics ---------------------------------------------------------------------------------
#: metrics that mean something under class imbalance, in the order the report leads with them
IMBALANCE_METRICS = ("pr_auc", "balanced_accuracy", "recall_macro", "f1_macro", "mcc")


def _imbalance_finding(ctx: _Ctx) -> dict[str, Any] | None:
    audit = ctx.files.audit if isinstance(ctx.files.audit, dict) else {}
    for f in audit.get("findings") or []:
        if isinstance(f, dict) and f.get("check") == "class_imbalance":
            return f
    return None


def _imbalance_lead(ctx: _Ctx) -> list[str]:
    """The metrics to lead with when the audit found imbalanced classes (else none)."""
    if not ctx.is_classification or _imbalance_finding(ctx) is None:
        return []
    return list(IMBALANCE_METRICS)


def _imbalance_note(ctx: _Ctx) -> str:
    f = _imbalance_finding(ctx) or {}
    ev = f.get("evidence") if isinstance(f.get("evidence"), dict) else {}
    share = ev.get("minority_share")
    label = ev.get("minority_class")
    if is_number(share):
        return (f"The classes are imbalanced (smallest class {label!s} is "
                f"{100 * float(share):.1f}% of the rows).") if label is not None else \
            f"The classes are imbalanced (smallest class {100 * float(share):.1f}% of the rows)."
    return "The classes are imbalanced."


def _test(ctx: _Ctx) -> str:
    f = ctx.files
    test = ctx.ev.get("test") if isinstance(ctx.ev.get("test"), dict) else None
    sel = f.metric
    out = []
    if test and isinstance(test.get("metrics"), dict) and test["metrics"]:
        ms = test["metrics"]
        ci = test.get("ci", 0.95)
        ci_label = f"{100 * float(ci):g}% interval" if is_number(ci) else "interval"
        lead = _imbalance_lead(ctx)
        order = sorted(ms, key=lambda k: (k not in lead, lead.index(k) if k in lead else 0,
                                          k != sel, k))
        if lead:
            out.append(f'<p class="lead">{e(_imbalance_note(ctx))} Read '
                       + ", ".join(f"<b>{e(k)}</b>" for k in lead if k in ms)
                       + " and the per-class recall below first: accuracy and ROC AUC look good "
                       "even for a model that ignores the rare class.</p>")
        trs = []
        for k in order:
            m = ms[k] if isinstance(ms[k], dict) else {"value": ms[k]}
            interval = _interval(m.get("low"), m.get("high"))
            g = m.get("greater_is_better")
            direction = "—" if not isinstance(g, bool) else ("higher is better" if g
                                                              else "lower is better")
            name = f"<b>{e(k)}</b> (selection)" if k == sel else e(k)
            trs.append(f"<tr><td>{name}</td>{_score_td(m.get('value'))}"
                       f'<td class="num">{e(interval)}</td><td>{e(direction)}</td></tr>')
        n = test.get("n_rows")
        boot = test.get("n_boot")
        out.append(f"<p>On {e(fmt(n))} held-out test rows; intervals from {e(fmt(boot))} "
                   f"bootstrap resamples of the test rows.</p>")
        out.append(_table(["metric", "test value", ci_label, "direction"], trs, num_cols=(1, 2)))
    elif (f.metrics or {}).get("test"):
        pts = f.metrics["test"]
        trs = [f"<tr><td>{'<b>' + e(k) + '</b> (selection)' if k == sel else e(k)}</td>"
               f"{_score_td(v)}</tr>" for k, v in sorted(pts.items(), key=lambda kv: (kv[0] != sel,
                                                                                    kv[0]))]
        out.append(missing("Intervals", f.problems.get("evaluation.json")))
        out.append(_table(["metric", "test value"], trs, num_cols=(1,)))
    else:
        cfg = f.config or {}
        why = ("no test set was held out (--test-size 0)" if cfg.get("test_size") == 0
               else f.problems.get("evaluation.json"))
        out.append(missing("Test metrics", why))

    cvt = [r for r in ctx.ev.get("cv_vs_test") or [] if isinstance(r, dict)]
    out.append("<h3>Cross-validation against test</h3>")
    if cvt:
        trs = []
        for r in cvt:
            agree = r.get("agree")
            verdict = ('<span class="ok">agree</span>' if agree is True else
                       '<span class="bad">disagree</span>' if agree is False else "—")
            interval = _interval(r.get("low"), r.get("high"))
            trs.append(f"<tr><td>{e(r.get('metric'))}</td>{_score_td(r.get('cv'))}"
                       f"{_num_td(r.get('cv_std'))}{_score_td(r.get('test'))}"
                       f'<td class="num">{e(interval)}</td><td>{verdict}</td></tr>')
        out.append(_table(["metric", "CV", "CV std", "test", "test interval", "CV and test"], trs,
                          num_cols=(1, 2, 3, 4)))
        if any(r.get("agree") is False for r in cvt):
            out.append("<p>Where CV and test disagree the test rows may differ from the "
                       "training rows (a shift), or the test set is small: check before "
                       "trusting either number.</p>")
    elif (f.metrics or {}).get("cv"):
        cvm, tm = f.metrics.get("cv") or {}, f.metrics.get("test") or {}
        trs = [f"<tr><td>{e(k)}</td>{_score_td(v)}{_score_td(tm.get(k))}</tr>"
               for k, v in sorted(cvm.items(), key=lambda kv: (kv[0] != sel, kv[0]))]
        out.append(_table(["metric", "CV", "test"], trs, num_cols=(1, 2)))
    else:
        out.append(missing("CV against test", f.problems.get("evaluation.json")))

    if test and isinstance(test.get("per_class"), list) and test["per_class"]:
        trs = []
        for p in test["per_class"][:MAX_TABLE_ROWS]:
            if isinstance(p, dict):
                trs.append(f"<tr><td><code>{e(p.get('class'), 80)}</code></td>"
                           f"{_score_td(p.get('precision'))}{_score_td(p.get('recall'))}"
                           f"{_score_td(p.get('f1'))}{_num_td(p.get('support'))}</tr>")
        out.append("<h3>Per class</h3>")
        out.append(_table(["class", "precision", "recall", "F1", "test rows"], trs, "sortable",
                          num_cols=(1, 2, 3, 4)))
    thr = (test or {}).get("threshold")
    if isinstance(thr, dict) and thr:
        out.append("<h3>Decision threshold</h3>")
        out.append(_kv_table([
            ("objective", e(thr.get("objective"))),
            ("threshold chosen on the test set (for reference: not shipped)"
             if thr.get("source") == "test" else "threshold chosen out of fold (shipped)"
             if thr.get("applied", True) else "threshold chosen out of fold (not shipped)",
             e(fmt(thr.get("value")))),
            ("test score at that threshold", e(fmt(thr.get("score")))),
            ("test score at 0.5", e(fmt(thr.get("score_at_default")))),
        ]))
    return "".join(out)


# --- diagnostics ----------------------------------------------------------------------------------
def _confusion(ctx: _Ctx, cm: Any) -> str:
    if not (isinstance(cm, list) and cm and all(isinstance(r, list) for r in cm)):
        return missing("Confusion matrix", "evaluation.json has no test.confusion_matrix")
    k = len(cm)
    labels = [str(c) for c in ctx.files.classes] or [str(i) for i in range(k)]
    if len(labels) != k:
        labels = [str(i) for i in range(k)]
    shown = min(k, MAX_CM_CLASSES)
    head = "".join(f"<th>{e(labels[j], 30)}</th>" for j in range(shown))
    trs = []
    for i in range(shown):
        row = [float(v) if is_number(v) else 0.0 for v in cm[i]]
        total = sum(row) or 1.0
        tds = []
        for j in range(shown):
            v = row[j] if j < len(row) else 0.0
            share = v / total
            alpha = 0.08 + 0.85 * share if v else 0.0
            colour = "#fff" if alpha > 0.55 else "#1d232a"
            base = "0,114,178" if i == j else "213,94,0"
            tds.append(f'<td style="background:rgba({base},{alpha:.2f});color:{colour}">'
                       f"{fmt(int(v))}<small>{_percent(share)}</small></td>")
        trs.append(f"<tr><th>{e(labels[i], 30)}</th>{''.join(tds)}</tr>")
    note = (f'<p class="missing">Showing {shown} of {k} classes.</p>' if k > shown else "")
    return (f'<figure><div class="scroll"><table class="cm"><thead><tr>'
            f'<th class="axis">actual ↓ / predicted →</th>{head}</tr></thead>'
            f"<tbody>{''.join(trs)}</tbody></table></div><figcaption>Confusion matrix of the "
            f"test rows: counts and the share of each actual class (row). Blue: correct; "
            f"orange: errors.</figcaption>{note}</figure>")


def _diagnostics(ctx: _Ctx) -> str:
    f = ctx.files
    if f.evaluation is None:
        return missing("Diagnostics", f.problems.get("evaluation.json"))
    ev = ctx.ev
    curves = ev.get("curves") if isinstance(ev.get("curves"), dict) else {}
    out = []
    if ctx.is_classification:
        out.append(f'<div class="figs">'
                   f'{_confusion(ctx, (ev.get("test") or {}).get("confusion_matrix"))}</div>')
        figs = []
        for key, name, fn, caption in (
                ("roc", "ROC curves", plots.roc_plot,
                 "One curve per class against the rest; AUC in the legend."),
                ("pr", "Precision-recall curves", plots.pr_plot,
                 "Dotted lines: each class's prevalence (a classifier that guesses)."),
                ("calibration", "Calibration curve", plots.calibration_plot,
                 "Points on the diagonal: predicted probabilities match observed frequencies.")):
            cs = [c for c in curves.get(key) or [] if isinstance(c, dict)]
            if not cs:
                figs.append(missing(name, _skipped(f, key)
                                    or f"evaluation.json has no curves.{key}"))
            elif ctx.plots:
                figs.append(_figure(fn(cs, ctx.colours_for(cs)), e(caption)))
            else:
                figs.append(_plots_missing())
        out.append(f'<div class="figs row">{"".join(figs)}</div>')
    elif f.task == "regression":
        res = curves.get("residuals")
        if not isinstance(res, dict) or not res.get("predicted"):
            out.append(missing("Residuals", _skipped(f, "residuals")
                               or "evaluation.json has no curves.residuals"))
        elif ctx.plots:
            n = len(res.get("predicted") or [])
            out.append(_figure(plots.residual_plots(res.get("predicted"), res.get("actual"),
                                                    res.get("residual"), f.target or "target"),
                               e(f"{min(n, plots.MAX_SCATTER_POINTS):,} test rows drawn. A good "
                                 f"model's points hug the diagonal, its residuals a flat band "
                                 f"around zero."), alt="predicted against actual; residuals"))
        else:
            out.append(_plots_missing())
    else:
        out.append(missing("Diagnostics", "the task is unknown"))
    return "".join(out)


# --- learning curve and bias/variance -------------------------------------------------------------
def _bv_table(ctx: _Ctx, models: list[dict[str, Any]], gib: bool, judged: str) -> str:
    """Training against validation score per model: the chosen, the best few and the baseline
    in view, every model behind "show all"."""
    def val_key(m: dict[str, Any]) -> tuple[int, float]:
        va = m.get("validation")
        return (0, -float(va) if gib else float(va)) if is_number(va) else (1, 0.0)

    ranked = sorted(models, key=val_key)
    chosen = ctx.chosen_ids() | ({judged} if judged else set())
    baselines = {str(r.get("model")) for r in ctx.files.leaderboard or []
                 if origin_kind(r.get("origin")) == "baseline"}

    def row(m: dict[str, Any]) -> str:
        tr, va = m.get("train"), m.get("validation")
        gap = m.get("gap")
        if not is_number(gap) and is_number(tr) and is_number(va):
            gap = tr - va if gib else va - tr
        name = str(m.get("model"))
        mark = " ★" if judged and name == judged else ""
        cls = ' class="chosen"' if name in chosen else ""
        return (f'<tr{cls}><td class="model"><code>{e(name, 80)}</code>{mark}</td>'
                f"{_score_td(tr)}{_score_td(va)}{_score_td(gap)}</tr>")

    header = ["model", "training score", "validation score", "gap"]
    shown = ranked[:MAX_BOARD_ROWS]
    if len(shown) <= MAX_BV_TOP + BOARD_SLACK:
        top, listed = shown, ""
    else:
        top = [m for i, m in enumerate(shown)
               if i < MAX_BV_TOP or str(m.get("model")) in chosen
               or str(m.get("model")) in baselines or "baseline" in str(m.get("model"))]
        words = [f"the best {MAX_BV_TOP} by validation score"]
        if chosen:
            words.append("the chosen model")
        if any(str(m.get("model")) in baselines or "baseline" in str(m.get("model"))
               for m in top[MAX_BV_TOP:]):
            words.append("the baseline")
        listed = f" Listed: {_and(words)}."
    out = [_table(header, [row(m) for m in top], num_cols=(1, 2, 3)),
           "<p>Scores are cross-validated; the gap is how much better each model does on the "
           "rows it was trained on" + (", ★ the model the verdict judges" if judged else "")
           + "." + listed + "</p>"]
    if len(top) < len(shown):
        out.append(f"<details><summary>Show all {len(shown)} models</summary>"
                   + _table(header, [row(m) for m in shown], "sortable", num_cols=(1, 2, 3))
                   + "</details>")
    if len(ranked) > len(shown):
        out.append(f'<p class="missing">{len(ranked) - len(shown)} more models are in '
                   f"evaluation.json.</p>")
    return "".join(out)


def _learning(ctx: _Ctx) -> str:
    f = ctx.files
    if f.evaluation is None:
        return missing("Learning curve and bias/variance", f.problems.get("evaluation.json"))
    out = []
    bv = ctx.ev.get("bias_variance")
    if isinstance(bv, dict) and bv:
        verdict = str(bv.get("verdict") or "—")
        cls = "b-ok" if verdict == "fine" else "b-warning" if verdict in (
            "overfitting", "underfitting") else "b-muted"
        out.append(f'<p class="verdict">Verdict: <span class="badge {cls}">{e(verdict)}</span> '
                   f"{e(bv.get('reason'))}</p>")
        models = [m for m in bv.get("models") or [] if isinstance(m, dict)]
        gib = bv.get("greater_is_better")
        if not isinstance(gib, bool):
            gib = f.greater_is_better is not False
        judged = str(bv.get("chosen") or "")
        if models:
            out.append(_bv_table(ctx, models, gib, judged))
    else:
        out.append(missing("The bias/variance verdict", _skipped(f, "bias_variance")
                           or "evaluation.json has no bias_variance"))
    lc = ctx.ev.get("learning_curve")
    pts = [p for p in (lc or {}).get("points") or [] if isinstance(p, dict)] \
        if isinstance(lc, dict) else []
    if pts:
        if ctx.plots:
            metric = str(lc.get("metric") or f.metric or "score")
            out.append(_figure(plots.learning_curve_plot(pts, metric),
                               "A wide gap between the curves means variance (more rows or more "
                               "regularisation help); two low curves mean bias."))
        else:
            out.append(_plots_missing())
    else:
        out.append(missing("The learning curve", _skipped(f, "learning_curve")
                           or "evaluation.json has no learning_curve"))
    return "".join(out)


# --- importance -----------------------------------------------------------------------------------
def _importance(ctx: _Ctx) -> str:
    f = ctx.files
    if f.evaluation is None:
        return missing("Feature importance", f.problems.get("evaluation.json"))
    out = []
    details = ""
    imp = ctx.ev.get("importance")
    feats = [x for x in (imp or {}).get("features") or [] if isinstance(x, dict)] \
        if isinstance(imp, dict) else []
    figs = []
    if feats:
        feats = sorted(feats, key=lambda x: -(x["mean"] if is_number(x.get("mean")) else -1e300))
        top = feats[:MAX_FEATURES_PLOT]
        metric = str(imp.get("metric") or f.metric or "score")
        method = str(imp.get("method") or "permutation")
        caption = (f"{method.capitalize()} importance: how much test {metric} worsens when a "
                   f"feature's values are shuffled ({fmt(imp.get('n_repeats'))} repeats, ± 1 "
                   f"std). Near zero or below: the model barely uses it.")
        if ctx.plots:
            figs.append(_figure(plots.importance_plot(
                [str(x.get("feature")) for x in top], [x.get("mean") for x in top],
                [x.get("std") for x in top], f"{plots.mpl_text(method).capitalize()} importance",
                f"worsening of {metric}", plots.PALETTE[0], "importance"), e(caption)))
        else:
            figs.append(_plots_missing())
        trs = [f"<tr><td><code>{e(x.get('feature'), 80)}</code></td>{_num_td(x.get('mean'))}"
               f"{_num_td(x.get('std'))}</tr>" for x in feats[:MAX_COLUMN_ROWS]]
        table = _table(["feature", "importance", "std"], trs, "sortable", num_cols=(1, 2))
        details = (f"<details><summary>{len(feats)} features, as a table</summary>{table}"
                   f"</details>")
    else:
        figs.append(missing("Permutation importance", _skipped(f, "importance")
                            or "evaluation.json has no importance"))
    shap = ctx.ev.get("shap")
    sfeats = [x for x in (shap or {}).get("features") or [] if isinstance(x, dict)] \
        if isinstance(shap, dict) else []
    if sfeats:
        sfeats = sorted(sfeats, key=lambda x: -(x.get("mean_abs") if is_number(x.get("mean_abs"))
                                                else -1e300))
        top = sfeats[:MAX_FEATURES_PLOT]
        if ctx.plots:
            figs.append(_figure(plots.importance_plot(
                [str(x.get("feature")) for x in top], [x.get("mean_abs") for x in top], None,
                "SHAP", "mean |SHAP value|", plots.PALETTE[2], "shap"),
                e(f"Mean absolute SHAP value over {fmt(shap.get('n_rows'))} test rows"
                  + (f" ({shap['output']})" if shap.get("output") else "") + ".")))
        else:
            figs.append(_plots_missing())
    else:
        figs.append(missing("SHAP values", _skipped(f, "shap") or "evaluation.json has no shap"))
    out.append(f'<div class="figs row">{"".join(figs)}</div>{details}')
    return "".join(out)


# --- projection -----------------------------------------------------------------------------------
def _projection(ctx: _Ctx) -> str:
    f = ctx.files
    if f.evaluation is None:
        return missing("The 2-D view", f.problems.get("evaluation.json"))
    pr = ctx.ev.get("projection")
    if not isinstance(pr, dict) or not pr.get("x") or not pr.get("y"):
        return missing("The 2-D view", _skipped(f, "projection")
                       or "evaluation.json has no projection")
    if not ctx.plots:
        return _plots_missing()
    method = str(pr.get("method") or "projection")
    pretty = {"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}.get(method.lower(), method)
    ev = pr.get("explained_variance") or []
    names = []
    for i in range(2):
        if method.lower() == "pca":
            name = f"PCA component {i + 1}"
        else:
            name = f"{pretty} dimension {i + 1}"
        if i < len(ev) and is_number(ev[i]):
            name += f" ({_percent(ev[i])} of variance)"
        names.append(name)
    labels = pr.get("label") if isinstance(pr.get("label"), list) else None
    continuous = f.task == "regression"
    n = min(len(pr["x"]), len(pr["y"]))
    img = plots.projection_plot(pr["x"], pr["y"], labels, f.classes, continuous,
                                f"The rows in two dimensions ({plots.mpl_text(pretty)})",
                                (names[0], names[1]))
    colour_by = "the target value" if continuous else "the class"
    hint = ("t-SNE keeps neighbours together; distances between far-apart groups mean little."
            if method.lower() == "tsne" else
            "Rows that overlap here may still separate in the full feature space.")
    return _figure(img, e(f"{min(n, plots.MAX_SCATTER_POINTS):,} rows drawn, coloured by "
                          f"{colour_by}. {hint}"), alt="2-D projection of the rows")


# --- search history -------------------------------------------------------------------------------
_TRIAL_COLUMNS = ("trial", "trial_number", "number", "trial_id")
_TIME_COLUMNS = ("finished_s", "end_s", "completed_s", "elapsed_s", "started_s", "start_s",
                 "time_s")


def _seconds_since_start(rows: list[dict[str, Any]]) -> list[float] | None:
    """Seconds from the first trial's start to each trial's completion (ISO timestamps)."""
    from datetime import datetime

    def parse(v: Any) -> float | None:
        try:
            return datetime.fromisoformat(str(v)).timestamp() if v else None
        except ValueError:
            return None

    starts = [t for t in (parse(r.get("started")) for r in rows) if t is not None]
    ends = [parse(r.get("completed")) for r in rows]
    if not any(t is not None for t in ends):
        return None
    t0 = min(starts) if starts else min(t for t in ends if t is not None)
    return [t - t0 if t is not None else float("nan") for t in ends]


def search_rows(files: RunFiles) -> list[dict[str, Any]]:
    return [r for r in files.leaderboard or [] if origin_kind(r.get("origin")) == "search trial"]


def _search(ctx: _Ctx) -> str:
    f = ctx.files
    if f.leaderboard is None:
        return missing("The search history", f.problems.get("leaderboard.csv"))
    rows = search_rows(f)
    if not rows:
        return ("<p>No search in this run: every candidate came from the portfolio of default "
                "configurations.</p>")
    cols = f.leaderboard_columns
    tcol = next((c for c in _TRIAL_COLUMNS if c in cols), None)
    trial = []
    for i, r in enumerate(rows):
        v = r.get(tcol) if tcol else None
        if not is_number(v):
            v = trailing_int(r.get("model"))
        trial.append(float(v) if v is not None else float(i))
    scol = next((c for c in _TIME_COLUMNS if c in cols), None)
    seconds = None
    time_label = "seconds since the fit started"
    if scol:
        seconds = [float(r[scol]) if is_number(r.get(scol)) else float("nan") for r in rows]
    elif "completed" in cols:
        seconds = _seconds_since_start(rows)
        time_label = "seconds since the search started"
    cv, _, _ = _score_columns(f)
    scores = [float(r[cv]) if cv and is_number(r.get(cv)) else float("nan") for r in rows]
    gib = f.greater_is_better if f.greater_is_better is not None else True
    finite = [(s, t, r) for s, t, r in zip(scores, trial, rows, strict=True) if s == s]
    out = [f"<p>{len(rows)} search trials"]
    if finite:
        best = (max if gib else min)(finite, key=lambda x: x[0])
        out.append(f"; the best, <code>{e(best[2].get('model'), 80)}</code> (trial "
                   f"{int(best[1])}), scored {e(fmt_score(best[0]))} in CV "
                   f"{e(cv[3:] if cv else '')}")
    unfinished = Counter(_status(r) for r in rows if _status(r) != "ok")
    if unfinished:
        counts = ", ".join(f"{n} {s}" for s, n in unfinished.most_common())
        out.append(f"; {sum(unfinished.values())} did not finish ({e(counts)})")
    out.append(".</p>")
    if (f.path / "study").is_dir():
        out.append("<p>The trial store is in <code>study/</code>: a later fit can resume it.</p>")
    if ctx.plots and finite:
        out.append(_figure(plots.search_plot(trial, seconds, scores, gib, cv[3:] if cv else "",
                                             time_label),
                           "Each point is one trial's cross-validated score; the line is the "
                           "best score found so far."))
    elif not ctx.plots:
        out.append(_plots_missing())
    return "".join(out)


# --- notes and timings ----------------------------------------------------------------------------
_OPTIONAL_FILES = ("audit.json", "evaluation.json", "leaderboard.csv", "oof_predictions.npz",
                   "test_predictions.npz")


def _notes(ctx: _Ctx) -> str:
    f = ctx.files
    met = f.metrics or {}
    out = []
    notes = [n for n in met.get("notes") or [] if n]
    if notes:
        out.append("<h3>Notes from the fit</h3><ul>"
                   + "".join(f"<li>{e(n)}</li>" for n in notes[:MAX_TABLE_ROWS]) + "</ul>")
    else:
        out.append("<p>The fit recorded no notes.</p>")
    ev_notes = []
    for key, part in ctx.ev.items():
        if isinstance(part, dict) and isinstance(part.get("notes"), list):
            ev_notes += [(key, n) for n in part["notes"] if n]
    if ev_notes:
        out.append("<h3>Notes from the evaluation</h3><ul>"
                   + "".join(f"<li><code>{e(k)}</code>: {e(n)}</li>"
                             for k, n in ev_notes[:MAX_TABLE_ROWS]) + "</ul>")
    skipped = ctx.ev.get("skipped")
    if isinstance(skipped, dict) and skipped:
        out.append("<h3>Evaluation parts skipped</h3><ul>"
                   + "".join(f"<li><code>{e(k)}</code>: {e(v)}</li>" for k, v in skipped.items())
                   + "</ul>")
    timings = met.get("timings_s")
    out.append("<h3>Timings</h3>")
    if isinstance(timings, dict) and timings:
        stages = [(str(k), float(v)) for k, v in timings.items() if is_number(v) and v >= 0]
        total = sum(v for _, v in stages)
        man = f.manifest or {}
        limit = man.get("time_limit_s", (f.config or {}).get("time_limit"))
        elapsed = man.get("elapsed_s")
        trs = [f"<tr><td>{e(k)}</td>{_num_td(v, fmt_seconds(v))}"
               f"{_num_td(v / total if total else None, _percent(v / total) if total else '—')}"
               f"</tr>" for k, v in stages]
        trs.append(f"<tr><th>all stages</th>{_num_td(total, fmt_seconds(total))}<td></td></tr>")
        table = _table(["stage", "time", "share"], trs, num_cols=(1, 2))
        lim = []
        if is_number(elapsed):
            lim.append(f"whole fit {fmt_seconds(elapsed)}")
        if is_number(limit):
            lim.append(f"time limit {fmt_seconds(limit)}")
        lim_html = f"<p>{e('; '.join(lim))}.</p>" if lim else ""
        fig = _figure(plots.timing_bars(stages)) if ctx.plots and total > 0 else ""
        out.append(f'<div class="figs"><div>{table}{lim_html}</div>{fig}</div>')
    else:
        out.append(missing("Timings", "metrics.json has no timings_s"))
    absent = [n for n in _OPTIONAL_FILES if n in f.problems]
    if absent:
        out.append("<h3>Files this report could not use</h3><ul>"
                   + "".join(f"<li>{e(f.problems[n])}</li>" for n in absent) + "</ul>")
    return "".join(out)


_BUILDERS: dict[str, Callable[[_Ctx], str]] = {
    "data": _data, "audit": _audit, "split": _split, "leaderboard": _leaderboard,
    "model": _model, "test": _test, "diagnostics": _diagnostics, "learning": _learning,
    "importance": _importance, "projection": _projection, "search": _search, "notes": _notes,
}


def _section(ctx: _Ctx, sid: str, title: str) -> str:
    try:
        body = _BUILDERS[sid](ctx)
    except Exception as exc:  # one odd file must not cost the whole report
        log.warning("report section %r failed: %s: %s", sid, type(exc).__name__, exc)
        body = (f'<p class="section-error">This section could not be drawn: '
                f"{e(type(exc).__name__)}: {e(exc, 300)}.</p>")
    return f'<section id="{sid}"><h2>{e(title)}</h2>{body}</section>'


def _guarded(fn: Callable[[Any], str], arg: Any) -> str:
    try:
        return fn(arg)
    except Exception as exc:  # the header and footer are summaries: never fatal
        log.warning("report %s failed: %s: %s", fn.__name__.strip("_"), type(exc).__name__, exc)
        return ""


def _footer(files: RunFiles) -> str:
    versions = run_versions(files)
    parts = ["Written by mlsmith from the files of the run directory"]
    out_path = (files.config or {}).get("out")
    if out_path:
        parts.append(f" <code>{e(out_path)}</code>")
    parts.append(".")
    if isinstance(versions, dict) and versions:
        parts.append(" Versions: " + e(", ".join(f"{k} {v}" for k, v in versions.items())) + ".")
    return f"<footer>{''.join(parts)}</footer>"


def render_report(run_dir: str | os.PathLike[str]) -> str:
    """The report of a run directory as one self-contained HTML document.

    Parameters
    ----------
    run_dir : path
        A run directory, or a fit's staging folder (``manifest.json`` is not needed). Any file
        other than the folder may be missing: its sections then say "not recorded in this run".

    Returns
    -------
    str
        HTML with inline CSS, SVG and PNG data URIs; it loads nothing from anywhere.

    Raises
    ------
    RunDirError
        When ``run_dir`` is not a folder holding at least one of ``config.json``,
        ``schema.json``, ``metrics.json``.

    Examples
    --------
    >>> from mlsmith.report import render_report
    >>> html = render_report("runs/penguins")  # doctest: +SKIP
    """
    files = read_run(run_dir)
    ctx = _Ctx(files=files, plots=plots.available())
    body = "".join(_section(ctx, sid, title) for sid, title in SECTIONS)
    toc = "".join(f'<a href="#{sid}">{e(title)}</a>' for sid, title in SECTIONS)
    title = f"mlsmith report: {files.target or 'run'}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta name=\"color-scheme\" content=\"light\">"
        f"<title>{e(title)}</title><style>{CSS}</style></head>"
        f'<body><div class="layout"><nav class="toc"><b>Contents</b>{toc}</nav>'
        f"<main>{_guarded(_header, ctx)}{body}{_guarded(_footer, files)}</main></div>"
        f"<script>{JS}</script></body></html>\n"
    )


def write_report(run_dir: str | os.PathLike[str],
                 out: str | os.PathLike[str] | None = None) -> Path:
    """Render the report of ``run_dir`` and write it atomically.

    Parameters
    ----------
    run_dir : path
        The run directory (or a fit's staging folder).
    out : path, optional
        The HTML file to write; default ``run_dir/report.html``.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> from mlsmith.report import write_report
    >>> write_report("runs/penguins")  # doctest: +SKIP
    PosixPath('runs/penguins/report.html')
    """
    text = render_report(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    return atomic_write_text(target, text)
