"""The contract of a search strategy: it proposes architectures and learns from results, never trains."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from nas_engine.results import OBJECTIVES, TrialResult, TrialStatus
from nas_engine.spaces.base import SearchSpace

STATE_VERSION = 1
MAX_SEED = 2**32  # numpy's legacy RandomState, which optuna's samplers use, takes no larger seed


class Strategy(ABC):
    """Decides which architectures to try next.

    Subclasses implement ``propose`` (and usually ``observe``); the public ``ask``/``tell`` wrap
    them and log every call, which is what ``state_dict`` saves: a strategy restored from a state
    replays the log from its seed, so it proposes exactly what the original would have. Randomness
    comes from ``self.rng`` only (or from generators seeded with ``self.seed``).

    Args:
        space: The search space to propose from.
        seed: Seed of the strategy's random generator (a whole number from 0 to 2**32 - 1).
        objectives: Names from ``results.OBJECTIVES`` to optimise, ``"score"`` first; single-objective
            strategies use the score only.

    Raises:
        ValueError: A setting is out of range; the message says which values are allowed.
    """

    name: str = ""
    label: str = ""  # one line for the web form
    description: str = ""  # a sentence or two for the web form
    # Whether the search trains the space's portfolio (proven configurations) before asking this
    # strategy; a strategy that must try exactly its own set (a grid) opts out.
    uses_portfolio: bool = True

    def __init__(self, *, space: SearchSpace, seed: int = 0, objectives: Sequence[str] = ("score", "params")) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < MAX_SEED:
            raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED - 1}; got {seed!r}.")
        self.objectives = _check_objectives(objectives)
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.history: list[TrialResult] = []
        self._log: list[dict] = []  # every ask/tell, in order: what state_dict saves and replays

    # --- what subclasses implement --------------------------------------------------------------

    @abstractmethod
    def propose(self, n: int) -> list[dict]:
        """Return ``n`` architectures to evaluate next (called by ``ask``)."""

    def observe(self, results: Sequence[TrialResult]) -> None:  # noqa: B027 - an optional hook
        """Learn from finished trials (called by ``tell`` after they are added to ``history``)."""

    def settings(self) -> dict:
        """The constructor arguments (besides ``space``) that rebuild this strategy, JSON types only.
        Subclasses with their own arguments extend this dict."""
        return {"seed": self.seed, "objectives": list(self.objectives)}

    # --- the public interface -------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[dict]:
        """Propose ``n`` architectures to evaluate (always exactly ``n``; repeats are possible).

        Raises:
            ValueError: ``n`` is not a whole number of 1 or more.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"Ask for at least one architecture; got n={n!r}.")
        archs = self.propose(int(n))
        self._log.append({"ask": int(n)})
        return archs

    def tell(self, results: Sequence[TrialResult]) -> None:
        """Receive finished trials of any status (completed, pruned, rejected or failed)."""
        results = list(results)
        self._log.append({"tell": [result.to_dict() for result in results]})
        own = [result for result in results if self.space.owns(result.architecture)]  # not the portfolio's trees
        self.history.extend(own)
        self.observe(own)

    def state_dict(self) -> dict:
        """Everything needed to resume this strategy, as JSON-serialisable types."""
        return {
            "version": STATE_VERSION,
            "strategy": self.name,
            "settings": self.settings(),
            "log": json.loads(json.dumps(self._log)),
        }

    def load_state_dict(self, state: dict) -> None:
        """Bring this fresh strategy to the saved state, by replaying the saved asks and tells.

        Replaying costs about as much as the original calls did (model-based strategies refit on
        every ask), which is small next to training the networks.

        Raises:
            ValueError: The state is from another strategy or other settings, or this strategy has
                already been asked or told something.
        """
        if state.get("version") != STATE_VERSION or state.get("strategy") != self.name:
            raise ValueError(
                f"This state was saved by strategy '{state.get('strategy')}' (state version "
                f"{state.get('version')}); load it into a '{state.get('strategy')}' strategy of this version."
            )
        mine = json.loads(json.dumps(self.settings()))
        if state["settings"] != mine:
            raise ValueError(
                f"This state was saved with settings {state['settings']}, but this strategy has {mine}; "
                "build it with the saved settings (or use from_state_dict)."
            )
        if self._log:
            raise ValueError("Load a state into a freshly built strategy, before asking or telling it anything.")
        for event in state["log"]:
            if "ask" in event:
                self.ask(event["ask"])
            elif "tell" in event:
                self.tell([TrialResult.from_dict(data) for data in event["tell"]])
            else:
                self.replay(event)

    def replay(self, event: dict) -> None:
        """Replay a logged event other than an ask or a tell (subclasses that log their own).

        Raises:
            ValueError: This strategy does not know the event.
        """
        raise ValueError(f"Strategy '{self.name}' cannot replay the logged event {sorted(event)}.")

    @classmethod
    def from_state_dict(cls, state: dict, *, space: SearchSpace) -> Strategy:
        """Build a strategy of this class with the saved settings and load the saved state into it."""
        strategy = cls(space=space, **state.get("settings", {}))
        strategy.load_state_dict(state)
        return strategy


def whole_number(name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` if it is a whole number of at least ``minimum``, else raise a clear ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be a whole number of {minimum} or more; got {value!r}.")
    return value


def _check_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    objectives = (objectives,) if isinstance(objectives, str) else tuple(objectives)
    unknown = [name for name in objectives if name not in OBJECTIVES]
    if unknown:
        raise ValueError(f"Unknown objective(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(OBJECTIVES)}.")
    if not 1 <= len(objectives) <= 3 or len(set(objectives)) != len(objectives):
        raise ValueError(f"Choose 1 to 3 different objectives; got {list(objectives)}.")
    if objectives[0] != "score":
        raise ValueError(f"The first objective must be 'score' (what the search maximises); got {list(objectives)}.")
    return objectives


def is_scored(result: TrialResult) -> bool:
    """Whether a trial has a usable score: completed, or pruned (scored at a lower fidelity)."""
    if result.status not in (TrialStatus.COMPLETED, TrialStatus.PRUNED) or result.score is None:
        return False
    return math.isfinite(float(result.score))  # a diverged regression can report NaN
