"""Which front model to recommend: the cheapest one whose validation score is within one standard
error of the best (the one-standard-error rule of Breiman et al., 1984, "Classification and
Regression Trees"). On small validation sets the top score is partly luck, and among models that
score the same up to noise the simpler one generalises better."""

from __future__ import annotations

import math
from collections.abc import Sequence

from nas_engine.results import TrialResult, require_score


def score_standard_error(score: float, *, task: str, n: int) -> float:
    """Standard error of a validation score measured on ``n`` rows.

    Classification: the binomial error of an accuracy, sqrt(p(1-p)/n). Regression: the
    large-sample error of R², sqrt(4R²(1-R²)²/n) (Olkin & Finn, 1995).
    """
    if n <= 1:
        return 0.0
    value = min(max(score, 0.0), 1.0)
    if task == "classification":
        return math.sqrt(value * (1 - value) / n)
    return math.sqrt(4 * value * (1 - value) ** 2 / n)


def recommend(front: Sequence[TrialResult], *, task: str, n_validation: int, cost: str) -> TrialResult | None:
    """The cheapest front trial (by ``cost``) scoring within one standard error of the best one.

    Args:
        front: Trials on the Pareto front.
        task: ``"classification"`` or ``"regression"``.
        n_validation: Rows the scores were measured on (all train+validation rows under k-fold).
        cost: The cost objective to minimise, e.g. ``"params"`` or ``"latency_ms"``.

    Returns:
        The recommended trial, or None when no front trial has a score and that cost.
    """
    scored = [t for t in front if t.score is not None and getattr(t.costs, cost) is not None]
    if not scored:
        return None
    best = max(require_score(t) for t in scored)
    threshold = best - score_standard_error(best, task=task, n=n_validation)
    eligible = [t for t in scored if require_score(t) >= threshold]
    return min(eligible, key=lambda t: (getattr(t.costs, cost), -require_score(t), t.number))
