"""The worker process: runs tasks sent by the parent, one at a time.

Protocol (line based, on the worker's stdin / a private copy of its stdout): the parent writes a
task file (a pickle) and sends its path; the worker writes ``PATH.out`` (the result) or
``PATH.err`` (a traceback) and answers ``ok PATH`` or ``err PATH``. The worker's fd 1 is
redirected to stderr so that chatty libraries cannot corrupt the protocol. The parent kills the
whole process group when a task runs past its time, which is how a model that would overrun the
budget is stopped.
"""

from __future__ import annotations

import os
import sys
import traceback


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # import the heavy libraries while the parent is still loading data
    import pickle

    import joblib
    import sklearn.ensemble  # noqa: F401

    from mlsmith.select._tasks import TASKS

    try:
        import lightgbm  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    proto.write("ready\n")
    cache: dict[str, object] = {}
    state: dict[str, object] = {}  # fold models kept between tasks
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            # pickle rather than joblib for the task and its result: a search sends thousands
            # of small ones, and joblib's wrapping cost ~0.2 ms each way (measured)
            with open(path, "rb") as fh:
                task = pickle.load(fh)
            data_path = task["data_path"]
            if data_path not in cache:
                cache.clear()
                state.clear()
                cache[data_path] = joblib.load(data_path)
            result = TASKS[task["kind"]](task, cache[data_path], state)  # type: ignore[arg-type]
            tmp = path + ".out.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path + ".out")
            proto.write(f"ok {path}\n")
        except BaseException:  # noqa: BLE001 - report everything to the parent
            with open(path + ".err", "w") as fh:
                fh.write(traceback.format_exc())
            proto.write(f"err {path}\n")


if __name__ == "__main__":
    main()
