"""Resuming a search from the trials an earlier, interrupted run reported: no repeated work, the
same front, numbering and the trial limit carried over, and ``TrialResult.from_dict``."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import pytest
import torch

from nas_engine import SearchConfig, TrialResult, TrialStatus, run_search
from nas_engine.pareto import pareto_front_nd
from nas_engine.results import Costs, objective_vector
from nas_engine.strategies import STRATEGIES

BUDGET = 60  # seconds; the trial limits below end every search long before


def config(**settings) -> SearchConfig:
    # One validation split and a few epochs: each trial takes a fraction of a second.
    base = {"target": "diagnosis", "budget_seconds": BUDGET, "max_epochs": 4, "cv_folds": 1}
    return SearchConfig(**(base | settings))


def stored(trial: TrialResult) -> TrialResult:
    """The trial as the web app rebuilds it from its database: through JSON and ``from_dict``."""
    return TrialResult.from_dict(json.loads(json.dumps(trial.to_dict())))


@pytest.fixture(scope="module")
def first_run(cancer_data, tmp_path_factory):
    """A six-trial search whose weights are saved: the run that gets interrupted."""
    torch.set_num_threads(1)
    result = run_search(config(max_trials=6), cancer_data, artifacts_dir=tmp_path_factory.mktemp("weights"))
    assert [t.number for t in result.trials] == list(range(6))
    assert all(t.status is TrialStatus.COMPLETED for t in result.trials)
    return result


def front_numbers(trials: list[TrialResult], objectives: tuple[str, ...]) -> list[int]:
    vectors = [objective_vector(t, objectives) for t in trials]
    return sorted(trials[i].number for i in pareto_front_nd(vectors))


def test_it_runs_only_the_trials_left_and_keeps_the_earlier_ones(first_run, cancer_data, tmp_path):
    kept = [stored(t) for t in first_run.trials[:3]]
    reported: list[TrialResult] = []
    result = run_search(
        config(max_trials=6), cancer_data, artifacts_dir=tmp_path, resume_from=kept, on_trial=reported.append
    )
    new = result.trials[3:]
    assert result.trials[:3] == kept
    assert [t.number for t in new] == [3, 4, 5]
    assert not {t.arch_hash for t in new} & {t.arch_hash for t in kept}
    assert reported == new
    assert result.front == front_numbers(result.trials, result.objectives)
    scores = [t.score for t in result.trials]
    assert result.best is not None and result.best.score == max(scores)
    assert result.recommended is not None and result.recommended.number in result.front
    assert result.test_metrics


def test_it_finishes_at_once_when_no_budget_is_left(first_run, cancer_data):
    kept = [stored(t) for t in first_run.trials]
    reported: list[TrialResult] = []
    start = time.monotonic()
    result = run_search(
        config(max_trials=10),
        cancer_data,
        resume_from=kept,
        elapsed_before=BUDGET,
        on_trial=reported.append,
    )
    assert time.monotonic() - start < 5
    assert result.trials == kept and not reported
    assert result.front == first_run.front
    assert result.best == first_run.best
    assert result.elapsed_seconds >= BUDGET
    # The best model's weights come back from its file: the same test metrics as the first run.
    assert result.test_metrics == pytest.approx(first_run.test_metrics)


def test_max_trials_counts_the_kept_trained_trials_only(first_run, cancer_data):
    rejected = TrialResult(
        number=3,
        status=TrialStatus.REJECTED,
        architecture={**first_run.trials[0].architecture, "made_up": True},
        arch_hash="rejected-before-training",
        metrics={},
        costs=Costs(params=10**9, flops=10**9, latency_ms=None, size_bytes=4 * 10**9),
        train_seconds=0.0,
        message="Too many parameters.",
    )
    kept = [*first_run.trials[:3], rejected]
    result = run_search(config(max_trials=4), cancer_data, resume_from=kept)
    assert [t.number for t in result.trials[4:]] == [4]


def test_a_kept_best_without_its_weights_file_does_not_crash(first_run, cancer_data, caplog):
    # The kept trial is made the best by far, and its weights file is gone.
    winner = first_run.trials[0]
    winner = dataclasses.replace(
        winner, metrics=winner.metrics | {"score": 2.0}, weights_path=str(winner.weights_path) + ".gone"
    )
    with caplog.at_level(logging.WARNING, logger="nas_engine.search_result"):
        result = run_search(config(max_trials=2), cancer_data, resume_from=[winner])
    assert result.best == winner
    assert result.test_metrics  # measured on the best new trial's model instead
    assert "trial 0" in caplog.text and "trial 1" in caplog.text


def test_a_kept_best_without_weights_and_no_new_trial_has_no_test_metrics(first_run, cancer_data, caplog):
    kept = [dataclasses.replace(t, weights_path=None) for t in first_run.trials]
    with caplog.at_level(logging.WARNING, logger="nas_engine.search_result"):
        result = run_search(config(), cancer_data, resume_from=kept, elapsed_before=BUDGET + 1)
    assert result.best is not None and result.best.number == first_run.best.number
    assert result.test_metrics == {}
    assert "no trial of this run can stand in" in caplog.text


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_resumes(name, first_run, cancer_data):
    kept = [stored(t) for t in first_run.trials[:2]]
    result = run_search(config(strategy=name, max_trials=3, max_epochs=2), cancer_data, resume_from=kept)
    new = result.trials[2:]
    assert [t.number for t in new] == [2] and new[0].arch_hash not in {t.arch_hash for t in kept}


def test_a_multi_fidelity_search_resumes_with_fresh_brackets(first_run, cancer_data):
    kept = [dataclasses.replace(first_run.trials[0], status=TrialStatus.PRUNED), first_run.trials[1]]
    settings = {"fidelity": "successive_halving", "min_epochs": 1, "max_epochs": 3, "max_trials": 5}
    result = run_search(config(**settings), cancer_data, resume_from=kept)
    new = result.trials[2:]
    assert sorted(t.number for t in new) == [2, 3, 4]
    assert {t.status for t in new} <= {TrialStatus.COMPLETED, TrialStatus.PRUNED}


@pytest.mark.parametrize(
    ("resume_from", "elapsed_before", "message"),
    [
        ("twice", 0.0, "repeat a trial number"),
        ((), -1.0, "elapsed_before"),
        ((), float("inf"), "finite"),
    ],
)
def test_it_refuses_a_bad_resume(first_run, cancer_data, resume_from, elapsed_before, message):
    kept = [first_run.trials[0], first_run.trials[0]] if resume_from == "twice" else []
    with pytest.raises(ValueError, match=message):
        run_search(config(), cancer_data, resume_from=kept, elapsed_before=elapsed_before)


# --- TrialResult.from_dict --------------------------------------------------------------------


def every_status(completed: TrialResult) -> list[TrialResult]:
    untrained = {"metrics": {}, "train_seconds": 0.0, "weights_path": None}
    costs = dataclasses.replace(completed.costs, latency_ms=None)
    return [
        completed,
        dataclasses.replace(completed, number=7, status=TrialStatus.PRUNED, metrics=completed.metrics | {"epochs": 1}),
        dataclasses.replace(
            completed, number=8, status=TrialStatus.REJECTED, costs=costs, message="Too big.", **untrained
        ),
        dataclasses.replace(completed, number=9, status=TrialStatus.FAILED, costs=costs, message="Boom.", **untrained),
    ]


def test_from_dict_inverts_to_dict_for_every_status(first_run):
    for trial in every_status(first_run.trials[0]):
        rebuilt = TrialResult.from_dict(trial.to_dict())
        assert rebuilt == trial and stored(trial) == trial
        assert isinstance(rebuilt.status, TrialStatus) and isinstance(rebuilt.costs, Costs)


def test_from_dict_ignores_unknown_keys_and_names_missing_ones(first_run):
    data = first_run.trials[0].to_dict()
    assert TrialResult.from_dict(data | {"id": 42}) == first_run.trials[0]
    del data["costs"]
    with pytest.raises(ValueError, match="costs"):
        TrialResult.from_dict(data)
    with pytest.raises(ValueError, match="not a valid TrialStatus"):
        TrialResult.from_dict(first_run.trials[0].to_dict() | {"status": "lost"})
