"""The search loop: ask the strategy, check constraints, train, report, tell."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from nas_engine.config import SearchConfig
from nas_engine.errors import ConstraintError, NasError
from nas_engine.evaluator import evaluate_model, measure_latency_ms, train_model
from nas_engine.pareto import pareto_front
from nas_engine.prepare import PreparedData
from nas_engine.results import Costs, SearchResult, StatusEvent, TrialResult, TrialStatus
from nas_engine.spaces import MLPSpace, SearchSpace
from nas_engine.strategies import STRATEGIES

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 5
MAX_CONSECUTIVE_REJECTIONS = 200
MAX_DUPLICATE_DRAWS = 200  # this many repeats in a row means the space is exhausted


def _analytic_violation(costs: Costs, config: SearchConfig) -> str:
    if config.max_params is not None and costs.params > config.max_params:
        return f"{costs.params:,} parameters is above the limit of {config.max_params:,}."
    if config.max_flops is not None and costs.flops > config.max_flops:
        return f"{costs.flops:,} FLOPs is above the limit of {config.max_flops:,}."
    return ""


def _check_feasible(space: SearchSpace, config: SearchConfig, data: PreparedData) -> None:
    n_in, n_out = data.n_features, data.n_outputs
    smallest = space.smallest_params(n_in, n_out)
    if config.max_params is not None and config.max_params < smallest:
        raise ConstraintError(
            f"No architecture in the search space fits max_params={config.max_params:,}; "
            f"the smallest possible has {smallest:,} parameters."
        )
    cheapest = space.smallest_flops(n_in, n_out)
    if config.max_flops is not None and config.max_flops < cheapest:
        raise ConstraintError(
            f"No architecture in the search space fits max_flops={config.max_flops:,}; "
            f"the cheapest possible needs {cheapest:,} FLOPs."
        )


def _rank(trial: TrialResult) -> tuple[float, int]:
    # Highest score; among equal scores the smaller network, so the best is on the Pareto front.
    return trial.metrics["score"], -trial.costs.params


class _Loop:
    """State of one running search; exists so run_search reads as the steps it takes."""

    def __init__(self, config, data, space, on_trial, on_status, should_cancel, artifacts_dir):
        self.config, self.data, self.space = config, data, space
        self.on_trial, self.on_status, self.should_cancel = on_trial, on_status, should_cancel
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self.strategy = STRATEGIES[config.strategy](space=space, seed=config.seed)
        self.start = time.monotonic()
        self.deadline = self.start + config.budget_seconds
        self.trials: list[TrialResult] = []
        self.seen: set[str] = set()
        self.trained = 0
        self.best_state: dict | None = None
        self.best: TrialResult | None = None

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

    def progress(self) -> float:
        by_time = (time.monotonic() - self.start) / self.config.budget_seconds
        by_trials = self.trained / self.config.max_trials if self.config.max_trials else 0.0
        return min(1.0, max(by_time, by_trials))

    def status(self, status: str, message: str = "", progress: float | None = None) -> None:
        if self.on_status is not None:
            value = self.progress() if progress is None else progress
            self.on_status(StatusEvent(status=status, progress=value, message=message))

    def done(self) -> bool:
        return time.monotonic() >= self.deadline or (
            self.config.max_trials is not None and self.trained >= self.config.max_trials
        )

    def next_architecture(self) -> dict | None:
        for _ in range(MAX_DUPLICATE_DRAWS):
            arch = self.strategy.ask(1)[0]
            if self.space.arch_hash(arch) not in self.seen:
                return arch
        return None

    def record(self, result: TrialResult) -> None:
        self.trials.append(result)
        self.seen.add(result.arch_hash)
        if self.on_trial is not None:
            self.on_trial(result)
        self.strategy.tell([result])

    def evaluate(self, arch: dict, number: int, costs: Costs) -> tuple[TrialResult, bool]:
        """Train and measure one architecture; returns the result and whether the user cancelled."""
        config, data = self.config, self.data
        torch.manual_seed(config.seed + number)
        model = self.space.build_model(arch, data.n_features, data.n_outputs)
        outcome = train_model(
            model,
            data,
            lr=arch.get("lr", 1e-3),
            max_epochs=config.max_epochs,
            patience=config.patience,
            seed=config.seed + number,
            deadline=self.deadline,
            should_cancel=self.should_cancel,
        )
        latency = measure_latency_ms(outcome.model, data.n_features)
        costs = dataclasses.replace(costs, latency_ms=latency)
        common = {
            "number": number,
            "architecture": arch,
            "arch_hash": self.space.arch_hash(arch),
            "metrics": outcome.metrics,
            "costs": costs,
            "train_seconds": outcome.seconds,
        }
        if config.max_latency_ms is not None and latency > config.max_latency_ms:
            message = f"Measured latency {latency:.3f} ms is above the limit of {config.max_latency_ms:g} ms."
            return TrialResult(status=TrialStatus.REJECTED, message=message, **common), outcome.cancelled
        weights_path = None
        if self.artifacts_dir is not None:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            weights_path = self.artifacts_dir / f"trial_{number}.pt"
            torch.save(outcome.model.state_dict(), weights_path)
        result = TrialResult(status=TrialStatus.COMPLETED, weights_path=weights_path and str(weights_path), **common)
        if self.best is None or _rank(result) > _rank(self.best):
            self.best, self.best_state = result, {k: v.clone() for k, v in outcome.model.state_dict().items()}
        return result, outcome.cancelled

    def run(self) -> SearchResult:
        config, data = self.config, self.data
        self.status("running", "Search started.", progress=0.0)
        failures = rejections = 0
        cancelled = False
        while not self.done():
            if self.should_cancel is not None and self.should_cancel():
                cancelled = True
                break
            arch = self.next_architecture()
            if arch is None:
                break
            number = len(self.trials)
            costs = self.space.costs(arch, data.n_features, data.n_outputs)
            violation = _analytic_violation(costs, config)
            if violation:
                rejections += 1
                if rejections >= MAX_CONSECUTIVE_REJECTIONS:
                    raise ConstraintError(
                        f"{rejections} architectures in a row broke the limits (last: {violation}) "
                        "Loosen max_params or max_flops."
                    )
                self.record(self.untrained(TrialStatus.REJECTED, arch, number, costs, violation))
                continue
            rejections = 0
            self.trained += 1
            try:
                result, cancelled = self.evaluate(arch, number, costs)
                failures = 0
            except Exception as exc:  # a broken trial must not end the search; keep the reason
                logger.exception("Trial %d failed", number)
                failures += 1
                result = self.untrained(TrialStatus.FAILED, arch, number, costs, f"{type(exc).__name__}: {exc}")
            if cancelled:
                break  # the interrupted trial is not reported: it was stopped, not judged
            self.record(result)
            if failures >= MAX_CONSECUTIVE_FAILURES:
                message = f"{failures} trials failed in a row; last error: {result.message}"
                self.status("failed", message)
                raise NasError(message)
            self.status("running", f"Trial {number} {result.status.value}.")
        return self.finish(cancelled)

    def finish(self, cancelled: bool) -> SearchResult:
        completed = [t for t in self.trials if t.status is TrialStatus.COMPLETED]
        front = pareto_front([(t.metrics["score"], t.costs.params) for t in completed])
        test_metrics = {}
        if self.best is not None:
            model = self.space.build_model(self.best.architecture, self.data.n_features, self.data.n_outputs)
            model.load_state_dict(self.best_state)
            test_metrics = evaluate_model(
                model,
                self.data.X_test,
                self.data.y_test,
                task=self.data.task,
                target_std=self.data.preprocessing["target"].get("std", 1.0),
            )
        result = SearchResult(
            trials=list(self.trials),
            front=[completed[i].number for i in front],
            best=self.best,
            cancelled=cancelled,
            elapsed_seconds=time.monotonic() - self.start,
            task=self.data.task,
            test_metrics=test_metrics,
        )
        if cancelled:
            self.status("cancelled", "Search cancelled.")
        else:
            self.status("finished", f"{len(completed)} trials completed.", progress=1.0)
        return result


def run_search(
    config: SearchConfig,
    data: PreparedData,
    *,
    on_trial: Callable[[TrialResult], None] | None = None,
    on_status: Callable[[StatusEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    artifacts_dir: str | Path | None = None,
) -> SearchResult:
    """Search architectures until the budget, the trial limit or a cancel request stops it.

    Architectures breaking ``max_params``/``max_flops`` are rejected before training;
    ``max_latency_ms`` is checked after training. Each trial seeds torch with
    ``config.seed + number``. Training runs on one torch thread (restored afterwards).

    Args:
        config: What to search for.
        data: Output of ``prepare_data``.
        on_trial: Called with every trial result, rejected and failed ones included.
        on_status: Called with progress events (running, finished, cancelled, failed).
        should_cancel: Polled between trials and epochs; return True to stop.
        artifacts_dir: Where to save ``trial_{number}.pt`` weights of completed trials.

    Returns:
        All trials, the Pareto front (score vs. parameters) and the best trial.

    Raises:
        ConstraintError: No architecture in the space can meet the limits.
        NasError: Too many trials failed in a row.
    """
    space = MLPSpace()
    _check_feasible(space, config, data)
    # The first Adam pulls in torch._dynamo (~1 s); do it now so trial 0's time is not inflated.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    # One thread: these MLPs gain nothing from intra-op threads, and when the CPU is shared (a web
    # server beside the worker) OpenMP's spin-waiting made an epoch loop 200x slower (0.1 s → 26 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _Loop(config, data, space, on_trial, on_status, should_cancel, artifacts_dir).run()
    finally:
        torch.set_num_threads(threads)
