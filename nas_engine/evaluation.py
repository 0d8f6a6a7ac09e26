"""How a trained model does on the held-out test split, in a form a page can draw: a confusion matrix
(classification) or true/predicted pairs with their residuals (regression)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm

from nas_engine.evaluator import predict_raw
from nas_engine.prepare import PreparedData
from nas_engine.runtime import softmax, target_units

MAX_POINTS = 2000  # regression pairs (and curve points) sent to a page; the metrics still use every test row
CALIBRATION_BINS = 10


def _thinned(*columns: np.ndarray) -> list[list[float]]:
    """At most ``MAX_POINTS`` evenly spaced points of a curve, its ends kept."""
    n = len(columns[0])
    keep = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(np.int64)) if n > MAX_POINTS else np.arange(n)
    return [[round(float(v), 6) for v in column[keep]] for column in columns]


def classification_curves(probabilities: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """For two classes, the ROC and precision-recall curves of the positive class (the rarer one);
    for any number, the calibration of the predicted class's probability in ``CALIBRATION_BINS`` bins.

    Returns:
        ``roc`` (``fpr``, ``tpr``, ``auc``) and ``pr`` (``recall``, ``precision``,
        ``average_precision``) with ``positive``, the class they are about, for two classes;
        ``calibration`` (``predicted``: mean confidence per bin, ``observed``: share right,
        ``count``: rows) always.
    """
    out: dict = {}
    present = np.unique(y)
    if len(labels) == 2 and len(present) == 2:
        positive = int(np.argmin(np.bincount(y, minlength=2)))
        truth, score = (y == positive).astype(np.int64), probabilities[:, positive]
        fpr, tpr, _ = skm.roc_curve(truth, score)
        precision, recall, _ = skm.precision_recall_curve(truth, score)
        out["positive"] = labels[positive]
        out["roc"] = dict(zip(("fpr", "tpr"), _thinned(fpr, tpr), strict=True)) | {
            "auc": float(skm.roc_auc_score(truth, score))
        }
        out["pr"] = dict(zip(("recall", "precision"), _thinned(recall, precision), strict=True)) | {
            "average_precision": float(skm.average_precision_score(truth, score))
        }
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    where = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    bins = [b for b in range(CALIBRATION_BINS) if np.any(where == b)]
    out["calibration"] = {
        "predicted": [float(confidence[where == b].mean()) for b in bins],
        "observed": [float(right[where == b].mean()) for b in bins],
        "count": [int(np.sum(where == b)) for b in bins],
    }
    return out


def evaluate_test_split(model: torch.nn.Module, data: PreparedData) -> dict:
    """Score ``model`` on the test split of ``data`` (rows the search never trained or chose on).

    Args:
        model: A network built for ``data`` (``n_features`` inputs, ``n_outputs`` outputs).
        data: The prepared splits the model's search used (same CSV, target, task and seed).

    Returns:
        A JSON-serialisable dict with ``task`` and ``n`` (test rows), and
        classification: ``labels`` (class names), ``confusion`` (``confusion[i][j]`` counts rows of
        true class ``labels[i]`` predicted as ``labels[j]``) and ``accuracy``;
        regression: ``y_true`` and ``y_pred`` in the target's own units (at most ``MAX_POINTS``
        pairs, evenly spaced over the split when it is larger), ``r2`` and ``mae``.
    """
    outputs = predict_raw(model, data.X_test)
    target = data.preprocessing["target"]
    n = len(data.y_test)
    if data.task == "classification":
        labels = list(target["labels"])
        predicted = outputs.argmax(axis=1)
        confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(confusion, (data.y_test, predicted), 1)
        accuracy = float(np.trace(confusion) / n) if n else 0.0
        return {
            "task": "classification",
            "n": n,
            "labels": labels,
            "confusion": confusion.tolist(),
            "accuracy": accuracy,
            **classification_curves(softmax(outputs.astype(np.float64)), data.y_test, labels),
        }
    # Back to the target's units: the network learnt a standardised target.
    y_true = target_units(data.y_test, target)
    y_pred = target_units(outputs[:, 0], target)
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y_pred - y_true) ** 2)) / total if total > 0 else 0.0
    mae = float(np.mean(np.abs(y_pred - y_true))) if n else 0.0
    shown = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(np.int64)) if n > MAX_POINTS else np.arange(n)
    return {
        "task": "regression",
        "n": n,
        "y_true": [float(v) for v in y_true[shown]],
        "y_pred": [float(v) for v in y_pred[shown]],
        "r2": r2,
        "mae": mae,
    }
