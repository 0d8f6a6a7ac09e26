"""Exploring a finished front: the knee-point suggestion, and a model's confusion matrix or residuals on
the held-out test split."""

from __future__ import annotations

import numpy as np
import pytest

from nas_engine import evaluate_test_split, knee_point, prepare_data
from nas_engine.finalize import refit
from nas_engine.results import Costs, TrialResult, TrialStatus

ARCH = {
    "space": "mlp",
    "layers": [{"units": 16, "activation": "relu", "dropout": 0.0}],
    "train": {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"},
}


def trial(number: int, score: float | None, params: int, latency_ms: float | None = 1.0) -> TrialResult:
    return TrialResult(
        number=number,
        status=TrialStatus.COMPLETED,
        architecture={},
        arch_hash=str(number),
        metrics={} if score is None else {"score": score},
        costs=Costs(params=params, flops=params, latency_ms=latency_ms, size_bytes=4 * params),
        train_seconds=1.0,
    )


# --- knee point ----------------------------------------------------------------------------------


def test_the_knee_is_where_extra_cost_stops_buying_score():
    # Score climbs fast up to 1 k parameters, then barely moves over two more decades.
    front = [trial(0, 0.60, 100), trial(1, 0.90, 1_000), trial(2, 0.92, 10_000), trial(3, 0.93, 100_000)]
    assert knee_point(front, cost="params").number == 1


def test_the_knee_uses_a_log_cost_scale():
    # In log(params) the steps are even: 0.55 at 1 k lies below the chord, 0.75 at 10 k above it.
    front = [trial(0, 0.5, 100), trial(1, 0.55, 1_000), trial(2, 0.75, 10_000), trial(3, 0.8, 100_000)]
    assert knee_point(front, cost="params").number == 2


def test_there_is_no_knee_on_a_straight_or_convex_front():
    straight = [trial(0, 0.5, 10), trial(1, 0.6, 100), trial(2, 0.7, 1_000)]
    assert knee_point(straight, cost="params") is None
    convex = [trial(0, 0.5, 10), trial(1, 0.52, 100), trial(2, 0.9, 1_000)]  # score comes late: no knee
    assert knee_point(convex, cost="params") is None


def test_there_is_no_knee_with_fewer_than_three_usable_points():
    assert knee_point([], cost="params") is None
    assert knee_point([trial(0, 0.6, 10), trial(1, 0.9, 1_000)], cost="params") is None
    unscored_or_unmeasured = [trial(0, 0.6, 10), trial(1, None, 100), trial(2, 0.9, 1_000, latency_ms=None)]
    assert knee_point(unscored_or_unmeasured, cost="latency_ms") is None


def test_the_knee_ignores_points_dominated_in_the_chosen_cost():
    # Trial 4 sits on a front over more costs, but is dominated in params by trial 1.
    front = [trial(0, 0.6, 100), trial(1, 0.9, 1_000), trial(4, 0.85, 5_000), trial(3, 0.93, 100_000)]
    assert knee_point(front, cost="params").number == 1
    assert knee_point(front[:1] + front[2:], cost="params").number == 4


# --- test-split evaluation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes_data(diabetes_csv):
    return prepare_data(diabetes_csv, target="progression", seed=3)


def test_the_confusion_matrix_counts_every_test_row_once(cancer_data):
    model, test_metrics = refit(ARCH, cancer_data, epochs=3, seed=0)
    result = evaluate_test_split(model, cancer_data)
    confusion = np.array(result["confusion"])
    assert result["task"] == "classification"
    assert result["labels"] == cancer_data.preprocessing["target"]["labels"] and confusion.shape == (2, 2)
    assert confusion.sum() == len(cancer_data.y_test) == result["n"]
    # Row sums are the true class counts of the test split, whatever the model predicts.
    assert confusion.sum(axis=1).tolist() == np.bincount(cancer_data.y_test, minlength=2).tolist()
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert result["accuracy"] == pytest.approx(test_metrics["accuracy"])


def test_regression_pairs_are_in_the_targets_own_units(diabetes_data):
    model, test_metrics = refit(ARCH, diabetes_data, epochs=3, seed=0)
    result = evaluate_test_split(model, diabetes_data)
    y_true, y_pred = np.array(result["y_true"]), np.array(result["y_pred"])
    raw = [float(row["progression"]) for row in diabetes_data.raw_test_rows]
    assert result["task"] == "regression" and result["n"] == len(raw) == len(y_pred)
    assert y_true == pytest.approx(raw)  # not the standardised values the network learnt
    assert result["mae"] == pytest.approx(np.mean(np.abs(y_pred - y_true)))
    assert result["r2"] == pytest.approx(test_metrics["r2"], abs=1e-5)
    rmse = float(np.sqrt(np.mean((y_pred - y_true) ** 2)))
    assert rmse == pytest.approx(test_metrics["rmse"], rel=1e-4)


def test_a_large_test_split_sends_at_most_max_points_pairs(diabetes_data, monkeypatch):
    from nas_engine import evaluation

    model, _ = refit(ARCH, diabetes_data, epochs=1, seed=0)
    full = evaluate_test_split(model, diabetes_data)
    monkeypatch.setattr(evaluation, "MAX_POINTS", 10)
    thinned = evaluate_test_split(model, diabetes_data)
    assert len(thinned["y_true"]) == 10 and thinned["y_true"][0] == full["y_true"][0]
    assert thinned["y_true"][-1] == full["y_true"][-1]
    assert (thinned["r2"], thinned["mae"], thinned["n"]) == (full["r2"], full["mae"], full["n"])


# --- curves ---------------------------------------------------------------------------------------


def test_two_classes_get_roc_and_precision_recall_of_the_rarer_class_and_a_calibration():
    from sklearn import metrics as skm

    from nas_engine.evaluation import classification_curves

    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(np.int64)  # class 1 is the rarer
    p1 = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, 500), 0.01, 0.99)
    probabilities = np.stack([1 - p1, p1], axis=1)
    curves = classification_curves(probabilities, y, ["no", "yes"])
    assert curves["positive"] == "yes"
    assert curves["roc"]["auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert curves["roc"]["fpr"][0] == 0.0 and curves["roc"]["tpr"][-1] == 1.0
    assert curves["pr"]["average_precision"] == pytest.approx(skm.average_precision_score(y, p1))
    calibration = curves["calibration"]
    assert sum(calibration["count"]) == 500 and calibration["predicted"] == sorted(calibration["predicted"])
    right = probabilities.argmax(1) == y
    assert np.average(calibration["observed"], weights=calibration["count"]) == pytest.approx(right.mean())


def test_more_classes_get_only_the_calibration():
    from nas_engine.evaluation import classification_curves

    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet([1, 1, 1], 90)
    curves = classification_curves(probabilities, rng.integers(0, 3, 90), ["a", "b", "c"])
    assert set(curves) == {"calibration"}
