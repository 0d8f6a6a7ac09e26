"""Settings of one search, validated up front so a bad form value fails before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nas_engine.errors import ConstraintError
from nas_engine.strategies import STRATEGIES

TASKS = ("classification", "regression")


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """What to search for and within which limits.

    Args:
        target: Column to predict.
        task: ``"classification"`` or ``"regression"``; guessed from the target when None.
        budget_seconds: Wall-clock budget of the whole search.
        max_trials: Stop after this many trained trials (analytic rejections do not count).
        max_params: Reject architectures with more parameters.
        max_flops: Reject architectures with more multiply-adds per row.
        max_latency_ms: Reject trained models slower than this per row (batch 1, one thread).
        strategy: Key of ``STRATEGIES``.
        seed: Seed of the strategy and of each trial's weights.
        max_epochs: Upper bound of training epochs per trial.
        patience: Epochs without validation improvement before stopping a trial.

    Raises:
        ConstraintError: A budget or limit is not a positive number.
        ValueError: Unknown task or strategy, or an empty target.
    """

    target: str
    task: str | None = None
    budget_seconds: float = 60
    max_trials: int | None = None
    max_params: int | None = None
    max_flops: int | None = None
    max_latency_ms: float | None = None
    strategy: str = "random"
    seed: int = 0
    max_epochs: int = 50
    patience: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ValueError("Choose a target column.")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"Unknown task '{self.task}'; use one of: {', '.join(TASKS)}.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy '{self.strategy}'; known strategies: {', '.join(STRATEGIES)}.")
        if not self.budget_seconds > 0:
            raise ConstraintError(f"The time budget must be above 0 seconds; got {self.budget_seconds}.")
        for name in ("max_trials", "max_params", "max_flops", "max_latency_ms", "max_epochs", "patience"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConstraintError(f"{name} must be above 0 (or left empty); got {value}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SearchConfig:
        """Build a config from ``to_dict()`` output.

        Raises:
            ValueError: The dict has keys that are not settings.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown search setting(s): {', '.join(unknown)}.")
        return cls(**data)
