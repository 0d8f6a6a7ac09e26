"""A REINFORCE controller in the spirit of Zoph & Le 2017: a policy over the space's decisions,
trained by policy gradient on the validation score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas_engine.results import TrialResult, require_score
from nas_engine.runtime import softmax
from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies.base import Strategy, is_scored


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ReinforceStrategy(Strategy):
    """Samples every decision from its own softmax and nudges the logits toward decisions that
    scored above the recent average.

    Zoph & Le used an RNN controller; with a few hundred trials at most, independent softmaxes
    (one per decision) learn as much and need no deep-learning library. The reward is the score
    clipped to [-1, 1] (accuracy is in [0, 1]; an R² below -1 says nothing more). Rejected and
    failed trials get the lowest reward seen so far (at most 0), so the policy learns to avoid
    them. The advantage is the reward minus an exponential moving average of past rewards,
    divided by a moving average of its own size: validation scores of real architectures often
    differ by a hundredth, and unscaled such a signal would barely move the policy (on the toy
    problem of the tests, unscaled REINFORCE did no better than random search). The scaled
    advantage stays within ±1/sqrt(1 - baseline_decay).

    Args:
        space: The search space to propose from.
        seed: Seed of the strategy's random generator.
        objectives: Kept for a uniform interface; only the score is used.
        learning_rate: Step size of the policy gradient, above 0.
        baseline_decay: Weight of the past in the moving-average baseline, in [0, 1).

    Raises:
        ValueError: A setting is out of range.
    """

    name = "reinforce"
    label = "Reinforcement learning (REINFORCE)"
    description = (
        "A controller learns, trial by trial, which choices earn higher scores and samples them "
        "more often (policy gradient, after Zoph & Le)."
    )

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        learning_rate: float = 0.1,
        baseline_decay: float = 0.9,
    ) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        if not _is_number(learning_rate) or not learning_rate > 0:
            raise ValueError(f"learning_rate must be a number above 0; got {learning_rate!r}.")
        if not _is_number(baseline_decay) or not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be a number from 0 up to (not including) 1; got {baseline_decay!r}.")
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.options = space.decisions()
        self.logits = {name: np.zeros(len(options)) for name, options in self.options.items()}
        self.baseline: float | None = None
        self.lowest_reward = 0.0
        self.spread = 0.0  # moving average of the squared advantage: rewards in units of their spread

    def settings(self) -> dict:
        return super().settings() | {"learning_rate": self.learning_rate, "baseline_decay": self.baseline_decay}

    def propose(self, n: int) -> list[dict]:
        archs = []
        for _ in range(n):
            choices = {}
            for name, options in self.options.items():
                index = self.rng.choice(len(options), p=softmax(self.logits[name]))
                choices[name] = options[int(index)]
            archs.append(self.space.from_decisions(choices))
        return archs

    def observe(self, results: Sequence[TrialResult]) -> None:
        for result in results:
            if is_scored(result):
                reward = float(np.clip(require_score(result), -1.0, 1.0))
                self.lowest_reward = min(self.lowest_reward, reward)
            else:
                reward = self.lowest_reward
            self._update(self.space.to_decisions(result.architecture), reward)

    def _update(self, choices: dict, reward: float) -> None:
        if self.baseline is None:
            self.baseline = reward  # the first trial only sets the baseline
        delta = reward - self.baseline
        self.spread = self.baseline_decay * self.spread + (1 - self.baseline_decay) * delta**2
        advantage = delta / np.sqrt(self.spread) if self.spread > 0 else 0.0
        for name, options in self.options.items():
            # d log softmax(logits)[i] / d logits = onehot(i) - softmax(logits)
            gradient = -softmax(self.logits[name])
            gradient[options.index(choices[name])] += 1.0
            self.logits[name] += self.learning_rate * advantage * gradient
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
