"""``mlsmith tune`` and ``mlsmith worker``: argument definitions and commands for cli.py.

Wiring (in ``mlsmith.cli.build_parser``)::

    from mlsmith.tune._cli import add_tune_arguments, add_worker_arguments, cmd_tune, cmd_worker
    t = sub.add_parser("tune", help=..., description=...)
    add_tune_arguments(t); t.set_defaults(func=cmd_tune)
    w = sub.add_parser("worker", help=..., description=...)
    add_worker_arguments(w); w.set_defaults(func=cmd_worker)

This module imports nothing heavy, so building the parser stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_tune_arguments", "add_worker_arguments", "cmd_tune", "cmd_worker",
           "TUNE_HELP", "WORKER_HELP"]

TUNE_HELP = "search one model family's hyperparameters by cross-validation"
WORKER_HELP = "join a shared study (--storage URL) and run its trials"


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return v
    return parse


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``mlsmith tune DATA --target COL --model lightgbm --strategy tpe --trials N``
    (``--backend ray [--ray-address ADDR]`` for Ray Tune)."""
    p.add_argument("data", metavar="DATA", help="training table: .csv, .csv.gz, .tsv or .parquet")
    p.add_argument("--target", "-t", required=True, help="the column to predict")
    p.add_argument("--model", "--models", dest="model", default="lightgbm",
                   help="model family to tune (default lightgbm); a comma-separated list "
                   "searches several, a parameter 'family' choosing one per trial")
    p.add_argument("--strategy", choices=["tpe", "random", "grid"], default="tpe",
                   help="tpe (default), random, or every point of a grid")
    p.add_argument("--trials", type=_positive(int), metavar="N",
                   help="trials in the whole study, over every process sharing it")
    p.add_argument("--time-limit", type=_positive(float), metavar="SECONDS",
                   help="stop starting trials after this many seconds (and stop running ones)")
    p.add_argument("--trial-time-limit", type=_positive(float), metavar="SECONDS",
                   help="seconds one trial may take before it is stopped")
    p.add_argument("--storage", metavar="PATH_OR_URL",
                   help="trial store: a journal file (default OUT/study/journal.log) or "
                   "postgresql://... to share the study with 'mlsmith worker' processes")
    p.add_argument("--study-name", default="mlsmith", help="study name in the store (default "
                   "mlsmith); an existing study is resumed")
    p.add_argument("--jobs", "-j", type=_positive(int), default=None, metavar="N",
                   help="trials run side by side, each in its own process (default 1; with "
                   "--backend ray: as many as the cluster's CPUs allow)")
    p.add_argument("--patience", type=_positive(int), metavar="N",
                   help="stop once N trials in a row brought no gain (default: run the whole "
                   "budget)")
    p.add_argument("--backend", choices=["optuna", "ray"], default="optuna",
                   help="optuna (default): trials on this machine, or on every machine sharing "
                   "--storage postgresql://...; ray: Ray Tune trials with ASHA on a Ray "
                   "cluster (needs mlsmith[scale])")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --backend ray: a running Ray cluster (auto, ray://host:10001); "
                   "default a local Ray instance started for the search")
    p.add_argument("--out", "-o", metavar="DIR", help="output folder: trials.csv, the study "
                   "store and out-of-fold predictions (default runs/<data>-tune-<time>); "
                   "rerun with the same folder to continue a search")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler, folds and models")
    p.add_argument("--metric", help="score to optimize (default: the task's)")
    p.add_argument("--task", choices=["binary", "multiclass", "regression"],
                   help="override the inferred task")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--pruner", choices=["hyperband", "sha", "median", "none"],
                   default="hyperband", help="stops poor trials after their first folds")
    p.add_argument("--grid-points", type=_positive(int), default=3, metavar="N",
                   help="values per numeric parameter with --strategy grid (default 3)")
    p.add_argument("--drop", action="append", metavar="COL", help="exclude a column (repeatable)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress; print the output path")


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``mlsmith worker STUDY --storage URL``."""
    p.add_argument("study", metavar="STUDY", help="the study name given to 'mlsmith tune'")
    p.add_argument("--storage", required=True, metavar="URL",
                   help="the study's store, e.g. postgresql://user@host/db")
    p.add_argument("--jobs", "-j", type=_positive(int), default=1, metavar="N",
                   help="trials run side by side on this machine (default 1)")
    p.add_argument("--trials", type=_positive(int), metavar="N",
                   help="most trials this worker runs (default: until the study's budget)")
    p.add_argument("--out", "-o", metavar="DIR",
                   help="scratch folder (a rebuilt data bundle, worker logs)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def _progress(quiet: bool) -> Any:
    """One line per finished trial on stderr."""
    if quiet:
        return None
    t0 = time.time()

    def sink(event: str, data: dict[str, Any]) -> None:
        if event != "trial_end":
            return
        row = data["row"]
        col = next(k for k in row if k.startswith("cv_") and not k.endswith(("_std", "_time_s")))
        value = row[col]
        score = "-" if value != value else f"{value:.4f}"
        sys.stderr.write(f"[{time.time() - t0:7.1f}s] trial {row['trial']:>4} {row['family']}: "
                         f"{col[3:]} {score} ({row['status']}, {row['folds_done']} folds, "
                         f"{row['cv_time_s']:.1f}s)\n")
        sys.stderr.flush()

    return sink


def _default_out(data: str) -> Path:
    name = Path(data).name
    for suffix in (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path("runs") / f"{name or 'data'}-tune-{time.strftime('%Y%m%d-%H%M%S')}"


def _write_csv(df: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


def _print_best(table: Any, metric_col: str, greater: bool, n: int = 10) -> None:
    from rich.console import Console
    from rich.table import Table

    done = table[table["status"] == "ok"].sort_values(metric_col, ascending=not greater)
    t = Table(title=f"Best trials ({len(done)} completed of {len(table)})")
    for col in ("trial", "family", metric_col, "cv_time_s", "params"):
        t.add_column(col)
    for _, row in done.head(n).iterrows():
        t.add_row(str(row["trial"]), row["family"], f"{row[metric_col]:.4f}",
                  f"{row['cv_time_s']:.1f}", row["params"])
    Console(width=None if sys.stdout.isatty() else 160).print(t)


def cmd_tune(args: argparse.Namespace) -> int:
    """``mlsmith tune``: build the bundle, run the search, write OUT/trials.csv."""
    from mlsmith.metrics import get_metric
    from mlsmith.tune._data import prepare_bundle
    from mlsmith.tune._tune import tune

    backend = getattr(args, "backend", "optuna") or "optuna"
    if backend == "ray":
        from mlsmith.errors import ConfigError
        from mlsmith.tune._ray import import_ray

        import_ray()  # before any work: the missing extra is the first thing to hear about
        if args.storage:
            raise ConfigError("--storage is for the Optuna backend: Ray Tune keeps its trials "
                              "itself. Leave --storage out with --backend ray.")
    elif getattr(args, "ray_address", None):
        from mlsmith.errors import ConfigError

        raise ConfigError("--ray-address needs --backend ray.")
    out = Path(args.out) if args.out else _default_out(args.data)
    out.mkdir(parents=True, exist_ok=True)
    bundle = out / "data.joblib"
    info = prepare_bundle(args.data, args.target, bundle, folds=args.folds, seed=args.seed,
                          task=args.task, drop=args.drop or [])
    metric = get_metric(args.metric or info["default_metric"], info["task"])
    if backend == "ray":
        table = tune(str(bundle), args.model, metric=metric.name, strategy=args.strategy,
                     n_trials=args.trials, time_limit=args.time_limit, seed=args.seed,
                     n_jobs=args.jobs, pruner=args.pruner, oof_dir=str(out / "oof"),
                     trial_time_limit=args.trial_time_limit, grid_points=args.grid_points,
                     workdir=str(out / "scratch"), on_event=_progress(args.quiet),
                     backend="ray", ray_address=args.ray_address)
        _write_csv(table, out / "trials.csv")
        _report(table, out, metric, args.quiet)
        return 0
    storage = args.storage or str(out / "study" / "journal.log")
    source = {"source": str(Path(args.data).resolve()), "target": args.target,
              "task_override": args.task, "drop": list(args.drop or [])}
    table = tune(str(bundle), args.model, metric=metric.name, strategy=args.strategy,
                 n_trials=args.trials, time_limit=args.time_limit, seed=args.seed,
                 n_jobs=args.jobs or 1, storage=storage, study_name=args.study_name,
                 pruner=args.pruner, oof_dir=str(out / "oof"),
                 trial_time_limit=args.trial_time_limit, grid_points=args.grid_points,
                 workdir=str(out / "scratch"), source=source,
                 on_event=_progress(args.quiet), patience=args.patience)
    _write_csv(table, out / "trials.csv")
    _report(table, out, metric, args.quiet)
    return 0


def _report(table: Any, out: Path, metric: Any, quiet: bool) -> None:
    if quiet:
        print(out)
    else:
        _print_best(table, f"cv_{metric.name}", metric.greater_is_better)
        print(f"Trial table: {out / 'trials.csv'}")


def cmd_worker(args: argparse.Namespace) -> int:
    """``mlsmith worker``: run a shared study's trials until its budget is spent."""
    from mlsmith.tune._tune import run_worker

    table = run_worker(args.study, args.storage, n_jobs=args.jobs, max_trials=args.trials,
                       workdir=args.out, on_event=_progress(args.quiet))
    if not args.quiet:
        done = int((table["status"] == "ok").sum()) if len(table) else 0
        print(f"worker ran {len(table)} trials ({done} completed) of study {args.study}")
    return 0
