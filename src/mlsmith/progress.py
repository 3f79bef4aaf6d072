"""Progress of a fit: the library emits events; a sink decides how they look.

``fit`` takes any callable ``sink(event, data)``. The CLI and the API use :func:`console_sink`:
a live rich display on a terminal, plain log lines otherwise, nothing with ``quiet``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Sink", "console_sink", "PlainSink", "RichSink", "null_sink"]

Sink = Callable[[str, dict[str, Any]], None]
log = logging.getLogger("mlsmith")


def null_sink(event: str, data: dict[str, Any]) -> None:
    return None


def _fmt(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


class PlainSink:
    """One line per event, to a stream (stderr by default)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.t0 = time.time()
        self.limit = float("nan")

    def _line(self, text: str) -> None:
        print(f"[{time.time() - self.t0:6.1f}s] {text}", file=self.stream, flush=True)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            self.limit = data.get("time_limit", float("nan"))
            self.t0 = data.get("t0", self.t0)
            self._line(f"fit: budget {self.limit:.0f}s, output {data.get('out')}")
        elif event == "stage":
            self._line(f"stage: {data['stage']}" + (f" - {data['detail']}" if data.get("detail") else ""))
        elif event == "warning":
            self._line(f"warning: {data['message']}")
        elif event == "audit":
            self._line(f"audit: {data['message']}")
        elif event == "model_start":
            self._line(f"model {data['candidate'].model_id}: cross-validating")
        elif event == "model_end":
            r = data["result"]
            metric = data.get("metric", "score")
            if r.status == "ok":
                self._line(f"model {r.candidate.model_id}: cv {metric} "
                           f"{_fmt(data.get('sign', 1.0) * r.cv_mean)} (±{_fmt(r.cv_std)}) "
                           f"in {r.total_time:.1f}s")
            else:
                self._line(f"model {r.candidate.model_id}: {r.note or r.status}")
        elif event == "done":
            self._line(f"done in {data['elapsed']:.1f}s: {data['chosen']}")

    def close(self) -> None:
        return None


class RichSink:
    """A live panel: stage, current model, elapsed time against the budget, finished models."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.t0 = time.time()
        self.limit = 0.0
        self.stage = "starting"
        self.current = ""
        self.rows: list[tuple[str, str, str, str]] = []
        self.notes: list[str] = []
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False, get_renderable=self._render)
        self.live.start()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = time.time() - self.t0
        head = Text.assemble(("mlsmith fit ", "bold"), f"stage: {self.stage}",
                             (f"   {self.current}" if self.current else ""),
                             f"   {elapsed:5.1f}s / {self.limit:.0f}s")
        bar = ProgressBar(total=max(self.limit, 1e-9), completed=min(elapsed, self.limit), width=50)
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for col in ("model", "status", "cv score", "time"):
            table.add_column(col)
        for row in self.rows[-12:]:
            table.add_row(*row)
        parts: list[Any] = [head, bar, table]
        parts += [Text(n, style="yellow") for n in self.notes[-6:]]
        return Group(*parts)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            self.limit = data.get("time_limit", 0.0)
            self.t0 = data.get("t0", self.t0)
        elif event == "stage":
            self.stage = data["stage"]
            self.current = ""
        elif event in ("warning", "audit"):
            self.notes.append(data["message"])
        elif event == "model_start":
            self.current = f"model: {data['candidate'].model_id}"
        elif event == "model_end":
            r = data["result"]
            score = (f"{_fmt(data.get('sign', 1.0) * r.cv_mean)} ±{_fmt(r.cv_std)}"
                     if r.status == "ok" else r.note or "-")
            t = f"{r.total_time:.1f}s" if r.total_time == r.total_time else "-"
            self.rows.append((r.candidate.model_id, r.status, score, t))
            self.current = ""
        elif event == "done":
            self.stage = "done"
        self.live.refresh()

    def close(self) -> None:
        self.live.stop()


def console_sink(quiet: bool = False, stream: Any = None) -> Any:
    """Pick the display: nothing when quiet, rich on a terminal, plain lines otherwise."""
    if quiet:
        return null_sink
    target = stream or sys.stderr
    if hasattr(target, "isatty") and target.isatty():
        try:
            return RichSink()
        except Exception:  # pragma: no cover - fall back to plain output
            pass
    return PlainSink(target)
