"""Search strategies and the registry the web form reads."""

from nas_engine.strategies.base import Strategy
from nas_engine.strategies.random import RandomStrategy

STRATEGIES: dict[str, type[Strategy]] = {"random": RandomStrategy}

__all__ = ["STRATEGIES", "RandomStrategy", "Strategy"]
