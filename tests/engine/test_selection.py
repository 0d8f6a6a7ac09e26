"""Which model to export: by default the ensemble when it beats the best single model on validation,
else that model; one choice away, the cheapest front trial within one standard error of the best."""

from __future__ import annotations

import math

import pytest

from nas_engine import SearchConfig, run_search
from nas_engine.results import Costs, TrialResult, TrialStatus
from nas_engine.selection import default_choice, recommend, score_standard_error


def trial(number: int, score: float | None, params: int, **metrics) -> TrialResult:
    return TrialResult(
        number=number,
        status=TrialStatus.COMPLETED,
        architecture={},
        arch_hash=str(number),
        metrics={"score": score, **metrics} if score is not None else {},
        costs=Costs(params=params, flops=params, latency_ms=None, size_bytes=4 * params),
        train_seconds=1.0,
    )


def test_standard_errors_follow_the_binomial_and_olkin_finn_formulas():
    assert score_standard_error(0.9, task="classification", n=100) == pytest.approx(0.03)
    assert score_standard_error(0.5, task="regression", n=100) == pytest.approx(math.sqrt(4 * 0.5 * 0.25 / 100))
    assert score_standard_error(1.0, task="classification", n=50) == 0.0
    assert score_standard_error(-0.3, task="regression", n=50) == 0.0  # clipped: no negative variance
    assert score_standard_error(0.7, task="classification", n=1) == 0.0


def test_it_recommends_the_cheapest_model_within_one_standard_error():
    front = [trial(0, 0.95, 10_000), trial(1, 0.93, 500), trial(2, 0.80, 50)]
    # SE of 0.95 on 100 rows is about 0.022: 0.93 is within it, 0.80 is not.
    assert recommend(front, task="classification", n_validation=100, cost="params").number == 1
    # On 10,000 rows the SE is 0.002: only the best qualifies.
    assert recommend(front, task="classification", n_validation=10_000, cost="params").number == 0


def test_it_ignores_trials_without_the_cost_and_returns_none_for_an_empty_front():
    assert recommend([], task="classification", n_validation=100, cost="params") is None
    assert recommend([trial(0, 0.9, 10)], task="classification", n_validation=100, cost="latency_ms") is None


def test_a_search_reports_a_recommended_front_trial(cancer_data):
    result = run_search(SearchConfig(target="diagnosis", max_trials=6, max_epochs=5, seed=2), cancer_data)
    assert result.recommended is not None and result.recommended.number in result.front
    assert result.recommended.costs.params <= result.best.costs.params
    n = len(cancer_data.X_val)
    assert result.recommended.score >= result.best.score - score_standard_error(
        result.best.score, task="classification", n=n
    )
    assert result.to_dict()["recommended"] == result.recommended.number


def test_the_default_export_is_the_ensemble_only_when_it_beats_the_best_single_model_on_validation():
    best = trial(3, 0.90, 5_000)
    assert default_choice(best, trial(9, 0.92, 15_000)).number == 9
    assert default_choice(best, trial(9, 0.90, 15_000)).number == 3  # a tie: the single model, cheaper
    assert default_choice(best, trial(9, 0.85, 15_000)).number == 3
    assert default_choice(best, None).number == 3
    assert default_choice(best, trial(9, None, 15_000)).number == 3  # an ensemble without a validation score
    assert default_choice(None, None) is None


def test_under_k_fold_the_ensemble_is_chosen_on_out_of_fold_scores_only():
    """Fold-mean scores and an ensemble of first-fold networks scored on rows they trained on are not
    comparable: the ensemble's higher score there is leakage, not quality. Out-of-fold scores of
    both (finalize's cross-validated ensemble) are: it wins when it scores as well with a lower loss."""
    best = trial(3, 0.90, 5_000, cv_folds=5)
    assert default_choice(best, trial(9, 0.97, 15_000)).number == 3

    def out_of_fold(score: float, loss: float) -> TrialResult:
        return trial(9, score, 15_000, cv_folds=5, val_loss=loss, single_score=0.91, single_val_loss=0.30)

    assert default_choice(best, out_of_fold(0.92, 0.28)).number == 9
    assert default_choice(best, out_of_fold(0.91, 0.28)).number == 9  # same accuracy, better calibrated
    assert default_choice(best, out_of_fold(0.91, 0.31)).number == 3
    assert default_choice(best, out_of_fold(0.90, 0.20)).number == 3  # fewer rows right
