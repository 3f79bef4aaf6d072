"""Model selection: cross-validation of the portfolio under a budget, and ensembling."""

from mlsmith.select._budget import Budget
from mlsmith.select._ensemble import FittedModel, greedy_ensemble
from mlsmith.select._search import (
    Candidate,
    Result,
    choose_final,
    leaderboard_rows,
    plan_candidates,
    run_portfolio,
)

__all__ = ["Budget", "FittedModel", "greedy_ensemble", "Candidate", "Result", "choose_final",
           "leaderboard_rows", "plan_candidates", "run_portfolio"]
