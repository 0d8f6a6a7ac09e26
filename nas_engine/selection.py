"""Which model to export. By default (``auto``) the one of highest expected quality: the ensemble of
the best distinct models when its validation score beats the best single model's, else that single
model (``default_choice``). One choice away, ``smallest``: the cheapest front model whose validation
score is within one standard error of the best (the one-standard-error rule of Breiman et al., 1984,
"Classification and Regression Trees"; ``recommend``): on small validation sets the top score is
partly luck, and among models that score the same up to noise the simpler one is cheaper to run.
On a few hundred validation rows, though, that rule calls almost everything equivalent and picks a
far weaker model, so it is no longer the default."""

from __future__ import annotations

import math
from collections.abc import Sequence

from nas_engine.metrics import METRICS
from nas_engine.results import TrialResult, require_score

EXPORT_CHOICES = {
    "auto": "the ensemble when its validation (or out-of-fold) score beats the best single model's, else that model",
    "smallest": "the cheapest front model within one standard error of the best validation score",
    "best": "the single model with the highest validation score",
    "ensemble": "the best distinct models, their predictions averaged",
}
# Earlier names still accepted: "recommended" was the one-standard-error rule when it was the default.
EXPORT_ALIASES = {"recommended": "smallest"}


def default_choice(best: TrialResult | None, ensemble: TrialResult | None) -> TrialResult | None:
    """The model of highest expected quality: ``ensemble`` when its validation score beats ``best``'s,
    else ``best`` (the single model with the highest validation score).

    Under k-fold scoring (``best.metrics["cv_folds"]``) the two are compared on out-of-fold outputs
    over train+validation (``finalize``'s cross-validated ensemble records ``best``'s own there as
    ``single_score``/``single_val_loss``): the ensemble when it scores at least as well with a lower
    loss. An ensemble without those (its members' first-fold networks trained on some of the rows it
    was scored on) is not comparable, so ``best`` is kept.

    Args:
        best: ``SearchResult.best``.
        ensemble: ``FinalModels.ensemble`` (None when no ensemble was built).
    """
    if best is None or best.score is None:
        return ensemble if ensemble is not None and ensemble.score is not None else best
    if ensemble is None or ensemble.score is None:
        return best
    if best.metrics.get("cv_folds", 1) > 1:
        single = ensemble.metrics.get("single_score")
        if single is None:
            return best
        ahead = require_score(ensemble) >= single and ensemble.metrics["val_loss"] < ensemble.metrics["single_val_loss"]
        return ensemble if ahead else best
    return ensemble if require_score(ensemble) > require_score(best) else best


def score_standard_error(score: float, *, task: str, n: int, metric: str | None = None) -> float:
    """Standard error of a validation score measured on ``n`` rows.

    Classification: the binomial error of an accuracy, sqrt(p(1-p)/n), also taken for the other
    shares in [0, 1] (balanced accuracy, F1, ROC AUC). Regression: the large-sample error of R²,
    sqrt(4R²(1-R²)²/n) (Olkin & Finn, 1995). A metric where lower is better (log loss, RMSE, MAE,
    MAPE) is a mean of per-row errors, whose spread is about its own size: |value| / sqrt(n).
    """
    if n <= 1:
        return 0.0
    if metric is not None and not METRICS[metric].higher_is_better:
        return abs(score) / math.sqrt(n)
    value = min(max(score, 0.0), 1.0)
    if task == "classification":
        return math.sqrt(value * (1 - value) / n)
    return math.sqrt(4 * value * (1 - value) ** 2 / n)


def recommend(
    front: Sequence[TrialResult], *, task: str, n_validation: int, cost: str, metric: str | None = None
) -> TrialResult | None:
    """The cheapest front trial (by ``cost``) scoring within one standard error of the best one.

    Args:
        front: Trials on the Pareto front.
        task: ``"classification"`` or ``"regression"``.
        n_validation: Rows the scores were measured on (all train+validation rows under k-fold).
        cost: The cost objective to minimise, e.g. ``"params"`` or ``"latency_ms"``.
        metric: The search's metric (``metrics.METRICS``); None: accuracy or R².

    Returns:
        The recommended trial, or None when no front trial has a score and that cost.
    """
    scored = [t for t in front if t.score is not None and getattr(t.costs, cost) is not None]
    if not scored:
        return None
    best = max(require_score(t) for t in scored)
    threshold = best - score_standard_error(best, task=task, n=n_validation, metric=metric)
    eligible = [t for t in scored if require_score(t) >= threshold]
    return min(eligible, key=lambda t: (getattr(t.costs, cost), -require_score(t), t.number))


def knee_point(front: Sequence[TrialResult], *, cost: str) -> TrialResult | None:
    """The knee of the front: the trial where extra cost starts buying little extra score.

    In (normalised log cost, normalised score) space, the knee is the point farthest above the
    chord joining the two extremes of the front (the cheapest and the best-scoring trial), the
    "kneedle" idea of Satopää et al., 2011, "Finding a 'Kneedle' in a Haystack". Costs are on a
    log scale because they span decades: going from 1 k to 2 k parameters is as big a step as
    from 100 k to 200 k.

    Args:
        front: Trials on the Pareto front (trials without a score or that cost are ignored).
        cost: The cost objective of the trade-off, e.g. ``"params"`` or ``"latency_ms"``.

    Returns:
        The knee trial, or None when the front has fewer than three usable trials or is no better
        than a straight line between its extremes (no trial lies above the chord).
    """
    points = [
        (math.log10(max(float(getattr(t.costs, cost)), 1e-12)), require_score(t), t)
        for t in front
        if t.score is not None and getattr(t.costs, cost) is not None
    ]
    # Keep the two-dimensional front only: a trial on a front over more costs may be dominated here.
    ranked = sorted(points, key=lambda p: (p[0], -p[1], p[2].number))
    curve: list[tuple[float, float, TrialResult]] = []
    for point in ranked:
        if not curve or point[1] > curve[-1][1]:
            curve.append(point)
    if len(curve) < 3:
        return None
    (x0, y0, _), (x1, y1, _) = curve[0], curve[-1]
    if x1 <= x0 or y1 <= y0:
        return None

    def height_above_chord(point: tuple[float, float, TrialResult]) -> float:
        x, y = (point[0] - x0) / (x1 - x0), (point[1] - y0) / (y1 - y0)
        return y - x  # the chord is y = x after normalising; perpendicular distance is this / sqrt(2)

    knee = max(curve[1:-1], key=height_above_chord)
    return knee[2] if height_above_chord(knee) > 0 else None
