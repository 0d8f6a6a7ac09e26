"""Training a candidate into a ``TrialResult``: ``Candidate`` (an architecture in a bracket) and
``TrialRunner``, the part of ``search.SearchLoop`` that builds a candidate's trainer, trains a
bracket rung by rung under the search's deadline and the per-model time limit
(``trial_time_limit``), and reports each candidate completed, pruned, rejected on latency, timed
out or failed; also ``training_mode`` (one torch thread, deterministic algorithms) that training
runs under."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator

import numpy as np
import torch

from nas_engine.batches import concat_rows
from nas_engine.errors import NasError
from nas_engine.evaluator import CrossValidatedTrainer, Trainer, TrainSettings, measure_latency_ms, one_thread
from nas_engine.fidelity import survivors, training_rows
from nas_engine.loop_state import LoopState
from nas_engine.results import Costs, TrialResult, TrialStatus, out_of_fold_path

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 5
# One model may train for a quarter of the budget (at least 30 s): a search should compare several
# models, so a runaway one (huge, or slow on this data) is stopped and the search goes on.
TRIAL_BUDGET_SHARE = 0.25
MIN_TRIAL_SECONDS = 30.0
TIMED_OUT_PREFIX = "stopped after"
TIMED_OUT = TIMED_OUT_PREFIX + " {seconds:g} s: longer than this search allows per model"


def trial_time_limit(budget_seconds: float) -> float:
    """Seconds of training one model may take in a search with this budget (see TRIAL_BUDGET_SHARE)."""
    return max(MIN_TRIAL_SECONDS, budget_seconds * TRIAL_BUDGET_SHARE)


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
        """The trainer, once ``TrialRunner.trainer`` has built it (every candidate that trained)."""
        if self.trainer is None:
            raise RuntimeError(f"Candidate {self.number} has not been trained.")
        return self.trainer


class TrialRunner(LoopState):
    """The part of a search that turns candidates into trial results: trains them bracket by bracket
    (``run_bracket``) and reports each once its fate is known."""

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
            X, y = concat_rows([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])
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
                        self.report_trained(candidate, TrialStatus.COMPLETED if rung == top else TrialStatus.PRUNED)
                    else:
                        self.time_out(candidate)
                    continue
                self.failures = 0
            if rung == top:
                break
            alive.sort(key=lambda c: (c.built_trainer.score, -c.costs.params), reverse=True)
            keep = survivors(len(alive), eta=self.config.eta)
            for candidate in alive[keep:]:
                self.report_trained(candidate, TrialStatus.PRUNED)
            alive = alive[:keep]
        for candidate in alive:
            self.report_trained(candidate, TrialStatus.COMPLETED)
        return True

    def expire(self, alive: list[Candidate]) -> bool:
        """The budget ran out inside a bracket: report what was trained (at the top rung: completed,
        even if cut short, as without multi-fidelity); untrained candidates are dropped."""
        for candidate in alive:
            if candidate.trainer is not None and candidate.trainer.epochs > 0:
                top = candidate.epochs_budget == self.rungs[-1]
                self.report_trained(candidate, TrialStatus.COMPLETED if top else TrialStatus.PRUNED)
        return False

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

    def report_trained(self, candidate: Candidate, status: TrialStatus) -> None:
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
            "metrics": {**outcome.metrics, "epochs_budget": candidate.epochs_budget, "trained_on": outcome.device}
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
