"""Permutation importance (a column the model ignores scores zero, the one it reads scores most;
a categorical column's slots move together) and one row's contributions by occlusion; every final
model's test metrics carry the importance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_engine import SearchConfig, finalize_front, prepare_data, run_search
from nas_engine.importance import column_slots, contributions, permutation_importance, typical_row
from tests.engine.conftest import write_csv


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """240 rows: the label follows 'signal' (a number); 'noise' is random; 'colour' a category."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(240):
        signal, noise = rng.normal(), rng.normal()
        rows.append([f"{signal:.3f}", f"{noise:.3f}", ["red", "blue", "green"][i % 3], "yes" if signal > 0 else "no"])
    path = tmp_path_factory.mktemp("importance") / "shop.csv"
    return prepare_data(write_csv(path, ["signal", "noise", "colour", "label"], rows), target="label")


def _reader_of(data, column: str) -> torch.nn.Module:
    """A linear model that reads one input column only (a big weight on its first slot)."""
    model = torch.nn.Linear(data.n_features, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        where = dict(column_slots(data.preprocessing))[column]
        labels = data.preprocessing["target"]["labels"]  # ["no", "yes"]: "yes" when signal is high
        model.weight[labels.index("yes"), where.start] = 5.0
    return model


def test_the_column_a_model_reads_matters_and_the_others_do_not(shop):
    model = _reader_of(shop, "signal")
    importance = permutation_importance(model, shop.X_test, shop.y_test, shop.preprocessing)
    assert list(importance)[0] == "signal"  # largest first
    assert importance["signal"] > 0.3
    assert importance["noise"] == 0.0 and importance["colour"] == 0.0  # never read: shuffling changes nothing


def test_a_categorical_columns_slots_are_shuffled_together():
    preprocessing = {
        "features": [{"name": "n", "kind": "numeric"}, {"name": "c", "kind": "categorical", "categories": ["a", "b"]}]
    }
    assert column_slots(preprocessing) == [("n", slice(0, 1)), ("c", slice(1, 4))]


def test_occluding_the_input_that_drives_a_row_moves_its_prediction_most(shop):
    model = _reader_of(shop, "signal")
    row = shop.X_test[int(np.argmax(shop.X_test[:, 0]))]  # the highest signal: a confident "yes"
    moves = contributions(model, row, shop.preprocessing)
    assert moves[0][0] == "signal" and moves[0][1] > 0.2  # at its median, the probability of "yes" falls
    assert all(move == 0.0 for name, move in moves if name != "signal")
    typical = typical_row(shop.preprocessing)
    assert typical.shape == (shop.n_features,)


def test_every_final_model_and_the_ensemble_carry_their_importance(shop, tmp_path):
    config = SearchConfig(target="label", budget_seconds=15, max_trials=4, seed=0, strategy="random")
    result = run_search(config, shop, artifacts_dir=str(tmp_path))
    finals = finalize_front(result, shop, artifacts_dir=str(tmp_path), seed=0)
    scored = [*finals.models, *([finals.ensemble_final] if finals.ensemble_final else [])]
    assert scored
    for final in scored:
        importance = final.test_metrics["importance"]
        assert set(importance) == {"signal", "noise", "colour"}
        assert max(importance, key=importance.get) == "signal"
