"""Model selection under a time budget: the default portfolio, cheap families first.

Rules, in order:

1. A constant baseline (class priors / the mean) is scored in-process: there is always a model.
2. Candidates run one at a time in the worker process, cheapest family first. Before each, its
   cost is estimated (from an earlier run of the same family, or from the baseline's time and
   the family's declared relative cost); a candidate that would not finish in the time left,
   after keeping a reserve for the final refit and saving, is skipped. One that overruns anyway
   is killed at the reserve line and recorded as stopped. Since a kill also loses the fold
   models kept for bagging, the reserve of a candidate that can be killed covers a full refit
   of the best model in a fresh worker; boosting models, which stop themselves at their
   deadline, only need the (smaller) reserve for shipping a bag.
3. Greedy ensemble selection (Caruana) over the out-of-fold predictions picks weights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlsmith.metrics import get_metric, score
from mlsmith.models import ModelFamily
from mlsmith.select._budget import Budget
from mlsmith.select._ensemble import blend, greedy_ensemble
from mlsmith.select._pool import TaskFailed, TaskTimeout, Worker

__all__ = ["Candidate", "Result", "plan_candidates", "run_portfolio", "choose_final"]

log = logging.getLogger("mlsmith")

# Order in which families are tried, by value for the time they cost on typical tables.
PORTFOLIO_ORDER: list[tuple[str, int]] = [
    ("linear", 0),
    ("hist_gradient_boosting", 0),
    ("lightgbm", 0),
    ("xgboost", 0),
    ("knn", 0),
    ("catboost", 0),
    ("lightgbm", 1),
    ("extra_trees", 0),
    ("random_forest", 0),
    ("lightgbm", 2),
    ("hist_gradient_boosting", 1),
    # networks come last unless the linear model rivals the trees (then right after them:
    # see _smooth_problem); on tables of mixed categoricals they rarely pay for their time
    ("neural", 0),
    ("neural", 1),
]


@dataclass
class Candidate:
    model_id: str
    family: str
    params: dict[str, Any]
    origin: str = "portfolio"


@dataclass
class Result:
    candidate: Candidate
    status: str  # ok | stopped | skipped | failed
    cv_scores: list[float] = field(default_factory=list)
    train_scores: list[float] = field(default_factory=list)
    oof: np.ndarray | None = None
    fit_time: float = float("nan")
    predict_time: float = float("nan")
    total_time: float = float("nan")
    note: str = ""
    bag_generation: int = -1  # worker generation holding this model's fold models, if any

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.cv_scores)) if self.cv_scores else float("nan")

    @property
    def cv_std(self) -> float:
        return float(np.std(self.cv_scores)) if self.cv_scores else float("nan")


def plan_candidates(families: list[ModelFamily], task: str) -> list[Candidate]:
    """The default portfolio for ``families``, in the order they will be tried."""
    by_name = {f.name: f for f in families}
    plan: list[Candidate] = []
    counts: dict[str, int] = {}
    seen = set()
    order = PORTFOLIO_ORDER + [(f.name, i) for f in families for i in range(len(f.portfolio(task)))]
    for name, i in order:
        fam = by_name.get(name)
        if fam is None or (name, i) in seen:
            continue
        configs = fam.portfolio(task)
        if i >= len(configs):
            continue
        seen.add((name, i))
        counts[name] = counts.get(name, 0) + 1
        plan.append(Candidate(f"{name}_{counts[name]}", name, dict(configs[i])))
    return plan


def _baseline(y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], task: str,
              n_classes: int, metric: str) -> Result:
    oof = np.zeros((len(y), n_classes)) if task != "regression" else np.zeros(len(y))
    scores = []
    for tr, va in folds:
        if task == "regression":
            pred = np.full(len(va), float(np.mean(y[tr])))
        else:
            prior = np.bincount(y[tr], minlength=n_classes).astype(float) + 1e-3
            pred = np.tile(prior / prior.sum(), (len(va), 1))
        oof[va] = pred
        scores.append(score(metric, y[va], pred))
    return Result(Candidate("constant_baseline", "constant", {}, origin="baseline"), "ok",
                  cv_scores=scores, oof=oof, fit_time=0.0, predict_time=0.0, total_time=0.0,
                  note="class priors" if task != "regression" else "training mean")


def _estimate(cand: Candidate, results: list[Result], families: dict[str, ModelFamily],
              n_rows: int, n_classes: int = 1) -> float | None:
    """Seconds ``cand`` should take: from an earlier run of its family, else from the median
    seconds-per-unit-of-declared-cost of the families measured so far."""
    ok = [r for r in results if r.status == "ok" and r.candidate.family in families]
    same = [r for r in ok if r.candidate.family == cand.family]
    if same:
        return max(r.total_time for r in same) * 1.5

    def declared(name: str) -> float:
        cap = families[name].capabilities
        cost = cap.relative_cost
        if cap.cost_grows_with_rows_squared:
            cost *= max(1.0, n_rows / 20000)
        if cap.cost_grows_with_classes and n_classes > 2:
            cost *= n_classes / 2  # one tree per class per round
        return cost

    if not ok:
        return None
    # the linear baseline is a poor guide to tree models: prefer any other measurement
    ref = [r for r in ok if r.candidate.family != "linear"] or ok
    scale = float(np.median([max(r.total_time, 0.05) / declared(r.candidate.family) for r in ref]))
    return scale * declared(cand.family)


def run_portfolio(candidates: list[Candidate], families: dict[str, ModelFamily], worker: Worker,
                  data_path: str, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                  task: str, n_classes: int, metric: str, seed: int, n_jobs: int, budget: Budget,
                  reserve: Callable[[list[Result], bool], float],
                  on_event: Callable[[str, dict[str, Any]], None] = lambda e, d: None,
                  done: dict[str, Result] | None = None) -> list[Result]:
    """Cross-validate each candidate within the budget; returns every result, ok or not.

    ``done`` holds results an interrupted attempt of the same fit already finished: they are
    taken as they are, not run again.
    """
    results = [_baseline(y, folds, task, n_classes, metric)]
    must_run = "hist_gradient_boosting_1"
    on_event("model_end", {"result": results[0]})
    done = done or {}
    queue = list(candidates)
    promoted = False
    while queue:
        if not promoted and _smooth_problem(results, metric):
            # the linear model rivals the trees: a neural network is likely to do well here,
            # so it runs next instead of after the remaining tree ensembles
            promoted = True
            nets = [c for c in queue if c.family == "neural"][:1]
            queue = nets + [c for c in queue if c not in nets]
        cand = queue.pop(0)
        if cand.model_id in done:
            results.append(done[cand.model_id])
            on_event("model_end", {"result": results[-1]})
            continue
        # A candidate that may be killed must leave time for a full refit in a fresh worker
        # (a kill loses the fold models kept for bagging); one that stops itself need not.
        stops = families[cand.family].capabilities.stops_at_deadline
        available = budget.remaining() - reserve(results, not stops)
        est = _estimate(cand, results, families, len(y), n_classes)
        if cand.model_id == must_run and available > 1.0:
            est = None  # the reference every user compares with always runs
        # a family that stops itself at the deadline may start with less than it would like
        need = est
        if est is not None and families[cand.family].capabilities.stops_at_deadline:
            need = min(est, max(4.0, 0.7 * est))
        if available <= 0.5 or (need is not None and need > available):
            why = (f"skipped: needs about {est:.1f}s, {max(available, 0):.1f}s left"
                   if est is not None else f"skipped: {max(available, 0):.1f}s left")
            results.append(Result(cand, "skipped", note=why))
            on_event("model_end", {"result": results[-1]})
            continue
        on_event("model_start", {"candidate": cand, "estimate": est, "available": available})
        # one candidate may not eat the budget: boosting stops itself at a few times its
        # estimate, anything else is killed a little later
        soft = available * 0.92 if est is None else min(available * 0.92, max(3.0 * est, 10.0))
        if cand.model_id == must_run:
            soft = available * 0.6
        hard = available if est is None else min(available, max(4.0 * est, 20.0))
        task_spec = {"kind": "cv", "data_path": data_path, "family": cand.family,
                     "model_id": cand.model_id,
                     "params": cand.params, "metric": metric, "seed": seed, "n_jobs": 1,
                     "parallel": n_jobs,
                     "deadline": budget.clock() + soft}
        try:
            out = worker.run(task_spec, timeout=hard)
            res = Result(cand, "ok", cv_scores=out["fold_scores"], train_scores=out["train_scores"],
                         oof=out["oof"], fit_time=out["fit_time"], predict_time=out["predict_time"],
                         total_time=out["total_time"])
            for r in results + [res]:
                if r.candidate.model_id in out["kept_bags"]:
                    r.bag_generation = worker.generation
                elif r.bag_generation == worker.generation:
                    r.bag_generation = -1
        except TaskTimeout as exc:
            res = Result(cand, "stopped", note=f"stopped: ran past its time ({exc})",
                         total_time=hard)
        except TaskFailed as exc:
            res = Result(cand, "failed", note=f"failed: {exc}")
            log.warning("model %s failed: %s", cand.model_id, exc)
        results.append(res)
        on_event("model_end", {"result": res})
    return results


#: the neural network is tried early when the linear model's error is at most this multiple of
#: the best tree model's (a smooth problem: measured on the public suite, texture and letter)
SMOOTH_RATIO = 1.25


def _smooth_problem(results: list[Result], metric: str) -> bool:
    """True once linear and tree models have run and the linear one is nearly as good."""
    ok = {r.candidate.family: r.cv_mean for r in results if r.status == "ok"}
    trees = [v for f, v in ok.items() if f not in ("linear", "knn", "neural", "constant")]
    if "linear" not in ok or not trees:
        return False

    def error(value: float) -> float:
        return 1.0 - value if get_metric(metric).greater_is_better else -value

    return error(ok["linear"]) <= SMOOTH_RATIO * min(error(v) for v in trees)


#: an ensemble must cut the best single model's out-of-fold error by this share to be shipped:
#: its weights were chosen on the same predictions, so a smaller gain is mostly selection noise
#: (measured: on car_evaluation a 0.45% gain in CV came with a 4% loss on the test set)
MIN_ENSEMBLE_GAIN = 0.005


def _relative_gain(metric: str, single: float, ensemble: float) -> float:
    """Relative reduction of the error: the loss itself, or 1 - score for scores (at most 1)."""
    def error(value: float) -> float:
        return 1.0 - value if get_metric(metric).greater_is_better else -value

    base = error(single)
    if base <= 1e-12:
        return 0.0
    return (base - error(ensemble)) / base


def choose_final(results: list[Result], y: np.ndarray, metric: str,
                 refit_estimate: Callable[[list[str]], float], available: float,
                 ensemble: bool = True) -> tuple[dict[str, float], float, str]:
    """Pick the members and weights of the shipped model.

    Returns ``(weights by model id, out-of-fold score, description)``. The ensemble is used when
    it beats the best single model and its refit fits in ``available`` seconds; members with the
    smallest weights are dropped until it does.
    """
    ok = [r for r in results if r.status == "ok" and r.oof is not None]
    ok.sort(key=lambda r: r.cv_mean, reverse=True)
    best = ok[0]
    best_oof_score = score(metric, y, best.oof)
    fallback = [r for r in ok if refit_estimate([r.candidate.model_id]) <= available]
    if not fallback:
        fallback = [min(ok, key=lambda r: refit_estimate([r.candidate.model_id]))]
    single = fallback[0]
    single_choice = ({single.candidate.model_id: 1.0}, score(metric, y, single.oof),
                     f"best single model {single.candidate.model_id}")
    if not ensemble or len(ok) < 2:
        return single_choice
    preds = {r.candidate.model_id: r.oof for r in ok if r.candidate.family != "constant"}
    if len(preds) < 2:
        return single_choice
    weights, ens_score = greedy_ensemble(
        preds, y, metric, groups={r.candidate.model_id: r.candidate.family for r in ok})
    while weights and refit_estimate(list(weights)) > available and len(weights) > 1:
        drop = min(weights, key=weights.get)  # type: ignore[arg-type]
        weights.pop(drop)
        total = sum(weights.values())
        weights = {k: v / total for k, v in weights.items()}
        ens_score = score(metric, y, blend([preds[k] for k in weights], list(weights.values())))
    if len(weights) > 1 and _relative_gain(metric, max(best_oof_score, single_choice[1]),
                                           ens_score) >= MIN_ENSEMBLE_GAIN \
            and refit_estimate(list(weights)) <= available:
        desc = "weighted ensemble of " + ", ".join(f"{k} ({v:.2f})" for k, v in
                                                   sorted(weights.items(), key=lambda kv: -kv[1]))
        return weights, ens_score, desc
    return single_choice


def leaderboard_rows(results: list[Result], metric: str, n_rows: int) -> list[dict[str, Any]]:
    """One row per candidate, best first; scores in the metric's natural units."""
    m = get_metric(metric)
    sign = 1.0 if m.greater_is_better else -1.0
    rows = []
    for r in results:
        rows.append({
            "model": r.candidate.model_id,
            "family": r.candidate.family,
            "origin": r.candidate.origin,
            "status": r.status,
            f"cv_{m.name}": sign * r.cv_mean if r.cv_scores else float("nan"),
            f"cv_{m.name}_std": r.cv_std if r.cv_scores else float("nan"),
            f"train_{m.name}": sign * float(np.mean(r.train_scores)) if r.train_scores else float("nan"),
            "fit_time_s": r.fit_time,
            "predict_time_s": r.predict_time,
            "cv_time_s": r.total_time,
            "params": json.dumps(r.candidate.params, sort_keys=True, default=str),
            "note": r.note,
        })
    key = f"cv_{m.name}"
    rows.sort(key=lambda row: (row["status"] != "ok",
                               -(sign * row[key]) if row[key] == row[key] else np.inf))
    return rows
