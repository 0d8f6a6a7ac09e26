"""The pre-launch estimate: how many trials a budget buys, and refusing limits no network meets."""

from __future__ import annotations

import pytest

from nas_engine import (
    DataShape,
    NoNetworkFits,
    SearchConfig,
    check_limits,
    estimate_search,
    prepare_data,
    profile_csv,
)
from nas_engine.spaces import MLPSpace

CANCER = DataShape(rows=569, n_inputs=30, n_outputs=2)
FIDELITIES = ("none", "successive_halving", "hyperband")


def config(**settings) -> SearchConfig:
    return SearchConfig(target="target", **{"budget_seconds": 60, **settings})


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_more_budget_never_buys_fewer_trials(fidelity):
    budgets = [5, 10, 20, 45, 60, 300, 900, 3600]
    trials = [estimate_search(config(budget_seconds=b, fidelity=fidelity), CANCER).trials for b in budgets]
    assert trials == sorted(trials)
    assert trials[-1] > 10 * trials[0]  # an hour buys far more than five seconds
    assert all(count >= 1 for count in trials)


def test_trials_grow_about_in_proportion_to_the_budget():
    one_minute = estimate_search(config(budget_seconds=60, cv_folds=1), CANCER)
    ten_minutes = estimate_search(config(budget_seconds=600, cv_folds=1), CANCER)
    assert 9 <= ten_minutes.trials / one_minute.trials <= 11
    assert one_minute.seconds_per_trial == ten_minutes.seconds_per_trial


def test_a_roomy_budget_on_a_small_table_cross_validates_and_prices_it():
    from nas_engine.evaluator import auto_cv_folds

    assert auto_cv_folds(200) == auto_cv_folds(200, 30) == 5  # tiny: always
    assert auto_cv_folds(1_500) == auto_cv_folds(1_500, 60) == 1  # small, short budget: one validation split
    assert auto_cv_folds(1_500, 120) == 5 and auto_cv_folds(2_500, 600) == 1
    quick = estimate_search(config(budget_seconds=60), CANCER)
    roomy = estimate_search(config(budget_seconds=600), CANCER)  # 341 training rows: 5 folds at 600 s
    assert roomy.seconds_per_trial == pytest.approx(5 * quick.seconds_per_trial, rel=0.1)


def test_tighter_limits_mean_cheaper_networks_and_more_trials():
    free = estimate_search(config(), CANCER)
    small = estimate_search(config(max_params=2_000), CANCER)
    few_flops = estimate_search(config(max_flops=2_000), CANCER)
    assert small.seconds_per_trial < free.seconds_per_trial
    assert few_flops.seconds_per_trial < free.seconds_per_trial
    assert small.trials > free.trials
    assert free.fitting_share == 1.0 and 0 < small.fitting_share < 1


def test_more_rows_and_inputs_cost_more_per_trial():
    base = estimate_search(config(cv_folds=1), CANCER)
    more_rows = estimate_search(config(cv_folds=1), DataShape(rows=20_000, n_inputs=30, n_outputs=2))
    more_inputs = estimate_search(config(cv_folds=1), DataShape(rows=569, n_inputs=3_000, n_outputs=2))
    assert more_rows.seconds_per_trial > 10 * base.seconds_per_trial
    assert more_inputs.seconds_per_trial > base.seconds_per_trial


def test_k_fold_scoring_on_small_data_costs_one_training_per_fold():
    small = DataShape(rows=300, n_inputs=10, n_outputs=1)  # 180 training rows: 5-fold by default
    single = estimate_search(config(cv_folds=1), small)
    folded = estimate_search(config(), small)
    assert 3 * single.seconds_per_trial < folded.seconds_per_trial < 8 * single.seconds_per_trial


def test_multi_fidelity_tries_more_architectures_than_full_training():
    full = estimate_search(config(fidelity="none"), CANCER)
    for fidelity in ("successive_halving", "hyperband"):
        assert estimate_search(config(fidelity=fidelity), CANCER).trials > full.trials


def test_more_epochs_mean_fewer_trials():
    short = estimate_search(config(max_epochs=10), CANCER)
    long = estimate_search(config(max_epochs=200), CANCER)
    assert long.trials < short.trials


def test_the_trial_limit_caps_the_estimate_and_says_so():
    estimate = estimate_search(config(budget_seconds=3600, max_trials=7), CANCER)
    assert (estimate.trials, estimate.capped) == (7, True)
    assert estimate.text.startswith("7 models (your limit) in about")
    uncapped = estimate_search(config(budget_seconds=5, max_trials=10_000), CANCER)
    assert not uncapped.capped and uncapped.trials < 10_000


def test_the_text_reads_as_a_sentence_with_the_budget_in_human_units():
    estimate = estimate_search(config(budget_seconds=600), CANCER)
    assert estimate.text.startswith("about ") and " models in 10 min (about " in estimate.text
    assert estimate.to_dict()["trials"] == estimate.trials


def test_a_budget_shorter_than_one_training_says_the_model_is_cut_short():
    huge = DataShape(rows=2_000_000, n_inputs=500, n_outputs=2)
    estimate = estimate_search(config(budget_seconds=5, cv_folds=1), huge)
    assert estimate.trials == 1
    assert "cut short" in estimate.text and "raise the budget" in estimate.text


def test_it_is_deterministic_for_a_seed():
    assert estimate_search(config(seed=3), CANCER) == estimate_search(config(seed=3), CANCER)


@pytest.mark.parametrize(
    ("limit", "field", "words"),
    [
        ({"max_params": 10}, "max_params", "No network fits under 10 parameters"),
        ({"max_flops": 10}, "max_flops", "No network fits under 10 FLOPs per prediction"),
        ({"max_size_bytes": 100}, "max_size_bytes", "No network fits in 100 bytes"),
        ({"max_memory_bytes": 300}, "max_memory_bytes", "No network runs in 300 bytes of memory"),
    ],
)
def test_limits_below_the_smallest_network_are_refused_with_what_it_needs(limit, field, words):
    with pytest.raises(NoNetworkFits) as caught:
        estimate_search(config(**limit), CANCER)
    smallest = MLPSpace().smallest_params(30, 2)  # a logistic regression: 30 x 2 weights + 2 biases
    assert caught.value.field == field
    assert str(caught.value).startswith(words)
    if field == "max_params":
        assert caught.value.smallest == smallest == 62
        assert "the smallest one for this data has 62" in str(caught.value)


def test_a_limit_exactly_at_the_smallest_network_is_accepted():
    space = MLPSpace()
    smallest, cheapest = space.smallest_params(30, 2), space.smallest_flops(30, 2)
    leanest = space.smallest_memory(30, 2)
    check_limits(
        space, CANCER, max_params=smallest, max_flops=cheapest, max_size_bytes=smallest * 4, max_memory_bytes=leanest
    )
    with pytest.raises(NoNetworkFits) as caught:
        check_limits(space, CANCER, max_memory_bytes=leanest - 1)
    assert caught.value.smallest == leanest
    estimate = estimate_search(config(max_params=smallest), CANCER)
    assert estimate.trials >= 1 and 0 < estimate.fitting_share < 1


def test_the_shape_from_a_profile_matches_the_real_encoding(mixed_csv, breast_cancer_csv, diabetes_csv):
    for path, target in ((mixed_csv, "label"), (breast_cancer_csv, "diagnosis"), (diabetes_csv, "progression")):
        profile = profile_csv(path).to_dict()
        shape = DataShape.from_profile(profile, target=target)
        data = prepare_data(path, target=target, seed=0)
        assert (shape.n_inputs, shape.n_outputs) == (data.n_features, data.n_outputs), path.name
        assert shape.rows == len(data.X_train) + len(data.X_val) + len(data.X_test)


def test_the_shape_follows_an_overridden_task(diabetes_csv):
    profile = profile_csv(diabetes_csv).to_dict()
    assert DataShape.from_profile(profile, target="progression").n_outputs == 1  # regression detected
    forced = DataShape.from_profile(profile, target="sex", task="classification")
    assert forced.n_outputs == 2 and forced.n_inputs == 10


def test_limits_that_few_random_networks_meet_come_with_a_warning():
    wide = DataShape(rows=1_000, n_inputs=1_000, n_outputs=100)  # the smallest net: one hidden layer of 8
    smallest = MLPSpace().smallest_params(1_000, 100)
    tight = estimate_search(config(max_params=smallest + 2), wide)
    assert tight.fitting_share < 0.01
    assert "Loosen the limits" in tight.warning and tight.trials >= 1
    assert estimate_search(config(), wide).warning == ""


@pytest.mark.parametrize("strategy", ["spos", "darts"])
def test_one_shot_strategies_leave_the_supernet_its_share_of_the_budget(strategy):
    from nas_engine.strategies import STRATEGIES

    # One-shot strategies search the MLP space (their supernets); compare with a black box on it.
    black_box = estimate_search(config(budget_seconds=600, space="mlp"), CANCER)
    one_shot = estimate_search(config(budget_seconds=600, strategy=strategy), CANCER)
    share = 1 - STRATEGIES[strategy].budget_share
    assert 0.9 * share <= one_shot.trials / black_box.trials <= 1.1 * share
    assert "10 min" in one_shot.text  # the budget the user chose, not what is left for trials


def test_models_trained_at_once_multiply_the_trials_unless_the_search_keeps_to_one_worker():
    alone = estimate_search(config(budget_seconds=120), CANCER)
    four = estimate_search(config(budget_seconds=120), CANCER, parallel=4)
    assert 3.6 <= four.trials / alone.trials <= 4.4 and four.seconds_per_trial == alone.seconds_per_trial
    assert "4 at once" in four.text and "at once" not in alone.text
    capped = estimate_search(config(budget_seconds=3600, max_trials=8), CANCER, parallel=4)
    assert capped.capped and capped.trials == 8 and "8 models (your limit)" in capped.text
    bracketed = estimate_search(config(budget_seconds=120, fidelity="hyperband"), CANCER, parallel=4)
    assert bracketed == estimate_search(config(budget_seconds=120, fidelity="hyperband"), CANCER)
