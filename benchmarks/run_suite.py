"""Benchmark mlsmith against its peers on the public suite (see shared/BENCHMARK.md).

Each (system, dataset, seed) runs in a process of its own, under ``/usr/bin/time -f %M`` for
the peak RSS, killed at 3 x budget + 120 s. Every finished run is appended to the raw CSV at
once; the markdown report is then regenerated from this invocation's rows.

    .venv/bin/python benchmarks/run_suite.py --budget 60
    .venv/bin/python benchmarks/run_suite.py --only tips,penguins --systems hgb,rf --budget 10
    .venv/bin/python benchmarks/run_suite.py --resume RUN_ID      # finish an interrupted run
    .venv/bin/python benchmarks/run_suite.py --report-only [RUN_ID]

The driver needs only the standard library, numpy, pandas (with pyarrow) and scikit-learn.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
CHILD = BENCH / "_system.py"

SYSTEM_LABELS: dict[str, str] = {
    "mlsmith": "mlsmith",
    "flaml": "FLAML",
    "hgb": "HGB defaults",
    "rf": "textbook RF",
}
PEER_SYSTEMS = ("flaml", "hgb", "rf")  # run with the peers' python
TIMED_SYSTEMS = ("mlsmith", "flaml")  # take a time limit: B less start-up less the margin
CLASSIFICATION = ("binary", "multiclass")
METRIC_NAMES = {"binary": "1-AUC", "multiclass": "logloss", "regression": "RMSE"}

TIE_REL = 1e-3  # a tie: within 0.1% relative
ERROR_FLOOR = 1e-4  # errors below this are equal (1-AUC of 0 on mushroom): keeps ratios finite
FAIL_FACTOR = 1.5  # a failed run counts as 1.5 x the worst error of the dataset
PROB_CLIP = 1e-15
FAILED = ("failed", "timeout", "invalid")

MARKER_BEGIN = "<!-- suite:begin -->"
MARKER_END = "<!-- suite:end -->"


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    """One (system, dataset, seed) run: one row of the raw CSV."""

    run_id: str
    finished_utc: str
    system: str
    dataset: str
    task: str
    seed: int
    budget_s: float
    scored: bool
    status: str  # ok | failed | timeout | invalid
    metric: str = ""
    error: float | None = None  # 1-AUC, log loss or RMSE
    accuracy: float | None = None  # classification
    r2: float | None = None  # regression
    wall_s: float | None = None
    cpu_s: float | None = None  # user + system CPU seconds of the process tree it waited for
    load_1m: float | None = None  # 1-minute load average as the run started (noise)
    peak_rss_mb: float | None = None
    fit_budget_s: float | None = None  # time limit handed to the system, if it takes one
    fit_margin_s: float | None = None  # seconds kept back from that limit
    load_s: float | None = None  # spawn to data loaded, seen by the child
    returncode: int | None = None
    n_train: int = 0
    n_test: int = 0
    note: str = ""
    log: str = ""
    python: str = ""
    command: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def to_row(self) -> dict[str, str]:
        row: dict[str, str] = {}
        for key, value in asdict(self).items():
            if value is None:
                row[key] = ""
            elif isinstance(value, float):
                row[key] = repr(round(value, 6))
            else:
                row[key] = str(value)
        return row

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Record:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            raw = row.get(f.name, "")
            if f.name in ("seed", "n_train", "n_test"):
                kwargs[f.name] = int(raw or 0)
            elif f.name == "scored":
                kwargs[f.name] = raw == "True"
            elif f.name == "budget_s":
                kwargs[f.name] = float(raw)
            elif f.name == "returncode":
                kwargs[f.name] = int(raw) if raw else None
            elif f.name in _OPTIONAL_FLOATS:
                kwargs[f.name] = float(raw) if raw else None
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)


CSV_FIELDS = [f.name for f in fields(Record)]
_OPTIONAL_FLOATS = frozenset(
    (
        "error",
        "accuracy",
        "r2",
        "wall_s",
        "cpu_s",
        "load_1m",
        "peak_rss_mb",
        "fit_budget_s",
        "fit_margin_s",
        "load_s",
    )
)


def append_record(path: Path, record: Record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(record.to_row())


def read_records(path: Path) -> list[Record]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [Record.from_row(row) for row in csv.DictReader(fh)]


# --------------------------------------------------------------------------- datasets


@dataclass
class Dataset:
    name: str
    path: Path
    target: str
    task: str
    rows: int
    edge: bool


def load_manifest(directory: Path, only: Sequence[str]) -> list[Dataset]:
    entries = json.loads((directory / "manifest.json").read_text())
    datasets = [
        Dataset(
            name=e["name"],
            path=directory / e["file"],
            target=e["target"],
            task=e["task"],
            rows=int(e.get("rows", 0)),
            edge=e.get("purpose") == "edge",
        )
        for e in entries
    ]
    if only:
        known = {d.name for d in datasets}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise SystemExit(
                f"unknown datasets: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        datasets = [d for d in datasets if d.name in only]
    return datasets


@dataclass
class Split:
    dataset: Dataset
    seed: int
    train_path: Path
    test_path: Path
    y_test: pd.Series
    labels: list[str]  # every class label of the dataset as text, sorted (classification)
    n_train: int
    note: str = ""


def make_split(ds: Dataset, frame: pd.DataFrame, seed: int, folder: Path) -> Split:
    folder.mkdir(parents=True, exist_ok=True)
    classification = ds.task in CLASSIFICATION
    note = ""
    try:
        train, test = train_test_split(
            frame,
            test_size=0.25,
            random_state=seed,
            stratify=frame[ds.target] if classification else None,
        )
    except ValueError:  # a class too small to stratify (the edge dataset)
        if not ds.edge:
            raise
        train, test = train_test_split(frame, test_size=0.25, random_state=seed)
        note = "unstratified split (a class has a single row)"
    train = train.reset_index(drop=True)
    test = test.reset_index(drop=True)
    train_path = folder / "train.parquet"
    test_path = folder / "test.parquet"
    train.to_parquet(train_path, index=False)
    test.drop(columns=[ds.target]).to_parquet(test_path, index=False)
    labels = sorted(frame[ds.target].astype(str).unique()) if classification else []
    return Split(ds, seed, train_path, test_path, test[ds.target], labels, len(train), note)


# --------------------------------------------------------------------------- scoring


@dataclass
class Score:
    status: str
    error: float | None = None
    accuracy: float | None = None
    r2: float | None = None
    note: str = ""


def score_predictions(split: Split, pred: pd.DataFrame) -> Score:
    ds = split.dataset
    n = len(split.y_test)
    if len(pred) != n:
        return Score("invalid", note=f"{len(pred)} predictions for {n} rows")
    values = pred.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        return Score("invalid", note="non-finite predictions")
    if ds.task == "regression":
        if "prediction" not in pred.columns:
            return Score("invalid", note="no 'prediction' column")
        y = split.y_test.to_numpy(dtype=float)
        p = pred["prediction"].to_numpy(dtype=float)
        rmse = float(np.sqrt(np.mean((y - p) ** 2)))
        return Score("ok", error=rmse, r2=float(r2_score(y, p)))

    columns = [str(c) for c in pred.columns]
    if len(set(columns)) != len(columns):
        return Score("invalid", note="duplicate class columns")
    unknown = [c for c in columns if c not in split.labels]
    if unknown:
        return Score("invalid", note=f"columns that are no class label: {unknown[:5]}")
    if np.any(values < -1e-9):
        return Score("invalid", note="negative probabilities")
    y_text = split.y_test.astype(str).to_numpy()
    predicted = np.asarray(columns, dtype=object)[np.argmax(values, axis=1)]
    accuracy = float(np.mean(predicted == y_text))
    missing = [c for c in split.labels if c not in columns]
    note = f"no column for {missing}" if missing else ""

    if ds.task == "binary":
        positive = split.labels[-1]
        if positive in columns:
            score = values[:, columns.index(positive)]
        else:
            score = 1.0 - values[:, columns.index(split.labels[0])]
        auc = float(roc_auc_score(y_text == positive, score))
        return Score("ok", error=1.0 - auc, accuracy=accuracy, note=note)

    full = np.zeros((n, len(split.labels)))
    for j, label in enumerate(split.labels):
        if label in columns:
            full[:, j] = values[:, columns.index(label)]
    full = np.clip(full, PROB_CLIP, None)
    full /= full.sum(axis=1, keepdims=True)
    index = {label: j for j, label in enumerate(split.labels)}
    p_true = full[np.arange(n), [index[v] for v in y_text]]
    return Score("ok", error=float(-np.mean(np.log(p_true))), accuracy=accuracy, note=note)


def check_edge_predictions(split: Split, pred: pd.DataFrame) -> Score:
    """The edge dataset is not scored: the run only has to give sane probabilities."""
    values = pred.to_numpy(dtype=float)
    if len(pred) != len(split.y_test):
        return Score("invalid", note=f"{len(pred)} predictions for {len(split.y_test)} rows")
    if not np.all(np.isfinite(values)) or np.any(values < -1e-9):
        return Score("invalid", note="non-finite or negative probabilities")
    if not np.allclose(values.sum(axis=1), 1.0, atol=1e-3):
        return Score("invalid", note="probabilities do not sum to 1")
    return Score("ok", note=f"{pred.shape[1]} class columns; not scored (edge case)")


# --------------------------------------------------------------------------- running


@dataclass
class Context:
    run_id: str
    budget: float
    margin: float
    pythons: dict[str, Path]
    work: Path
    logs: Path
    raw: Path
    command: str


def python_for(system: str, pythons: dict[str, Path]) -> Path:
    return pythons["mlsmith"] if system == "mlsmith" else pythons["peers"]


def read_peak_rss_mb(path: Path) -> float | None:
    """GNU time writes 'Command exited with non-zero status N' before %M when the exit is not 0."""
    try:
        lines = path.read_text().split()
    except OSError:
        return None
    numbers = [w for w in lines if w.isdigit()]
    return int(numbers[-1]) / 1024.0 if numbers else None


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_one(ctx: Context, system: str, split: Split) -> Record:
    ds = split.dataset
    python = python_for(system, ctx.pythons)
    stem = f"{system}__{ds.name}__s{split.seed}"
    run_dir = split.train_path.parent
    outfile = run_dir / f"{stem}.pred.parquet"
    rss_file = run_dir / f"{stem}.rss"
    out_log = run_dir / f"{stem}.out"
    for stale in (outfile, rss_file, Path(f"{outfile}.json")):
        stale.unlink(missing_ok=True)

    argv = [
        str(python),
        str(CHILD),
        system,
        str(split.train_path),
        str(split.test_path),
        ds.target,
        ds.task,
        repr(ctx.budget),
        str(split.seed),
        str(outfile),
    ]
    time_bin = shutil.which("time", path="/usr/bin")
    command = (["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if time_bin else []) + argv
    env = dict(os.environ)
    env["MLSMITH_BENCH_MARGIN"] = repr(ctx.margin)
    env["PYTHONUNBUFFERED"] = "1"
    if system == "mlsmith":  # the source tree, installed or not
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
        )
    hard_limit = 3 * ctx.budget + 120

    status, returncode = "ok", None
    load_1m = _load_1m()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out_log.open("wb") as log:
        env["MLSMITH_BENCH_T0"] = repr(time.time())
        started = time.monotonic()
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=run_dir,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=hard_limit)
        except subprocess.TimeoutExpired:
            status = "timeout"
            _kill_group(proc)
        wall = time.monotonic() - started
    if status == "ok":
        _kill_group(proc)  # stray workers the system left behind
    if status == "ok" and returncode != 0:
        status = "failed"
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )

    meta: dict[str, Any] = {}
    if Path(f"{outfile}.json").exists():
        meta = json.loads(Path(f"{outfile}.json").read_text())
    record = Record(
        run_id=ctx.run_id,
        finished_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        system=system,
        dataset=ds.name,
        task=ds.task,
        seed=split.seed,
        budget_s=ctx.budget,
        scored=not ds.edge,
        status=status,
        metric=METRIC_NAMES[ds.task],
        wall_s=wall,
        cpu_s=cpu,
        load_1m=load_1m,
        peak_rss_mb=read_peak_rss_mb(rss_file) if time_bin else None,
        fit_budget_s=meta.get("fit_budget_s"),
        fit_margin_s=ctx.margin if system in TIMED_SYSTEMS else None,
        load_s=meta.get("load_s"),
        returncode=returncode,
        n_train=split.n_train,
        n_test=len(split.y_test),
        note=split.note,
        python=str(python),
        command=ctx.command,
    )
    if status == "timeout":
        record.note = _join(record.note, f"killed after {hard_limit:.0f} s")
    if status == "ok":
        try:
            pred = pd.read_parquet(outfile)
            score = (
                check_edge_predictions(split, pred) if ds.edge else score_predictions(split, pred)
            )
        except Exception as exc:
            score = Score("invalid", note=f"{type(exc).__name__}: {exc}")
        record.status = score.status
        record.error, record.accuracy, record.r2 = score.error, score.accuracy, score.r2
        record.note = _join(record.note, score.note)
        if ds.edge:
            record.error = record.accuracy = None
    if record.failed:
        ctx.logs.mkdir(parents=True, exist_ok=True)
        log_path = ctx.logs / f"{stem}.log"
        header = f"$ {shlex.join(command)}\nstatus={record.status} returncode={returncode} note={record.note}\n\n"
        log_path.write_text(header + tail(out_log) + "\n")
        record.log = str(_relative(log_path))
    return record


def _load_1m() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _relative(path: Path) -> Path:
    try:
        return path.absolute().relative_to(REPO)
    except ValueError:
        return path


def run_suite(
    ctx: Context,
    datasets: list[Dataset],
    systems: list[str],
    seeds: list[int],
    done: set[tuple[str, str, int]],
) -> None:
    total = sum(
        len(seeds) * (1 if d.edge else len(systems))
        for d in datasets
        if not d.edge or "mlsmith" in systems
    )
    count = 0
    for ds in datasets:
        todo_systems = ["mlsmith"] if ds.edge else systems
        if ds.edge and "mlsmith" not in systems:
            continue
        frame: pd.DataFrame | None = None
        for seed in seeds:
            pending = [s for s in todo_systems if (s, ds.name, seed) not in done]
            count += len(todo_systems) - len(pending)
            if not pending:
                continue
            if frame is None:
                frame = pd.read_csv(ds.path)
            folder = ctx.work / "runs" / ctx.run_id / f"{ds.name}__s{seed}"
            split = make_split(ds, frame, seed, folder)
            for system in pending:
                count += 1
                print(f"[{count}/{total}] {system} {ds.name} seed {seed} ...", end=" ", flush=True)
                record = run_one(ctx, system, split)
                append_record(ctx.raw, record)
                shown = "-" if record.error is None else f"{record.metric}={record.error:.4f}"
                rss = "?" if record.peak_rss_mb is None else f"{record.peak_rss_mb:.0f} MB"
                print(
                    f"{record.status} {shown} wall={record.wall_s:.1f}s rss={rss}"
                    + (f" log={record.log}" if record.log else ""),
                    flush=True,
                )
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(ctx.work / "runs" / ctx.run_id, ignore_errors=True)
    try:
        (ctx.work / "runs").rmdir()  # only when no other run is in progress
    except OSError:
        pass


# --------------------------------------------------------------------------- aggregation


@dataclass
class Case:
    """One scored dataset-seed with an effective error for every system."""

    dataset: str
    seed: int
    task: str
    metric: str
    records: dict[str, Record]
    effective: dict[str, float] = field(default_factory=dict)  # penalty for failed runs
    floored: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset} s{self.seed}"

    def best(self) -> float:
        return min(self.floored.values())


def tie(a: float, b: float) -> bool:
    return abs(a - b) <= TIE_REL * max(a, b)


def build_cases(records: list[Record], systems: list[str]) -> tuple[list[Case], list[str]]:
    grouped: dict[tuple[str, int], dict[str, Record]] = {}
    for r in records:
        if r.scored:
            grouped.setdefault((r.dataset, r.seed), {})[r.system] = r
    cases: list[Case] = []
    skipped: list[str] = []
    for (dataset, seed), by_system in grouped.items():
        if any(s not in by_system for s in systems):
            skipped.append(f"{dataset} s{seed}: not every system ran")
            continue
        ok = [r.error for r in by_system.values() if not r.failed and r.error is not None]
        if not ok:
            skipped.append(f"{dataset} s{seed}: every system failed")
            continue
        worst = max(ok)
        first = next(iter(by_system.values()))
        case = Case(dataset, seed, first.task, first.metric, by_system)
        for s in systems:
            r = by_system[s]
            err = r.error if (not r.failed and r.error is not None) else FAIL_FACTOR * worst
            case.effective[s] = err
            case.floored[s] = max(err, ERROR_FLOOR)
        cases.append(case)
    return cases, skipped


@dataclass
class Aggregate:
    mean_rank: float
    mean_rel: float
    geo_rel: float
    max_wall_ratio: float | None
    median_rss: float | None
    failures: int


def aggregate(cases: list[Case], records: list[Record], systems: list[str]) -> dict[str, Aggregate]:
    out: dict[str, Aggregate] = {}
    for s in systems:
        ranks, rels = [], []
        for c in cases:
            mine = c.floored[s]
            better = sum(
                1 for o in systems if o != s and c.floored[o] < mine and not tie(c.floored[o], mine)
            )
            tied = sum(1 for o in systems if o != s and tie(c.floored[o], mine))
            ranks.append(1 + better + 0.5 * tied)
            rels.append(mine / c.best())
        own = [r for r in records if r.system == s]
        walls = [r.wall_s / r.budget_s for r in own if r.wall_s is not None]
        rss = [r.peak_rss_mb for r in own if r.peak_rss_mb is not None]
        out[s] = Aggregate(
            mean_rank=statistics.fmean(ranks) if ranks else math.nan,
            mean_rel=statistics.fmean(rels) if rels else math.nan,
            geo_rel=math.exp(statistics.fmean(math.log(v) for v in rels)) if rels else math.nan,
            max_wall_ratio=max(walls) if walls else None,
            median_rss=statistics.median(rss) if rss else None,
            failures=sum(1 for r in own if r.failed),
        )
    return out


def wins_ties_losses(cases: list[Case], a: str, b: str) -> tuple[int, int, int]:
    wins = ties = losses = 0
    for c in cases:
        x, y = c.floored[a], c.floored[b]
        if tie(x, y):
            ties += 1
        elif x < y:
            wins += 1
        else:
            losses += 1
    return wins, ties, losses


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 4) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _shell(command: str) -> str:
    try:
        return subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_lines() -> list[str]:
    cpu = "?"
    mem = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = _shell("cat /proc/loadavg") or "?"
    return [
        f"- date: `{_shell('date -u')}`",
        f"- machine: `{_shell('uname -a') or platform.platform()}`",
        f"- cores (nproc): {_shell('nproc') or os.cpu_count()}; memory: {mem}; CPU: {cpu}",
        f"- load average when the report was written: `{load}`",
    ]


def collect_versions(
    pythons: dict[str, Path], systems: list[str]
) -> dict[str, dict[str, str | None]]:
    wanted: dict[str, Path] = {}
    if "mlsmith" in systems:
        wanted["mlsmith env"] = pythons["mlsmith"]
    if any(s in PEER_SYSTEMS for s in systems):
        wanted["peers env"] = pythons["peers"]
    found: dict[str, dict[str, str | None]] = {}
    for label, python in wanted.items():
        env = dict(os.environ)
        if label == "mlsmith env":
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
            )
        try:
            done = subprocess.run(
                [str(python), str(CHILD), "--versions"],
                capture_output=True,
                text=True,
                timeout=180,
                env=env,
            )
            found[f"{label} (`{_relative(python)}`)"] = json.loads(
                done.stdout.strip().splitlines()[-1]
            )
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            found[f"{label} (`{_relative(python)}`)"] = {}
    return found


def read_reference(path: Path) -> tuple[dict[str, dict[str, float | None]], list[str], list[str]]:
    """Per-dataset errors by system and the AutoGluon aggregate rows from BENCHMARK.md."""
    if not path.exists():
        return {}, [], []
    lines = path.read_text().splitlines()
    per_dataset: dict[str, dict[str, float | None]] = {}
    aggregate_header: list[str] = []
    aggregate_rows: list[str] = []
    header: list[str] = []
    for line in lines:
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = cells
            if cells and cells[0] == "system":
                aggregate_header = [line]
            continue
        if set("".join(cells)) <= set("-: "):
            if aggregate_header and len(aggregate_header) == 1 and header[0] == "system":
                aggregate_header.append(line)
            continue
        if header[0] == "dataset":
            values: dict[str, float | None] = {}
            for name, cell in zip(header[2:], cells[2:], strict=False):
                try:
                    values[name] = float(cell.replace("*", "").strip())
                except ValueError:
                    values[name] = None
            per_dataset[cells[0]] = values
        elif header[0] == "system" and cells[0].startswith("AutoGluon"):
            aggregate_rows.append(line)
    return per_dataset, aggregate_header, aggregate_rows


def render(
    records: list[Record],
    systems: list[str],
    pythons: dict[str, Path],
    reference_path: Path,
) -> str:
    budget = records[0].budget_s
    run_id = records[0].run_id
    commands = list(dict.fromkeys(r.command for r in records))
    seeds = sorted({r.seed for r in records})
    label = {s: SYSTEM_LABELS.get(s, s) for s in systems}
    names = [label[s] for s in systems]
    cases, skipped = build_cases(records, systems)
    agg = aggregate(cases, records, systems)
    by_key: dict[tuple[str, int, str], Record] = {(r.dataset, r.seed, r.system): r for r in records}
    row_keys = list(dict.fromkeys((r.dataset, r.seed) for r in records))

    def row_name(dataset: str, seed: int) -> str:
        return dataset if len(seeds) == 1 else f"{dataset} s{seed}"

    out: list[str] = [MARKER_BEGIN, "", f"## Public suite at {budget:g} s (run `{run_id}`)", ""]
    out += machine_lines()
    out += ["- command line" + ("s (the run was resumed):" if len(commands) > 1 else ":")]
    out += [f"  `{c}`" for c in commands]
    out += [
        f"- budget B = {budget:g} s per run for the whole process; seeds: {', '.join(map(str, seeds))}; "
        f"hard kill at 3 x B + 120 = {3 * budget + 120:g} s"
    ]
    out += ["", "Library versions:", ""]
    versions = collect_versions(pythons, systems)
    packages = [
        "mlsmith",
        "scikit-learn",
        "lightgbm",
        "flaml",
        "xgboost",
        "pandas",
        "numpy",
        "python",
    ]
    out += _table(
        ["package", *versions],
        ([p, *[str(v.get(p) or "-") for v in versions.values()]] for p in packages),
    )

    margins = sorted({r.fit_margin_s for r in records if r.fit_margin_s is not None})
    margin_text = (
        ", ".join(f"{m:g} s" for m in margins) if margins else "-"
    ) + f"; default 2 s + 2% of B = {2.0 + 0.02 * budget:g} s"
    fit_budgets = {
        s: [r.fit_budget_s for r in records if r.system == s and r.fit_budget_s is not None]
        for s in systems
    }
    out += [
        "",
        "Time limits handed to the systems: mlsmith (`time_limit`) and FLAML (`time_budget`) get "
        "B - (seconds from spawning the process to the fit call: interpreter start, imports, reading "
        f"the data) - a margin for predicting, writing and exiting ({margin_text}); HGB and RF have no "
        "time limit. The wall time below is that of the whole child process. Limits given in this run: "
        + "; ".join(f"{label[s]} {min(v):.1f}-{max(v):.1f} s" for s, v in fit_budgets.items() if v)
        + ("." if any(fit_budgets.values()) else "none."),
        "",
    ]

    # errors
    out += [
        f"### Error per dataset (lower is better; * best of the row, ties within {TIE_REL:.1%})",
        "",
    ]
    rows: list[list[str]] = []
    for dataset, seed in row_keys:
        recs = [by_key.get((dataset, seed, s)) for s in systems]
        first = next(r for r in recs if r is not None)
        if not first.scored:
            continue
        case = next((c for c in cases if c.dataset == dataset and c.seed == seed), None)
        cells: list[str] = []
        for s, r in zip(systems, recs, strict=True):
            if r is None:
                cells.append("not run")
            elif r.failed:
                penalty = f" ({case.effective[s]:.4f})" if case else ""
                cells.append(f"{r.status}{penalty}")
            else:
                star = " *" if case and tie(case.floored[s], case.best()) else ""
                cells.append(f"{_fmt(r.error)}{star}")
        rows.append([row_name(dataset, seed), first.task, first.metric, *cells])
    out += _table(["dataset", "task", "metric", *names], rows)
    out += [
        "",
        f"Failed runs show the error they are counted with: {FAIL_FACTOR} x the worst error of the row.",
        "",
    ]

    # accuracy / R2
    out += ["### Accuracy (classification) / R² (regression)", ""]
    rows = []
    for dataset, seed in row_keys:
        recs = [by_key.get((dataset, seed, s)) for s in systems]
        first = next(r for r in recs if r is not None)
        if not first.scored:
            continue
        kind = "R²" if first.task == "regression" else "accuracy"
        cells = []
        for r in recs:
            if r is None or r.failed:
                cells.append("-" if r is None else r.status)
            else:
                cells.append(_fmt(r.r2 if first.task == "regression" else r.accuracy))
        rows.append([row_name(dataset, seed), kind, *cells])
    out += _table(["dataset", "measure", *names], rows)

    # wall time & RSS
    out += ["", "### Wall time in s (wall / budget) and status", ""]
    rows = []
    for dataset, seed in row_keys:
        cells = []
        for s in systems:
            r = by_key.get((dataset, seed, s))
            if r is None:
                cells.append("-")
                continue
            text = f"{_fmt(r.wall_s, 1)} ({_fmt(None if r.wall_s is None else r.wall_s / r.budget_s, 2)})"
            cells.append(text if r.status == "ok" else f"{text} {r.status}")
        first = next(by_key[(dataset, seed, s)] for s in systems if (dataset, seed, s) in by_key)
        rows.append(
            [row_name(dataset, seed) + ("" if first.scored else " (edge, not scored)"), *cells]
        )
    out += _table(["dataset", *names], rows)
    out += ["", "### Peak RSS in MB (largest single process, `/usr/bin/time -f %M`)", ""]
    rows = []
    for dataset, seed in row_keys:
        cells = []
        for s in systems:
            r = by_key.get((dataset, seed, s))
            cells.append("-" if r is None else _fmt(r.peak_rss_mb, 0))
        rows.append([row_name(dataset, seed), *cells])
    out += _table(["dataset", *names], rows)

    # aggregate
    out += ["", f"### Aggregate over {len(cases)} scored dataset-seeds", ""]
    out += _table(
        [
            "system",
            "mean rank",
            "mean rel. error",
            "geo-mean rel. error",
            "max wall/budget",
            "median peak RSS MB",
            "failed runs",
        ],
        (
            [
                label[s],
                _fmt(a.mean_rank, 2),
                _fmt(a.mean_rel, 3),
                _fmt(a.geo_rel, 3),
                _fmt(a.max_wall_ratio, 2),
                _fmt(a.median_rss, 0),
                str(a.failures),
            ]
            for s, a in agg.items()
        ),
    )
    out += [
        "",
        f"Relative error = error / best error of the row, both floored at {ERROR_FLOOR:g} (so that a "
        "perfect 1-AUC of 0 gives finite ratios); ranks average over ties. max wall/budget and RSS "
        "cover every run of the system, the edge dataset included.",
    ]
    loads = [r.load_1m for r in records if r.load_1m is not None]
    if loads:
        out += [
            "",
            f"Noise: 1-minute load average at the start of the runs {min(loads):.2f}-{max(loads):.2f} "
            f"(median {statistics.median(loads):.2f}) on {os.cpu_count()} cores; the raw CSV also holds "
            "each run's CPU seconds (`cpu_s`): a wall time far above cpu_s / cores means the process "
            "waited for the CPU.",
        ]
    if skipped:
        out += ["", "Left out of the aggregate: " + "; ".join(skipped) + "."]
    out += ["", "Wins / ties / losses (row vs column):", ""]
    out += _table(
        ["", *names],
        (
            [
                label[a],
                *[
                    "-" if a == b else "/".join(map(str, wins_ties_losses(cases, a, b)))
                    for b in systems
                ],
            ]
            for a in systems
        ),
    )

    # targets
    out += ["", "### Targets", ""]
    out += targets(cases, records, systems, agg, budget)

    # failures & edge
    problems = [r for r in records if r.failed or (not r.scored)]
    if problems:
        out += ["", "### Edge case and failed runs", ""]
        out += _table(
            ["system", "dataset", "seed", "status", "note", "log"],
            (
                [
                    label.get(r.system, r.system),
                    r.dataset,
                    str(r.seed),
                    r.status,
                    r.note.replace("|", "/") or "-",
                    f"`{r.log}`" if r.log else "-",
                ]
                for r in problems
            ),
        )

    out += ["", *reference_section(reference_path, cases, systems, budget)]
    out += ["", MARKER_END, ""]
    return "\n".join(out)


def targets(
    cases: list[Case],
    records: list[Record],
    systems: list[str],
    agg: dict[str, Aggregate],
    budget: float,
) -> list[str]:
    out: list[str] = []
    if "mlsmith" not in systems:
        return ["mlsmith was not part of this run: no target to check."]
    if "hgb" in systems and cases:
        as_good = [
            c
            for c in cases
            if c.floored["mlsmith"] <= c.floored["hgb"]
            or tie(c.floored["mlsmith"], c.floored["hgb"])
        ]
        share = len(as_good) / len(cases)
        out.append(
            f"- mlsmith as good as HGB defaults (or tied within {TIE_REL:.1%}) on ≥ 80% of the scored "
            f"dataset-seeds: {len(as_good)}/{len(cases)} = {share:.0%} — **{'PASS' if share >= 0.8 else 'FAIL'}**"
        )
        worse = [c for c in cases if c.floored["mlsmith"] > c.floored["hgb"] * 1.01]
        verdict = "PASS" if not worse else "FAIL"
        out.append(
            f"- mlsmith never worse than HGB defaults by more than 1% relative: **{verdict}**"
            + ("" if not worse else f" ({len(worse)} violation{'s' if len(worse) > 1 else ''})")
        )
        for c in worse:
            out.append(
                f"  - {c.key}: mlsmith {c.effective['mlsmith']:.4f}"
                f"{' (' + c.records['mlsmith'].status + ')' if c.records['mlsmith'].failed else ''} vs HGB "
                f"{c.effective['hgb']:.4f} ({c.floored['mlsmith'] / c.floored['hgb'] - 1:+.1%})"
            )
    else:
        out.append("- comparison with HGB defaults: n/a (hgb not in this run)")
    limit = 1.05 * budget + 5
    own = [r for r in records if r.system == "mlsmith"]
    late = [r for r in own if r.wall_s is None or r.wall_s > limit]
    out.append(
        f"- every mlsmith run within 1.05 x B + 5 s = {limit:.1f} s wall: "
        f"**{'PASS' if not late else 'FAIL'}** ({len(own) - len(late)}/{len(own)} runs within; "
        f"longest {max((r.wall_s or 0.0) for r in own) if own else 0.0:.1f} s)"
    )
    for r in late:
        out.append(f"  - {r.dataset} s{r.seed}: {_fmt(r.wall_s, 1)} s ({r.status})")
    failed = [r for r in own if r.failed]
    out.append(
        f"- mlsmith runs that failed: {len(failed)}"
        + (
            ""
            if not failed
            else " — " + ", ".join(f"{r.dataset} s{r.seed} ({r.status})" for r in failed)
        )
    )
    if "flaml" in systems and cases:
        ratio = agg["mlsmith"].geo_rel / agg["flaml"].geo_rel
        out.append(
            f"- mlsmith geo-mean rel. error within 3% of FLAML's: {agg['mlsmith'].geo_rel:.3f} / "
            f"{agg['flaml'].geo_rel:.3f} = {ratio:.3f} — **{'PASS' if ratio <= 1.03 else 'FAIL'}**"
        )
    else:
        out.append("- geo-mean against FLAML: n/a (flaml not in this run)")
    return out


def reference_section(
    path: Path, cases: list[Case], systems: list[str], budget: float
) -> list[str]:
    per_dataset, agg_header, agg_rows = read_reference(path)
    title = "### Reference: AutoGluon, copied from BENCHMARK.md (not measured in this run)"
    if not per_dataset:
        return [title, "", f"`{path}` not found or without its table."]
    out = [
        title,
        "",
        f"The AutoGluon figures are those of `{_relative(path)}` (60 s, seed 0, another run on a "
        f"2-core machine); this run used B = {budget:g} s. Same-run comparisons are the tables above; "
        "this one only puts this run's seed-0 errors beside the published ones.",
        "",
    ]
    ours = [s for s in ("mlsmith", "flaml") if s in systems]
    header = [
        "dataset",
        *[f"{SYSTEM_LABELS[s]} (this run)" for s in ours],
        "FLAML (BENCHMARK.md)",
        "AutoGluon medium (BENCHMARK.md)",
        "AutoGluon best (BENCHMARK.md)",
    ]
    if "mlsmith" in ours:
        header.append("mlsmith / AutoGluon best")
    rows: list[list[str]] = []
    ratios: list[float] = []
    for c in cases:
        if c.seed != 0 or c.dataset not in per_dataset:
            continue
        ref = per_dataset[c.dataset]
        row = [
            c.dataset,
            *[_fmt(c.effective[s]) + (" (failed)" if c.records[s].failed else "") for s in ours],
        ]
        row += [
            _fmt(ref.get("FLAML")),
            _fmt(ref.get("AutoGluon medium")),
            _fmt(ref.get("AutoGluon best")),
        ]
        if "mlsmith" in ours:
            best = ref.get("AutoGluon best")
            if best is None:
                row.append("-")
            else:
                ratio = max(c.effective["mlsmith"], ERROR_FLOOR) / max(best, ERROR_FLOOR)
                ratios.append(ratio)
                row.append(f"{ratio:.3f}")
        rows.append(row)
    if not rows:
        return [*out, "No seed-0 dataset of this run is in that table."]
    out += _table(header, rows)
    if ratios:
        geo = math.exp(statistics.fmean(math.log(r) for r in ratios))
        out += [
            "",
            f"Geometric mean of mlsmith / AutoGluon best over these {len(ratios)} datasets: {geo:.3f} "
            f"(errors floored at {ERROR_FLOOR:g}; below 1 is better than the published AutoGluon best).",
        ]
    if agg_header and agg_rows:
        out += [
            "",
            "AutoGluon's aggregate rows as published (relative to the five systems of that run):",
            "",
        ]
        out += [*agg_header, *agg_rows]
    return out


def write_report(path: Path, block: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        text = path.read_text()
        pattern = re.compile(
            re.escape(MARKER_BEGIN) + r".*?" + re.escape(MARKER_END) + r"\n?", re.S
        )
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + block
    else:
        text = (
            "# mlsmith benchmark results\n\nGenerated by `benchmarks/run_suite.py`; see `benchmarks/README.md`.\n\n"
            + block
        )
    path.write_text(text)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--datasets",
        type=Path,
        default=REPO.parent / "shared" / "datasets",
        help="folder with manifest.json (default: ../shared/datasets from the repo root)",
    )
    p.add_argument(
        "--budget", type=float, default=60.0, help="seconds per run, whole process (default 60)"
    )
    p.add_argument("--seeds", default="0", help="comma-separated split seeds (default 0)")
    p.add_argument(
        "--systems",
        default="mlsmith,flaml,hgb,rf",
        help=f"comma-separated, from {','.join(SYSTEM_LABELS)}",
    )
    p.add_argument("--only", default="", help="comma-separated dataset names (default: all)")
    p.add_argument(
        "--peers-python",
        type=Path,
        default=BENCH / ".peers-venv" / "bin" / "python",
        help="python of the peers' venv (flaml, hgb, rf); see setup_peers.sh",
    )
    p.add_argument(
        "--mlsmith-python",
        type=Path,
        default=None,
        help="python that imports mlsmith (default: .venv/bin/python of the repo, else this one)",
    )
    p.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="markdown report")
    p.add_argument(
        "--raw", type=Path, default=BENCH / "results.csv", help="raw CSV, one row appended per run"
    )
    p.add_argument(
        "--work", type=Path, default=BENCH / "work", help="splits, predictions and failure logs"
    )
    p.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="BENCHMARK.md with the AutoGluon figures (default: beside the datasets folder)",
    )
    p.add_argument(
        "--fit-margin",
        type=float,
        default=None,
        help="seconds kept back from the time limits of mlsmith and FLAML (default 2 + 0.02 x budget)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_ID",
        default=None,
        help="continue the run RUN_ID of the raw CSV, skipping what it already holds",
    )
    p.add_argument(
        "--report-only",
        metavar="RUN_ID",
        nargs="?",
        const="latest",
        default=None,
        help="only regenerate the report from the raw CSV (default: its latest run)",
    )
    return p.parse_args(argv)


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    systems = _split_list(args.systems)
    unknown = [s for s in systems if s not in SYSTEM_LABELS]
    if unknown or not systems:
        raise SystemExit(f"unknown systems {unknown}; choose from {', '.join(SYSTEM_LABELS)}")
    seeds = [int(s) for s in _split_list(args.seeds)]
    mlsmith_python = args.mlsmith_python
    if mlsmith_python is None:
        venv = REPO / ".venv" / "bin" / "python"
        mlsmith_python = venv if venv.exists() else Path(sys.executable)
    pythons = {"mlsmith": mlsmith_python, "peers": args.peers_python}
    reference = args.reference or args.datasets.parent / "BENCHMARK.md"
    margin = args.fit_margin if args.fit_margin is not None else 2.0 + 0.02 * args.budget

    if args.report_only is not None:
        records = read_records(args.raw)
        if not records:
            raise SystemExit(f"{args.raw} holds no runs")
        run_id = records[-1].run_id if args.report_only == "latest" else args.report_only
        records = [r for r in records if r.run_id == run_id]
        if not records:
            raise SystemExit(f"no run {run_id} in {args.raw}")
        present = list(dict.fromkeys(r.system for r in records))
        systems = [s for s in SYSTEM_LABELS if s in present]
        write_report(args.out, render(records, systems, pythons, reference))
        print(f"report of run {run_id} written to {args.out}")
        return 0

    for s in systems:
        python = python_for(s, pythons)
        if not python.exists():
            hint = " (run: bash benchmarks/setup_peers.sh)" if s in PEER_SYSTEMS else ""
            raise SystemExit(f"python for {s} not found: {python}{hint}")
    if not Path("/usr/bin/time").exists():
        print("warning: /usr/bin/time missing, peak RSS is not recorded", file=sys.stderr)
    datasets = load_manifest(args.datasets, _split_list(args.only))

    done: set[tuple[str, str, int]] = set()
    if args.resume:
        run_id = args.resume
        previous = [r for r in read_records(args.raw) if r.run_id == run_id]
        if not previous:
            raise SystemExit(f"no run {run_id} in {args.raw}")
        done = {(r.system, r.dataset, r.seed) for r in previous}
        if any(r.budget_s != args.budget for r in previous):
            raise SystemExit(f"run {run_id} used --budget {previous[0].budget_s:g}")
    else:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = args.work.resolve()
    ctx = Context(
        run_id=run_id,
        budget=args.budget,
        margin=margin,
        pythons=pythons,
        work=work,
        logs=work / "logs" / run_id,
        raw=args.raw,
        command=shlex.join([_relative(Path(sys.executable)).as_posix(), *sys.argv]),
    )
    print(
        f"run {run_id}: {len(datasets)} datasets x {len(seeds)} seeds, systems {', '.join(systems)}, "
        f"budget {args.budget:g} s; raw rows -> {args.raw}",
        flush=True,
    )
    run_suite(ctx, datasets, systems, seeds, done)

    records = [r for r in read_records(args.raw) if r.run_id == run_id]
    if not records:
        raise SystemExit("nothing ran")
    write_report(args.out, render(records, systems, pythons, reference))
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
