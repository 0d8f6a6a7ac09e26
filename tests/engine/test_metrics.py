"""The search's metric: what a trial's score measures (always higher-is-better), what the front and
the choice are ranked by, what is suggested for an imbalanced target, and what the bundle records."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from sklearn import metrics as skm

from nas_engine import SearchConfig, prepare_data, run_search
from nas_engine.cli import main
from nas_engine.errors import DatasetError
from nas_engine.evaluator import score_outputs
from nas_engine.metrics import METRICS, metric_named, metrics_for, suggested_metric
from nas_engine.runtime import softmax
from nas_engine.selection import score_standard_error
from tests.engine.conftest import write_csv


def _imbalanced_csv(path, n: int = 400, seed: int = 0):
    """About 1 row in 10 of the rare class, which depends on a and b."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a, b, c = rng.normal(size=3)
        rows.append([i, f"{a:.3f}", f"{b:.3f}", f"{c:.3f}", "rare" if a + 0.5 * b > 1.3 else "common"])
    return write_csv(path, ["id", "a", "b", "c", "y"], rows)


def test_every_metric_matches_scikit_learn_and_its_score_grows_with_quality():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    outputs = rng.normal(size=(300, 3)) + np.eye(3)[y] * 1.5
    probabilities, predicted = softmax(outputs), outputs.argmax(1)
    found = score_outputs(outputs.astype(np.float32), y, task="classification", target={"metric": "roc_auc"})
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probabilities, multi_class="ovr"), abs=1e-6)
    assert found["score"] == found["roc_auc"]
    assert found["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, predicted))
    assert found["f1_macro"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    lossy = score_outputs(outputs.astype(np.float32), y, task="classification", target={"metric": "log_loss"})
    assert lossy["log_loss"] == pytest.approx(skm.log_loss(y, probabilities), rel=1e-5)
    assert lossy["score"] == -lossy["log_loss"]  # lower is better, so the score is its negative

    truth = rng.normal(10, 2, 200)
    close, far = truth + rng.normal(0, 0.1, 200), truth + rng.normal(0, 1.0, 200)
    target = {"mean": 0.0, "std": 1.0, "metric": "mape"}
    scores = {}
    for name, guess in {"close": close, "far": far}.items():
        got = score_outputs(guess[:, None], truth, task="regression", target=target)
        assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, guess))
        assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, guess)))
        assert got["mae"] == pytest.approx(skm.mean_absolute_error(truth, guess))
        scores[name] = got["score"]
    assert scores["close"] > scores["far"]


def test_a_metric_of_the_other_task_or_an_unknown_one_is_refused_by_name():
    assert metrics_for("regression")[0] == "r2" and "roc_auc" in metrics_for("classification")
    with pytest.raises(ValueError, match="ROC AUC is a classification metric"):
        metric_named("roc_auc", "regression")
    with pytest.raises(ValueError, match="Unknown metric 'auc'"):
        SearchConfig(target="y", metric="auc")
    with pytest.raises(ValueError, match="RMSE is a regression metric"):
        SearchConfig(target="y", task="classification", metric="rmse")


def test_balanced_accuracy_is_suggested_when_one_class_holds_over_80_percent():
    assert suggested_metric([900, 100], "classification")[0] == "balanced_accuracy"
    assert "90%" in suggested_metric([900, 100], "classification")[1]
    assert suggested_metric([600, 400], "classification")[0] == "accuracy"
    assert suggested_metric([5, 5, 5], "regression")[0] == "r2"


def test_a_loss_metric_has_a_standard_error_of_its_own_scale():
    assert score_standard_error(-2.0, task="regression", n=100, metric="rmse") == pytest.approx(0.2)
    assert score_standard_error(0.9, task="classification", n=100, metric="balanced_accuracy") == pytest.approx(0.03)


def test_prepare_data_records_a_chosen_metric_and_refuses_one_of_the_other_task(tmp_path):
    path = _imbalanced_csv(tmp_path / "imb.csv")
    data = prepare_data(path, target="y", metric="balanced_accuracy")
    assert data.preprocessing["target"]["metric"] == "balanced_accuracy"
    assert "metric" not in prepare_data(path, target="y").preprocessing["target"]  # the default: as before
    with pytest.raises(DatasetError, match="RMSE is a regression metric"):
        prepare_data(path, target="y", metric="rmse")


def test_a_search_scores_ranks_and_chooses_by_its_metric(tmp_path):
    path = _imbalanced_csv(tmp_path / "imb.csv")
    config = SearchConfig(
        target="y", metric="balanced_accuracy", class_weights="balanced", ignore=("id",),
        budget_seconds=20, max_trials=4, seed=0,
    )  # fmt: skip
    data = prepare_data(path, **config.data_settings())
    result = run_search(config, data)
    completed = [t for t in result.trials if t.score is not None]
    assert completed and all(t.score == t.metrics["balanced_accuracy"] for t in completed)
    assert result.best.score == max(t.score for t in completed)
    assert result.test_metrics["score"] == result.test_metrics["balanced_accuracy"]


def test_the_cli_optimises_rmse_and_the_bundle_says_so(tmp_path):
    rng = np.random.default_rng(1)
    rows = [[f"{a:.3f}", f"{3 * a + rng.normal(0, 0.3):.3f}"] for a in rng.normal(size=200)]
    path = write_csv(tmp_path / "reg.csv", ["a", "y"], rows)
    out = tmp_path / "m.zip"
    assert main(["search", str(path), "--target", "y", "--metric", "rmse", "--budget-seconds", "8",
                 "--max-trials", "3", "--out", str(out)]) == 0  # fmt: skip
    with zipfile.ZipFile(out) as bundle:
        record = json.loads(bundle.read("metrics.json"))
        card = bundle.read("MODEL_CARD.md").decode()
    assert record["metric"] == {"name": "rmse", "label": "RMSE", "higher_is_better": False}
    assert record["config"]["metric"] == "rmse"
    assert record["metrics"]["test"]["score"] == -record["metrics"]["test"]["rmse"]
    assert "chose its models by RMSE" in card
    assert main(["search", str(path), "--target", "y", "--metric", "roc_auc", "--out", str(out)]) == 2


def test_every_metric_has_a_label_and_an_explanation():
    assert all(m.label and m.explanation and m.task in ("classification", "regression") for m in METRICS.values())
