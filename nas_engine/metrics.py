"""The metrics a search can optimise: what a trial's ``score`` is, how the front is ranked and what
the pages, the CLI and the model card call it.

A search has one metric (``SearchConfig.metric``; accuracy for classification and R² for
regression when none is chosen). ``prepare_data`` records a chosen one as
``preprocessing["target"]["metric"]``, so every scorer that is handed the fitted target (trials,
folds, one-shot phases, compression, the reference models, the test split) measures the same
thing. ``score`` always grows with quality: a metric where lower is better (log loss, RMSE, MAE,
MAPE) is scored as its negative, so the strategies, the Pareto front and the selection all
maximise one number; ``shown`` turns a score back into the metric's own value for a person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm


@dataclass(frozen=True)
class Metric:
    """One metric: its name (the CLI's and the API's), its label for a person, the task it
    applies to, its direction and how it is computed from the labels and the model's outputs."""

    name: str
    label: str
    task: str
    higher_is_better: bool
    explanation: str
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (y, predicted, probabilities) -> value

    def score(self, value: float) -> float:
        """The value as a score, which always grows with quality."""
        return value if self.higher_is_better else -value

    def shown(self, score: float) -> float:
        """A score back as the metric's own value."""
        return score if self.higher_is_better else -score


def _roc_auc(y: np.ndarray, _predicted: np.ndarray, probabilities: np.ndarray) -> float:
    present = np.unique(y)
    if len(present) < 2:  # undefined on one class: no ranking to judge
        return 0.5
    if probabilities.shape[1] == 2:
        return float(skm.roc_auc_score(y, probabilities[:, 1]))
    # One class against the rest, averaged over the classes present (macro), as scikit-learn's "ovr".
    scores = [skm.roc_auc_score(y == c, probabilities[:, c]) for c in present]
    return float(np.mean(scores))


def _log_loss(y: np.ndarray, _predicted: np.ndarray, probabilities: np.ndarray) -> float:
    picked = probabilities[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))


def _balanced_accuracy(y: np.ndarray, predicted: np.ndarray, _p: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[y == c] == c) for c in np.unique(y)]))


def _f1_macro(y: np.ndarray, predicted: np.ndarray, _p: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over the classes seen in ``y`` or ``predicted``."""
    scores = []
    for c in np.union1d(y, predicted):
        true_pos = np.sum((predicted == c) & (y == c))
        wrong = np.sum((predicted == c) != (y == c))  # false positives + false negatives
        scores.append(2 * true_pos / (2 * true_pos + wrong) if true_pos + wrong else 0.0)
    return float(np.mean(scores))


def _r2(y: np.ndarray, predicted: np.ndarray, _p: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((predicted - y) ** 2)) / total if total > 0 else 0.0


def _mape(y: np.ndarray, predicted: np.ndarray, _p: np.ndarray) -> float:
    # scikit-learn's definition: |error| / max(|y|, eps), so a zero target does not divide by zero.
    return float(skm.mean_absolute_percentage_error(y, predicted))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "accuracy",
            "accuracy",
            "classification",
            True,
            "share of rows whose class is right",
            lambda y, p, _: float(np.mean(p == y)),
        ),
        Metric(
            "balanced_accuracy",
            "balanced accuracy",
            "classification",
            True,
            "mean of each class's share right, so a rare class counts as much as a common one",
            _balanced_accuracy,
        ),
        Metric(
            "f1_macro",
            "F1 (macro)",
            "classification",
            True,
            "mean over the classes of the balance of precision and recall",
            _f1_macro,
        ),
        Metric(
            "roc_auc",
            "ROC AUC",
            "classification",
            True,
            "how well the predicted probabilities rank a class above the others (0.5 is chance)",
            _roc_auc,
        ),
        Metric(
            "log_loss",
            "log loss",
            "classification",
            False,
            "how much probability the model gave the right class (lower is better)",
            _log_loss,
        ),
        Metric(
            "rmse",
            "RMSE",
            "regression",
            False,
            "typical error in the target's units, large errors weigh more (lower is better)",
            lambda y, p, _: float(np.sqrt(np.mean((p - y) ** 2))),
        ),
        Metric(
            "mae",
            "MAE",
            "regression",
            False,
            "mean absolute error in the target's units (lower is better)",
            lambda y, p, _: float(np.mean(np.abs(p - y))),
        ),
        Metric("r2", "R²", "regression", True, "share of the target's variance explained (1 is perfect)", _r2),
        Metric(
            "mape",
            "MAPE",
            "regression",
            False,
            "mean error as a share of the true value (lower is better; poor near zero)",
            _mape,
        ),
    )
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}
IMBALANCE_SHARE = 0.8  # a class above this share of the rows: accuracy says little, suggest balanced accuracy


def metrics_for(task: str) -> tuple[str, ...]:
    """The metric names a task can optimise, its default first."""
    default = DEFAULT_METRIC[task]
    return (default, *(name for name, m in METRICS.items() if m.task == task and name != default))


def metric_named(name: str | None, task: str) -> Metric:
    """The metric ``name`` (the task's default when None).

    Raises:
        ValueError: The name is unknown or the metric belongs to the other task.
    """
    chosen = METRICS.get(name or DEFAULT_METRIC[task])
    if chosen is None:
        raise ValueError(f"Unknown metric '{name}'; use one of: {', '.join(METRICS)}.")
    if chosen.task != task:
        raise ValueError(
            f"{chosen.label} is a {chosen.task} metric; this target is a {task} one "
            f"(use one of: {', '.join(metrics_for(task))})."
        )
    return chosen


def metric_of(target: dict | None, task: str) -> Metric:
    """The metric a fitted target (``preprocessing["target"]``) is scored with."""
    return metric_named((target or {}).get("metric"), task)


def suggested_metric(class_counts: list[int] | None, task: str) -> tuple[str, str]:
    """The metric to suggest for a target and one line saying why: balanced accuracy when one
    class holds more than ``IMBALANCE_SHARE`` of the rows (accuracy would reward predicting it
    always), else the task's default."""
    if task == "classification" and class_counts and sum(class_counts):
        share = max(class_counts) / sum(class_counts)
        if share > IMBALANCE_SHARE:
            return (
                "balanced_accuracy",
                f"one class holds {share:.0%} of the rows: accuracy would reward always predicting it, "
                "so balanced accuracy (with balanced class weights) is suggested",
            )
    default = METRICS[DEFAULT_METRIC[task]]
    return default.name, f"{default.label}: {default.explanation}"
