"""Does the search pay? mlsmith with its search against the default portfolio alone.

Two suite runs of mlsmith alone at the same budget, one with the default settings and one with
``MLSMITH_BENCH_STRATEGY=none`` (the portfolio, its ensemble and nothing else), each writing
its own raw CSV::

    MLSMITH_BENCH_STRATEGY=none python benchmarks/run_suite.py --systems mlsmith --budget 300 \\
        --raw benchmarks/work/portfolio.csv --out benchmarks/work/portfolio.md
    python benchmarks/run_suite.py --systems mlsmith --budget 300 \\
        --raw benchmarks/work/search.csv --out benchmarks/work/search.md
    python benchmarks/search_vs_portfolio.py benchmarks/work/search.csv \\
        benchmarks/work/portfolio.csv --budget 300

The two may run at the same time, each pinned to its own core (``taskset -c 0`` / ``-c 1``):
then each fit has one core, the same for both, and the comparison takes half the time.

Per dataset (error: 1 - AUC, log loss or RMSE, as in BENCHMARK.md), the normalised score of
each arm is ``best error of the two / its error`` (1 for the better arm, lower for the other; a
failed run scores 0). The target (issue: search engine) is a higher mean normalised score with
the search, and every run within the time guarantee (wall <= 1.05 x budget + 5 s).

Writes a block between ``<!-- search-vs-portfolio:begin -->`` and ``...:end -->`` of
benchmarks/RESULTS.md (``--no-write`` to print only).
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import statistics
import time
from pathlib import Path

from _results import write_section  # benchmarks/ is the script's folder

BENCH = Path(__file__).resolve().parent
TIE = 1e-3  # relative difference within which two errors tie (BENCHMARK.md)


def _latest(path: Path, run_id: str | None) -> tuple[str, dict[str, dict[str, str]]]:
    """The rows of one run of a raw CSV, by dataset (mlsmith, seed 0 first)."""
    with open(path) as fh:
        rows = [r for r in csv.DictReader(fh) if r["system"] == "mlsmith"]
    if not rows:
        raise SystemExit(f"{path}: no mlsmith rows")
    run = run_id or rows[-1]["run_id"]
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        if r["run_id"] == run:
            out.setdefault(f"{r['dataset']} s{r['seed']}", r)
    return run, out


def _error(r: dict[str, str] | None) -> float:
    if r is None or r.get("status") != "ok" or r.get("scored") not in ("True", "true", "1"):
        return math.nan
    try:
        return float(r["error"])
    except (KeyError, ValueError):
        return math.nan


def _normalised(error: float, best: float) -> float:
    """``best / error``: 1 for the better arm, 0 for a failed run."""
    if not math.isfinite(error):
        return 0.0
    return 1.0 if error == best else (best / error if error > 0 else 1.0)


def compare(search: dict[str, dict[str, str]], portfolio: dict[str, dict[str, str]],
            budget: float) -> tuple[list[list[str]], dict[str, float]]:
    rows: list[list[str]] = []
    norm_s: list[float] = []
    norm_p: list[float] = []
    log_rel_s: list[float] = []  # log of error / best error of the two (BENCHMARK.md)
    log_rel_p: list[float] = []
    wins = ties = losses = 0
    limit = 1.05 * budget + 5.0
    worst_wall = 0.0
    over = []
    for case in sorted(set(search) | set(portfolio)):
        rs, rp = search.get(case), portfolio.get(case)
        scored = [r for r in (rs, rp) if r is not None and r.get("scored") in ("True", "true", "1")]
        for r in (rs, rp):
            if r is not None and r.get("wall_s"):
                wall = float(r["wall_s"])
                worst_wall = max(worst_wall, wall / budget)
                if wall > limit:
                    over.append(f"{case} {wall:.0f}s")
        if rs is None or rp is None:  # one arm has not run it (yet): nothing to compare
            rows.append([case, (rs or rp)["metric"], "-", "-", "-", "-", "not run by both"])
            continue
        if not scored:
            rows.append([case, rs["metric"], "-", "-", "-", "-", "not scored"])
            continue
        es, ep = _error(rs), _error(rp)
        finite = [e for e in (es, ep) if math.isfinite(e)]
        best = min(finite) if finite else math.nan

        ns, np_ = _normalised(es, best), _normalised(ep, best)
        norm_s.append(ns)
        norm_p.append(np_)
        for e, logs in ((es, log_rel_s), (ep, log_rel_p)):
            if math.isfinite(e) and best > 0:
                logs.append(math.log(e / best))
            elif math.isfinite(e):
                logs.append(0.0 if e == best else math.log(1.5))
        if math.isfinite(es) and math.isfinite(ep) and abs(es - ep) <= TIE * max(es, ep):
            ties += 1
            verdict = "tie"
        elif ns > np_:
            wins += 1
            verdict = "search"
        else:
            losses += 1
            verdict = "portfolio"
        rows.append([case, (rs or rp)["metric"], f"{es:.5g}", f"{ep:.5g}", f"{ns:.4f}",
                     f"{np_:.4f}", verdict])
    summary = {
        "n": len(norm_s),
        "mean_search": statistics.fmean(norm_s) if norm_s else math.nan,
        "mean_portfolio": statistics.fmean(norm_p) if norm_p else math.nan,
        "geo_search": math.exp(statistics.fmean(log_rel_s)) if log_rel_s else math.nan,
        "geo_portfolio": math.exp(statistics.fmean(log_rel_p)) if log_rel_p else math.nan,
        "wins": wins, "ties": ties, "losses": losses,
        "worst_wall": worst_wall, "over": over,
    }
    return rows, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("search", type=Path, help="raw CSV of the run with the search (default)")
    p.add_argument("portfolio", type=Path, help="raw CSV of the MLSMITH_BENCH_STRATEGY=none run")
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--search-run", default=None, help="run id (default: the CSV's latest)")
    p.add_argument("--portfolio-run", default=None, help="run id (default: the CSV's latest)")
    p.add_argument("--command", default="", help="how the two runs were started, for the record")
    p.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)

    run_s, search = _latest(args.search, args.search_run)
    run_p, portfolio = _latest(args.portfolio, args.portfolio_run)
    rows, s = compare(search, portfolio, args.budget)
    met = s["mean_search"] > s["mean_portfolio"]
    in_time = not s["over"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'} "
        f"({platform.machine()}), runs {run_s} (search) and {run_p} (portfolio alone), "
        f"{args.budget:.0f} s per dataset.",
        "",
    ]
    if args.command:
        lines += [f"Command: `{args.command}`", ""]
    lines += [
        "| dataset | metric | error, search | error, portfolio | norm., search | "
        "norm., portfolio | better |",
        "|---|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"Mean normalised score over {s['n']} datasets: search **{s['mean_search']:.4f}**, "
        f"portfolio alone **{s['mean_portfolio']:.4f}**; search better on {s['wins']}, tie "
        f"(within 0.1%) on {s['ties']}, worse on {s['losses']}. Geometric mean of the relative "
        f"errors (error / the better arm's): search {s['geo_search']:.4f}, portfolio alone "
        f"{s['geo_portfolio']:.4f}.",
        f"Longest run: {s['worst_wall']:.3f} x the budget"
        + (f"; over the limit: {', '.join(s['over'])}" if s["over"] else
           " (limit 1.05 x budget + 5 s: every run within it)") + ".",
        f"Target (search beats the portfolio alone, within the time guarantee): "
        f"**{'met' if met and in_time else 'NOT met'}**.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("search-vs-portfolio",
                      f"## Search against the portfolio alone at {args.budget:.0f} s\n\n{text}",
                      args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
