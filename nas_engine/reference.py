"""An honest reference for a search: scikit-learn's HistGradientBoosting at its defaults, fit on the
search's training rows and scored on its validation rows with the trials' own metric (the search's,
through ``evaluator.evaluate_model``), so a user sees whether the search beat what a default
gradient-boosting model does in seconds.

It sees the features as the networks do (encoded by ``prepare``), fits on at most
``REFERENCE_MAX_ROWS`` training rows (a random sample above that) and, where the search scored its
trials by k-fold cross-validation, is scored the same way over train+validation.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from nas_engine.batches import Rows, concat_rows
from nas_engine.evaluator import evaluate_model, fold_indices
from nas_engine.metrics import METRICS, metric_of
from nas_engine.prepare import PreparedData

REFERENCE_MAX_ROWS = 50_000
REFERENCE_WORDS = "a default gradient-boosting model"


@dataclass(frozen=True)
class Reference:
    """A default HistGradientBoosting model's score on a search's validation rows.

    ``metric`` is the search's metric (``metrics.METRICS``) and ``score`` its value as a score
    (higher is better), measured as the trials' scores are; ``metrics`` holds every metric
    ``evaluate_model`` gives. ``train_rows`` is how many rows it was fit on (per fold under
    k-fold), ``capped`` whether they were a sample of more, and
    ``validation_rows`` how many rows it was scored on (all of train+validation under k-fold).
    """

    model: str
    metric: str
    score: float
    metrics: dict
    train_rows: int
    capped: bool
    validation_rows: int
    cv_folds: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One sentence, e.g. ``A default gradient-boosting model scores 0.79 (accuracy) on this split.``"""
        metric = METRICS[self.metric]
        split = f"{self.cv_folds}-fold cross-validation" if self.cv_folds > 1 else "this split"
        sample = f", fit on a sample of {self.train_rows:,} training rows" if self.capped else ""
        value = f"{metric.shown(self.score):.4g} ({metric.label})"
        return f"{REFERENCE_WORDS[0].upper()}{REFERENCE_WORDS[1:]} scores {value} on {split}{sample}."


class _Fitted(torch.nn.Module):
    """A fitted scikit-learn model behind the network interface ``evaluate_model`` scores: the log
    of its class probabilities (a logit's softmax is the probability), or its standardised value."""

    def __init__(self, estimator, *, n_outputs: int, task: str) -> None:
        super().__init__()
        self.estimator, self.n_outputs, self.task = estimator, n_outputs, task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = x.numpy()
        if self.task != "classification":
            return torch.from_numpy(self.estimator.predict(X).astype(np.float32).reshape(-1, 1))
        probabilities = np.full((len(X), self.n_outputs), 1e-12)
        probabilities[:, self.estimator.classes_] = np.maximum(self.estimator.predict_proba(X), 1e-12)
        return torch.from_numpy(np.log(probabilities).astype(np.float32))


def _fit_and_score(data: PreparedData, X_fit, y_fit, X_score, y_score, *, seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if data.task == "classification":
        estimator = HistGradientBoostingClassifier(random_state=seed)
    else:
        estimator = HistGradientBoostingRegressor(random_state=seed)
    estimator.fit(X_fit, y_fit)
    model = _Fitted(estimator, n_outputs=data.n_outputs, task=data.task)
    target = data.preprocessing["target"]
    return evaluate_model(model, X_score, y_score, task=data.task, target_std=target.get("std", 1.0), target=target)


def _sample(X: Rows, y: np.ndarray, rng: np.random.Generator, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if len(X) <= max_rows:
        return np.asarray(X), y
    kept = np.sort(rng.choice(len(X), size=max_rows, replace=False))
    return X[kept], y[kept]


def reference_score(
    data: PreparedData,
    *,
    folds: int = 1,
    seed: int = 0,
    max_rows: int = REFERENCE_MAX_ROWS,
) -> Reference:
    """Fit a default HistGradientBoosting model on the search's training rows, score it as the trials are.

    Args:
        data: The prepared splits the search used.
        folds: The search's folds (``SearchConfig.folds``); above 1, the score is the mean over
            that many folds of train+validation, else it is scored on the validation split.
        seed: The search's seed (the folds, the row sample and the model's own randomness).
        max_rows: Most rows it is fit on; a random sample above that.

    Returns:
        The reference. It may raise whatever scikit-learn raises: callers that must not fail
        (the CLI, the worker) catch it.
    """
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    if folds > 1:
        X, y = concat_rows([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])
        parts = fold_indices(y, folds=folds, seed=seed, stratify=data.task == "classification")
        scores, fitted, capped = [], 0, False
        for i, held_out in enumerate(parts):
            kept = np.concatenate([part for j, part in enumerate(parts) if j != i])
            X_fit, y_fit = _sample(X[kept], y[kept], rng, max_rows)
            capped, fitted = capped or len(kept) > max_rows, max(fitted, len(X_fit))
            scores.append(_fit_and_score(data, X_fit, y_fit, X[held_out], y[held_out], seed=seed))
        metrics = {name: float(np.mean([s[name] for s in scores])) for name in scores[0]}
        scored_rows = len(X)
    else:
        X_fit, y_fit = _sample(data.X_train, data.y_train, rng, max_rows)
        capped, fitted = len(data.X_train) > max_rows, len(X_fit)
        metrics = _fit_and_score(data, X_fit, y_fit, data.X_val, data.y_val, seed=seed)
        scored_rows = len(data.X_val)
    classifier = data.task == "classification"
    return Reference(
        model="HistGradientBoostingClassifier" if classifier else "HistGradientBoostingRegressor",
        metric=metric_of(data.preprocessing["target"], data.task).name,
        score=float(metrics["score"]),
        metrics=metrics,
        train_rows=fitted,
        capped=capped,
        validation_rows=scored_rows,
        cv_folds=folds,
        seconds=time.monotonic() - start,
    )
