"""The parent's handle on the worker process, with hard time limits per task."""

from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["Worker", "TaskTimeout", "TaskFailed"]


class TaskTimeout(Exception):
    """The task ran past its time and the worker was killed."""


class TaskFailed(Exception):
    """The task raised in the worker; the message holds the last line of its traceback."""


class Worker:
    """A long-lived ``python -m mlsmith.select._worker`` process.

    Starting it costs an interpreter start and the imports (a second or two), which overlaps with
    loading the data because :meth:`start` does not wait. A task that overruns its timeout kills
    the process; the next task starts a fresh one.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.proc: subprocess.Popen[str] | None = None
        self._ready = False
        self._n = 0
        self.generation = 0  # bumped at every start: state kept by an older process is gone

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.generation += 1
        log = open(self.workdir / "worker.log", "a")  # noqa: SIM115 - owned by the process
        env = dict(os.environ)
        env.setdefault("PYTHONWARNINGS", "ignore")
        # Each model fits on one thread and mlsmith runs folds (and ensemble members) side by
        # side, one per core. Measured on the 2-core machines here: HistGradientBoosting on
        # 7,500 rows of `letter` took 2.2 s on one thread, 3.1 s on two spinning OpenMP threads
        # and 38 s on two sleeping ones; with another process busy, two spinning threads took
        # 26 s where one took 0.4 s. Threads inside a model are the wrong unit here.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlsmith.select._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            start_new_session=True, env=env)
        log.close()
        self._ready = False

    def _readline(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        end = time.time() + max(timeout, 0.0)
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                line = self.proc.stdout.readline()
                if line == "":
                    raise TaskFailed("the worker process died (out of memory?)")
                return line.strip()

    def wait_ready(self, timeout: float) -> bool:
        """Start the process if needed and wait up to ``timeout`` seconds until it has imported
        its libraries; False if it is not ready by then (it keeps starting). Lets a caller keep
        the start-up out of a task's time limit."""
        self.start()
        if not self._ready:
            line = self._readline(timeout)
            if line is None:
                return False
            self._ready = line == "ready"
        return True

    def run(self, task: dict[str, Any], timeout: float) -> Any:
        t_start = time.time()
        if not self.wait_ready(timeout):
            self.kill()
            raise TaskTimeout("the worker did not start in time")
        assert self.proc is not None and self.proc.stdin is not None
        self._n += 1
        path = str(self.workdir / f"task-{self._n}.pkl")
        with open(path, "wb") as fh:
            pickle.dump(task, fh, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(path + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.kill()
            raise TaskFailed("the worker process died") from None
        left = timeout - (time.time() - t_start)
        line = self._readline(left)
        if line is None:
            self.kill()
            raise TaskTimeout(f"stopped after {timeout:.1f}s")
        try:
            if line.startswith("ok "):
                with open(path + ".out", "rb") as fh:
                    return pickle.load(fh)
            err = Path(path + ".err").read_text() if Path(path + ".err").exists() else line
            last = [s for s in err.strip().splitlines() if s.strip()][-1:] or ["unknown error"]
            raise TaskFailed(last[0])
        finally:
            for suffix in ("", ".out", ".err"):
                try:
                    os.unlink(path + suffix)
                except OSError:
                    pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        self.proc = None
        self._ready = False

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.proc.stdin:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
