"""Grid search: every network of the grid once, then the search ends; a grid the budget or the
trial limit cannot cover is refused before any training, with what would make it fit."""

from __future__ import annotations

import pytest

from nas_engine import DataShape, GridTooLarge, SearchConfig, check_grid, run_search
from nas_engine.results import TrialStatus
from nas_engine.spaces import CNNSpace, MLPSpace
from nas_engine.strategies import GridStrategy

CANCER = DataShape(rows=569, n_inputs=30, n_outputs=2)


def test_default_grids_hold_distinct_networks_in_an_order_drawn_from_the_seed():
    mlp, cnn = GridStrategy(space=MLPSpace()), GridStrategy(space=CNNSpace(image_shape=(1, 8, 8)))
    assert (mlp.size, cnn.size) == (40, 20)
    assert len({MLPSpace().arch_hash(a) for a in mlp.architectures}) == 40
    assert sorted(len(a["layers"]) for a in mlp.architectures) == [0] + [1] * 3 + [2] * 9 + [3] * 27
    assert mlp.ask(5) == GridStrategy(space=MLPSpace()).ask(5) != GridStrategy(space=MLPSpace(), seed=9).ask(5)


def test_a_custom_grid_is_checked():
    with pytest.raises(ValueError, match="unknown decision"):
        GridStrategy(space=MLPSpace(), grid={"width": [1]})
    with pytest.raises(ValueError, match="takes options from"):
        GridStrategy(space=MLPSpace(), grid={"depth": [9]})
    assert GridStrategy(space=MLPSpace(), grid={"depth": [1, 2], "units_0": [8, 16]}).size == 4


def test_a_grid_the_limits_or_budget_cannot_cover_is_refused():
    with pytest.raises(GridTooLarge, match="at most 10 may be trained") as refused:
        check_grid(SearchConfig(target="t", strategy="grid", max_trials=10), CANCER)
    assert refused.value.field == "max_trials"
    big = DataShape(rows=500_000, n_inputs=300, n_outputs=2)
    with pytest.raises(GridTooLarge, match="give the search at least") as refused:
        check_grid(SearchConfig(target="t", strategy="grid", budget_seconds=30), big)
    assert refused.value.field == "budget_seconds"
    check_grid(SearchConfig(target="t", strategy="grid", budget_seconds=600), CANCER)  # fits: no error
    check_grid(SearchConfig(target="t", strategy="random", max_trials=1), CANCER)  # not a grid


def test_run_search_refuses_before_training_and_otherwise_tries_the_whole_grid_once(cancer_data):
    with pytest.raises(GridTooLarge):
        run_search(SearchConfig(target="diagnosis", strategy="grid", max_trials=5), cancer_data)
    config = SearchConfig(target="diagnosis", strategy="grid", budget_seconds=600, max_epochs=3)
    result = run_search(config, cancer_data)
    trained = [t for t in result.trials if t.status is TrialStatus.COMPLETED]
    assert len(result.trials) == 40 and len({t.arch_hash for t in result.trials}) == 40
    assert len(trained) == 40 and result.elapsed_seconds < 600  # ended with the grid, not the budget
