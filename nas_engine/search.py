"""The search loop: ask the strategy for a bracket of architectures, check constraints, train them
rung by rung (one full rung when multi-fidelity is off), report each once its fate is known.

``SearchLoop`` composes its parts: ``loop_state.LoopState`` (state and reporting),
``trial_runner.TrialRunner``, ``one_shot_phase.OneShotPhase``, ``compression_phase.CompressionPhase``
and ``search_result.ResultBuilder``; this module keeps the orchestration (``run``), proposing
(``propose``, ``admit``, the portfolio), resuming, and ``run_search`` / ``check_search``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from nas_engine.compression_phase import CompressionPhase
from nas_engine.config import SearchConfig
from nas_engine.errors import ConstraintError
from nas_engine.estimate import DataShape, check_grid, check_limits
from nas_engine.fidelity import MAX_BRACKET_SIZE, brackets
from nas_engine.loop_state import analytic_violation
from nas_engine.one_shot_phase import OneShotPhase, load_supernet
from nas_engine.prepare import PreparedData
from nas_engine.results import SearchResult, StatusEvent, TrialResult, TrialStatus
from nas_engine.search_result import ResultBuilder
from nas_engine.spaces import SearchSpace, make_space
from nas_engine.trial_runner import Candidate, TrialRunner, training_mode, trial_time_limit

MAX_CONSECUTIVE_REJECTIONS = 200
MAX_DUPLICATE_DRAWS = 200  # this many repeats in a row means the space is exhausted


def _was_trained(trial: TrialResult) -> bool:
    """Whether a trial passed the analytic limits, which is what ``max_trials`` counts: every trial
    but those rejected before training (the only ones without metrics among the rejected)."""
    return not (trial.status is TrialStatus.REJECTED and not trial.metrics)


def _check_resume(resume_from: Sequence[TrialResult], elapsed_before: float) -> None:
    numbers = [trial.number for trial in resume_from]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"The trials to resume from repeat a trial number: {sorted(numbers)}.")
    if isinstance(elapsed_before, bool) or not isinstance(elapsed_before, int | float) or not elapsed_before >= 0:
        raise ValueError(f"elapsed_before must be the seconds already spent (0 or more); got {elapsed_before!r}.")
    if not math.isfinite(elapsed_before):
        raise ValueError(f"elapsed_before must be a finite number of seconds; got {elapsed_before!r}.")


class SearchLoop(TrialRunner, OneShotPhase, CompressionPhase, ResultBuilder):
    """One running search; exists so run_search reads as the steps it takes. Its state and parts
    come from the classes it is made of; here are resuming, proposing and ``run``."""

    def warm_start(self, trials: Sequence[TrialResult]) -> None:
        """Tell the strategy what an earlier search on data of the same schema found, before it
        proposes: prior knowledge only (those trials are not results of this search, do not count
        toward ``max_trials`` and their architectures may be tried again on this data)."""
        if trials:
            self.strategy.tell(sorted(trials, key=lambda trial: trial.number))

    def resume(self, kept: Sequence[TrialResult]) -> None:
        """Take over the trials an earlier run of this search reported: they stay in the results (in
        the order given), their architectures count as tried, the trained ones count toward
        ``max_trials``, numbering continues after the highest, and the strategy learns from them
        (in number order) before it proposes. They are not reported to ``on_trial`` again."""
        self.trials.extend(kept)
        self.adopt(kept)
        if kept:
            self.strategy.tell(sorted(kept, key=lambda trial: trial.number))

    def adopt(self, trials: Sequence[TrialResult], in_flight: Sequence[tuple[int, dict]] = ()) -> None:
        """Count ``trials`` (reported) and ``in_flight`` (number, architecture: being trained
        elsewhere) as tried: their architectures are not proposed again, numbering continues after
        the highest, and the trained ones and those in flight count toward ``max_trials``. The
        strategy is not told anything."""
        self.seen.update(trial.arch_hash for trial in trials)
        self.seen.update(self.space.arch_hash(arch) for _, arch in in_flight)
        numbers = [trial.number for trial in trials] + [number for number, _ in in_flight]
        self.next_number = max(self.next_number, max(numbers, default=-1) + 1)
        self.trained = sum(_was_trained(trial) for trial in trials) + len(in_flight)

    # --- proposing ---------------------------------------------------------------------------

    def out_of_budget(self) -> bool:
        return time.monotonic() >= self.deadline or (
            self.config.max_trials is not None and self.trained >= self.config.max_trials
        )

    def propose(self, n: int) -> list[Candidate]:
        """Ask the strategy for up to ``n`` new architectures that pass the analytic limits.

        Duplicates are skipped; rejected ones are reported at once. Fewer than ``n`` come back
        when the budget runs out or the space looks exhausted (``self.exhausted``).
        """
        candidates: list[Candidate] = []
        duplicates = 0
        while len(candidates) < n and not self.out_of_budget():
            for arch in self.portfolio_next(n - len(candidates)) or self.strategy.ask(n - len(candidates)):
                arch_hash = self.space.arch_hash(arch)
                if arch_hash in self.seen:
                    duplicates += 1
                    if duplicates >= MAX_DUPLICATE_DRAWS:
                        self.exhausted = True
                        return candidates
                    continue
                duplicates = 0
                self.seen.add(arch_hash)
                number, self.next_number = self.next_number, self.next_number + 1
                candidate = self.admit(number, arch)
                if candidate is not None:
                    candidates.append(candidate)
        return candidates

    def portfolio_next(self, n: int) -> list[dict]:
        """Up to ``n`` architectures of the portfolio not tried yet (in its order). The strategy
        learns from them like from its own proposals."""
        return [arch for arch in self.portfolio if self.space.arch_hash(arch) not in self.seen][:n]

    def admit(self, number: int, arch: dict) -> Candidate | None:
        """Reject ``arch`` if it breaks an analytic limit, else make it a candidate."""
        data = self.data
        costs = self.space.costs(arch, data.n_features, data.n_outputs)
        violation = analytic_violation(costs, self.config)
        if violation:
            self.rejections += 1
            if self.rejections >= MAX_CONSECUTIVE_REJECTIONS:
                raise ConstraintError(
                    f"{self.rejections} architectures in a row broke the limits (last: {violation}) "
                    "Loosen max_params, max_flops, max_size_bytes or max_memory_bytes."
                )
            self.record(self.untrained(TrialStatus.REJECTED, arch, number, costs, violation))
            return None
        self.rejections = 0
        self.trained += 1
        return Candidate(number=number, arch=arch, costs=costs)

    def run(self) -> SearchResult:
        config = self.config
        message = f"Search resumed with {len(self.trials)} earlier trials." if self.trials else "Search started."
        self.status("running", message, progress=0.0 if not self.trials else None)
        self.run_one_shot()
        for bracket in brackets(config.fidelity, n_rungs=len(self.rungs), eta=config.eta):
            if self.out_of_budget() or self.exhausted or self.cancelled:
                break
            if self.should_cancel is not None and self.should_cancel():
                self.cancelled = True
                break
            size = min(bracket.size, MAX_BRACKET_SIZE)
            if config.max_trials is not None:
                size = min(size, config.max_trials - self.trained)
            candidates = self.propose(size)
            if candidates and not self.run_bracket(candidates, bracket.first_rung):
                break
        self.compress_front()
        return self.build_result()

    def build_result_from(self, trials: Sequence[TrialResult]) -> SearchResult:
        """The result of a search whose ``trials`` were trained elsewhere and have all reported (a
        spread-out search's): they become this loop's trials, then its front is compressed (when
        ``config.compress``) and the result built, as ``run`` ends (``build_result``)."""
        ordered = sorted(trials, key=lambda trial: trial.number)
        self.trials.extend(ordered)
        self.adopt(ordered)
        self.compress_front()
        return self.build_result()


def run_search(
    config: SearchConfig,
    data: PreparedData,
    *,
    on_trial: Callable[[TrialResult], None] | None = None,
    on_status: Callable[[StatusEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    artifacts_dir: str | Path | None = None,
    resume_from: Sequence[TrialResult] = (),
    elapsed_before: float = 0.0,
    trial_seconds: float | None = None,
    warm_start: Sequence[TrialResult] = (),
    warm_supernet: str | Path | None = None,
) -> SearchResult:
    """Search architectures until the budget, the trial limit or a cancel request stops it.

    Architectures breaking ``max_params``/``max_flops``/``max_size_bytes``/``max_memory_bytes`` are rejected before
    training; ``max_latency_ms`` is checked after training. With ``config.fidelity`` set, many
    architectures train for a few epochs and only the best continue (see ``fidelity``); each is
    reported once, completed or pruned. Each trial seeds torch with ``config.seed + number``.
    Training runs on one torch thread, with deterministic algorithms (both restored afterwards).

    Args:
        config: What to search for.
        data: Output of ``prepare_data``.
        on_trial: Called with every trial result, pruned, rejected and failed ones included.
        on_status: Called with progress events (running, finished, cancelled, failed).
        should_cancel: Polled between brackets and epochs; return True to stop.
        artifacts_dir: Where to save ``trial_{number}.pt`` weights of completed and pruned trials.
        resume_from: Trials an earlier, interrupted run of this search already reported (e.g.
            rebuilt with ``TrialResult.from_dict``); see "Resuming" below.
        elapsed_before: Seconds the earlier runs already used; the budget left is
            ``config.budget_seconds - elapsed_before`` (none left: the search finishes at once).
        trial_seconds: Most seconds of training one model may take (over all its rungs); a model
            still training then is stopped and reported as failed, and the search goes on. None:
            ``trial_time_limit(config.budget_seconds)``; ``math.inf``: no limit but the budget.
        warm_start: Trials of an earlier search on data of the same schema (same columns): the
            strategy learns from them before it proposes (see ``SearchLoop.warm_start``); they are not
            part of this search's results.
        warm_supernet: The ``supernet.pt`` an earlier one-shot search of the same method left in
            its artifacts folder: the supernet starts from it (and trains for fewer steps). A
            file that is missing, unreadable or of another method or data shape is ignored (with
            a warning): the supernet then trains from scratch.

    Resuming:
        The kept trials come first in ``SearchResult.trials``, unchanged, and take part in the
        front, ``best`` and ``recommended`` like any trial, but are not passed to ``on_trial``
        again. New trials are numbered after the highest kept number, architectures already tried
        are skipped, and ``max_trials`` counts the kept trained trials (a 10-trial search stopped
        after 4 runs 6 more). The strategy is told the kept trials, in number order, before it
        proposes; its proposals then differ from those of an uninterrupted run (its random
        generator did not make the kept proposals), but no work is repeated and nothing is lost.
        Multi-fidelity brackets start afresh for the new trials. When the best trial is a kept
        one, its test metrics come from its ``weights_path``; if that file is gone, the best new
        trial's model stands in for ``test_metrics`` (a warning is logged).
        ``SearchResult.elapsed_seconds`` includes ``elapsed_before``.

    Returns:
        All trials, the Pareto front over ``config.objectives`` and the best trial.

    Raises:
        ConstraintError: No architecture in the space can meet the limits, or a grid search cannot
            try its whole grid within the budget or ``max_trials`` (``estimate.GridTooLarge``).
        NasError: Too many trials failed in a row.
        ValueError: ``resume_from`` repeats a trial number, ``elapsed_before`` is negative, or
            ``trial_seconds`` is not above 0.
    """
    _check_resume(resume_from, elapsed_before)
    if trial_seconds is None:
        trial_seconds = trial_time_limit(config.budget_seconds)
    if isinstance(trial_seconds, bool) or not isinstance(trial_seconds, int | float) or not trial_seconds > 0:
        raise ValueError(f"trial_seconds must be a number of seconds above 0; got {trial_seconds!r}.")
    space = check_search(config, data, resumed=bool(resume_from))
    with training_mode():
        loop = SearchLoop(
            config,
            data,
            space,
            on_trial=on_trial,
            on_status=on_status,
            should_cancel=should_cancel,
            artifacts_dir=artifacts_dir,
            elapsed_before=elapsed_before,
            trial_seconds=trial_seconds,
            warm_state=load_supernet(warm_supernet),
        )
        loop.warm_start(list(warm_start))
        loop.resume(list(resume_from))
        return loop.run()


def check_search(config: SearchConfig, data: PreparedData, *, resumed: bool = False) -> SearchSpace:
    """The search space of ``config`` on ``data``, once the limits are known to be reachable.

    Raises:
        ConstraintError: No architecture can meet the limits, or a grid search cannot try its whole
            grid within the budget (not checked when ``resumed``: it passed with the budget it then had).
    """
    space = make_space(config.space, n_inputs=data.n_features, image_shape=data.image_shape, strategy=config.strategy)
    shape = DataShape(
        rows=data.source_rows, n_inputs=data.n_features, n_outputs=data.n_outputs, image_shape=data.image_shape
    )
    check_limits(space, shape, **config.analytic_limits())
    if not resumed:
        check_grid(config, shape)
    return space
