"""NSGA-II (Deb et al. 2002), multi-objective evolution, through optuna's NSGAIISampler."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies._optuna import OptunaStrategy
from nas_engine.strategies.base import whole_number


class NSGA2Strategy(OptunaStrategy):
    """Evolves a population toward the Pareto front of all ``objectives`` (score against costs),
    by non-dominated sorting and crowding distance; rejected trials lose to every feasible one.

    Args:
        space: The search space to propose from.
        seed: Seed of the sampler.
        objectives: What to trade off, ``"score"`` first (e.g. score and params).
        population_size: Trials per generation, 2 or more; the first generation is random. Smaller
            than optuna's 50 because a NAS budget is often under a hundred trials.

    Raises:
        ValueError: A setting is out of range.
    """

    name = "nsga2"
    label = "Multi-objective evolution (NSGA-II)"
    description = (
        "Evolves architectures that trade score against size or speed, keeping the best trade-offs "
        "(NSGA-II, via optuna). Use it to fill the Pareto front."
    )

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        population_size: int = 20,
    ) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        self.population_size = whole_number("population_size", population_size, minimum=2)

    def settings(self) -> dict:
        return super().settings() | {"population_size": self.population_size}

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=self.seed, population_size=self.population_size)
