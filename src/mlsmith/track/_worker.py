"""Background process of :meth:`FitTracker.log_fit_async`: ``python -m mlsmith.track._worker DIR``.

``DIR`` holds ``payload.pkl`` (the tracker's settings and ``log_fit``'s arguments) and receives
the process's output in ``worker.log``; it is deleted when the process ends. The outcome is the
run directory's ``tracking.json``.
"""

from __future__ import annotations

import pickle
import shutil
import sys
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    workdir = Path(args[0])
    try:
        from mlsmith.track._tracker import FitTracker

        with open(workdir / "payload.pkl", "rb") as f:
            payload = pickle.load(f)
        tracker = FitTracker(**payload["tracker"])
        tracker.log_fit(*payload["args"], **payload["kwargs"])  # writes tracking.json either way
        return 0
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
