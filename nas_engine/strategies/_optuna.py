"""Plumbing shared by the strategies that delegate to an optuna sampler (TPE, NSGA-II) through
optuna's ask-and-tell interface, seeing the space as its flat categorical decisions."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution

from nas_engine.results import TrialResult, objective_vector
from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies.base import Strategy, is_scored

# Name of the single optuna constraint: 1.0 for a rejected or failed trial, 0.0 otherwise.
INFEASIBLE = "infeasible"

Outcome = tuple[list[float], float]  # (values to minimise, constraint violation)


class OptunaStrategy(Strategy):
    """A strategy whose proposals come from an optuna study held in memory.

    Each decision of ``space.decisions()`` is a ``CategoricalDistribution``; a proposal is
    ``space.from_decisions(trial.params)``. Every objective is told as a value to minimise
    (``results.objective_vector``).

    Rejected and failed trials are told as *infeasible* (a violated optuna constraint) rather than
    as optuna FAIL: both TPE and NSGA-II ignore failed trials, so they would keep proposing
    architectures over the user's limits, whereas infeasible trials rank below every feasible one.
    Their objective values are placeholders (score 0, the known costs) that the samplers never
    compare with feasible ones.

    Bookkeeping of ask before tell: proposals wait in ``_pending`` under their ``arch_hash`` until
    a result with that hash arrives, which answers every proposal waiting under it (the runner
    evaluates an architecture once and skips its repeats). A proposal that repeats an architecture
    already told is answered at once with the known outcome, since the runner will skip it without
    telling. A result with no proposal waiting (a runner's substitute, or a second fidelity of an
    architecture already told) is added to the study as a new finished trial, so the sampler
    learns from it too. Proposals never told stay running in the study, which both samplers ignore.

    Subclasses provide the sampler (``make_sampler``) and may narrow ``optimised_objectives``.
    """

    def __init__(self, *, space: SearchSpace, seed: int = 0, objectives: Sequence[str] = ("score", "params")) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._distributions: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(options) for name, options in space.decisions().items()
        }
        self._pending: dict[str, list[optuna.Trial]] = {}
        self._told: dict[str, Outcome] = {}
        self._study: optuna.Study | None = None

    @property
    def optimised_objectives(self) -> tuple[str, ...]:
        """The objectives the optuna study optimises (all of ``objectives`` unless narrowed)."""
        return self.objectives

    @abstractmethod
    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """Return the optuna sampler, seeded with ``self.seed``."""

    @property
    def study(self) -> optuna.Study:
        # Built on first use: subclasses set their own settings after Strategy.__init__.
        if self._study is None:
            self._study = optuna.create_study(
                directions=["minimize"] * len(self.optimised_objectives),
                sampler=self.make_sampler(),
                storage=optuna.storages.InMemoryStorage(),
            )
        return self._study

    def propose(self, n: int) -> list[dict]:
        archs = []
        for _ in range(n):
            trial = self.study.ask(self._distributions)
            arch = self.space.from_decisions(trial.params)
            key = self.space.arch_hash(arch)
            if key in self._told:
                self._finish(trial, self._told[key])
            else:
                self._pending.setdefault(key, []).append(trial)
            archs.append(arch)
        return archs

    def observe(self, results: Sequence[TrialResult]) -> None:
        for result in results:
            key = self.space.arch_hash(result.architecture)
            outcome = self._outcome(result)
            self._told[key] = outcome
            waiting = self._pending.pop(key, [])
            for trial in waiting:  # a repeat within one batch is answered by the same result
                self._finish(trial, outcome)
            if not waiting:
                self._add(result, outcome)

    def _outcome(self, result: TrialResult) -> Outcome:
        vector = objective_vector(result, self.optimised_objectives) if is_scored(result) else None
        if vector is not None:
            return list(vector), 0.0
        placeholder = [
            0.0 if name == "score" else float(getattr(result.costs, name) or 0.0) for name in self.optimised_objectives
        ]
        return placeholder, 1.0

    def _finish(self, trial: optuna.Trial, outcome: Outcome) -> None:
        values, violation = outcome
        trial.set_constraint(INFEASIBLE, violation)
        self.study.tell(trial, values)

    def _add(self, result: TrialResult, outcome: Outcome) -> None:
        values, violation = outcome
        frozen = optuna.trial.create_trial(
            params=self.space.to_decisions(result.architecture),
            distributions=self._distributions,
            values=values,
            constraints={INFEASIBLE: violation},
        )
        self.study.add_trial(frozen)
