"""Strategies backed by a one-shot method (``nas_engine.oneshot``): the search loop trains a
supernet first and hands the strategy a shortlist, which it proposes before anything else."""

from __future__ import annotations

from collections.abc import Sequence

from nas_engine.results import require_score
from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies.base import Strategy, is_scored, whole_number


class OneShotStrategy(Strategy):
    """Proposes the shortlist the loop found with ``one_shot_method``, best first; after it (or
    without one: outside ``run_search``, or when the one-shot phase found nothing), mutates the
    best of ``sample_size`` scored trials drawn at random, a local search around the retrained
    shortlist, and samples at random until two trials are scored.

    Args:
        space: The search space to propose from.
        seed: Seed of the strategy's random generator.
        objectives: Passed on to the one-shot method (its cost term and shortlist spread).
        sample_size: Tournament size of the local search after the shortlist.

    Raises:
        ValueError: A setting is out of range.
    """

    one_shot_method: str = ""  # key of nas_engine.oneshot.methods.METHODS
    # The share of the budget left that the supernet may take before the first trial; the rest
    # retrains the shortlist (and searches around it) as ordinary trials.
    budget_share: float = 0.3

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        sample_size: int = 3,
    ) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        self.sample_size = whole_number("sample_size", sample_size, minimum=1)
        self.shortlist: list[dict] = []
        self.received_shortlist = False

    def settings(self) -> dict:
        return super().settings() | {"sample_size": self.sample_size}

    def receive_shortlist(self, archs: Sequence[dict]) -> None:
        """Take the one-shot method's architectures, to propose before any other (logged, so a
        strategy restored from ``state_dict`` has the same shortlist without a supernet)."""
        self.shortlist = [dict(arch) for arch in archs]
        self.received_shortlist = True
        self._log.append({"shortlist": [dict(arch) for arch in archs]})

    def replay(self, event: dict) -> None:
        if "shortlist" not in event:
            super().replay(event)
        else:
            self.receive_shortlist(event["shortlist"])

    def propose(self, n: int) -> list[dict]:
        archs = [self.shortlist.pop(0) for _ in range(min(n, len(self.shortlist)))]
        scored = [result for result in self.history if is_scored(result)]
        while len(archs) < n:
            if len(scored) < 2:
                archs.append(self.space.sample(self.rng))
                continue
            picks = self.rng.choice(len(scored), size=min(self.sample_size, len(scored)), replace=False)
            parent = max((scored[int(i)] for i in picks), key=require_score)
            archs.append(self.space.mutate(parent.architecture, self.rng))
        return archs


class SPOSStrategy(OneShotStrategy):
    name = "spos"
    label = "Weight sharing (SPOS)"
    description = (
        "Trains one supernet holding every architecture, ranks thousands of candidates with its shared "
        "weights, then trains only the most promising from scratch (Guo et al., 2020)."
    )
    one_shot_method = "spos"


class DARTSStrategy(OneShotStrategy):
    name = "darts"
    label = "Differentiable (DARTS)"
    description = (
        "Relaxes the layer choices into weights learned by gradient descent with a size penalty, then "
        "trains the strongest discrete architectures from scratch (Liu et al., 2019)."
    )
    one_shot_method = "darts"
