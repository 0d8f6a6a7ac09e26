"""Random search: every proposal is a fresh sample of the space (a strong baseline in NAS)."""

from __future__ import annotations

from nas_engine.strategies.base import Strategy


class RandomStrategy(Strategy):
    """Samples architectures uniformly from the space, ignoring past results."""

    name = "random"

    def ask(self, n: int = 1) -> list[dict]:
        return [self.space.sample(self.rng) for _ in range(n)]
