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
    load_final_model,
    prepare_data,
    run_search,
)
from nas_engine.evaluator import TrainSettings, predict_raw
from nas_engine.pareto import pareto_front_nd
from nas_engine.results import objective_vector
from nas_engine.spaces import MLPSpace
from nas_engine.strategies import STRATEGIES


def test_search_beats_majority_class_on_breast_cancer(cancer_data, tmp_path):
    result = run_search(
        SearchConfig(target="diagnosis", budget_seconds=15, max_trials=6), cancer_data, artifacts_dir=tmp_path
    )
    assert result.task == "classification" and result.best is not None
    best = result.best
    model = load_final_model(
        best.architecture, best.weights_path, n_inputs=cancer_data.n_features, n_outputs=cancer_data.n_outputs
    )
    accuracy = float(np.mean(predict_raw(model, cancer_data.X_test).argmax(axis=1) == cancer_data.y_test))
    majority = max(np.mean(cancer_data.y_test), 1 - np.mean(cancer_data.y_test))
    assert accuracy > majority + 0.2
    assert accuracy == pytest.approx(result.test_metrics["accuracy"])
    assert set(best.metrics) >= {"accuracy", "balanced_accuracy", "f1_macro", "val_loss", "epochs", "score"}
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
    message = f"No network fits under 50 parameters: the smallest one for this data has {smallest:,}"
    with pytest.raises(ConstraintError, match=message):
        run_search(SearchConfig(target="diagnosis", max_params=50), cancer_data)


def test_latency_limit_rejects_after_training(cancer_data):
    config = SearchConfig(target="diagnosis", max_latency_ms=1e-6, max_trials=2, max_epochs=2)
    result = run_search(config, cancer_data)
    assert [t.status for t in result.trials] == [TrialStatus.REJECTED] * 2
    assert "Measured latency" in result.trials[0].message and result.trials[0].train_seconds > 0
    assert result.best is None and result.front == []


def test_same_seed_gives_same_architectures(cancer_data):
    def architectures(seed):
        # The MLP space has no portfolio, so every architecture comes from the seeded strategy.
        config = SearchConfig(target="diagnosis", space="mlp", max_trials=3, max_epochs=2, seed=seed)
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
        # the MLP space: the tabular one would first train its portfolio's trees, which do not fail
        config = SearchConfig(target="diagnosis", space="mlp")
        run_search(config, cancer_data, on_trial=trials.append, on_status=events.append)
    assert [t.status for t in trials] == [TrialStatus.FAILED] * 5
    assert events[-1].status == "failed"


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("max_params", 3500, "parameters is above"),
        ("max_flops", 3000, "FLOPs is above"),
        ("max_size_bytes", 14_000, "bytes of weights is above"),
        ("max_memory_bytes", 15_000, "bytes of peak inference memory is above"),
    ],
)
def test_no_trained_trial_breaks_an_analytic_limit(cancer_data, tmp_path, limit, value, message):
    config = SearchConfig(target="diagnosis", max_trials=3, max_epochs=2, **{limit: value})
    result = run_search(config, cancer_data, artifacts_dir=tmp_path)
    rejected = [t for t in result.trials if t.status is TrialStatus.REJECTED]
    trained = [t for t in result.trials if t.status is not TrialStatus.REJECTED]
    assert len(trained) == 3 and rejected
    cost = limit.removeprefix("max_")
    assert all(getattr(t.costs, cost) <= value for t in trained)
    for trial in rejected:
        assert getattr(trial.costs, cost) > value and message in trial.message
        assert trial.weights_path is None and not (tmp_path / f"trial_{trial.number}.pt").exists()


def test_impossible_max_size_is_a_constraint_error(cancer_data):
    with pytest.raises(ConstraintError, match="No network fits in 200 bytes: the smallest one for this data takes"):
        run_search(SearchConfig(target="diagnosis", max_size_bytes=200), cancer_data)


def test_impossible_max_memory_is_a_constraint_error(cancer_data):
    with pytest.raises(ConstraintError, match="No network runs in 300 bytes of memory: the leanest one .* needs"):
        run_search(SearchConfig(target="diagnosis", max_memory_bytes=300), cancer_data)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_same_seed_gives_same_trials_with_every_strategy(cancer_data, strategy):
    def trials(seed):
        # A grid search refuses a trial limit below its grid: it tries all 40 networks instead.
        max_trials = None if strategy == "grid" else 3
        config = SearchConfig(target="diagnosis", strategy=strategy, max_trials=max_trials, max_epochs=2, seed=seed)
        return [(t.architecture, t.status, t.metrics.get("val_loss")) for t in run_search(config, cancer_data).trials]

    first = trials(3)
    assert len(first) >= 3 and first == trials(3)


def test_front_is_computed_over_three_objectives(cancer_data):
    objectives = ("score", "params", "latency_ms")
    config = SearchConfig(target="diagnosis", objectives=list(objectives), max_trials=5, max_epochs=2)
    result = run_search(config, cancer_data)
    completed = [t for t in result.trials if t.status is TrialStatus.COMPLETED]
    vectors = [objective_vector(t, objectives) for t in completed]
    assert result.front == sorted(completed[i].number for i in pareto_front_nd(vectors))
    assert result.best.number in result.front and result.to_dict()["objectives"] == list(objectives)


def test_training_settings_come_from_the_genome():
    genome = {
        "layers": [],
        "lr": 0.5,
        "train": {"lr": 0.01, "weight_decay": 1e-4, "batch_size": 32, "optimizer": "sgd"},
    }
    settings = TrainSettings.from_architecture(genome)
    assert settings == TrainSettings(lr=0.01, weight_decay=1e-4, batch_size=32, optimizer="sgd")
    assert TrainSettings.from_architecture({"lr": 3e-3}) == TrainSettings(lr=3e-3)  # genomes from before v1
    import torch

    optimizer = settings.make_optimizer([torch.zeros(1, requires_grad=True)])
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["nesterov"]
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match="Unknown optimizer 'lbfgs'; use one of: adam, adamw, sgd"):
        TrainSettings(optimizer="lbfgs").make_optimizer([torch.zeros(1, requires_grad=True)])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"objectives": ["params", "score"]}, "Objectives must be 'score' followed by one or two different costs"),
        ({"objectives": ["score"]}, "Objectives must be 'score' followed by"),
        ({"objectives": ["score", "params", "params"]}, "Objectives must be 'score' followed by"),
        ({"objectives": ["score", "speed"]}, "Unknown objective\\(s\\): speed; choose from: score, params"),
        ({"fidelity": "bohb"}, "Unknown fidelity 'bohb'; use one of: none, successive_halving, hyperband"),
        ({"space": "transformer"}, "Unknown search space 'transformer'; use auto or one of: tabular, mlp"),
        ({"eta": 1}, "eta must be at least 2"),
        ({"max_size_bytes": 0}, "max_size_bytes must be above 0"),
        ({"max_memory_bytes": -1}, "max_memory_bytes must be above 0"),
        ({"fidelity": "hyperband", "min_epochs": 9, "max_epochs": 5}, "min_epochs \\(9\\) cannot exceed max_epochs"),
    ],
)
def test_config_rejects_bad_settings_with_actionable_messages(settings, message):
    with pytest.raises((ValueError, ConstraintError), match=message):
        SearchConfig(target="y", **settings)


def test_config_round_trips_through_json():
    config = SearchConfig(target="y", objectives=("score", "flops", "size_bytes"), fidelity="hyperband", eta=2)
    again = SearchConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.objectives == ("score", "flops", "size_bytes")


def test_small_data_is_scored_by_cross_validation(mixed_data, cancer_data, tmp_path):
    assert len(mixed_data.X_train) < 300 <= len(cancer_data.X_train)
    config = SearchConfig(target="label", max_trials=2, max_epochs=3)
    small = run_search(config, mixed_data, artifacts_dir=tmp_path)
    assert [t.metrics["cv_folds"] for t in small.trials] == [5, 5]
    assert all(isinstance(t.metrics["best_epoch"], int) and 0 <= t.score <= 1 for t in small.trials)
    model = load_final_model(
        small.best.architecture, small.best.weights_path, n_inputs=mixed_data.n_features, n_outputs=2
    )
    assert predict_raw(model, mixed_data.X_test).shape == (len(mixed_data.X_test), 2)  # the first fold's model

    large = run_search(SearchConfig(target="diagnosis", max_trials=1, max_epochs=2), cancer_data)
    assert "cv_folds" not in large.trials[0].metrics
    off = run_search(SearchConfig(target="label", max_trials=1, max_epochs=2, cv_folds=1), mixed_data)
    assert "cv_folds" not in off.trials[0].metrics
    forced = run_search(SearchConfig(target="diagnosis", max_trials=1, max_epochs=2, cv_folds=3), cancer_data)
    assert forced.trials[0].metrics["cv_folds"] == 3


def test_a_batch_norm_network_trains_when_the_last_batch_has_one_row(tmp_path):
    """33 training rows with batch size 32 leave a last batch of one row, which batch-norm refuses."""
    import numpy as np

    from nas_engine.evaluator import Trainer, TrainSettings
    from nas_engine.spaces import MLPSpace

    arch = MLPSpace().sample(np.random.default_rng(0))
    arch.update(norm="batch", train={"lr": 1e-3, "weight_decay": 0.0, "batch_size": 32, "optimizer": "adam"})
    model = MLPSpace().build_model(arch, 4, 2)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(33, 4)).astype(np.float32), rng.integers(0, 2, 33)
    settings = TrainSettings.from_architecture(arch)
    trainer = Trainer(model, X_train=X, y_train=y, task="classification", settings=settings, seed=0)
    trainer.train(until_epoch=2)
    assert trainer.epochs == 2
