"""Multi-fidelity schedules: which epoch budgets (rungs) exist and how many architectures start at
which rung (successive halving, Hyperband). Pure arithmetic; ``search`` does the training."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

MIN_SUBSAMPLE_ROWS = 2000  # below this an epoch is cheap anyway, and fewer rows make rankings noisy


class Fidelity(StrEnum):
    """How much training an architecture gets before it is judged."""

    NONE = "none"  # every architecture trains up to max_epochs
    SUCCESSIVE_HALVING = "successive_halving"  # Jamieson & Talwalkar 2016
    HYPERBAND = "hyperband"  # Li et al. 2018: successive halving from several starting rungs


@dataclass(frozen=True)
class Bracket:
    """One round of successive halving: ``size`` architectures start at rung ``first_rung``."""

    size: int
    first_rung: int


MAX_BRACKET_SIZE = 81  # eta**rungs explodes with many rungs (max_epochs 10,000); rungs past it keep one


def rung_epochs(*, min_epochs: int, max_epochs: int, eta: int) -> tuple[int, ...]:
    """Epoch budgets of the rungs: ``min_epochs * eta**k`` below ``max_epochs``, then ``max_epochs``.

    Example: min 3, eta 3, max 50 gives (3, 9, 27, 50).
    """
    rungs, epochs = [], min_epochs
    while epochs < max_epochs:
        rungs.append(epochs)
        epochs *= eta
    return (*rungs, max_epochs)


def brackets(fidelity: Fidelity | str, *, n_rungs: int, eta: int) -> Iterator[Bracket]:
    """Yield brackets forever, in the order a search runs them.

    ``none`` trains one architecture at the top rung at a time; ``successive_halving`` starts
    ``eta**(n_rungs-1)`` at the lowest rung so about one reaches the top; ``hyperband`` cycles
    from that most aggressive bracket down to one that trains every architecture fully, hedging
    against low rungs that rank badly.
    """
    top = n_rungs - 1
    while True:
        if fidelity == Fidelity.NONE:
            yield Bracket(size=1, first_rung=top)
        elif fidelity == Fidelity.SUCCESSIVE_HALVING:
            yield Bracket(size=eta**top, first_rung=0)
        else:
            for s in range(top, -1, -1):
                yield Bracket(size=math.ceil((top + 1) / (s + 1) * eta**s), first_rung=top - s)


def survivors(count: int, *, eta: int) -> int:
    """How many of ``count`` architectures move on to the next rung (the best 1/eta, at least one)."""
    return max(1, count // eta)


def training_rows(n_rows: int, *, epochs: int, max_epochs: int) -> int:
    """Training rows per epoch at a rung of ``epochs``: all of them at the top rung; below it a share
    ``epochs / max_epochs`` of the rows, but never fewer than 2,000, so low rungs stay cheap on big
    data and exact on small data."""
    if epochs >= max_epochs:
        return n_rows
    return min(n_rows, max(MIN_SUBSAMPLE_ROWS, math.ceil(n_rows * epochs / max_epochs)))
