"""The contract of a search strategy: it proposes architectures and learns from results, never trains."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from nas_engine.results import TrialResult
from nas_engine.spaces.base import SearchSpace


class Strategy(ABC):
    """Decides which architectures to try next.

    Subclasses implement ``ask``; ``tell`` records the history and may be extended. Randomness
    comes from ``self.rng`` only, so a seed reproduces the sequence of proposals.

    Args:
        space: The search space to propose from.
        seed: Seed of the strategy's random generator.
    """

    name: str = ""

    def __init__(self, *, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.history: list[TrialResult] = []

    @abstractmethod
    def ask(self, n: int = 1) -> list[dict]:
        """Propose ``n`` architectures to evaluate."""

    def tell(self, results: Sequence[TrialResult]) -> None:
        """Receive finished trials (completed, rejected or failed)."""
        self.history.extend(results)
