"""Grid search: every architecture of a small grid, once each, in an order drawn from the seed."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies.base import Strategy

# The grid each space offers by default: a few options of the decisions that matter most, every
# other decision at its first option (a plain network, Adam at lr 3e-4... see decisions()). Widths
# vary per layer, so the MLP grid holds 1 + 3 + 9 + 27 = 40 networks and the CNN grid 4 + 16 = 20.
DEFAULT_GRIDS: dict[str, dict[str, tuple]] = {
    "mlp": {
        "depth": (0, 1, 2, 3),
        "units_0": (16, 64, 256),
        "units_1": (16, 64, 256),
        "units_2": (16, 64, 256),
        "activation_0": ("relu",),
        "activation_1": ("relu",),
        "activation_2": ("relu",),
        "lr": (1e-3,),
        "batch_size": (64,),
    },
    "cnn": {
        "n_stages": (1, 2),
        "block_0": ("conv", "residual"),
        "channels_0": (16, 32),
        "block_1": ("conv", "residual"),
        "channels_1": (32, 64),
        "stem_channels": (16,),
        "lr": (1e-3,),
        "batch_size": (64,),
    },
}
DEFAULT_GRIDS["tabular"] = DEFAULT_GRIDS["mlp"]  # no embedding, one member: the MLP grid
MAX_GRID = 10_000  # enumerating more would take longer than any search that could try them


class GridStrategy(Strategy):
    """Proposes every distinct architecture of a grid once, in an order shuffled by the seed (so a
    search stopped early has tried an unbiased part of the grid, not its first corner); past the
    grid, repeats (which the search loop skips, and so ends: the grid is done).

    A grid maps decisions of ``space.decisions()`` to the options to try; decisions it leaves out
    take their first option. Genomes that differ only in decisions they do not use (the widths of
    layers a shallow net lacks) count once. Without a grid the space's ``DEFAULT_GRIDS`` entry is
    used, or the whole space when it has none and is small enough.

    Args:
        space: The search space to propose from.
        seed: Seed of the order in which the grid is tried.
        objectives: Kept for a uniform interface.
        grid: Decision -> options to try (JSON lists are accepted).

    Raises:
        ValueError: The grid names an unknown decision or option, or holds more than ``MAX_GRID``
            combinations.
    """

    uses_portfolio = False

    name = "grid"
    label = "Grid search"
    description = (
        "Tries every network of a small fixed grid (depths and widths, or stages and blocks) once, in random order. "
        "Exhaustive and predictable; refused when the budget cannot cover the grid."
    )

    def __init__(
        self,
        *,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[str] = ("score", "params"),
        grid: dict[str, Sequence] | None = None,
    ) -> None:
        super().__init__(space=space, seed=seed, objectives=objectives)
        decisions = space.decisions()
        chosen: dict[str, Sequence] = (
            grid if grid is not None else DEFAULT_GRIDS.get(space.name, dict(decisions))  # a space without one: all
        )
        self.grid = {name: list(options) for name, options in chosen.items()}
        grid_archs = _enumerate(space, self.grid)
        self.architectures = [grid_archs[int(i)] for i in self.rng.permutation(len(grid_archs))]
        self._next = 0

    def settings(self) -> dict:
        return super().settings() | {"grid": self.grid}

    @property
    def size(self) -> int:
        """Distinct architectures in the grid."""
        return len(self.architectures)

    def propose(self, n: int) -> list[dict]:
        archs = []
        for _ in range(n):
            index = min(self._next, self.size - 1)  # past the end: the last again, a repeat
            archs.append(self.architectures[index])
            self._next += 1
        return archs


def _enumerate(space: SearchSpace, grid: dict[str, list]) -> list[dict]:
    decisions = space.decisions()
    unknown = [name for name in grid if name not in decisions]
    if unknown:
        raise ValueError(f"The grid names unknown decision(s) {', '.join(unknown)}; known: {', '.join(decisions)}.")
    for name, options in grid.items():
        bad = [option for option in options if option not in decisions[name]]
        if bad or not options:
            raise ValueError(f"Grid decision '{name}' takes options from {list(decisions[name])}; got {options}.")
    combinations = 1
    for options in grid.values():
        combinations *= len(options)
    if combinations > MAX_GRID:
        raise ValueError(f"The grid has {combinations:,} combinations; at most {MAX_GRID:,} can be enumerated.")
    base = {name: options[0] for name, options in decisions.items()}
    names = list(grid)
    seen: dict[str, dict] = {}
    for values in itertools.product(*(grid[name] for name in names)):
        arch = space.from_decisions(base | dict(zip(names, values, strict=True)))
        seen.setdefault(space.arch_hash(arch), arch)
    return list(seen.values())
