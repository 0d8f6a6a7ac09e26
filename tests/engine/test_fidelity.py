"""Multi-fidelity: rung schedules, resumable training, and successive halving / Hyperband in the search."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import numpy as np
import pytest
import torch

from nas_engine import SearchConfig, TrialStatus, run_search
from nas_engine.evaluator import Trainer, TrainSettings
from nas_engine.fidelity import Bracket, brackets, rung_epochs, survivors, training_rows
from nas_engine.spaces import MLPSpace
from nas_engine.strategies import STRATEGIES, RandomStrategy


def test_rungs_grow_by_eta_up_to_max_epochs():
    assert rung_epochs(min_epochs=3, max_epochs=50, eta=3) == (3, 9, 27, 50)
    assert rung_epochs(min_epochs=1, max_epochs=9, eta=3) == (1, 3, 9)
    assert rung_epochs(min_epochs=5, max_epochs=5, eta=2) == (5,)


def test_bracket_schedules():
    first = lambda fidelity, k: list(itertools.islice(brackets(fidelity, n_rungs=3, eta=3), k))  # noqa: E731
    assert first("none", 2) == [Bracket(1, 2)] * 2
    assert first("successive_halving", 2) == [Bracket(9, 0)] * 2
    # Hyperband (Li et al. 2018, s_max = 2): n = ceil(3 / (s + 1) * 3**s), then it starts over.
    assert first("hyperband", 4) == [Bracket(9, 0), Bracket(5, 1), Bracket(3, 2), Bracket(9, 0)]
    assert [survivors(n, eta=3) for n in (9, 5, 3, 2, 1)] == [3, 1, 1, 1, 1]


def test_low_rungs_subsample_big_data_only():
    assert training_rows(500, epochs=1, max_epochs=50) == 500
    assert training_rows(100_000, epochs=5, max_epochs=50) == 10_000
    assert training_rows(10_000, epochs=1, max_epochs=50) == 2000
    assert training_rows(100_000, epochs=50, max_epochs=50) == 100_000


def test_resumed_training_equals_uninterrupted_training(cancer_data):
    torch.set_num_threads(1)
    arch = {"layers": [{"units": 16, "activation": "relu", "dropout": 0.2}], "train": {"optimizer": "adamw"}}

    def trainer():
        torch.manual_seed(0)
        model = MLPSpace().build_model(arch, cancer_data.n_features, cancer_data.n_outputs)
        return Trainer(
            model,
            X_train=cancer_data.X_train,
            y_train=cancer_data.y_train,
            task="classification",
            settings=TrainSettings.from_architecture(arch),
            seed=0,
            validation=(cancer_data.X_val, cancer_data.y_val),
        )

    resumed, straight = trainer(), trainer()
    resumed.train(until_epoch=2)
    torch.manual_seed(123)  # other work in between must not change what the trainer does next
    resumed.train(until_epoch=5)
    straight.train(until_epoch=5)
    assert resumed.epochs == straight.epochs == 5
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


class SpyStrategy(RandomStrategy):
    told: list = []

    def tell(self, results):
        SpyStrategy.told.extend(r.number for r in results)
        super().tell(results)


@pytest.mark.parametrize(
    ("fidelity", "completed", "pruned_at"),
    [
        ("successive_halving", 1, {1: 6, 3: 2}),
        # Brackets of 9 (from 1 epoch), 5 (from 3 epochs) and 3 (trained fully): 17 trials.
        ("hyperband", 1 + 1 + 3, {1: 6, 3: 2 + 4}),
    ],
)
def test_pruned_and_completed_trials_follow_the_schedule(cancer_data, monkeypatch, fidelity, completed, pruned_at):
    monkeypatch.setitem(STRATEGIES, "random", SpyStrategy)
    SpyStrategy.told = []
    max_trials = 9 if fidelity == "successive_halving" else 17
    config = SearchConfig(
        target="diagnosis", strategy="random", fidelity=fidelity, min_epochs=1, max_epochs=9, eta=3, patience=100,
        max_trials=max_trials,
    )  # fmt: skip
    reported = []
    result = run_search(config, cancer_data, on_trial=reported.append)
    done = [t for t in result.trials if t.status is TrialStatus.COMPLETED]
    pruned = [t for t in result.trials if t.status is TrialStatus.PRUNED]
    assert len(result.trials) == max_trials and len(done) == completed
    assert all(t.metrics["epochs_budget"] == t.metrics["epochs"] == 9 for t in done)
    assert Counter(t.metrics["epochs_budget"] for t in pruned) == pruned_at
    assert all(t.metrics["epochs"] == t.metrics["epochs_budget"] for t in pruned)
    assert sorted(SpyStrategy.told) == sorted(t.number for t in reported) == list(range(max_trials))
    assert set(result.front) <= {t.number for t in done} and result.best in done


def test_multi_fidelity_evaluates_more_architectures_in_the_same_time(cancer_data):
    def evaluated(fidelity: str) -> int:
        config = SearchConfig(target="diagnosis", budget_seconds=8, fidelity=fidelity)
        return sum(
            t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED) for t in run_search(config, cancer_data).trials
        )

    assert evaluated("successive_halving") > evaluated("none")


def test_budget_and_cancel_are_honoured_inside_a_bracket(cancer_data):
    config = SearchConfig(
        target="diagnosis", budget_seconds=2, fidelity="hyperband", max_epochs=10_000, patience=10_000
    )
    start = time.monotonic()
    result = run_search(config, cancer_data)
    assert time.monotonic() - start < config.budget_seconds + 2
    assert result.trials and result.best is not None and not result.cancelled

    trials, reported_at_cancel = [], []

    def should_cancel() -> bool:
        if len(trials) >= 3:  # after the first rung's pruned trials are reported
            reported_at_cancel.append(len(trials))
        return bool(reported_at_cancel)

    config = SearchConfig(target="diagnosis", budget_seconds=30, fidelity="successive_halving", min_epochs=1)
    result = run_search(config, cancer_data, on_trial=trials.append, should_cancel=should_cancel)
    assert result.cancelled and len(result.trials) == reported_at_cancel[0]  # nothing reported after the request
    assert all(t.status is TrialStatus.PRUNED and np.isfinite(t.score) for t in result.trials)
