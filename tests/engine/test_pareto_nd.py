"""Pareto fronts in any dimension, and the 2-D (score, cost) form the web app calls."""

from __future__ import annotations

import itertools

import numpy as np

from nas_engine.pareto import dominates, pareto_front, pareto_front_nd


def brute_force_front(vectors) -> list[int]:
    valid = [i for i, v in enumerate(vectors) if v is not None and not np.isnan(v).any()]
    return [i for i in valid if not any(dominates(vectors[j], vectors[i]) for j in valid)]


def test_three_objective_front_on_hand_made_points():
    # (-score, params, latency_ms): all minimised.
    vectors = [
        (-0.90, 100, 1.0),  # 0 front
        (-0.95, 300, 2.0),  # 1 front
        (-0.90, 100, 2.0),  # 2 dominated by 0 (slower, otherwise equal)
        (-0.85, 50, 3.0),  # 3 front: the smallest
        (-0.85, 60, 0.5),  # 4 front: the fastest
        (-0.80, 60, 0.6),  # 5 dominated by 4
        (-0.95, 300, 2.0),  # 6 identical to 1: also front
        None,  # 7 rejected trial: ignored
        (float("nan"), 1, 1),  # 8 NaN: ignored
    ]
    assert pareto_front_nd(vectors) == [0, 1, 3, 4, 6]
    assert pareto_front_nd([]) == []


def test_nd_front_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    for dims, n in itertools.product((2, 3, 4), (1, 5, 40)):
        vectors = [tuple(v) for v in rng.integers(0, 6, size=(n, dims)).astype(float)]  # many ties
        assert pareto_front_nd(vectors) == brute_force_front(vectors)


def test_two_d_score_cost_form_keeps_its_meaning():
    points = [(0.90, 100), (0.95, 300), (0.85, 200), (0.95, 300), (0.97, 1000), (0.90, 150), (0.80, 100), (0.70, 50)]
    assert pareto_front(points) == [0, 1, 3, 4, 7]
    assert pareto_front(points) == pareto_front_nd([(-s, c) for s, c in points])
    assert pareto_front([(float("nan"), 1), (0.5, 2)]) == [1]
