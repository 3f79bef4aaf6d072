"""Search overhead on the public suite, from the runs a suite benchmark kept.

Run the suite with ``MLSMITH_BENCH_KEEP=benchmarks/work/kept`` (``run_suite.py`` passes the
environment to each mlsmith run, which then copies its metrics.json and leaderboard there), then:

    .venv/bin/python benchmarks/search_overhead.py benchmarks/work/kept --budget 60

Each run's metrics.json records ``overhead_s``: for the portfolio stage and for the search
stage, the wall time of the stage less the time the worker spent inside cross-validation calls
(fitting and scoring models). That is everything else the search costs: planning and cost
estimates, sampling new configurations, the study store, pruning decisions, handing tasks to the
worker process. The target (issue: search engine) is at most 5% of the budget at 60 s.

Writes a block between ``<!-- overhead:begin -->`` and ``<!-- overhead:end -->`` in
benchmarks/RESULTS.md (``--no-write`` to print only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _results import write_section  # benchmarks/ is the script's folder

BENCH = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kept", type=Path, help="folder of kept runs (MLSMITH_BENCH_KEEP)")
    p.add_argument("--budget", type=float, default=60.0)
    p.add_argument("--command", default="", help="the suite command, for the record")
    p.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)

    rows = []
    for folder in sorted(args.kept.iterdir()):
        mfile = folder / "metrics.json"
        if not mfile.exists():
            continue
        m = json.loads(mfile.read_text())
        manifest = json.loads((folder / "manifest.json").read_text()) \
            if (folder / "manifest.json").exists() else {}
        over = dict(m.get("overhead_s") or {})
        if "version" not in over and (folder / "leaderboard.csv").exists():
            # runs before overhead version 2 counted a candidate killed at its time limit as
            # overhead: its time was spent fitting, so it is taken out here
            import csv

            with open(folder / "leaderboard.csv") as fh:
                killed = sum(float(r["cv_time_s"] or 0) for r in csv.DictReader(fh)
                             if r["status"] == "stopped" and r["origin"] != "search:tpe")
            if "portfolio" in over:
                over["portfolio"] = max(float(over["portfolio"]) - killed, 0.0)
        search = m.get("search") or {}
        t = m.get("timings_s", {})
        name = folder.name.split("__")[1] if "__" in folder.name else folder.name
        total = float(over.get("portfolio", 0.0)) + float(over.get("search", 0.0))
        rows.append({
            "dataset": name,
            "limit": float(manifest.get("time_limit_s") or args.budget),
            "elapsed": float(manifest.get("elapsed_s", float("nan"))),
            "portfolio_s": t.get("search", float("nan")),
            "tune_s": t.get("tune", 0.0),
            "trials": search.get("trials", 0),
            "completed": search.get("completed", 0),
            "over_portfolio": float(over.get("portfolio", float("nan"))),
            "over_search": float(over.get("search", 0.0)),
            "over_total": total,
        })
    if not rows:
        print(f"no kept runs under {args.kept}", file=sys.stderr)
        return 2
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; runs kept by "
        f"`MLSMITH_BENCH_KEEP` during the suite"
        + (f" (`{args.command}`)" if args.command else "") + "; the fit's own time limit is the "
        "suite budget less its margin.",
        "",
        "| dataset | fit limit s | elapsed s | portfolio s | search s | trials (complete) | "
        "overhead portfolio s | overhead search s | overhead / budget |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['limit']:.1f} | {r['elapsed']:.1f} | {r['portfolio_s']:.1f} "
            f"| {r['tune_s']:.1f} | {r['trials']} ({r['completed']}) | {r['over_portfolio']:.2f} "
            f"| {r['over_search']:.2f} | {100 * r['over_total'] / args.budget:.1f}% |")
    worst = max(rows, key=lambda r: r["over_total"])
    mean = sum(r["over_total"] for r in rows) / len(rows)
    ok = all(r["over_total"] <= 0.05 * args.budget for r in rows)
    lines += ["", f"Mean overhead {mean:.2f} s ({100 * mean / args.budget:.1f}% of {args.budget:.0f}"
              f" s); largest {worst['over_total']:.2f} s on {worst['dataset']} "
              f"({100 * worst['over_total'] / args.budget:.1f}%). Target <= 5% on every "
              f"dataset: {'met' if ok else 'NOT met'}."]
    block = "\n".join(lines)
    print(block)
    if not args.no_write:
        write_section("overhead", f"## Search overhead at {args.budget:.0f} s\n\n{block}", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
