"""Regularized (aging) evolution, Real et al. 2019: tournament selection, mutation, oldest dies."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from nas_engine.results import TrialResult, require_score
from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies.base import Strategy, is_scored, whole_number


class AgingEvolutionStrategy(Strategy):
    """Evolves a population of the last ``population_size`` scored trials.

    Until the population is full every proposal is a random sample; after that each child is a
    mutation of the best of ``sample_size`` members drawn at random. The population is a FIFO of
    completed and pruned trials: the oldest dies, however good, which keeps the search from
    clinging to one lucky early trial (the "regularization" of the paper). Rejected and failed
    trials never enter it, so they can never be parents. Single-objective: it maximises the score.

    Args:
        space: The search space to propose from.
        seed: Seed of the strategy's random generator.
        objectives: Kept for a uniform interface; only the score is used.
        population_size: Number of trials alive at once (P in the paper), 2 or more.
        sample_size: Tournament size (S in the paper), from 1 to ``population_size``.

    Raises:
        ValueError: A setting is out of range.
    """

    name = "aging_evolution"
    label = "Regularized evolution"
    description = (
        "Mutates the best of a few recent architectures and retires the oldest (Real et al., 2019). "
        "Robust and simple; a good default for accuracy."
    )

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        population_size: int = 20,
        sample_size: int = 5,
    ) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        whole_number("population_size", population_size, minimum=2)
        if not isinstance(sample_size, int) or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be between 1 and population_size ({population_size}); got {sample_size!r}."
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[TrialResult] = deque(maxlen=population_size)

    def settings(self) -> dict:
        return super().settings() | {"population_size": self.population_size, "sample_size": self.sample_size}

    def propose(self, n: int) -> list[dict]:
        if len(self.population) < self.population_size:
            return [self.space.sample(self.rng) for _ in range(n)]
        return [self.space.mutate(self._tournament_winner().architecture, self.rng) for _ in range(n)]

    def _tournament_winner(self) -> TrialResult:
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        contestants = [self.population[int(i)] for i in picks]
        return max(contestants, key=require_score)  # first of equals wins

    def observe(self, results: Sequence[TrialResult]) -> None:
        self.population.extend(result for result in results if is_scored(result))
