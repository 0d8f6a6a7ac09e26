"""One search's trials trained by many workers at once: ``run_search`` cut into steps that any
process, on any machine, can take, with all state in values the caller stores.

- ``plan_trials`` (the driver step): tell the strategy the trials reported since the last step,
  ask it for architectures to fill the free trial slots, reject those over an analytic limit, and
  hand back the trials to train plus a ``DriverState`` (JSON via ``to_dict``) for the next step.
  Strategies are asked while earlier trials are still training (asynchronous ask/tell): what is
  in flight counts as tried, so it is never proposed twice, and is told once reported.
- ``train_trial``: train one planned architecture fully, as ``run_search`` would (same seed, same
  limits, same weights file), and return its result.
- ``conclude_search``: once nothing is in flight, compress the front when asked and build the
  ``SearchResult`` (front, best, test metrics, recommendation) from every reported trial.

The caller moves trials between these steps (the web app does it with Celery tasks, keeping the
state in its database). Multi-fidelity brackets and one-shot supernets compare their candidates
together, so they run in ``run_search`` on one worker (``sequential_reason``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from nas_engine.config import SearchConfig, sequential_reason
from nas_engine.errors import NasError
from nas_engine.prepare import PreparedData
from nas_engine.results import Costs, SearchResult, StatusEvent, TrialResult, TrialStatus
from nas_engine.search import SearchLoop, check_search
from nas_engine.spaces import SearchSpace, make_space
from nas_engine.strategies import STRATEGIES
from nas_engine.strategies.base import Strategy
from nas_engine.trial_runner import MAX_CONSECUTIVE_FAILURES, Candidate, training_mode


@dataclasses.dataclass(frozen=True)
class PlannedTrial:
    """An architecture that passed the analytic limits, to be trained by ``train_trial``."""

    number: int
    architecture: dict
    arch_hash: str
    costs: Costs

    def to_dict(self) -> dict:
        """JSON types only."""
        return {
            "number": self.number,
            "architecture": self.architecture,
            "arch_hash": self.arch_hash,
            "costs": dataclasses.asdict(self.costs),
        }

    @classmethod
    def from_dict(cls, data: dict) -> PlannedTrial:
        return cls(
            number=int(data["number"]),
            architecture=dict(data["architecture"]),
            arch_hash=str(data["arch_hash"]),
            costs=Costs(**data["costs"]),
        )

    def failed(self, message: str) -> TrialResult:
        """This trial reported as failed without training (its worker could not run it)."""
        return TrialResult(
            number=self.number, status=TrialStatus.FAILED, architecture=self.architecture, arch_hash=self.arch_hash,
            metrics={}, costs=self.costs, train_seconds=0.0, message=message,
        )  # fmt: skip


@dataclasses.dataclass
class DriverState:
    """The strategy between driver steps, and the trial numbers it has been told."""

    strategy: Strategy
    told: set[int] = dataclasses.field(default_factory=set)

    @classmethod
    def new(cls, config: SearchConfig, space: SearchSpace, warm_start: Sequence[TrialResult] = ()) -> DriverState:
        """A fresh strategy; ``warm_start`` trials (of an earlier search, see ``run_search``) are told first."""
        strategy = STRATEGIES[config.strategy](space=space, seed=config.seed, objectives=config.objectives)
        if warm_start:
            strategy.tell(sorted(warm_start, key=lambda trial: trial.number))
        return cls(strategy=strategy)

    def to_dict(self) -> dict:
        """JSON types only: the strategy's replay log (``Strategy.state_dict``) and the told numbers."""
        return {"strategy": self.strategy.state_dict(), "told": sorted(self.told)}

    @classmethod
    def from_dict(cls, state: dict, *, space: SearchSpace) -> DriverState:
        """Rebuild a saved state (replaying the strategy's asks and tells from its seed).

        Raises:
            ValueError: The state is not one ``to_dict`` made for a known strategy.
        """
        saved = state.get("strategy") or {}
        name = saved.get("strategy")
        if name not in STRATEGIES:
            raise ValueError(f"The saved driver state names no known strategy ({name!r}).")
        return cls(strategy=STRATEGIES[name].from_state_dict(saved, space=space), told=set(state.get("told", ())))


@dataclasses.dataclass
class Plan:
    """What one driver step decided."""

    trials: list[PlannedTrial]  # to train now
    rejected: list[TrialResult]  # over an analytic limit: reported now, never trained
    state: DriverState  # for the next step
    exhausted: bool  # the strategy keeps proposing what was tried: nothing new is left
    out_of_budget: bool  # no time left, or max_trials trained or in flight

    @property
    def done(self) -> bool:
        """No more trials will be planned: the search ends once those in flight report."""
        return self.exhausted or self.out_of_budget


def plan_trials(
    config: SearchConfig,
    data: PreparedData,
    *,
    reported: Sequence[TrialResult],
    in_flight: Sequence[PlannedTrial],
    slots: int,
    seconds_left: float,
    state: DriverState | None = None,
    warm_start: Sequence[TrialResult] = (),
) -> Plan:
    """One driver step: up to ``slots - len(in_flight)`` new trials for free workers.

    Args:
        config: What to search for (``sequential_reason(config)`` must be "").
        data: Output of ``prepare_data`` (the same on every step and worker).
        reported: Every trial of this search reported so far, in any order.
        in_flight: Trials planned earlier and not reported yet.
        slots: Trials that may train at once.
        seconds_left: Of the search budget; none left plans nothing.
        state: The previous step's ``Plan.state`` (None on the first step).
        warm_start: Trials of an earlier search to tell a new strategy first (first step only).

    Raises:
        NasError: ``MAX_CONSECUTIVE_FAILURES`` trials in a row failed.
        ConstraintError: No architecture can meet the limits, or ``MAX_CONSECUTIVE_REJECTIONS``
            proposals in a row broke them.
        ValueError: ``slots`` is below 1, or the config needs ``run_search``.
    """
    reason = sequential_reason(config)
    if reason:
        raise ValueError(f"This search cannot spread its trials: {reason}; run it with run_search.")
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ValueError(f"slots must be a whole number of 1 or more; got {slots!r}.")
    _check_failures(reported)
    space = check_search(config, data, resumed=state is not None)
    state = state or DriverState.new(config, space, warm_start)
    new = sorted((t for t in reported if t.number not in state.told), key=lambda trial: trial.number)
    if new:
        state.strategy.tell(new)
        state.told.update(trial.number for trial in new)
    rejected: list[TrialResult] = []
    loop = SearchLoop(config, data, space, on_trial=rejected.append, seconds_left=seconds_left, strategy=state.strategy)
    loop.adopt(reported, [(trial.number, trial.architecture) for trial in in_flight])
    wanted = slots - len(in_flight)
    if config.max_trials is not None:
        wanted = min(wanted, config.max_trials - loop.trained)
    candidates = loop.propose(wanted) if wanted > 0 and not loop.out_of_budget() else []
    state.told.update(trial.number for trial in rejected)  # record() told the strategy
    return Plan(
        trials=[PlannedTrial(c.number, c.arch, space.arch_hash(c.arch), c.costs) for c in candidates],
        rejected=rejected,
        state=state,
        exhausted=loop.exhausted,
        out_of_budget=loop.out_of_budget(),
    )


def train_trial(
    config: SearchConfig,
    data: PreparedData,
    trial: PlannedTrial,
    *,
    seconds_left: float,
    trial_seconds: float,
    artifacts_dir: str | Path | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrialResult | None:
    """Train one planned trial fully, as ``run_search`` trains one (seeded by its number, stopped
    at ``trial_seconds`` of training or when the budget's ``seconds_left`` run out, weights saved
    as ``trial_{number}.pt`` in ``artifacts_dir``).

    Returns:
        The result (completed, rejected on latency, or failed), or None when it was cancelled, or
        the budget ran out before its first epoch: nothing to report.
    """
    space = make_space(config.space, n_inputs=data.n_features, image_shape=data.image_shape, strategy=config.strategy)
    results: list[TrialResult] = []
    with training_mode():
        loop = SearchLoop(
            config, data, space, on_trial=results.append, should_cancel=should_cancel, artifacts_dir=artifacts_dir,
            seconds_left=seconds_left, trial_seconds=trial_seconds,
        )  # fmt: skip
        candidate = Candidate(number=trial.number, arch=trial.architecture, costs=trial.costs)
        loop.run_bracket([candidate], first_rung=len(loop.rungs) - 1)
    return results[0] if results else None


def conclude_search(
    config: SearchConfig,
    data: PreparedData,
    trials: Sequence[TrialResult],
    *,
    elapsed_seconds: float,
    cancelled: bool = False,
    artifacts_dir: str | Path | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
    on_status: Callable[[StatusEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> SearchResult:
    """The result of a search whose trials have all reported: the compressed variants of its front
    first when ``config.compress`` (reported to ``on_trial``), then front, best, test metrics and
    recommendation, as ``run_search`` returns them."""
    space = make_space(config.space, n_inputs=data.n_features, image_shape=data.image_shape, strategy=config.strategy)
    with training_mode():
        loop = SearchLoop(
            config, data, space, on_trial=on_trial, on_status=on_status, should_cancel=should_cancel,
            artifacts_dir=artifacts_dir, elapsed_before=float(elapsed_seconds), seconds_left=0.0, cancelled=cancelled,
        )  # fmt: skip
        return loop.build_result_from(trials)


def _check_failures(reported: Sequence[TrialResult]) -> None:
    """Stop a search whose latest ``MAX_CONSECUTIVE_FAILURES`` trained trials all failed (as
    ``run_search`` does), with the last error."""
    trained = [t for t in sorted(reported, key=lambda trial: trial.number) if t.status is not TrialStatus.REJECTED]
    latest = trained[-MAX_CONSECUTIVE_FAILURES:]
    if len(latest) == MAX_CONSECUTIVE_FAILURES and all(t.status is TrialStatus.FAILED for t in latest):
        raise NasError(f"{MAX_CONSECUTIVE_FAILURES} trials failed in a row; last error: {latest[-1].message}")
