"""Regularized evolution screened by a learned predictor: each child is the best-predicted of a
pool of candidates, so only the most promising one is trained (the screening of mutations by a
predictor that BANANAS, White et al. 2021, uses)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas_engine.predictor import Surrogate
from nas_engine.results import TrialResult
from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies.aging_evolution import AgingEvolutionStrategy
from nas_engine.strategies.base import is_scored, whole_number


class PredictorEvolutionStrategy(AgingEvolutionStrategy):
    """Aging evolution whose proposals are screened by a surrogate (``predictor.Surrogate``).

    Until ``min_trials`` trials are scored it is plain aging evolution. After that each proposal
    is chosen among ``pool_size`` candidates: mutations of tournament winners once the population
    is full, random samples before (a predictor-screened random search). The candidate with the
    highest predicted score wins; candidates already in the history, or already chosen in the
    same ask, are passed over while the pool holds others. The surrogate is refit on the whole
    history when an ask follows new scored trials: a few hundredths of a second, next to the
    seconds or minutes of training a trial.

    Args:
        space: The search space to propose from.
        seed: Seed of the strategy's random generator and of the surrogate.
        objectives: Kept for a uniform interface; only the score is used.
        population_size: Number of trials alive at once, 2 or more.
        sample_size: Tournament size, from 1 to ``population_size``.
        pool_size: Candidates screened per proposal, 1 or more (1 is plain aging evolution).
        min_trials: Scored trials before the surrogate is used, 2 or more.

    Raises:
        ValueError: A setting is out of range.
    """

    name = "predictor_evolution"
    label = "Predictor-guided evolution"
    description = (
        "Regularized evolution that trains only the most promising of many candidate mutations, "
        "as judged by a model learned from the trials so far."
    )

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        population_size: int = 20,
        sample_size: int = 5,
        pool_size: int = 20,
        min_trials: int = 8,
    ) -> None:
        super().__init__(
            space=space, seed=seed, objectives=objectives, population_size=population_size, sample_size=sample_size
        )
        self.pool_size = whole_number("pool_size", pool_size, minimum=1)
        self.surrogate = Surrogate(space, seed=self.seed, min_trials=min_trials)
        self.min_trials = min_trials
        self._scored = 0  # scored trials in the history
        self._fitted_on = 0  # scored trials the surrogate was last fit on

    def settings(self) -> dict:
        return super().settings() | {"pool_size": self.pool_size, "min_trials": self.min_trials}

    def observe(self, results: Sequence[TrialResult]) -> None:
        super().observe(results)
        self._scored += sum(1 for result in results if is_scored(result))

    def propose(self, n: int) -> list[dict]:
        if self._scored != self._fitted_on and self.surrogate.fit(self.history):
            self._fitted_on = self._scored
        if not self.surrogate.ready or self.pool_size == 1:
            return super().propose(n)
        pools = [[self._candidate() for _ in range(self.pool_size)] for _ in range(n)]
        predicted = self.surrogate.predict([arch for pool in pools for arch in pool]).reshape(n, self.pool_size)
        taken = {result.arch_hash for result in self.history}
        chosen = []
        for pool, scores in zip(pools, predicted, strict=True):
            arch = self._best_new(pool, scores, taken)
            taken.add(self.space.arch_hash(arch))
            chosen.append(arch)
        return chosen

    def _candidate(self) -> dict:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        return self.space.mutate(self._tournament_winner().architecture, self.rng)

    def _best_new(self, pool: list[dict], scores: np.ndarray, taken: set[str]) -> dict:
        """The best-predicted candidate not in ``taken``; the best of all when every one is."""
        order = np.argsort(-scores, kind="stable")  # first of equals wins
        for i in order:
            if self.space.arch_hash(pool[int(i)]) not in taken:
                return pool[int(i)]
        return pool[int(order[0])]
