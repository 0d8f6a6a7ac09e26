"""The search loop: ask the strategy for a bracket of architectures, check constraints, train them
rung by rung (one full rung when multi-fidelity is off), report each once its fate is known."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from nas_engine.augment import augmentation_for
from nas_engine.config import ANALYTIC_LIMITS, SearchConfig, broken_limits
from nas_engine.errors import ConstraintError, NasError
from nas_engine.estimate import DataShape, check_grid, check_limits
from nas_engine.evaluator import (
    CrossValidatedTrainer,
    Trainer,
    TrainSettings,
    evaluate_model,
    measure_latency_ms,
    one_thread,
)
from nas_engine.fidelity import MAX_BRACKET_SIZE, brackets, rung_epochs, survivors, training_rows
from nas_engine.pareto import pareto_front_nd
from nas_engine.prepare import PreparedData
from nas_engine.results import (
    Costs,
    SearchResult,
    StatusEvent,
    TrialResult,
    TrialStatus,
    objective_vector,
    out_of_fold_path,
)
from nas_engine.selection import recommend
from nas_engine.spaces import SearchSpace, make_space, space_for_architecture
from nas_engine.strategies import STRATEGIES, OneShotStrategy

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 5
MAX_CONSECUTIVE_REJECTIONS = 200
MAX_DUPLICATE_DRAWS = 200  # this many repeats in a row means the space is exhausted
# One model may train for a quarter of the budget (at least 30 s): a search should compare several
# models, so a runaway one (huge, or slow on this data) is stopped and the search goes on.
TRIAL_BUDGET_SHARE = 0.25
MIN_TRIAL_SECONDS = 30.0
TIMED_OUT_PREFIX = "stopped after"
SUPERNET_EPOCHS_PER_TRIAL_EPOCH = 4  # the supernet trains for this many times a trial's max_epochs
SUPERNET_FILE = "supernet.pt"
COMPRESSED_PARENTS = 3  # front trials, best scores first, whose compressed variants are made
ONE_SHOT_REPORT_SECONDS = 2.0  # a supernet reports progress every epoch; status events go out at most this often
TIMED_OUT = TIMED_OUT_PREFIX + " {seconds:g} s: longer than this search allows per model"


def trial_time_limit(budget_seconds: float) -> float:
    """Seconds of training one model may take in a search with this budget (see TRIAL_BUDGET_SHARE)."""
    return max(MIN_TRIAL_SECONDS, budget_seconds * TRIAL_BUDGET_SHARE)


# How a rejection names each analytic limit's cost (config.ANALYTIC_LIMITS, in its order).
_LIMIT_WORDS = {
    "max_params": "parameters",
    "max_flops": "FLOPs",
    "max_size_bytes": "bytes of weights",
    "max_memory_bytes": "bytes of peak inference memory",
}


def _analytic_violation(costs: Costs, config: SearchConfig) -> str:
    """Why ``costs`` break an analytic limit (the first in ``ANALYTIC_LIMITS`` order), or ""."""
    for name in broken_limits(costs, config.analytic_limits()):
        cost = getattr(costs, ANALYTIC_LIMITS[name])
        return f"{cost:,} {_LIMIT_WORDS[name]} is above the limit of {getattr(config, name):,}."
    return ""


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


@dataclasses.dataclass
class Candidate:
    """An architecture being trained in a bracket, until it is reported."""

    number: int
    arch: dict
    costs: Costs
    trainer: Trainer | CrossValidatedTrainer | None = (
        None  # built when it first trains, so a big bracket costs no memory upfront
    )
    epochs_budget: int = 0  # the highest rung it was trained for
    cut_short: bool = False  # stopped at the per-model time limit, its best epoch kept

    @property
    def built_trainer(self) -> Trainer | CrossValidatedTrainer:
        """The trainer, once ``SearchLoop.trainer`` has built it (every candidate that trained)."""
        if self.trainer is None:
            raise RuntimeError(f"Candidate {self.number} has not been trained.")
        return self.trainer


class SearchLoop:
    """State of one running search; exists so run_search reads as the steps it takes."""

    def __init__(
        self,
        config,
        data,
        space,
        on_trial,
        on_status,
        should_cancel,
        artifacts_dir,
        *,
        elapsed_before,
        trial_seconds,
        warm_state=None,
    ):
        self.max_epochs, self.patience = config.training_length(space)
        config = config.for_space(space)  # what the results record: the epochs the trials trained with
        self.config, self.data, self.space = config, data, space
        self.trial_seconds = float(trial_seconds)
        self.on_trial, self.on_status, self.should_cancel = on_trial, on_status, should_cancel
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self.augmentation = augmentation_for(config.augment, data.image_shape)
        self.strategy = STRATEGIES[config.strategy](space=space, seed=config.seed, objectives=config.objectives)
        min_epochs = min(config.min_epochs, self.max_epochs)  # only checked when fidelity is on
        self.rungs = rung_epochs(min_epochs=min_epochs, max_epochs=self.max_epochs, eta=config.eta)
        self.cv_folds = config.folds(len(data.X_train))
        self.portfolio = self._portfolio()  # fixed for the search: computed once, not per proposal
        self.start = time.monotonic()
        self.elapsed_before = float(elapsed_before)  # spent by earlier, interrupted runs of this search
        self.deadline = self.start + config.budget_seconds - self.elapsed_before
        self.trials: list[TrialResult] = []
        self.seen: set[str] = set()
        self.next_number = 0
        self.trained = 0  # architectures that passed the analytic checks (what max_trials counts)
        self.failures = self.rejections = 0  # in a row
        self.exhausted = self.cancelled = False
        self.best: dict[TrialStatus, tuple[TrialResult, dict]] = {}  # per status: best trial and its weights
        self.warm_state = warm_state  # a supernet from an earlier search, for one-shot strategies
        self.one_shot_scores: dict[str, float] = {}  # arch hash -> score with the supernet's weights
        self.one_shot_notes: dict = {}

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

    def fail(self, number: int, arch: dict, costs: Costs, exc: Exception) -> None:
        """Record a broken trial; a broken trial must not end the search unless they keep coming."""
        logger.error("Trial %d failed", number, exc_info=exc)
        self.failures += 1
        result = self.untrained(TrialStatus.FAILED, arch, number, costs, f"{type(exc).__name__}: {exc}")
        self.record(result)
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            message = f"{self.failures} trials failed in a row; last error: {result.message}"
            self.status("failed", message)
            raise NasError(message)
        self.status("running", f"Trial {number} failed.")

    def time_out(self, candidate: Candidate) -> None:
        """Record a trial that trained past ``trial_seconds`` as failed, with the time it took; it
        counts toward the failures in a row (every model too slow is worth stopping for)."""
        message = TIMED_OUT.format(seconds=self.trial_seconds)
        logger.warning("Trial %d %s (%g s).", candidate.number, message, self.trial_seconds)
        self.failures += 1
        seconds = candidate.built_trainer.seconds
        result = dataclasses.replace(
            self.untrained(TrialStatus.FAILED, candidate.arch, candidate.number, candidate.costs, message),
            train_seconds=seconds,
        )
        self.record(result)
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            self.status("failed", f"{self.failures} trials failed in a row; the last was {message}.")
            raise NasError(
                f"{self.failures} models in a row were {message}. "
                "Give the search a longer time budget, or lower the maximum parameters so models train faster."
            )
        self.status("running", f"Trial {candidate.number} {message}.")

    def conclude(self, candidate: Candidate, status: TrialStatus) -> None:
        """Report a trained candidate: completed (reached the top rung) or pruned (stopped lower)."""
        data = self.data
        try:
            outcome = candidate.built_trainer.finish()
        except FloatingPointError as exc:
            self.fail(candidate.number, candidate.arch, candidate.costs, exc)
            return
        latency = measure_latency_ms(outcome.model, data.n_features)
        common = {
            "number": candidate.number,
            "architecture": candidate.arch,
            "arch_hash": self.space.arch_hash(candidate.arch),
            "metrics": {**outcome.metrics, "epochs_budget": candidate.epochs_budget}
            | self.one_shot_metrics(candidate)
            | ({"cut_at_time_limit": True} if candidate.cut_short else {}),
            "costs": dataclasses.replace(candidate.costs, latency_ms=latency),
            "train_seconds": outcome.seconds,
        }
        message = self.latency_violation(common["costs"])
        if message:
            result = TrialResult(status=TrialStatus.REJECTED, message=message, **common)
        else:
            weights_path = None
            if self.artifacts_dir is not None:
                self.artifacts_dir.mkdir(parents=True, exist_ok=True)
                weights_path = self.artifacts_dir / f"trial_{candidate.number}.pt"
                torch.save(outcome.model.state_dict(), weights_path)
                if outcome.out_of_fold is not None:
                    np.save(out_of_fold_path(weights_path), outcome.out_of_fold)
            result = TrialResult(status=status, weights_path=weights_path and str(weights_path), **common)
            held = self.best.get(status)
            if held is None or self.rank(result) > self.rank(held[0]):
                self.best[status] = (result, {k: v.clone() for k, v in outcome.model.state_dict().items()})
        self.record(result)
        self.status("running", f"Trial {candidate.number} {result.status.value}.")

    def one_shot_metrics(self, candidate: Candidate) -> dict:
        """``one_shot_score``: the shortlisted architecture's score with the supernet's weights."""
        score = self.one_shot_scores.get(self.space.arch_hash(candidate.arch))
        return {} if score is None else {"one_shot_score": score}

    # --- one-shot ----------------------------------------------------------------------------

    def throttled_status(self, *, seconds: float) -> Callable[[float, str], None]:
        """A progress callback that passes a running status on at most every ``seconds``."""
        sent = [-math.inf]

        def report(fraction: float, message: str) -> None:
            if time.monotonic() - sent[0] >= seconds:
                sent[0] = time.monotonic()
                self.status("running", message)

        return report

    def run_one_shot(self) -> None:
        """Let a one-shot strategy's method train its supernet (in ``budget_share`` of the budget
        left) and hand the strategy its shortlist; the supernet is saved as ``supernet.pt`` in the
        artifacts folder for a later warm start."""
        from nas_engine.oneshot import OneShotContext
        from nas_engine.oneshot.methods import METHODS

        strategy, config = self.strategy, self.config
        if not isinstance(strategy, OneShotStrategy) or strategy.received_shortlist:
            return
        now = time.monotonic()
        context = OneShotContext(
            space=self.space,
            data=self.data,
            objectives=config.objectives,
            limits=config.analytic_limits(),
            deadline=now + strategy.budget_share * max(0.0, self.deadline - now),
            seed=config.seed,
            augmentation=self.augmentation,
            on_progress=self.throttled_status(seconds=ONE_SHOT_REPORT_SECONDS),
            should_cancel=self.should_cancel,
            warm_state=self.warm_state,
            epochs=SUPERNET_EPOCHS_PER_TRIAL_EPOCH * self.max_epochs,
        )
        try:
            shortlist = METHODS[strategy.one_shot_method](context)
        except Exception as exc:  # like a broken trial, a broken supernet must not end the search
            logger.error("The %s supernet failed", strategy.one_shot_method, exc_info=exc)
            strategy.receive_shortlist([])
            self.status("running", f"The supernet failed ({type(exc).__name__}: {exc}); searching without it.")
            return
        if shortlist.cancelled:
            self.cancelled = True
            return
        if self.artifacts_dir is not None and shortlist.state is not None:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            torch.save(shortlist.state, self.artifacts_dir / SUPERNET_FILE)
        self.one_shot_scores = {
            self.space.arch_hash(arch): float(score)
            for arch, score in zip(shortlist.archs, shortlist.predicted, strict=True)
        }
        self.one_shot_notes = dict(shortlist.notes)
        strategy.receive_shortlist(shortlist.archs)
        warm = " (warm-started from an earlier search's supernet)" if shortlist.notes.get("warm_started") else ""
        self.status("running", f"Supernet done{warm}: {len(shortlist.archs)} architectures to train from scratch.")

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
            if not _analytic_violation(self.space.costs(arch, data.n_features, data.n_outputs), self.config)
        ]

    def admit(self, number: int, arch: dict) -> Candidate | None:
        """Reject ``arch`` if it breaks an analytic limit, else make it a candidate."""
        data = self.data
        costs = self.space.costs(arch, data.n_features, data.n_outputs)
        violation = _analytic_violation(costs, self.config)
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

    def trainer(self, candidate: Candidate) -> Trainer | CrossValidatedTrainer:
        """The candidate's trainer, building its network (seeded by its number) the first time;
        k-fold over train+validation when ``cv_folds`` > 1, else the fixed validation split."""
        if candidate.trainer is not None:
            return candidate.trainer
        data, seed = self.data, self.config.seed + candidate.number
        torch.manual_seed(seed)

        def build() -> torch.nn.Module:
            return self.space.build_model(candidate.arch, data.n_features, data.n_outputs)

        common = {
            "task": data.task,
            "settings": TrainSettings.from_architecture(candidate.arch),
            "seed": seed,
            "patience": self.patience,
            "target_std": data.preprocessing["target"].get("std", 1.0),
            "target": data.preprocessing["target"],
            "augmentation": self.augmentation,
        }
        if self.cv_folds > 1:
            X, y = np.concatenate([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])
            candidate.trainer = CrossValidatedTrainer(build, X=X, y=y, folds=self.cv_folds, **common)
        else:
            candidate.trainer = Trainer(
                build(), X_train=data.X_train, y_train=data.y_train, validation=(data.X_val, data.y_val), **common
            )
        return candidate.trainer

    # --- training ----------------------------------------------------------------------------

    def run_bracket(self, candidates: list[Candidate], first_rung: int) -> bool:
        """Successive halving from ``first_rung``: train every candidate to the rung, report and drop
        all but the best 1/eta, continue the survivors (from their weights and optimiser state)
        to the next rung; those that reach the top rung are completed.

        Returns:
            False when the search must stop (deadline or cancel request).
        """
        alive, top = list(candidates), len(self.rungs) - 1
        n_rows = len(self.data.X_train)
        for rung in range(first_rung, top + 1):
            epochs = self.rungs[rung]
            rows = training_rows(n_rows, epochs=epochs, max_epochs=self.max_epochs)
            for candidate in list(alive):
                if time.monotonic() >= self.deadline:
                    return self.expire(alive)
                try:
                    trainer = self.trainer(candidate)
                    # The trial's own limit counts every rung it trained, so a slow model cannot
                    # creep past it rung by rung.
                    trial_deadline = time.monotonic() + self.trial_seconds - trainer.seconds
                    trainer.train(
                        until_epoch=epochs,
                        rows=rows if rows < n_rows else None,
                        deadline=min(self.deadline, trial_deadline),
                        should_cancel=self.should_cancel,
                    )
                except Exception as exc:  # a broken trial must not end the search; keep the reason
                    alive.remove(candidate)
                    self.fail(candidate.number, candidate.arch, candidate.costs, exc)
                    continue
                candidate.epochs_budget = epochs
                if trainer.cancelled:
                    self.cancelled = True  # the interrupted trials are not reported: stopped, not judged
                    return False
                if trainer.out_of_time and time.monotonic() >= self.deadline:
                    return self.expire(alive)
                if trainer.out_of_time:
                    alive.remove(candidate)
                    if isinstance(trainer, Trainer) and trainer.full_epochs > 0 and trainer.best_state is not None:
                        # Cut at its time limit after validated epochs: its best epoch is a model
                        # (on big data, a few good epochs beat a search that sees few models).
                        candidate.cut_short = True
                        self.conclude(candidate, TrialStatus.COMPLETED if rung == top else TrialStatus.PRUNED)
                    else:
                        self.time_out(candidate)
                    continue
                self.failures = 0
            if rung == top:
                break
            alive.sort(key=lambda c: (c.built_trainer.score, -c.costs.params), reverse=True)
            keep = survivors(len(alive), eta=self.config.eta)
            for candidate in alive[keep:]:
                self.conclude(candidate, TrialStatus.PRUNED)
            alive = alive[:keep]
        for candidate in alive:
            self.conclude(candidate, TrialStatus.COMPLETED)
        return True

    def expire(self, alive: list[Candidate]) -> bool:
        """The budget ran out inside a bracket: report what was trained (at the top rung: completed,
        even if cut short, as without multi-fidelity); untrained candidates are dropped."""
        for candidate in alive:
            if candidate.trainer is not None and candidate.trainer.epochs > 0:
                top = candidate.epochs_budget == self.rungs[-1]
                self.conclude(candidate, TrialStatus.COMPLETED if top else TrialStatus.PRUNED)
        return False

    # --- compression ------------------------------------------------------------------------

    def compress_front(self) -> None:
        """Derive ``compress.VARIANTS`` of the ``COMPRESSED_PARENTS`` best-scoring front trials
        (completed, with weights); each variant is recorded as a trial, rejected when it breaks a
        limit. A variant that cannot be made (a network too small to prune) is skipped, one that
        fails is recorded as failed: compression never ends the search."""
        from nas_engine.compress import VARIANTS, compress_trial, compressible  # torch and onnxruntime, when asked

        config = self.config
        if not config.compress or self.cancelled or self.artifacts_dir is None:
            return
        plain = [t for t in self.trials if t.status is TrialStatus.COMPLETED and "compression" not in t.architecture]
        vectors = [objective_vector(t, config.objectives) for t in plain]
        front = sorted((plain[i] for i in pareto_front_nd(vectors)), key=lambda t: -(t.score or 0.0))
        parents = [t for t in front if t.weights_path is not None and compressible(t.architecture)][:COMPRESSED_PARENTS]
        made = 0
        for parent in parents:
            for kind, ratio in VARIANTS:
                if self.should_cancel is not None and self.should_cancel():
                    self.cancelled = True
                    return
                number, self.next_number = self.next_number, self.next_number + 1
                self.status("running", f"Compressing trial {parent.number}: {kind} {ratio or ''}".rstrip() + ".")
                try:
                    variant = compress_trial(
                        parent, self.data, kind=kind, ratio=ratio, number=number,
                        artifacts_dir=self.artifacts_dir, seed=config.seed + number,
                    )  # fmt: skip
                except ConstraintError as exc:
                    logger.info("No %s variant of trial %d: %s", kind, parent.number, exc)
                    continue
                except Exception as exc:  # a broken variant must not end the search; keep the reason
                    logger.error("Compressing trial %d failed", parent.number, exc_info=exc)
                    failed = self.untrained(TrialStatus.FAILED, parent.architecture, number, parent.costs, str(exc))
                    self.record(failed, tell=False)
                    continue
                violation = _analytic_violation(variant.costs, config) or self.latency_violation(variant.costs)
                if violation:
                    variant = dataclasses.replace(variant, status=TrialStatus.REJECTED, message=violation)
                self.record(variant, tell=False)
                made += 1
        if parents:
            self.status("running", f"{made} compressed variants of {len(parents)} front models.")

    def latency_violation(self, costs: Costs) -> str:
        limit, latency = self.config.max_latency_ms, costs.latency_ms
        if limit is None or latency is None or latency <= limit:
            return ""
        return f"Measured latency {latency:.3f} ms is above the limit of {limit:g} ms."

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
        return self.finish()

    def finish(self) -> SearchResult:
        completed = [t for t in self.trials if t.status is TrialStatus.COMPLETED]
        # Pruned trials stand in only when the budget let none complete, so there is a model to use.
        finalists = completed or [t for t in self.trials if t.status is TrialStatus.PRUNED]
        vectors = [objective_vector(t, self.config.objectives) for t in finalists]
        front = [finalists[i] for i in pareto_front_nd(vectors)]
        rankable = [t for t, vector in zip(finalists, vectors, strict=True) if vector is not None]
        best = max(rankable, key=self.rank) if rankable else None  # the first of equals, as in conclude
        result = SearchResult(
            trials=list(self.trials),
            front=sorted(t.number for t in front),
            best=best,
            cancelled=self.cancelled,
            elapsed_seconds=self.elapsed(),
            task=self.data.task,
            test_metrics=self.test_metrics(best),
            objectives=self.config.objectives,
            augment=self.config.augment,
            one_shot=self.one_shot_notes,
            recommended=recommend(
                front, task=self.data.task, n_validation=self.validation_rows(), cost=self.config.objectives[1]
            ),
        )
        if self.cancelled:
            self.status("cancelled", "Search cancelled.")
        else:
            self.status("finished", f"{len(completed)} trials completed.", progress=1.0)
        return result

    def test_metrics(self, best: TrialResult | None) -> dict:
        """The best model's metrics on the test split. A best trial of this run has its weights in
        memory; one kept from an earlier run is loaded from its weights file, and when that cannot
        be read the best trial of this run stands in (with a warning), so a lost file costs the
        test metrics of one model, not the search."""
        if best is None:
            return {}
        held = self.best.get(best.status)
        if held is not None and held[0] is best:
            return self.evaluate(best, held[1])
        try:
            if best.weights_path is None:
                raise FileNotFoundError("no weights file was saved")
            return self.evaluate(best, torch.load(best.weights_path, weights_only=True))
        except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
            reason = exc
        stand_in = self.best.get(TrialStatus.COMPLETED) or self.best.get(TrialStatus.PRUNED)
        logger.warning(
            "Cannot load the weights of the best trial %d, kept from an earlier run (%s); %s",
            best.number,
            reason,
            f"test metrics are those of trial {stand_in[0].number}, the best of this run."
            if stand_in
            else "no trial of this run can stand in, so there are no test metrics.",
        )
        return self.evaluate(*stand_in) if stand_in else {}

    def evaluate(self, trial: TrialResult, state: dict) -> dict:
        """Metrics on the test split of ``trial``'s network with the weights ``state``."""
        data = self.data
        space = space_for_architecture(trial.architecture)  # a resumed search may hold another space's trials
        model = space.build_model(trial.architecture, data.n_features, data.n_outputs)
        model.load_state_dict(state)
        return evaluate_model(
            model,
            data.X_test,
            data.y_test,
            task=data.task,
            target_std=data.preprocessing["target"].get("std", 1.0),
            target=data.preprocessing["target"],
        )


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
            on_trial,
            on_status,
            should_cancel,
            artifacts_dir,
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


@contextlib.contextmanager
def training_mode() -> Iterator[None]:
    """Train on one torch thread with deterministic algorithms, both restored afterwards."""
    # The first Adam pulls in torch._dynamo (~1 s); do it now so the first trial's time is not inflated.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with one_thread():
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def load_supernet(path: str | Path | None) -> dict | None:
    """The supernet state saved by a one-shot search (``SUPERNET_FILE``), or None when there is none
    or it cannot be read (logged: a warm start is an optimisation, never a reason to fail)."""
    if path is None:
        return None
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        logger.warning("Cannot read the supernet %s for a warm start (%s); training one from scratch.", path, exc)
        return None
    return state if isinstance(state, dict) else None


def no_model_reason(trials: Sequence[TrialResult], *, max_latency_ms: float | None = None) -> str:
    """Why a search that was not cancelled ended without a usable model, in words a user can act
    on (with the cost to aim for where one was measured); "" when it has one (completed or pruned).

    A search whose every trained model broke the latency limit, or ran past the time allowed per
    model, otherwise ends with an empty front and no hint; callers show this instead.

    Args:
        trials: ``SearchResult.trials``.
        max_latency_ms: The search's latency limit, if any.
    """
    if any(t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED) for t in trials):
        return ""
    too_slow = [t for t in trials if t.status is TrialStatus.REJECTED and t.costs.latency_ms is not None]
    failures = [t for t in trials if t.status is TrialStatus.FAILED]
    timed_out = [t for t in failures if t.message.startswith(TIMED_OUT_PREFIX)]
    failed = [t for t in failures if not t.message.startswith(TIMED_OUT_PREFIX)]
    rejected = [t for t in trials if t.status is TrialStatus.REJECTED and t.costs.latency_ms is None]
    if too_slow:
        fastest = min(too_slow, key=lambda t: t.costs.latency_ms or 0.0)
        limit = f" of {max_latency_ms:g} ms" if max_latency_ms is not None else ""
        return (
            f"No architecture fits the latency limit{limit} per prediction: the fastest of the "
            f"{len(too_slow)} trained models took {fastest.costs.latency_ms:.3g} ms (trial {fastest.number}). "
            f"Raise the latency limit to at least {fastest.costs.latency_ms:.3g} ms, or leave it empty."
        )
    if timed_out:
        return (
            f"No model finished training in the time this search allows per model: {len(timed_out)} were "
            f"{timed_out[-1].message}. Give the search a longer time budget, or lower the maximum parameters "
            "so models train faster."
        )
    if rejected:
        smallest = min(rejected, key=lambda t: t.costs.params)
        return (
            f"No architecture fits the limits: all {len(rejected)} tried broke one (the last: "
            f"{rejected[-1].message.rstrip('.')}). The smallest tried has {smallest.costs.params:,} parameters, "
            f"{smallest.costs.flops:,} FLOPs and {smallest.costs.size_bytes:,} bytes; loosen the limits toward it."
        )
    if failed:
        return f"Every model failed to train; the last error: {failed[-1].message}"
    return "The time budget ran out before any model finished training; give the search more time."
