"""The report's figures: matplotlib, drawn on ``Figure`` objects (no pyplot, no global backend).

Line plots are returned as inline SVG (text kept as text, so it stays small and sharp), dense
scatters as PNG data URIs. Every function takes plain numbers, caps what it draws
(:data:`MAX_LINE_POINTS` per line, :data:`MAX_SCATTER_POINTS` per scatter) and gives class ``i``
the colour ``PALETTE[i]`` in every figure. Text that comes from the data goes through
:func:`mpl_text`, so a ``$`` in a column name is not read as mathtext; matplotlib escapes the
rest when it writes SVG.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["PALETTE", "available", "class_colour", "mpl_text", "MAX_LINE_POINTS",
           "MAX_SCATTER_POINTS"]

#: Okabe-Ito (colour-blind safe), then Paul Tol's muted colours for more classes
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#882255",
           "#44AA99", "#999933", "#332288", "#AA4499", "#117733")
TRAIN_COLOUR = "#0072B2"
VALID_COLOUR = "#D55E00"
NEUTRAL = "#8A8A8A"
MAX_LINE_POINTS = 400
MAX_SCATTER_POINTS = 2000
MAX_LEGEND = 12
MAX_BARS = 25
_LABEL_CHARS = 40


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def class_colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def mpl_text(s: Any, limit: int = _LABEL_CHARS) -> str:
    """Data text made safe for a matplotlib label: short, and ``$`` not taken as mathtext."""
    text = str(s)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("$", r"\$")


@contextmanager
def _style():
    import matplotlib as mpl

    rc = {
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
        "xtick.labelsize": 8, "ytick.labelsize": 8,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
        "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.color": "#E6E6E6", "grid.linewidth": 0.6,
        "axes.edgecolor": "#666666", "axes.titleweight": "bold", "axes.titlelocation": "left",
        "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
        "legend.frameon": False, "svg.fonttype": "none", "svg.hashsalt": "mlsmith",
        "savefig.bbox": "tight", "savefig.pad_inches": 0.08,
        "path.simplify": True,
    }
    with mpl.rc_context(rc), warnings.catch_warnings():
        # a glyph missing from the font, an empty legend: nothing the reader can act on
        warnings.simplefilter("ignore")
        yield


def _figure(width: float = 5.2, height: float = 3.6, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    # no layout engine: savefig's tight bounding box trims the margins, at half the cost
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, ncols, squeeze=False, gridspec_kw={"wspace": 0.32})[0]
    return fig, axes


_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_REF = re.compile(r"#([\w.\-]+)")
_ID = re.compile(r' id="([^"]+)"')


def to_svg(fig: Any, salt: str) -> str:
    """The figure as an ``<svg>`` element to inline in HTML (no XML prolog, no metadata)."""
    import matplotlib as mpl

    buf = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": f"mlsmith-{salt}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = _METADATA.sub("", text)
    # keep only the ids something points at (clip paths, markers): matplotlib names every group
    # figure_1, axes_1, ..., which would repeat across the figures of one page
    used = set(_REF.findall(text))
    text = _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", text)
    return text.strip()


def to_png(fig: Any, dpi: int = 110) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thin(n: int, cap: int = MAX_LINE_POINTS) -> np.ndarray:
    """Indices of at most ``cap`` evenly spaced points of ``n``, the first and last included."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(np.int64))


def sample(n: int, cap: int = MAX_SCATTER_POINTS, seed: int = 0) -> np.ndarray:
    """A fixed random subset of at most ``cap`` of ``n`` indices, in order."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def _floats(values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        arr = np.array([float(v) if isinstance(v, (int, float)) else np.nan for v in values])
    return arr


def _legend(ax: Any, n_more: int = 0, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if n_more > 0:
        from matplotlib.lines import Line2D

        handles = handles + [Line2D([], [], color="none")]
        labels = labels + [f"… and {n_more} more"]
    ax.legend(handles, labels, **kw)


# --- the data at a glance ------------------------------------------------------------------------
def class_counts(labels: Sequence[Any], counts: dict[str, Sequence[int]], target: str) -> str:
    """Stacked horizontal bars of rows per class, one segment per part (train, test)."""
    labels = list(labels)[:MAX_BARS]
    k = len(labels)
    with _style():
        fig, (ax,) = _figure(5.2, max(1.6, 0.32 * k + 0.9))
        left = np.zeros(k)
        shades = {"train": TRAIN_COLOUR, "test": PALETTE[1]}
        ypos = np.arange(k)[::-1]
        for part, values in counts.items():
            v = np.asarray(list(values)[:k], dtype=float)
            ax.barh(ypos, v, left=left, color=shades.get(part, NEUTRAL), label=part, height=0.7)
            left += v
        for y, total in zip(ypos, left, strict=True):
            ax.text(total, y, f" {int(total):,}", va="center", fontsize=8, color="#333333")
        ax.set_yticks(ypos, [mpl_text(x, 24) for x in labels])
        ax.set_xlabel("rows")
        ax.set_title(f"Rows per class of {mpl_text(target)}")
        ax.set_xlim(0, max(left.max(), 1) * 1.15)
        ax.grid(axis="y", visible=False)
        _legend(ax, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)
        return to_svg(fig, "classes")


def value_histogram(parts: dict[str, np.ndarray], target: str) -> str:
    """Histogram of a numeric target, train and test overlaid."""
    with _style():
        fig, (ax,) = _figure(5.2, 2.8)
        finite = [v[np.isfinite(v)] for v in parts.values()]
        allv = np.concatenate(finite) if finite else np.array([0.0])
        bins = np.histogram_bin_edges(allv, bins=min(40, max(10, int(np.sqrt(len(allv))))))
        shades = {"train": TRAIN_COLOUR, "test": PALETTE[1]}
        for (part, _), v in zip(parts.items(), finite, strict=True):
            ax.hist(v, bins=bins, color=shades.get(part, NEUTRAL), alpha=0.75, label=part,
                    histtype="stepfilled", edgecolor="white", linewidth=0.4)
        ax.set_xlabel(mpl_text(target))
        ax.set_ylabel("rows")
        ax.set_title(f"Distribution of {mpl_text(target)}")
        _legend(ax)
        return to_svg(fig, "target")


# --- classification curves -----------------------------------------------------------------------
def _curve_plot(curves: list[dict[str, Any]], xkey: str, ykey: str, score_key: str | None,
                colours: list[str], title: str, xlabel: str, ylabel: str, salt: str,
                diagonal: bool = False, baseline_key: str | None = None) -> str:
    with _style():
        fig, (ax,) = _figure(3.25, 3.4)
        if diagonal:
            ax.plot([0, 1], [0, 1], color=NEUTRAL, linestyle="--", linewidth=0.8,
                    label="chance" if salt == "roc" else "perfectly calibrated")
        shown = 0
        for curve, colour in zip(curves, colours, strict=True):
            x, y = _floats(curve.get(xkey, [])), _floats(curve.get(ykey, []))
            n = min(len(x), len(y))
            if n == 0:
                continue
            idx = thin(n)
            label = mpl_text(curve.get("label", "?"), 28)
            s = curve.get(score_key) if score_key else None
            if isinstance(s, (int, float)) and np.isfinite(s):
                label += f" ({score_key.upper()} {s:.3f})"
            visible = shown < MAX_LEGEND
            ax.plot(x[idx], y[idx], color=colour, linewidth=1.5,
                    marker="o" if salt == "calibration" and len(idx) <= 30 else None,
                    markersize=3,
                    label=label if visible else "_nolegend_",
                    drawstyle="steps-post" if salt == "pr" else "default")
            if baseline_key and isinstance(curve.get(baseline_key), (int, float)) and visible:
                ax.axhline(float(curve[baseline_key]), color=colour, linewidth=0.7,
                           linestyle=":", alpha=0.9)
            shown += 1
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_aspect("equal")
        _legend(ax, n_more=max(0, shown - MAX_LEGEND),
                loc="lower right" if salt == "roc" else "best")
        return to_svg(fig, salt)


def roc_plot(curves: list[dict[str, Any]], colours: list[str]) -> str:
    return _curve_plot(curves, "fpr", "tpr", "auc", colours, "ROC curve (test set)",
                       "false positive rate", "true positive rate", "roc", diagonal=True)


def pr_plot(curves: list[dict[str, Any]], colours: list[str]) -> str:
    return _curve_plot(curves, "recall", "precision", "ap", colours,
                       "Precision-recall curve (test set)", "recall", "precision", "pr",
                       baseline_key="prevalence")


def calibration_plot(curves: list[dict[str, Any]], colours: list[str]) -> str:
    return _curve_plot(curves, "mean_predicted", "fraction_positive", None, colours,
                       "Calibration (test set)", "mean predicted probability",
                       "observed fraction positive", "calibration", diagonal=True)


# --- regression ----------------------------------------------------------------------------------
def residual_plots(predicted: Any, actual: Any, residual: Any, target: str) -> str:
    """Predicted against actual, and residuals against predicted: one PNG, two panels."""
    p, a = _floats(predicted), _floats(actual)
    r = _floats(residual) if residual is not None and len(residual) else a - p
    n = min(len(p), len(a), len(r))
    idx = sample(n)
    p, a, r = p[idx], a[idx], r[idx]
    alpha = 0.7 if len(idx) < 500 else 0.35
    with _style():
        fig, (ax1, ax2) = _figure(9.0, 3.9, ncols=2)
        ax1.scatter(a, p, s=9, alpha=alpha, color=PALETTE[0], linewidths=0)
        finite = np.concatenate([a[np.isfinite(a)], p[np.isfinite(p)]])
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            ax1.plot([lo, hi], [lo, hi], color=NEUTRAL, linestyle="--", linewidth=0.9,
                     label="predicted = actual")
        ax1.set_xlabel(f"actual {mpl_text(target)}")
        ax1.set_ylabel(f"predicted {mpl_text(target)}")
        ax1.set_title("Predicted against actual (test set)")
        _legend(ax1, loc="upper left")
        ax2.scatter(p, r, s=9, alpha=alpha, color=PALETTE[2], linewidths=0)
        ax2.axhline(0.0, color=NEUTRAL, linestyle="--", linewidth=0.9)
        ax2.set_xlabel(f"predicted {mpl_text(target)}")
        ax2.set_ylabel("residual (actual − predicted)")
        ax2.set_title("Residuals (test set)")
        return to_png(fig)


# --- learning curve, importance, projection, search ----------------------------------------------
def learning_curve_plot(points: list[dict[str, Any]], metric: str) -> str:
    pts = sorted((p for p in points if isinstance(p.get("n_train"), (int, float))),
                 key=lambda p: p["n_train"])
    pts = [pts[i] for i in thin(len(pts))]
    marker = "o" if len(pts) <= 30 else None
    n = np.array([float(p["n_train"]) for p in pts])
    tr = _floats([p.get("train", np.nan) for p in pts])
    va = _floats([p.get("validation", np.nan) for p in pts])
    sd = _floats([p.get("validation_std", np.nan) for p in pts])
    with _style():
        fig, (ax,) = _figure(5.2, 3.4)
        ax.plot(n, tr, marker=marker, markersize=4, color=TRAIN_COLOUR, label="training score")
        ax.plot(n, va, marker=marker, markersize=4, color=VALID_COLOUR, label="validation score")
        if np.isfinite(sd).any():
            ax.fill_between(n, va - sd, va + sd, color=VALID_COLOUR, alpha=0.15, linewidth=0,
                            label="validation ± 1 std")
        ax.set_xlabel("training rows")
        ax.set_ylabel(mpl_text(metric))
        ax.set_title(f"Learning curve ({mpl_text(metric)})")
        _legend(ax, loc="best")
        return to_svg(fig, "learning")


def importance_plot(names: list[str], values: list[float], errors: list[float] | None,
                    title: str, xlabel: str, colour: str, salt: str) -> str:
    k = len(names)
    with _style():
        fig, (ax,) = _figure(4.7, max(1.8, 0.26 * k + 0.9))
        ypos = np.arange(k)[::-1]
        err = None
        if errors is not None:
            e = _floats(errors)
            err = np.where(np.isfinite(e), np.abs(e), 0.0)
        ax.barh(ypos, _floats(values), xerr=err, color=colour, height=0.7,
                error_kw={"ecolor": "#444444", "elinewidth": 0.8, "capsize": 2})
        ax.set_yticks(ypos, [mpl_text(x, 32) for x in names])
        ax.axvline(0.0, color="#666666", linewidth=0.6)
        ax.set_xlabel(mpl_text(xlabel, 80))
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        return to_svg(fig, salt)


def projection_plot(x: Any, y: Any, labels: list[Any] | None, classes: list[Any],
                    continuous: bool, title: str, axis_names: tuple[str, str]) -> str:
    xs, ys = _floats(x), _floats(y)
    n = min(len(xs), len(ys))
    idx = sample(n)
    xs, ys = xs[idx], ys[idx]
    alpha = 0.75 if len(idx) < 500 else 0.45
    with _style():
        fig, (ax,) = _figure(6.2, 4.6)
        if labels is not None and len(labels) >= n and n:
            lab = [labels[i] for i in idx]
            if continuous:
                c = _floats(lab)
                sc = ax.scatter(xs, ys, c=c, cmap="viridis", s=10, alpha=alpha, linewidths=0)
                fig.colorbar(sc, ax=ax, label="target", shrink=0.8)
            else:
                order = [str(c) for c in classes]
                keys = [str(v) for v in lab]
                for v in keys:
                    if v not in order:
                        order.append(v)
                keys_arr = np.array(keys, dtype=object)
                for i, cls in enumerate(order):
                    mask = keys_arr == cls
                    if not mask.any():
                        continue
                    ax.scatter(xs[mask], ys[mask], s=10, alpha=alpha, linewidths=0,
                               color=class_colour(i),
                               label=mpl_text(cls, 24) if i < MAX_LEGEND else "_nolegend_")
                _legend(ax, n_more=max(0, len(order) - MAX_LEGEND), loc="best", markerscale=1.8)
        else:
            ax.scatter(xs, ys, s=10, alpha=alpha, color=PALETTE[0], linewidths=0)
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        ax.set_title(title)
        return to_png(fig)


def search_plot(trial: list[float], seconds: list[float] | None, scores: list[float],
                greater_is_better: bool, metric: str,
                time_label: str = "seconds since the fit started") -> str:
    """Score against trial number (and against time when known) with the best so far."""
    t = _floats(trial)
    s = _floats(scores)
    order = np.argsort(t, kind="stable")
    t, s = t[order], s[order]
    sec = _floats(seconds)[order] if seconds is not None else None
    ok = np.isfinite(s)
    best = np.full(len(s), np.nan)
    cur = np.nan
    for i, v in enumerate(s):
        if np.isfinite(v) and (not np.isfinite(cur) or (v > cur if greater_is_better else v < cur)):
            cur = v
        best[i] = cur
    idx = thin(len(s), MAX_SCATTER_POINTS)
    dense = len(idx) > 300
    panels = [("trial", t, "trial number")]
    if sec is not None and np.isfinite(sec).any():
        panels.append(("time", sec, time_label))
    with _style():
        fig, axes = _figure(4.6 * len(panels), 3.4, ncols=len(panels))
        for ax, (_, xs, xlabel) in zip(axes, panels, strict=True):
            sel = idx[ok[idx]]
            ax.plot(xs[idx], best[idx], color=PALETTE[3], linewidth=1.4, drawstyle="steps-post",
                    label="best so far", zorder=2)
            ax.scatter(xs[sel], s[sel], s=8 if dense else 22, color=PALETTE[0],
                       alpha=0.5 if dense else 0.85, linewidths=0, label="trial score", zorder=3)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"CV {mpl_text(metric)}")
            _legend(ax, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)
        axes[0].set_title("Search history", loc="left", pad=18)
        return to_png(fig) if dense else to_svg(fig, "search")


def timing_bars(stages: list[tuple[str, float]]) -> str:
    """One horizontal stacked bar of the fit's stages."""
    with _style():
        fig, (ax,) = _figure(6.4, 1.25)
        left = 0.0
        for i, (name, sec) in enumerate(stages):
            ax.barh([0], [sec], left=left, color=class_colour(i), label=mpl_text(name, 20),
                    height=0.6)
            left += sec
        ax.set_yticks([])
        ax.set_xlabel("seconds")
        ax.grid(visible=False)
        ax.spines["left"].set_visible(False)
        _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=min(len(stages), 8))
        return to_svg(fig, "timings")
