"""The run's report: one self-contained HTML file and a model card, built from its files.

>>> from mlsmith.report import write_report, write_model_card
>>> write_report("runs/penguins")        # runs/penguins/report.html   # doctest: +SKIP
>>> write_model_card("runs/penguins")    # runs/penguins/model_card.md # doctest: +SKIP

Both read only the files of the run directory (docs/RUNDIR.md) and need no ``manifest.json``, so
the fit can write them into its staging folder before it commits the run. A missing file makes
its sections say "not recorded in this run" instead of failing.
"""

from __future__ import annotations

from mlsmith.report._card import render_model_card, write_model_card
from mlsmith.report._html import render_report, write_report
from mlsmith.report._io import NOT_RECORDED

__all__ = ["render_report", "write_report", "render_model_card", "write_model_card",
           "NOT_RECORDED"]
