"""Result records of a search: costs, trials, status events and the final result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path


@dataclass(frozen=True)
class Costs:
    """What a network costs to run.

    ``flops`` counts the multiply-adds of the Linear layers (in * out each), the usual
    convention for MLPs; ``size_bytes`` is the float32 weight size. ``memory_bytes`` is the peak
    memory of predicting one row (batch 1, float32): every weight and buffer of the network
    (batch-norm running statistics included: inference reads them) plus the most activations
    alive at once in the forward pass, the network input included (``spaces.memory``). None in
    records written before it existed.
    """

    params: int
    flops: int
    latency_ms: float | None
    size_bytes: int
    memory_bytes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Costs:
        """The inverse of ``to_dict`` (keys this version does not know are ignored).

        Raises:
            ValueError: A cost is missing.
        """
        return cls(**_known_fields(cls, data))


ENSEMBLE_SPACE = "ensemble"  # the "space" of an ensemble record's architecture (not a key of SPACES)


def out_of_fold_path(weights_path: str | Path) -> Path:
    """Where a cross-validated trial's out-of-fold outputs (``TrainingOutcome.out_of_fold``, a .npy
    array over train+validation rows in their order) lie: beside its weights."""
    return Path(weights_path).with_suffix(".oof.npy")


def is_compressed(architecture: dict) -> bool:
    """True for a compressed variant's genome (its ``"compression"`` entry, ``compress.compression_of``):
    it is not refit, and it is no ensemble member."""
    return "compression" in architecture


def is_ensemble(architecture: dict) -> bool:
    """True for an ensemble record's architecture (its members under ``member_architectures``)."""
    return architecture.get("space") == ENSEMBLE_SPACE


def ensemble_costs(members: Sequence[Costs], *, latency_ms: float | None = None) -> Costs:
    """The costs of an ensemble averaging ``members``: the sum of theirs.

    For memory the sum is an upper bound, safe to hold against a limit: members run one after
    another, so the exact peak is every member's weights plus the largest member's activations,
    but ``Costs`` does not keep weights and activations apart. None when a member's memory is
    unknown (a record from before ``memory_bytes``).
    """
    memory = [c.memory_bytes for c in members]
    return Costs(
        params=sum(c.params for c in members),
        flops=sum(c.flops for c in members),
        latency_ms=latency_ms,
        size_bytes=sum(c.size_bytes for c in members),
        memory_bytes=None if None in memory else sum(m for m in memory if m is not None),
    )


class TrialStatus(StrEnum):
    """How a trial ended."""

    COMPLETED = "completed"
    PRUNED = "pruned"  # trained at a low fidelity only (multi-fidelity stopped it early)
    REJECTED = "rejected"
    FAILED = "failed"


# Objectives a search can trade off: the validation score is maximised, every cost minimised.
OBJECTIVES: dict[str, str] = {
    "score": "maximize",
    "params": "minimize",
    "flops": "minimize",
    "latency_ms": "minimize",
    "size_bytes": "minimize",
    "memory_bytes": "minimize",
}


def objective_vector(result: TrialResult, objectives: tuple[str, ...]) -> tuple[float, ...] | None:
    """The trial's objectives as values to MINIMISE (the score negated), or None when the trial has
    no score (rejected, failed) or lacks one of the costs (latency not measured)."""
    if result.status not in (TrialStatus.COMPLETED, TrialStatus.PRUNED) or result.score is None:
        return None
    values = []
    for name in objectives:
        if name == "score":
            values.append(-float(result.score))
            continue
        value = getattr(result.costs, name)
        if value is None:
            return None
        values.append(float(value))
    return tuple(values)


@dataclass(frozen=True)
class TrialResult:
    """One evaluated (or rejected) architecture.

    ``metrics`` are measured on the validation split; ``metrics["score"]`` is the value the
    search maximises (accuracy or R²).
    """

    number: int
    status: TrialStatus
    architecture: dict
    arch_hash: str
    metrics: dict
    costs: Costs
    train_seconds: float
    message: str = ""
    weights_path: str | None = None

    @property
    def score(self) -> float | None:
        return self.metrics.get("score")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrialResult:
        """The inverse of ``to_dict``, also after a JSON round-trip: how a caller rebuilds the trials
        it stored (e.g. to pass them to ``run_search(resume_from=...)``). Keys this version does not
        know are ignored, so records written by a newer engine still load.

        Raises:
            ValueError: A field is missing or the status is not a ``TrialStatus`` value.
        """
        values = _known_fields(cls, data)
        values["status"] = TrialStatus(values["status"])
        values["costs"] = Costs.from_dict(values["costs"])
        return cls(**values)


def _known_fields(cls: type, data: dict) -> dict:
    """The entries of ``data`` that are fields of the dataclass ``cls``, all required ones present."""
    known = {f.name: f for f in fields(cls)}
    missing = [name for name, f in known.items() if name not in data and f.default is MISSING]
    if missing:
        raise ValueError(f"Cannot rebuild a {cls.__name__}: {', '.join(missing)} missing from {sorted(data)}.")
    return {key: value for key, value in data.items() if key in known}


def require_score(result: TrialResult) -> float:
    """The score of a trial known to have one (filtered on ``score is not None`` or ``is_scored``).

    Raises:
        ValueError: The trial has no score.
    """
    if result.score is None:
        raise ValueError(f"Trial {result.number} has no score.")
    return float(result.score)


@dataclass(frozen=True)
class StatusEvent:
    """Progress report of a running search (``status``: running, finished, cancelled, failed)."""

    status: str
    progress: float
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    """Everything a search produced.

    ``front`` lists the trial numbers on the Pareto front over ``objectives`` (completed trials;
    pruned ones only when no trial completed); ``best`` is the front trial with the highest
    score; ``recommended`` the cheapest front trial within one standard error of the best score
    (``selection.recommend``); ``test_metrics`` are the best model's metrics on the held-out test split (as trained
    during the search; ``finalize.finalize_front`` refits and re-scores).
    """

    trials: list[TrialResult]
    front: list[int]
    best: TrialResult | None
    cancelled: bool
    elapsed_seconds: float
    task: str
    test_metrics: dict = field(default_factory=dict)
    objectives: tuple[str, ...] = ("score", "params")
    recommended: TrialResult | None = None
    augment: str = "none"  # how training images were augmented (the refit trains the same way)
    one_shot: dict = field(default_factory=dict)  # a one-shot strategy's figures (supernet seconds, ...)

    def to_dict(self) -> dict:
        return {
            "trials": [t.to_dict() for t in self.trials],
            "front": list(self.front),
            "best": self.best.number if self.best else None,
            "cancelled": self.cancelled,
            "elapsed_seconds": self.elapsed_seconds,
            "task": self.task,
            "test_metrics": dict(self.test_metrics),
            "objectives": list(self.objectives),
            "recommended": self.recommended.number if self.recommended else None,
            "augment": self.augment,
            "one_shot": dict(self.one_shot),
        }
