"""The search loop: quality, budget, constraints, reproducibility, cancellation, failures."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from nas_engine import (
    ConstraintError,
    NasError,
    SearchConfig,
    TrialStatus,
    load_model,
    prepare_data,
    run_search,
)
from nas_engine.evaluator import predict_raw
from nas_engine.spaces import MLPSpace


def test_search_beats_majority_class_on_breast_cancer(cancer_data, tmp_path):
    result = run_search(
        SearchConfig(target="diagnosis", budget_seconds=15, max_trials=6), cancer_data, artifacts_dir=tmp_path
    )
    assert result.task == "classification" and result.best is not None
    best = result.best
    model = load_model(
        best.architecture, best.weights_path, n_inputs=cancer_data.n_features, n_outputs=cancer_data.n_outputs
    )
    accuracy = float(np.mean(predict_raw(model, cancer_data.X_test).argmax(axis=1) == cancer_data.y_test))
    majority = max(np.mean(cancer_data.y_test), 1 - np.mean(cancer_data.y_test))
    assert accuracy > majority + 0.2
    assert accuracy == pytest.approx(result.test_metrics["accuracy"])
    assert set(best.metrics) >= {"accuracy", "balanced_accuracy", "val_loss", "epochs", "score"}
    assert best.costs.latency_ms > 0 and best.number in result.front
    assert json.loads(json.dumps(result.to_dict()))["best"] == best.number
    assert best.score == max(t.score for t in result.trials if t.status is TrialStatus.COMPLETED)


def test_search_beats_the_mean_on_diabetes(diabetes_csv):
    data = prepare_data(diabetes_csv, target="progression")
    result = run_search(SearchConfig(target="progression", budget_seconds=15, max_trials=6), data)
    assert result.task == "regression"
    assert result.test_metrics["r2"] > 0.2
    assert 20 < result.best.metrics["rmse"] < 100  # original units (the target's std is ~77)


def test_budget_is_honoured_even_mid_trial(cancer_data):
    config = SearchConfig(target="diagnosis", budget_seconds=2, max_epochs=10_000, patience=10_000)
    start = time.monotonic()
    result = run_search(config, cancer_data)
    assert time.monotonic() - start < config.budget_seconds + 2
    assert result.trials and result.trials[0].status is TrialStatus.COMPLETED


def test_max_params_rejects_before_training(cancer_data, tmp_path):
    config = SearchConfig(target="diagnosis", max_params=3000, max_trials=3, max_epochs=3)
    result = run_search(config, cancer_data, artifacts_dir=tmp_path)
    rejected = [t for t in result.trials if t.status is TrialStatus.REJECTED]
    completed = [t for t in result.trials if t.status is TrialStatus.COMPLETED]
    assert rejected and len(completed) == 3
    for trial in rejected:
        assert trial.train_seconds == 0 and trial.weights_path is None and "above the limit" in trial.message
        assert not (tmp_path / f"trial_{trial.number}.pt").exists()
    assert all(t.costs.params <= 3000 and (tmp_path / f"trial_{t.number}.pt").exists() for t in completed)


def test_impossible_max_params_is_a_constraint_error(cancer_data):
    smallest = MLPSpace().smallest_params(cancer_data.n_features, cancer_data.n_outputs)
    with pytest.raises(ConstraintError, match=f"fits max_params=100; the smallest possible has {smallest}"):
        run_search(SearchConfig(target="diagnosis", max_params=100), cancer_data)


def test_latency_limit_rejects_after_training(cancer_data):
    config = SearchConfig(target="diagnosis", max_latency_ms=1e-6, max_trials=2, max_epochs=2)
    result = run_search(config, cancer_data)
    assert [t.status for t in result.trials] == [TrialStatus.REJECTED] * 2
    assert "Measured latency" in result.trials[0].message and result.trials[0].train_seconds > 0
    assert result.best is None and result.front == []


def test_same_seed_gives_same_architectures(cancer_data):
    def architectures(seed):
        config = SearchConfig(target="diagnosis", max_trials=3, max_epochs=2, seed=seed)
        return [t.architecture for t in run_search(config, cancer_data).trials]

    assert architectures(1) == architectures(1) != architectures(2)


def test_should_cancel_stops_the_search(cancer_data):
    trials, events = [], []
    result = run_search(
        SearchConfig(target="diagnosis", budget_seconds=30, max_epochs=3),
        cancer_data,
        on_trial=trials.append,
        on_status=events.append,
        should_cancel=lambda: len(trials) >= 2,
    )
    assert result.cancelled and len(result.trials) == 2
    assert events[0].status == "running" and events[0].progress == 0
    assert events[-1].status == "cancelled"


def test_status_events_run_from_start_to_finish(cancer_data):
    events = []
    run_search(SearchConfig(target="diagnosis", max_trials=2, max_epochs=2), cancer_data, on_status=events.append)
    assert [e.status for e in events] == ["running", "running", "running", "finished"]
    assert events[-1].progress == 1.0 and all(0 <= e.progress <= 1 for e in events)
    assert events[-1].to_dict()["status"] == "finished"


def test_failing_trials_are_recorded_then_stop_the_search(cancer_data, monkeypatch):
    def broken(self, arch, n_inputs, n_outputs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(MLPSpace, "build_model", broken)
    trials, events = [], []
    with pytest.raises(NasError, match="5 trials failed in a row; last error: RuntimeError: out of memory"):
        run_search(SearchConfig(target="diagnosis"), cancer_data, on_trial=trials.append, on_status=events.append)
    assert [t.status for t in trials] == [TrialStatus.FAILED] * 5
    assert events[-1].status == "failed"
