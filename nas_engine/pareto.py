"""Pareto front of (score to maximise, cost to minimise) pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Return the indices of the non-dominated points.

    A point is dominated when another has a score at least as high and a cost at least as low,
    and is strictly better in one of them. Identical points are all kept. Points with a NaN are
    ignored. Runs in O(n log n).

    Args:
        points: ``(score, cost)`` pairs, e.g. ``(accuracy, params)``.

    Returns:
        Indices into ``points``, in ascending order.
    """
    valid = [i for i, (s, c) in enumerate(points) if not (math.isnan(s) or math.isnan(c))]
    order = sorted(valid, key=lambda i: (-points[i][0], points[i][1]))
    front: list[int] = []
    cheapest_better = math.inf  # lowest cost among points with a strictly higher score
    for _, group in groupby(order, key=lambda i: points[i][0]):
        group = list(group)
        group_min = points[group[0]][1]  # sorted by cost within equal scores
        if group_min < cheapest_better:
            front.extend(i for i in group if points[i][1] == group_min)
            cheapest_better = group_min
    return sorted(front)
