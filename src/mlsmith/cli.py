"""The ``mlsmith`` command: a table of verbs, each parsing its options and calling the library.

Exit codes: 0 success, 2 a user error (one line on stderr, no traceback), 1 a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USER_ERROR)


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return v


def _int_at_least(low: int, words: str) -> Any:
    """An argparse type: a whole number of at least ``low`` (``words`` says so in errors)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be {words}, got {text!r}")
        return v
    return parse


_positive_int = _int_at_least(1, "at least 1")
_non_negative_int = _int_at_least(0, "0 or more")


def _write_table(df: Any, out: str | None) -> None:
    if out is None:
        df.to_csv(sys.stdout, index=False)
        return
    from pathlib import Path

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.name.lower().endswith(".parquet"):
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    tmp.replace(path)


def cmd_fit(args: argparse.Namespace) -> int:
    import mlsmith

    time_limit = args.time_limit
    if time_limit is None and args.trials is None:
        time_limit = 120.0
    run = mlsmith.fit(args.data, target=args.target, time_limit=time_limit, out=args.out,
                      metric=args.metric, task=args.task, test_size=args.test_size, seed=args.seed,
                      models=args.models, folds=args.folds, drop=args.drop or [],
                      ensemble=not args.no_ensemble, strategy=args.strategy, trials=args.trials,
                      jobs=args.jobs, storage=args.storage, tracking_uri=args.tracking_uri,
                      track=False if args.no_tracking else None, allow=args.allow or [],
                      time_column=args.time_column, report=not args.no_report,
                      backend=args.backend, ray_address=args.ray_address,
                      patience=args.patience, quiet=args.quiet)
    if not args.quiet:
        _print_summary(run)
    else:
        print(run.path)
    return 0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:.4f}"
    return str(v)


def _console() -> Any:
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=120)


def _print_summary(run: Any, n: int = 15) -> None:
    from rich.table import Table

    console = _console()
    board = run.leaderboard()
    metric = run.metric
    score_col = f"cv_{metric}"
    table = Table(title=f"Leaderboard ({metric}, {run.metrics['rows']['folds']}-fold CV)")
    for c in ("model", "status", f"cv {metric}", "train", "fit s", "predict s", "note"):
        table.add_column(c, overflow="ellipsis", no_wrap=c == "note", max_width=40 if c == "note" else None)
    for _, row in board.head(n).iterrows():
        ok = row["status"] == "ok"
        cv = (f"{_fmt(row[score_col])} ± {_fmt(row[score_col + '_std'])}"
              if ok and row[score_col + "_std"] == row[score_col + "_std"] else _fmt(row[score_col]))
        note = row["note"] if isinstance(row["note"], str) else ""
        table.add_row(str(row["model"]), str(row["status"]), cv, _fmt(row[f"train_{metric}"]),
                      _fmt(row["fit_time_s"]), _fmt(row["predict_time_s"]),
                      note.removeprefix("skipped: "))
    console.print(table)
    chosen = run.metrics["chosen"]
    console.print(f"[bold]Chosen:[/bold] {chosen['description']}")
    if run.metrics.get("test"):
        t = Table(title=f"Test set ({run.metrics['rows']['test']} rows, scored once)")
        t.add_column("metric")
        t.add_column("value")
        for k, v in run.metrics["test"].items():
            t.add_row(k + (" *" if k == metric else ""), _fmt(v))
        console.print(t)
    else:
        console.print("No test set held out (--test-size 0): scores above are cross-validated.")
    console.print(f"[bold]Run directory:[/bold] {run.path}")


def audit_table(data: Any, target: str, *, task: str | None = None, drop: Sequence[str] = (),
                allow: Sequence[str] = (), time_column: str | None = None, folds: int = 5,
                seed: int = 0) -> Any:
    """Load ``data`` and audit it as a fit would (the same loading, schema and checks)."""
    from mlsmith.audit import audit
    from mlsmith.data import load_table
    from mlsmith.errors import ColumnNotFoundError, did_you_mean
    from mlsmith.schema import coerce_frame, infer_schema

    df = load_table(data)
    if target not in df.columns:
        raise ColumnNotFoundError(f"target column {target!r} not found."
                                  + did_you_mean(target, df.columns))
    df = df.loc[df[target].notna()]
    df, _ = coerce_frame(df, exclude=(target,))
    schema, _ = infer_schema(df, target, task=task, drop=tuple(drop))
    return audit(df, target, schema, allow=tuple(allow), time_column=time_column, n_folds=folds,
                 seed=seed, time_budget=60.0)


def cmd_audit(args: argparse.Namespace) -> int:
    report = audit_table(args.data, args.target, task=args.task, drop=args.drop or [],
                         allow=args.allow or [], time_column=args.time_column, seed=args.seed)
    doc = report.to_dict()
    if args.out:
        from pathlib import Path

        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        tmp.replace(path)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        from rich.table import Table

        console = _console()
        t = Table(title=f"Audit of {args.data} (target {args.target!r}, {doc['task']}, "
                  f"{doc['n_rows']} rows, {doc['seconds']:.2f}s)")
        for c in ("severity", "check", "finding", "fix"):
            t.add_column(c, overflow="fold")
        style = {"error": "bold red", "warning": "yellow", "info": "dim"}
        for f in report.sorted_findings():
            allowed = f.check in report.allowed and f.severity == "error"
            t.add_row(f"[{style.get(f.severity, '')}]{f.severity}"
                      + (" (allowed)" if allowed else "") + "[/]", f.check, f.message,
                      ("applied: " if f.applied else "") + f.fix)
        console.print(t)
        if not report.findings:
            console.print("No findings: the table looks clean.")
    if report.errors:
        sys.stderr.write(f"error: {len(report.errors)} audit error(s): a fit would stop here. "
                         f"Fix them, or let the fit go on with --allow CHECK.\n")
        return EXIT_USER_ERROR
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mlsmith.report import write_model_card, write_report
    from mlsmith.run import read_manifest

    read_manifest(args.run_dir)  # one clear line when it is not a run directory
    print(write_report(args.run_dir, args.out))
    if args.out is None:
        print(write_model_card(args.run_dir))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    import mlsmith

    run = mlsmith.load(args.run_dir, check_versions=not args.ignore_versions)
    if args.proba:
        if run.task == "regression":
            from mlsmith.errors import ConfigError

            raise ConfigError("--proba applies to classification runs; this run is a regression.")
        proba = run.predict_proba(args.data)
        proba.columns = [str(c) for c in proba.columns]
        _write_table(proba, args.out)
    else:
        _write_table(pd.DataFrame({"prediction": run.predict(args.data)}), args.out)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import mlsmith

    run = mlsmith.load(args.run_dir, check_versions=not args.ignore_versions)
    scores = run.evaluate(args.data)
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        width = max(len(k) for k in scores)
        for k, v in scores.items():
            print(f"{k:<{width}}  {v:.6g}{'  *' if k == run.metric else ''}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import mlsmith

    run = mlsmith.load(args.run_dir, check_versions=not args.ignore_versions)
    if args.json:
        doc = run.info()
        doc["leaderboard"] = json.loads(run.leaderboard().to_json(orient="records"))
        doc["schema"] = run.schema.to_dict()
        print(json.dumps(doc, indent=2, default=str))
        return 0
    from rich.table import Table

    console = _console()
    console.print(f"[bold]Run[/bold] {run.path}")
    console.print(f"target {run.target!r}, task {run.task} ({run.schema.task.reason}), "
                  f"metric {run.metric}")
    rows = run.metrics["rows"]
    console.print(f"rows: {rows['train']} train ({rows['folds']}-fold CV), {rows['test']} test"
                  + (f", {rows['missing_target_dropped']} dropped (missing target)"
                     if rows.get("missing_target_dropped") else ""))
    _print_summary(run, n=50)
    console.print("[bold]Chosen model parameters[/bold]")
    for m in run.metrics["chosen"]["members"]:
        console.print(f"  {m['model']} (weight {m['weight']:.3f}): {json.dumps(m['params'])}")
    t = Table(title="Schema")
    for c in ("column", "role", "dtype", "missing", "distinct", "why"):
        t.add_column(c)
    for c in run.schema.columns:
        t.add_row(c.name, c.role, c.dtype, str(c.n_missing), str(c.n_unique), c.reason)
    console.print(t)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlsmith", description="A careful ML engineer in a box: give it a table and "
                "a target column, get back an honest, shippable model.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    f = sub.add_parser("fit", help="fit the best model for a target within a time budget",
                       description="Load DATA, infer the task, cut a held-out test set, select "
                       "and ensemble models by cross-validation within the time limit, refit, "
                       "score the test set once and save the run directory.")
    f.add_argument("data", metavar="DATA", help="training table: .csv, .csv.gz, .tsv or .parquet")
    f.add_argument("--target", "-t", required=True, help="the column to predict")
    f.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="seconds for the whole fit, from load to saved run (default 120; no "
                   "limit when --trials is given alone)")
    f.add_argument("--out", "-o", metavar="RUN_DIR",
                   help="run directory to write (default runs/<data name>-<timestamp>)")
    f.add_argument("--metric", help="selection metric (default: roc_auc for binary, log_loss for "
                   "multiclass, rmse for regression)")
    f.add_argument("--task", choices=["binary", "multiclass", "regression"],
                   help="override the inferred task")
    f.add_argument("--test-size", type=float, default=0.2,
                   help="share of rows held out as the test set, scored once (default 0.2; 0 for none)")
    f.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    f.add_argument("--models", help="comma-separated model families to try (default: all "
                   "installed): linear, knn, random_forest, extra_trees, hist_gradient_boosting, "
                   "lightgbm, xgboost, catboost")
    f.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5; fewer "
                   "are used automatically when time is short)")
    f.add_argument("--drop", action="append", metavar="COL", help="exclude a column (repeatable)")
    f.add_argument("--no-ensemble", action="store_true", help="ship the best single model")
    f.add_argument("--strategy", default="tpe", choices=["tpe", "random", "grid", "none"],
                   help="search after the default portfolio: Optuna's TPE (default), random, "
                   "grid, or none (the portfolio alone)")
    f.add_argument("--trials", type=_non_negative_int, metavar="N",
                   help="number of search trials (default: as many as the time allows); "
                   "without --time-limit the fit is reproducible: same seed, same predictions")
    f.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="search trials run side by side, each in its own process (default 1)")
    f.add_argument("--patience", type=_non_negative_int, metavar="N",
                   help="stop the search after N trials in a row without a gain (default 200 "
                   "with a time limit; 0: use all the time)")
    f.add_argument("--storage", metavar="URL",
                   help="study store: default a journal file in the run directory; "
                   "postgresql://... shares the study with 'mlsmith worker' processes")
    f.add_argument("--backend", choices=["optuna", "ray"], default="optuna",
                   help="where search trials run: optuna (default: this machine, or every "
                   "machine sharing --storage) or ray (Ray Tune with ASHA)")
    f.add_argument("--ray-address", metavar="ADDR",
                   help="with --backend ray: a running Ray cluster (default: start a local one)")
    f.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking server (default: sqlite:///RUN_DIR/mlflow.db when "
                   "MLflow is installed)")
    f.add_argument("--no-tracking", action="store_true", help="no MLflow tracking")
    f.add_argument("--allow", action="append", metavar="CHECK",
                   help="let the fit go on despite an audit error of this check (repeatable), "
                   "e.g. --allow target_leakage")
    f.add_argument("--time-column", metavar="COL",
                   help="rows are ordered in time by COL: the test set is the latest rows and "
                   "the folds never validate on the past")
    f.add_argument("--no-report", action="store_true",
                   help="do not write report.html and model_card.md")
    f.add_argument("--quiet", "-q", action="store_true", help="no progress output; print the run path")
    f.set_defaults(func=cmd_fit)

    au = sub.add_parser("audit", help="check a table for leakage and data problems",
                        description="Run the data audit that starts every fit: target leakage, "
                        "identifiers, duplicates, imbalance, scale, missing values and more. "
                        "Exit code 2 when a finding would stop a fit.")
    au.add_argument("data", metavar="DATA", help="table: .csv, .csv.gz, .tsv or .parquet")
    au.add_argument("--target", "-t", required=True, help="the column to predict")
    au.add_argument("--task", choices=["binary", "multiclass", "regression"],
                    help="override the inferred task")
    au.add_argument("--drop", action="append", metavar="COL", help="exclude a column (repeatable)")
    au.add_argument("--allow", action="append", metavar="CHECK",
                    help="report errors of this check as allowed (repeatable)")
    au.add_argument("--time-column", metavar="COL", help="column ordering the rows in time")
    au.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    au.add_argument("--json", action="store_true", help="print audit.json instead of a table")
    au.add_argument("--out", "-o", metavar="FILE", help="also write audit.json to FILE")
    au.set_defaults(func=cmd_audit)

    rp = sub.add_parser("report", help="write the self-contained HTML report of a run",
                        description="Render report.html (and model_card.md) from the files of "
                        "a run directory; every fit already writes both.")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="the folder a fit wrote")
    rp.add_argument("--out", "-o", metavar="FILE",
                    help="write the report here (default RUN_DIR/report.html, with "
                    "RUN_DIR/model_card.md beside it)")
    rp.set_defaults(func=cmd_report)

    from mlsmith.tune._cli import (
        TUNE_HELP,
        WORKER_HELP,
        add_tune_arguments,
        add_worker_arguments,
        cmd_tune,
        cmd_worker,
    )

    tn = sub.add_parser("tune", help=TUNE_HELP)
    add_tune_arguments(tn)
    tn.set_defaults(func=cmd_tune)
    wk = sub.add_parser("worker", help=WORKER_HELP)
    add_worker_arguments(wk)
    wk.set_defaults(func=cmd_worker)

    pr = sub.add_parser("predict", help="predict new rows with a fitted run",
                        description="Write predictions for DATA: one column 'prediction' with "
                        "the original labels, or with --proba one column per class.")
    pr.add_argument("run_dir", metavar="RUN_DIR", help="the folder a fit wrote")
    pr.add_argument("data", metavar="DATA", help="rows to predict: .csv, .csv.gz, .tsv or .parquet")
    pr.add_argument("--out", "-o", metavar="FILE",
                    help="output file (.csv, or .parquet); default standard output")
    pr.add_argument("--proba", action="store_true",
                    help="class probabilities, one column per class (classification)")
    pr.add_argument("--ignore-versions", action="store_true",
                    help="load even if library versions differ from the fit's")
    pr.set_defaults(func=cmd_predict)

    ev = sub.add_parser("evaluate", help="score a fitted run on labelled data",
                        description="Compute every metric for the run's task on DATA, which "
                        "must contain the target column.")
    ev.add_argument("run_dir", metavar="RUN_DIR", help="the folder a fit wrote")
    ev.add_argument("data", metavar="DATA", help="labelled rows: .csv, .csv.gz, .tsv or .parquet")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.add_argument("--ignore-versions", action="store_true",
                    help="load even if library versions differ from the fit's")
    ev.set_defaults(func=cmd_evaluate)

    inf = sub.add_parser("info", help="show a run: leaderboard, chosen model, schema, test metrics",
                         description="Describe a run directory.")
    inf.add_argument("run_dir", metavar="RUN_DIR", help="the folder a fit wrote")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.add_argument("--ignore-versions", action="store_true",
                     help="load even if library versions differ from the fit's")
    inf.set_defaults(func=cmd_info)
    return p


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    if str(getattr(category, "__module__", "")).startswith(("mlsmith",)) or \
            "mlsmith" in filename or category is UserWarning:
        sys.stderr.write(f"warning: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from mlsmith import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    import warnings

    warnings.showwarning = _show_warning
    warnings.simplefilter("default")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        from mlsmith.errors import MlsmithError

        return func(args)
    except MlsmithError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: run the same command again to continue where the fit stopped\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
