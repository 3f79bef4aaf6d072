"""Budget, the portfolio plan, final choice and the leaderboard rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlsmith.models import REGISTRY
from mlsmith.select import (
    Budget,
    Candidate,
    Result,
    choose_final,
    leaderboard_rows,
    plan_candidates,
)


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_budget_with_injected_clock() -> None:
    clock = FakeClock()
    b = Budget(30, clock=clock)
    assert b.deadline == 1030 and b.remaining() == 30 and b.elapsed() == 0
    clock.t += 12.5
    assert b.elapsed() == 12.5 and b.remaining() == 17.5
    assert Budget(10, start=995.0, clock=clock).remaining() == pytest.approx(-7.5)


def test_plan_is_cheap_first_with_unique_ids() -> None:
    fams = [REGISTRY["lightgbm"], REGISTRY["linear"]]
    plan = plan_candidates(fams, "binary")
    assert [c.model_id for c in plan] == ["linear_1", "lightgbm_1", "lightgbm_2", "lightgbm_3"]
    assert plan[1].params == REGISTRY["lightgbm"].portfolio("binary")[0]


def _result(mid: str, family: str, scores: list[float], oof: np.ndarray, status: str = "ok",
            fit_time: float = 0.1) -> Result:
    return Result(Candidate(mid, family, {"p": 1}), status, cv_scores=scores, oof=oof,
                  fit_time=fit_time, predict_time=0.01, total_time=fit_time * 3)


def test_choose_final_prefers_the_ensemble_when_it_helps() -> None:
    y = np.array([0.0, 0.0, 1.0, 1.0])
    results = [
        _result("constant_baseline", "constant", [-0.5], np.full(4, 0.5)),
        _result("a_1", "a", [-0.5], y + 0.5),
        _result("b_1", "b", [-0.5], y - 0.5),
    ]
    weights, s, desc = choose_final(results, y, "rmse", lambda ids: 0.1 * len(ids), available=10)
    assert set(weights) == {"a_1", "b_1"} and desc.startswith("weighted ensemble")
    assert s > -0.5
    single, _, desc = choose_final(results, y, "rmse", lambda ids: 0.1, 10, ensemble=False)
    assert len(single) == 1 and desc.startswith("best single model")


def test_choose_final_respects_refit_time() -> None:
    y = np.array([0.0, 0.0, 1.0, 1.0])
    results = [_result("slow_1", "s", [-0.1], y + 0.1), _result("fast_1", "f", [-0.3], y + 0.3)]
    weights, _, _ = choose_final(results, y, "rmse",
                                 lambda ids: 100.0 if "slow_1" in ids else 1.0, available=5)
    assert weights == {"fast_1": 1.0}


def test_leaderboard_rows_sorted_in_natural_units() -> None:
    y = np.zeros(3)
    results = [
        _result("worse_1", "w", [-2.0, -4.0], y),
        _result("better_1", "b", [-1.0, -1.0], y),
        Result(Candidate("late_1", "l", {}), "skipped", note="skipped: 0.0s left"),
    ]
    rows = leaderboard_rows(results, "rmse", 3)
    assert [r["model"] for r in rows] == ["better_1", "worse_1", "late_1"]
    assert rows[1]["cv_rmse"] == pytest.approx(3.0)  # losses shown positive
    assert rows[1]["cv_rmse_std"] == pytest.approx(1.0)
    assert json.loads(rows[0]["params"]) == {"p": 1}
    assert rows[2]["status"] == "skipped" and np.isnan(rows[2]["cv_rmse"])
