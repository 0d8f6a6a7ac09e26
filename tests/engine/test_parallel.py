"""nas_engine.parallel: a search's steps taken by many workers at once (threads here), results told
as they come back, in any order, with the strategy's state passed between steps as JSON."""

import json
import math
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pytest

from nas_engine import SearchConfig
from nas_engine.errors import NasError
from nas_engine.parallel import (
    DriverState,
    PlannedTrial,
    conclude_search,
    plan_trials,
    sequential_reason,
    train_trial,
)
from nas_engine.results import TrialStatus
from nas_engine.strategies import STRATEGIES, OneShotStrategy


def config_for(strategy: str, **overrides) -> SearchConfig:
    settings = {"target": "diagnosis", "task": "classification", "budget_seconds": 300, "max_trials": 6,
                "strategy": strategy, "seed": 2, "max_params": 3000} | overrides  # fmt: skip
    return SearchConfig(**settings)


def spread(config, data, *, slots, artifacts_dir=None, reverse=False):
    """Drive a search as the web app does: a fresh state from JSON on every step, trials trained
    by ``slots`` threads and reported as each finishes (the newest first when ``reverse``)."""
    reported, in_flight, saved, steps = [], {}, None, 0
    with ThreadPoolExecutor(slots) as pool:
        futures = {}
        while True:
            state = None if saved is None else DriverState.from_dict(json.loads(saved), space=_space(data))
            plan = plan_trials(config, data, reported=reported, in_flight=list(in_flight.values()), slots=slots,
                               seconds_left=300, state=state)  # fmt: skip
            steps += 1
            saved = json.dumps(plan.state.to_dict())
            reported += plan.rejected
            for trial in plan.trials:
                trial = PlannedTrial.from_dict(json.loads(json.dumps(trial.to_dict())))
                in_flight[trial.number] = trial
                future = pool.submit(train_trial, config, data, trial, seconds_left=300, trial_seconds=60,
                                     artifacts_dir=artifacts_dir)  # fmt: skip
                futures[future] = trial.number
            assert len(in_flight) <= slots
            if not futures:
                assert plan.done
                return reported, steps
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: futures[f], reverse=reverse):
                del in_flight[futures.pop(future)]
                reported.append(future.result())


def _space(data):
    from nas_engine.spaces import make_space

    return make_space("auto", n_inputs=data.n_features, image_shape=data.image_shape)


# Grid refuses a max_trials below its size (40 models): too many for this test; it asks like random.
ASYNC_STRATEGIES = sorted(
    name for name, cls in STRATEGIES.items() if not issubclass(cls, OneShotStrategy) and name != "grid"
)


@pytest.mark.parametrize("strategy", ASYNC_STRATEGIES)
def test_every_strategy_runs_asynchronously_with_two_slots(cancer_data, strategy, tmp_path):
    config = config_for(strategy, max_epochs=3)
    reported, steps = spread(config, cancer_data, slots=2, artifacts_dir=tmp_path)
    trained = [t for t in reported if t.status is not TrialStatus.REJECTED]
    assert len(trained) == 6  # max_trials counts what is in flight: never more
    assert sorted(t.number for t in reported) == list(range(len(reported)))  # no number lost or repeated
    assert len({t.arch_hash for t in reported}) == len(reported)  # nothing proposed twice
    assert all(t.status is TrialStatus.COMPLETED and t.weights_path for t in trained), [t.message for t in trained]
    assert steps > 3


def test_the_result_matches_what_run_search_reports(cancer_data, tmp_path):
    config = config_for("tpe", max_epochs=5)
    reported, _ = spread(config, cancer_data, slots=3, artifacts_dir=tmp_path, reverse=True)
    result = conclude_search(config, cancer_data, reported, elapsed_seconds=12.5, artifacts_dir=tmp_path)
    completed = [t for t in reported if t.status is TrialStatus.COMPLETED]
    assert result.best is not None and result.best.score == max(t.score for t in completed)
    assert result.best.number in result.front and set(result.front) <= {t.number for t in completed}
    assert result.test_metrics["accuracy"] > 0.8  # loaded from the best trial's weights file
    assert result.elapsed_seconds == pytest.approx(12.5, abs=1) and not result.cancelled
    assert [t.number for t in result.trials] == sorted(t.number for t in reported)


def test_a_trial_trains_as_in_run_search_seeded_by_its_number(cancer_data):
    config = config_for("random", max_epochs=4)
    plan = plan_trials(config, cancer_data, reported=[], in_flight=[], slots=1, seconds_left=300)
    (trial,) = plan.trials
    first = train_trial(config, cancer_data, trial, seconds_left=300, trial_seconds=60)
    again = train_trial(config, cancer_data, trial, seconds_left=300, trial_seconds=60)  # another worker
    assert first.score == again.score and first.number == trial.number and first.costs.params == trial.costs.params
    cancelled = train_trial(config, cancer_data, trial, seconds_left=300, trial_seconds=60, should_cancel=lambda: True)
    assert cancelled is None  # stopped, not judged: nothing to report


def test_no_time_left_plans_nothing_and_says_it_is_done(cancer_data):
    plan = plan_trials(config_for("random"), cancer_data, reported=[], in_flight=[], slots=4, seconds_left=0)
    assert plan.trials == [] and plan.done and plan.out_of_budget


def test_failures_in_a_row_stop_the_search(cancer_data):
    config = config_for("random")
    plan = plan_trials(config, cancer_data, reported=[], in_flight=[], slots=5, seconds_left=300)
    failed = [trial.failed("boom") for trial in plan.trials]
    assert len(failed) == 5
    with pytest.raises(NasError, match="5 trials failed in a row; last error: boom"):
        plan_trials(config, cancer_data, reported=failed, in_flight=[], slots=5, seconds_left=300, state=plan.state)


def test_searches_that_compare_candidates_together_stay_on_one_worker(cancer_data):
    assert sequential_reason(config_for("random")) == ""
    assert "rung" in sequential_reason(config_for("random", fidelity="hyperband"))
    assert "supernet" in sequential_reason(config_for("spos"))
    with pytest.raises(ValueError, match="run_search"):
        plan_trials(config_for("spos"), cancer_data, reported=[], in_flight=[], slots=2, seconds_left=math.inf)
