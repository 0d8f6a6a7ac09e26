"""The honest reference: a default HistGradientBoosting fit on the search's training rows and scored
on its validation rows with the trials' own metric, so its score can stand beside theirs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, r2_score

from nas_engine import SearchConfig, prepare_data
from nas_engine.reference import reference_score
from nas_engine.runtime import target_units


def test_a_classification_reference_is_sklearns_accuracy_on_the_validation_split(cancer_data):
    reference = reference_score(cancer_data, seed=0)
    expected = HistGradientBoostingClassifier(random_state=0).fit(cancer_data.X_train, cancer_data.y_train)
    assert reference.metric == "accuracy" and reference.model == "HistGradientBoostingClassifier"
    assert reference.score == pytest.approx(accuracy_score(cancer_data.y_val, expected.predict(cancer_data.X_val)))
    assert reference.score > 0.9  # breast cancer: far above the majority class (0.63)
    assert reference.train_rows == len(cancer_data.X_train) and not reference.capped
    assert reference.validation_rows == len(cancer_data.X_val) and reference.cv_folds == 1
    assert set(reference.metrics) >= {"accuracy", "balanced_accuracy", "f1_macro", "score"}
    assert (
        reference.describe()
        == f"A default gradient-boosting model scores {reference.score:.4g} (accuracy) on this split."
    )
    assert reference.to_dict()["score"] == reference.score


def test_a_regression_reference_is_r2_in_the_targets_own_units(diabetes_csv):
    data = prepare_data(diabetes_csv, target="progression", seed=0)
    reference = reference_score(data, seed=0)
    model = HistGradientBoostingRegressor(random_state=0).fit(data.X_train, data.y_train)
    target = data.preprocessing["target"]
    truth, predicted = target_units(data.y_val, target), target_units(model.predict(data.X_val), target)
    assert reference.metric == "r2" and reference.score == pytest.approx(r2_score(truth, predicted), abs=1e-5)
    assert reference.metrics["rmse"] == pytest.approx(np.sqrt(np.mean((truth - predicted) ** 2)), rel=1e-4)
    assert "(R²) on this split." in reference.describe()


def test_on_small_data_it_is_scored_by_k_fold_as_the_trials_are(iris_csv):
    data = prepare_data(iris_csv, target="species", seed=0)
    reference = reference_score(data, folds=SearchConfig(target="species").folds(len(data.X_train)), seed=0)
    assert reference.cv_folds == 5 and reference.validation_rows == len(data.X_train) + len(data.X_val)
    assert 0.8 < reference.score <= 1.0
    assert "on 5-fold cross-validation" in reference.describe()


def test_it_fits_on_a_sample_above_its_row_cap_and_says_so(cancer_data):
    reference = reference_score(cancer_data, seed=0, max_rows=100)
    assert reference.train_rows == 100 and reference.capped
    assert reference.describe().endswith("fit on a sample of 100 training rows.")
