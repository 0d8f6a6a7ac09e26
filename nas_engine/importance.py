"""Which inputs a model relies on, and why it predicted what it did for one row.

- ``permutation_importance``: how much the model's test score drops when one input column's values
  are shuffled among the test rows (Breiman 2001; scikit-learn's ``permutation_importance``), per
  raw column: a categorical column's one-hot slots move together. Measured with the search's metric
  (as a score, so a drop is always a loss), on at most ``MAX_ROWS`` test rows, ``REPEATS`` shuffles
  averaged. Every final model's test metrics carry it as ``importance``.
- ``contributions``: for one row, how far the prediction moves when one input is set to the
  training median (numbers) or the most common category, the other inputs kept (occlusion).
"""

from __future__ import annotations

import numpy as np
import torch

from nas_engine.batches import Rows
from nas_engine.evaluator import predict_raw
from nas_engine.metrics import metric_of
from nas_engine.runtime import encode_rows, feature_width, softmax, target_units

MAX_ROWS = 2_000
REPEATS = 3
MAX_COLUMNS = 200  # an image's pixels are not columns a person reads: no importance for them


def column_slots(preprocessing: dict) -> list[tuple[str, slice]]:
    """Each input column and the slots of the encoded row it fills, in order."""
    slots, start = [], 0
    for feature in preprocessing["features"]:
        width = feature_width(feature)
        slots.append((feature["name"], slice(start, start + width)))
        start += width
    return slots


def permutation_importance(
    model: torch.nn.Module, X: Rows, y: np.ndarray, preprocessing: dict, *, seed: int = 0
) -> dict[str, float] | None:
    """Mean drop of the test score when each column is shuffled, largest first; None for images
    or more than ``MAX_COLUMNS`` columns, or no rows."""
    slots = column_slots(preprocessing)
    if "image" in preprocessing or len(slots) > MAX_COLUMNS or not len(X):
        return None
    X = np.asarray(X)
    rng = np.random.default_rng(seed)
    if len(X) > MAX_ROWS:
        keep = np.sort(rng.choice(len(X), MAX_ROWS, replace=False))
        X, y = X[keep], y[keep]
    target, task = preprocessing["target"], preprocessing["task"]
    metric = metric_of(target, task)
    actual = y if task == "classification" else target_units(y, target)

    def score(rows: np.ndarray) -> float:
        """The metric alone (not every metric and the loss, as ``score_outputs``): it runs once per
        column and shuffle."""
        outputs = predict_raw(model, rows)
        if task == "classification":
            return metric.score(metric.compute(actual, outputs.argmax(axis=1), softmax(outputs.astype(np.float64))))
        predicted = target_units(outputs[:, 0], target)
        return metric.score(metric.compute(actual, predicted, predicted))

    base = score(X)
    drops = {}
    for name, where in slots:
        losses = []
        for _ in range(REPEATS):
            shuffled = X.copy()
            shuffled[:, where] = X[rng.permutation(len(X))][:, where]
            losses.append(base - score(shuffled))
        drops[name] = round(float(np.mean(losses)), 6)
    return ranked(drops)


def ranked(importance: dict[str, float]) -> dict[str, float]:
    """Largest first (ties by name). Callers sort again what they read back from a database:
    PostgreSQL's jsonb keeps no key order."""
    return dict(sorted(importance.items(), key=lambda item: (-item[1], item[0])))


def typical_row(preprocessing: dict) -> np.ndarray:
    """The encoding of a row at the training medians (a missing number or date is encoded as its
    median) and most common categories."""
    cells = {
        f["name"]: (f["categories"][0] if f["categories"] else "") if f["kind"] == "categorical" else ""
        for f in preprocessing["features"]
    }
    return encode_rows([cells], preprocessing)[0]


def contributions(
    model: torch.nn.Module, row: np.ndarray, preprocessing: dict, *, top: int = 5
) -> list[tuple[str, float]]:
    """The ``top`` inputs that move this row's prediction most, with how far: the predicted
    class's probability (classification) or the prediction in the target's units (regression),
    minus what it is with that input at its typical value. Positive: the input pushes it up."""
    slots = column_slots(preprocessing)
    if "image" in preprocessing or len(slots) > MAX_COLUMNS:
        return []
    typical = typical_row(preprocessing)
    variants = np.repeat(row[None, :], len(slots) + 1, axis=0)
    for i, (_, where) in enumerate(slots, start=1):
        variants[i, where] = typical[where]
    outputs = predict_raw(model, variants.astype(np.float32))
    if preprocessing["task"] == "classification":
        probabilities = softmax(outputs.astype(np.float64))
        chosen = int(probabilities[0].argmax())
        values = probabilities[:, chosen]
    else:
        values = target_units(outputs[:, 0], preprocessing["target"])
    moves = [(name, float(values[0] - values[i])) for i, (name, _) in enumerate(slots, start=1)]
    return sorted(moves, key=lambda item: -abs(item[1]))[:top]
