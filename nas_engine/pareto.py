"""Pareto fronts: of objective vectors to minimise (any dimension), and of (score, cost) pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in one (all minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_front_nd(vectors: Sequence[Sequence[float] | None]) -> list[int]:
    """Return the indices of the non-dominated vectors, every objective being minimised.

    Identical vectors are all kept. None entries and vectors with a NaN are ignored, so
    ``results.objective_vector`` output can be passed as it is. Sorting lexicographically first
    means a vector can only be dominated by one before it, so each is compared with the front
    found so far: O(n·f) for a front of f points.

    Args:
        vectors: Objective values, all of the same length (2 or 3 in practice).

    Returns:
        Indices into ``vectors``, in ascending order.
    """
    valid = {i: v for i, v in enumerate(vectors) if v is not None and not any(math.isnan(x) for x in v)}
    front: list[int] = []
    for i in sorted(valid, key=lambda i: tuple(valid[i])):
        if not any(dominates(valid[j], valid[i]) for j in front):
            front.append(i)
    return sorted(front)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Return the indices of the non-dominated ``(score, cost)`` pairs (score maximised).

    A point is dominated when another has a score at least as high and a cost at least as low,
    and is strictly better in one of them. Identical points are all kept; points with a NaN are
    ignored.

    Args:
        points: ``(score, cost)`` pairs, e.g. ``(accuracy, params)``.

    Returns:
        Indices into ``points``, in ascending order.
    """
    return pareto_front_nd([(-score, cost) for score, cost in points])
