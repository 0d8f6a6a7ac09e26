"""One-shot NAS: methods that train one network holding every candidate (a supernet) instead of
each candidate alone, then hand the search loop a shortlist of architectures to retrain from
scratch. SPOS (single-path one-shot weight sharing, Guo et al. 2020) and DARTS (differentiable
architecture search, Liu et al. 2019; first-order) live here.

The search loop (``search.SearchLoop``, through ``one_shot_phase.OneShotPhase``) owns the budget
and the trial events: it calls a method's ``shortlist(context)`` once, before any trial, with a
deadline for the one-shot phase, then trains the shortlisted architectures like any other trials,
so their events, the Pareto front and the export are the same as for black-box strategies.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeGuard

from nas_engine.augment import Augmentation
from nas_engine.prepare import PreparedData
from nas_engine.spaces.base import SearchSpace

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 1.0  # should_cancel may query a database: poll it at most this often


@dataclass
class OneShotContext:
    """What a one-shot method may use.

    Args:
        space: The search space (``MLPSpace`` or ``CNNSpace``); shortlisted genomes must be valid
            in it (``space.costs`` and ``space.build_model`` accept them).
        data: The prepared splits; methods train on ``X_train`` and score on ``X_val``.
        objectives: The search's objectives, ``"score"`` first, then one or two costs.
        limits: The ``config.ANALYTIC_LIMITS`` settings (None where unset): shortlisted
            architectures should respect them (the loop rejects those that do not).
        deadline: ``time.monotonic()`` value by which ``shortlist`` must return.
        seed: Seed of every random choice the method makes.
        augmentation: Changes training images at random (None: train on the rows as they are).
        on_progress: Called now and then with (fraction of the one-shot phase done, a message).
        should_cancel: Returns True when the user asked to stop (poll it about once a second at most).
        warm_state: The ``Shortlist.state`` of an earlier search on data of the same schema, to start
            the supernet from (None: start from scratch).
        epochs: Most epochs (passes over ``X_train``) of supernet training; None: until the deadline.
            Work bounded by counts rather than time keeps a seeded search reproducible.
    """

    space: SearchSpace
    data: PreparedData
    objectives: tuple[str, ...]
    limits: dict
    deadline: float
    seed: int = 0
    augmentation: Augmentation | None = None
    on_progress: Callable[[float, str], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    warm_state: dict | None = None
    epochs: int | None = None

    def progress(self, fraction: float, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(min(1.0, max(0.0, fraction)), message)


@dataclass
class Shortlist:
    """What a one-shot method found.

    Args:
        archs: Architectures to retrain from scratch, most promising first (no duplicates).
        predicted: The one-shot score of each (validation score with inherited weights), same order.
        state: The supernet's weights and the settings to rebuild it, for a later warm start
            (``torch.save``-able: tensors, numbers, strings, lists, dicts), or None.
        notes: Figures worth reporting (JSON types): seconds spent training the supernet, candidates
            scored, etc.
        cancelled: True when ``should_cancel`` stopped the method early.
    """

    archs: list[dict]
    predicted: list[float]
    state: dict | None = None
    notes: dict = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class Clock:
    """A phase's deadline and the cancel request (polled at most every ``CANCEL_POLL_SECONDS``).

    Args:
        context: Whose ``should_cancel`` to poll.
        until: ``time.monotonic()`` value at which the phase ends.
    """

    context: OneShotContext
    until: float
    cancelled: bool = False
    _polled: float = -math.inf

    def stop(self) -> bool:
        """Whether the phase must stop now: past ``until``, or cancelled (which sticks)."""
        now = time.monotonic()
        if self.context.should_cancel is not None and now - self._polled >= CANCEL_POLL_SECONDS:
            self._polled = now
            self.cancelled = self.cancelled or bool(self.context.should_cancel())
        return self.cancelled or now >= self.until


def state_fits(state: dict | None, identity: dict) -> TypeGuard[dict]:
    """Whether a warm-start state was saved by the same method for the same space and data shape
    (every entry of ``identity`` equal); a mismatch is logged, since the supernet then trains anew."""
    if not state:
        return False
    differs = {key: state.get(key) for key, value in identity.items() if state.get(key) != value}
    if differs:
        logger.warning("The warm-start supernet does not fit this search (%s); training from scratch.", differs)
    return not differs
