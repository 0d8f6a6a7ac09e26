"""The state every part of a search shares (``LoopState``): its settings, data, space, strategy,
clock and budget, the trials so far, and how a trial is reported (``status``, ``record``, ``rank``,
``untrained``); also the analytic-limit check every part applies (``analytic_violation``).

``search.SearchLoop`` is made of parts that each subclass ``LoopState``: ``trial_runner.TrialRunner``,
``one_shot_phase.OneShotPhase``, ``compression_phase.CompressionPhase`` and
``search_result.ResultBuilder``."""

from __future__ import annotations

import math
import time
from pathlib import Path

from nas_engine.augment import augmentation_for
from nas_engine.config import ANALYTIC_LIMITS, SearchConfig, broken_limits
from nas_engine.fidelity import rung_epochs
from nas_engine.results import Costs, StatusEvent, TrialResult, TrialStatus, objective_vector
from nas_engine.strategies import STRATEGIES

# How a rejection names each analytic limit's cost (config.ANALYTIC_LIMITS, in its order).
_LIMIT_WORDS = {
    "max_params": "parameters",
    "max_flops": "FLOPs",
    "max_size_bytes": "bytes of weights",
    "max_memory_bytes": "bytes of peak inference memory",
}


def analytic_violation(costs: Costs, config: SearchConfig) -> str:
    """Why ``costs`` break an analytic limit (the first in ``ANALYTIC_LIMITS`` order), or ""."""
    for name in broken_limits(costs, config.analytic_limits()):
        cost = getattr(costs, ANALYTIC_LIMITS[name])
        return f"{cost:,} {_LIMIT_WORDS[name]} is above the limit of {getattr(config, name):,}."
    return ""


class LoopState:
    """State of one running search, and the reporting every part of it uses; built by ``SearchLoop``
    (``run_search``, and each step of a spread-out search in ``parallel``) from its arguments alone.

    Args:
        config, data, space: What to search, on what, among which architectures.
        on_trial, on_status, should_cancel, artifacts_dir: As ``run_search`` takes them.
        elapsed_before: Seconds earlier runs of this search spent (its deadline is what is left).
        trial_seconds: Training one model may take at most this long.
        warm_state: A supernet from an earlier search, for one-shot strategies.
        seconds_left: The deadline, from now, instead of the budget less ``elapsed_before`` (a
            driver step of a spread-out search knows what is left; 0 for its conclusion).
        strategy: The strategy to ask, instead of a new one (a driver step keeps its own across steps).
        cancelled: The search was cancelled before this part runs (its conclusion says so).
    """

    def __init__(
        self,
        config,
        data,
        space,
        *,
        on_trial=None,
        on_status=None,
        should_cancel=None,
        artifacts_dir=None,
        elapsed_before=0.0,
        trial_seconds=math.inf,
        warm_state=None,
        seconds_left=None,
        strategy=None,
        cancelled=False,
    ):
        self.max_epochs, self.patience = config.training_length(space)
        config = config.for_space(space)  # what the results record: the epochs the trials trained with
        self.config, self.data, self.space = config, data, space
        self.trial_seconds = float(trial_seconds)
        self.on_trial, self.on_status, self.should_cancel = on_trial, on_status, should_cancel
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self.augmentation = augmentation_for(config.augment, data.image_shape)
        if strategy is None:
            strategy = STRATEGIES[config.strategy](space=space, seed=config.seed, objectives=config.objectives)
        self.strategy = strategy
        min_epochs = min(config.min_epochs, self.max_epochs)  # only checked when fidelity is on
        self.rungs = rung_epochs(min_epochs=min_epochs, max_epochs=self.max_epochs, eta=config.eta)
        self.cv_folds = config.folds(len(data.X_train))
        self.portfolio = self._portfolio()  # fixed for the search: computed once, not per proposal
        self.start = time.monotonic()
        self.elapsed_before = float(elapsed_before)  # spent by earlier, interrupted runs of this search
        left = config.budget_seconds - self.elapsed_before if seconds_left is None else max(0.0, float(seconds_left))
        self.deadline = self.start + left
        self.trials: list[TrialResult] = []
        self.seen: set[str] = set()
        self.next_number = 0
        self.trained = 0  # architectures that passed the analytic checks (what max_trials counts)
        self.failures = self.rejections = 0  # in a row
        self.exhausted, self.cancelled = False, bool(cancelled)
        self.best: dict[TrialStatus, tuple[TrialResult, dict]] = {}  # per status: best trial and its weights
        self.warm_state = warm_state  # a supernet from an earlier search, for one-shot strategies
        self.one_shot_scores: dict[str, float] = {}  # arch hash -> score with the supernet's weights
        self.one_shot_notes: dict = {}

    def _portfolio(self) -> list[dict]:
        """The space's portfolio for this data, within the analytic limits (none when the strategy
        opts out). One that breaks a limit is left out, not proposed and rejected: the strategy
        would learn from a configuration the user ruled out, not from one of its own."""
        if not self.strategy.uses_portfolio:
            return []
        data = self.data
        rows = len(data.X_train) + (len(data.X_val) if self.cv_folds > 1 else 0)
        return [
            arch
            for arch in self.space.portfolio(rows=rows, task=data.task)
            if not analytic_violation(self.space.costs(arch, data.n_features, data.n_outputs), self.config)
        ]

    # --- reporting ---------------------------------------------------------------------------

    def validation_rows(self) -> int:
        """Rows behind each trial's score: all of train+validation under k-fold, else validation."""
        data = self.data
        return len(data.X_train) + len(data.X_val) if self.cv_folds > 1 else len(data.X_val)

    def progress(self) -> float:
        by_time = self.elapsed() / self.config.budget_seconds
        by_trials = self.trained / self.config.max_trials if self.config.max_trials else 0.0
        return min(1.0, max(by_time, by_trials))

    def elapsed(self) -> float:
        """Seconds this search has run, earlier interrupted runs included."""
        return self.elapsed_before + time.monotonic() - self.start

    def status(self, status: str, message: str = "", progress: float | None = None) -> None:
        if self.on_status is not None:
            value = self.progress() if progress is None else progress
            self.on_status(StatusEvent(status=status, progress=value, message=message))

    def record(self, result: TrialResult, *, tell: bool = True) -> None:
        """Keep and report a trial; the strategy learns from it unless ``tell`` is False (compressed
        variants: not architectures of the space it proposes from)."""
        self.trials.append(result)
        if self.on_trial is not None:
            self.on_trial(result)
        if tell:
            self.strategy.tell([result])

    def rank(self, trial: TrialResult) -> tuple[float, ...]:
        # Highest score, ties broken by the costs in objective order: the top trial is on the front.
        vector = objective_vector(trial, self.config.objectives)
        if vector is None:
            raise ValueError(f"Trial {trial.number} has no score or lacks a cost to rank it by.")
        return tuple(-value for value in vector)

    def untrained(self, status: TrialStatus, arch: dict, number: int, costs: Costs, message: str) -> TrialResult:
        """A trial that ends without a trained model: rejected by a limit, or failed."""
        return TrialResult(
            number=number,
            status=status,
            architecture=arch,
            arch_hash=self.space.arch_hash(arch),
            metrics={},
            costs=costs,
            train_seconds=0.0,
            message=message,
        )

    def latency_violation(self, costs: Costs) -> str:
        limit, latency = self.config.max_latency_ms, costs.latency_ms
        if limit is None or latency is None or latency <= limit:
            return ""
        return f"Measured latency {latency:.3f} ms is above the limit of {limit:g} ms."
