"""Search strategies and the registry the web form reads (its keys, ``label`` and ``description``)."""

from nas_engine.strategies.aging_evolution import AgingEvolutionStrategy
from nas_engine.strategies.base import Strategy
from nas_engine.strategies.grid import GridStrategy
from nas_engine.strategies.nsga2 import NSGA2Strategy
from nas_engine.strategies.one_shot import DARTSStrategy, OneShotStrategy, SPOSStrategy
from nas_engine.strategies.predictor_evolution import PredictorEvolutionStrategy
from nas_engine.strategies.random import RandomStrategy
from nas_engine.strategies.reinforce import ReinforceStrategy
from nas_engine.strategies.tpe import TPEStrategy

# Error messages list the keys in this order; the default is config.DEFAULT_STRATEGY.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        RandomStrategy,
        AgingEvolutionStrategy,
        TPEStrategy,
        NSGA2Strategy,
        ReinforceStrategy,
        PredictorEvolutionStrategy,
        SPOSStrategy,
        DARTSStrategy,
        GridStrategy,
    )
}

__all__ = [
    "STRATEGIES",
    "AgingEvolutionStrategy",
    "DARTSStrategy",
    "GridStrategy",
    "NSGA2Strategy",
    "OneShotStrategy",
    "PredictorEvolutionStrategy",
    "RandomStrategy",
    "ReinforceStrategy",
    "SPOSStrategy",
    "Strategy",
    "TPEStrategy",
]
