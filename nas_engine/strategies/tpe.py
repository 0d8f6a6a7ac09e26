"""Tree-structured Parzen Estimator (Bergstra et al. 2011) through optuna's multivariate TPE."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies._optuna import OptunaStrategy
from nas_engine.strategies.base import whole_number


class TPEStrategy(OptunaStrategy):
    """Model-based search: proposes decisions that are likely under the good trials' density and
    unlikely under the others'. Single-objective: it maximises the score.

    Args:
        space: The search space to propose from.
        seed: Seed of the sampler.
        objectives: Kept for a uniform interface; only the score is optimised.
        n_startup_trials: Random proposals before the model is used, 1 or more.

    Raises:
        ValueError: A setting is out of range.
    """

    name = "tpe"
    label = "Bayesian optimisation (TPE)"
    description = (
        "Learns which choices go with good scores and proposes more of them (Tree-structured Parzen "
        "Estimator, via optuna). Sample-efficient when trials are slow."
    )

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        n_startup_trials: int = 10,
    ) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        self.n_startup_trials = whole_number("n_startup_trials", n_startup_trials, minimum=1)

    @property
    def optimised_objectives(self) -> tuple[str, ...]:
        return ("score",)

    def settings(self) -> dict:
        return super().settings() | {"n_startup_trials": self.n_startup_trials}

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        # multivariate: the decisions interact (units of layer 3 matter only with depth >= 3).
        return optuna.samplers.TPESampler(seed=self.seed, multivariate=True, n_startup_trials=self.n_startup_trials)
