"""Memory stays flat across trials: a 200-trial search against its largest trial run alone.

The target (issue: search engine): a 200-trial search does not grow the peak memory of the
process (with its worker processes) beyond that of its largest trial by more than 20%.

Method. One table from the public suite becomes a data bundle; a TPE search over LightGBM and
HistGradientBoosting runs ``--trials`` trials in worker processes while a background thread
samples the resident memory of the whole process tree every 50 ms. The trial whose worker peaked
highest is then run again, alone, in a fresh process tree with the same sampling: that is "its
largest trial". The ratio of the two peaks is the result. Both runs happen in this process, one
after the other, with the same imports loaded.

    .venv/bin/python benchmarks/bench_tune_memory.py --dataset adult --rows 20000 --trials 200

Writes a block between ``<!-- tune-memory:begin -->`` and ``<!-- tune-memory:end -->`` in
benchmarks/RESULTS.md (``--no-write`` to print only).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section  # benchmarks/ is the script's folder

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def _bundle(dataset: str, rows: int, datasets: Path, folder: Path) -> Path:
    import pandas as pd

    from mlsmith.tune import prepare_bundle

    manifest = json.loads((datasets / "manifest.json").read_text())
    entries = manifest if isinstance(manifest, list) else manifest.get("datasets", manifest)
    entry = next(e for e in entries if e.get("name") == dataset)
    df = pd.read_csv(datasets / entry["file"])
    if len(df) > rows:
        df = df.sample(rows, random_state=0).reset_index(drop=True)
    path = folder / "data.joblib"
    prepare_bundle(df, entry["target"], path, folds=3, seed=0)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    p.add_argument("--dataset", default="adult")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--families", default="lightgbm,hist_gradient_boosting")
    p.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)

    from mlsmith.tune import MemoryMonitor, tune

    families = args.families.split(",")
    work = Path(tempfile.mkdtemp(prefix="mlsmith-bench-mem-"))
    try:
        bundle = _bundle(args.dataset, args.rows, args.datasets, work)
        t0 = time.time()
        with MemoryMonitor(interval=0.05) as search_mem:
            table = tune(str(bundle), families, strategy="tpe", n_trials=args.trials, seed=0,
                         storage=str(work / "journal.log"), workdir=str(work / "search"),
                         oof_dir=str(work / "oof"))
        search_s = time.time() - t0
        done = table[table["status"].isin(["ok", "pruned"])]
        largest = done.sort_values("worker_max_rss_mb", ascending=False).iloc[0] \
            if "worker_max_rss_mb" in done else done.iloc[0]
        params = json.loads(largest["params"])
        with MemoryMonitor(interval=0.05) as alone_mem:
            tune(str(bundle), [largest["family"]], strategy="random", n_trials=1, seed=0,
                 storage=str(work / "alone.log"), workdir=str(work / "alone"),
                 oof_dir=str(work / "oof-alone"), pruner="none",
                 initial=[{"family": largest["family"], **params}])
        ratio = search_mem.peak_mb / alone_mem.peak_mb
        first = [b for t, b in search_mem.samples if t <= 0.1 * search_s]
        lines = [
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
            f"({platform.machine()}, {__import__('os').cpu_count()} cores), Python "
            f"{platform.python_version()}.",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_tune_memory.py --dataset {args.dataset} "
            f"--rows {args.rows} --trials {args.trials}`",
            "",
            "| measure | value |",
            "|---|---|",
            f"| trials (ok / pruned / other) | {int((table['status'] == 'ok').sum())} / "
            f"{int((table['status'] == 'pruned').sum())} / "
            f"{int((~table['status'].isin(['ok', 'pruned'])).sum())} |",
            f"| search wall time | {search_s:.0f} s |",
            f"| peak RSS of the process tree, whole search | {search_mem.peak_mb:.0f} MB |",
            f"| peak RSS, first 10% of the search | {max(first) / 1024**2:.0f} MB |",
            f"| largest trial ({largest['model']}) run alone: peak RSS | "
            f"{alone_mem.peak_mb:.0f} MB |",
            f"| ratio search / largest trial alone | {ratio:.3f} (target <= 1.20: "
            f"{'met' if ratio <= 1.2 else 'NOT met'}) |",
        ]
        block = "\n".join(lines)
        print(block)
        if not args.no_write:
            write_section("tune-memory", f"## Search memory (200 trials)\n\n{block}", args.out)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
