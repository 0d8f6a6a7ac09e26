"""The end of a search: ``ResultBuilder``, the part of ``search.SearchLoop`` that builds the
``SearchResult`` (front, best trial, its test metrics, recommendation), and ``no_model_reason``,
why a search ended without a usable model."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence

import torch

from nas_engine.evaluator import evaluate_model
from nas_engine.loop_state import LoopState
from nas_engine.metrics import metric_of
from nas_engine.pareto import pareto_front_nd
from nas_engine.results import SearchResult, TrialResult, TrialStatus, objective_vector
from nas_engine.selection import recommend
from nas_engine.spaces import space_for_architecture
from nas_engine.trial_runner import TIMED_OUT_PREFIX

logger = logging.getLogger(__name__)


class ResultBuilder(LoopState):
    """The part of a search that builds its ``SearchResult`` from the trials (``finish``)."""

    def build_result(self) -> SearchResult:
        completed = [t for t in self.trials if t.status is TrialStatus.COMPLETED]
        # Pruned trials stand in only when the budget let none complete, so there is a model to use.
        finalists = completed or [t for t in self.trials if t.status is TrialStatus.PRUNED]
        vectors = [objective_vector(t, self.config.objectives) for t in finalists]
        front = [finalists[i] for i in pareto_front_nd(vectors)]
        rankable = [t for t, vector in zip(finalists, vectors, strict=True) if vector is not None]
        best = max(rankable, key=self.rank) if rankable else None  # the first of equals, as in report_trained
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
                front,
                task=self.data.task,
                n_validation=self.validation_rows(),
                cost=self.config.objectives[1],
                metric=metric_of(self.data.preprocessing["target"], self.data.task).name,
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
