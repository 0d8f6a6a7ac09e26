"""A model that trains longer than its share of the budget is stopped, recorded as failed with the
reason, and the search goes on; a search left with no usable model says why and what to change."""

from __future__ import annotations

import math

import pytest

from nas_engine import Costs, NasError, SearchConfig, TrialResult, TrialStatus, run_search
from nas_engine.search_result import no_model_reason
from nas_engine.trial_runner import trial_time_limit

RUNAWAY = "stopped after 0.001 s: longer than this search allows per model"


def test_one_model_may_take_a_quarter_of_the_budget_and_at_least_30_s():
    assert trial_time_limit(60) == 30
    assert trial_time_limit(600) == 150
    assert trial_time_limit(10) == 30


def test_a_runaway_trial_is_stopped_and_recorded_as_failed_and_the_search_goes_on(cancer_data, tmp_path):
    reported = []
    config = SearchConfig(target="diagnosis", budget_seconds=60, max_trials=3)
    result = run_search(config, cancer_data, on_trial=reported.append, artifacts_dir=tmp_path, trial_seconds=0.001)
    assert [t.status for t in result.trials] == [TrialStatus.FAILED] * 3  # each stopped, the next one tried
    assert [t.number for t in reported] == [0, 1, 2]
    for trial in result.trials:
        assert trial.message == RUNAWAY
        assert trial.train_seconds > 0 and trial.weights_path is None
    assert not list(tmp_path.glob("*.pt"))
    assert result.best is None and result.front == [] and not result.cancelled
    assert "No model finished training in the time this search allows per model" in no_model_reason(result.trials)


def test_a_model_cut_at_the_limit_after_whole_epochs_keeps_its_best_epoch(cancer_data):
    # A limit that lets a model through a few epochs (not all 200): on big data a few good epochs
    # beat a search that sees few models, so the model is kept, marked as cut.
    # networks (the tabular portfolio's trees grow to their capacity in well under 0.5 s here)
    config = SearchConfig(
        target="diagnosis", space="mlp", budget_seconds=60, max_trials=2, max_epochs=200, patience=200
    )
    result = run_search(config, cancer_data, trial_seconds=0.5)
    assert [t.status for t in result.trials] == [TrialStatus.COMPLETED] * 2
    for trial in result.trials:
        assert trial.metrics["cut_at_time_limit"] is True
        assert 1 <= trial.metrics["epochs"] < 200 and trial.metrics["score"] > 0.5


def test_without_the_limit_the_same_trials_complete(cancer_data):
    config = SearchConfig(target="diagnosis", budget_seconds=60, max_trials=3)
    result = run_search(config, cancer_data, trial_seconds=math.inf)
    assert [t.status for t in result.trials] == [TrialStatus.COMPLETED] * 3
    assert no_model_reason(result.trials) == ""


def test_the_limit_counts_every_rung_a_model_trains(cancer_data):
    config = SearchConfig(target="diagnosis", budget_seconds=60, max_trials=3, fidelity="successive_halving")
    result = run_search(config, cancer_data, trial_seconds=0.001)
    assert {t.status for t in result.trials} == {TrialStatus.FAILED}
    assert all(t.message == RUNAWAY for t in result.trials)


def test_runaway_trials_in_a_row_end_the_search_with_what_to_change(cancer_data):
    reported = []
    config = SearchConfig(target="diagnosis", budget_seconds=60)
    with pytest.raises(NasError, match="5 models in a row were stopped after 0.001 s.*longer time budget"):
        run_search(config, cancer_data, on_trial=reported.append, trial_seconds=0.001)
    assert len(reported) == 5 and all(t.status is TrialStatus.FAILED for t in reported)


@pytest.mark.parametrize("bad", [0, -1, True, "30"])
def test_the_trial_limit_must_be_positive_seconds(cancer_data, bad):
    with pytest.raises(ValueError, match="trial_seconds must be a number of seconds above 0"):
        run_search(SearchConfig(target="diagnosis", max_trials=1), cancer_data, trial_seconds=bad)


def test_a_latency_limit_no_model_meets_names_the_fastest_measured(cancer_data):
    config = SearchConfig(target="diagnosis", max_latency_ms=1e-6, max_trials=2, max_epochs=2)
    result = run_search(config, cancer_data)
    fastest = min(t.costs.latency_ms for t in result.trials)
    reason = no_model_reason(result.trials, max_latency_ms=1e-6)
    assert reason.startswith("No architecture fits the latency limit of 1e-06 ms per prediction")
    assert f"took {fastest:.3g} ms" in reason and f"at least {fastest:.3g} ms" in reason


def _untrained(number: int, status: TrialStatus, message: str, params: int = 100) -> TrialResult:
    return TrialResult(
        number=number,
        status=status,
        architecture={},
        arch_hash=str(number),
        metrics={},
        costs=Costs(params=params, flops=params, latency_ms=None, size_bytes=4 * params),
        train_seconds=0.0,
        message=message,
    )


def test_the_reason_without_a_model_fits_what_happened():
    assert no_model_reason([]) == (
        "The time budget ran out before any model finished training; give the search more time."
    )
    rejected = [_untrained(0, TrialStatus.REJECTED, "500 parameters is above the limit of 90.", params=500)]
    rejected.append(_untrained(1, TrialStatus.REJECTED, "300 parameters is above the limit of 90.", params=300))
    reason = no_model_reason(rejected)
    assert reason.startswith("No architecture fits the limits: all 2 tried broke one")
    assert "The smallest tried has 300 parameters" in reason
    broken = [_untrained(0, TrialStatus.FAILED, "RuntimeError: out of memory")]
    assert no_model_reason(broken) == "Every model failed to train; the last error: RuntimeError: out of memory"
