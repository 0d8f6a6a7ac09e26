"""Random search: every proposal is a fresh sample of the space (a strong baseline in NAS)."""

from __future__ import annotations

from nas_engine.strategies.base import Strategy


class RandomStrategy(Strategy):
    """Samples architectures uniformly from the space, ignoring past results."""

    name = "random"
    label = "Random search"
    description = "Tries architectures drawn at random. A strong, unbiased baseline; ignores past results."

    def propose(self, n: int) -> list[dict]:
        return [self.space.sample(self.rng) for _ in range(n)]
