"""Resident memory of a process and its descendants, sampled while a search runs.

Used to check that a long search stays flat: trials run in worker processes, so the tree's peak
should stay close to the peak of its largest trial however many trials run::

    with MemoryMonitor() as mem:
        tune(...)
    mem.peak_mb, mem.samples
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

__all__ = ["tree_rss_bytes", "MemoryMonitor"]


def _children_proc(pid: int) -> list[int]:
    """Descendants of ``pid`` from /proc (every process's parent id)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _rss_proc(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident bytes of process ``pid`` (default: this one) and all its descendants.

    Uses psutil when installed, else /proc (Linux). Worker processes run in their own session
    but remain children of the process that started them, so they are counted.
    """
    pid = os.getpid() if pid is None else pid
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total
    if not os.path.isdir("/proc"):  # pragma: no cover
        raise RuntimeError("measuring memory needs psutil on this system: pip install psutil")
    return sum(_rss_proc(p) for p in [pid, *_children_proc(pid)])


class MemoryMonitor:
    """Sample :func:`tree_rss_bytes` on a background thread every ``interval`` seconds.

    Attributes
    ----------
    peak_bytes : int
        The largest total seen.
    samples : list of (seconds since start, bytes)
        Every sample, to plot memory over a run or compare early and late trials.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 1024**2

    def sample(self) -> int:
        value = tree_rss_bytes(self.pid)
        self.samples.append((time.monotonic() - self._t0, value))
        self.peak_bytes = max(self.peak_bytes, value)
        return value

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> MemoryMonitor:
        self._t0 = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="mlsmith-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def __enter__(self) -> MemoryMonitor:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
