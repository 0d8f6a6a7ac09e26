"""The small MLP space behind the NAS benchmark table (benchmarks/nasbench.py): 312 architectures,
few enough to train every one, with fixed training settings so the table holds architectures only.
"""

from __future__ import annotations

import itertools

import numpy as np

from nas_engine.results import Costs
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.mlp import MLPSpace
from nas_engine.spaces.training import DEFAULT_TRAIN, pick

DEPTHS = (1, 2, 3)
UNITS = (16, 64, 256)
ACTIVATIONS = ("relu", "tanh")
NORMS = ("none", "batch")
DROPOUTS = (0.0, 0.2)
SHARED_KEYS = ("activation", "norm", "dropout")  # one choice for the whole network
_MLP = MLPSpace()


class TableSpace(SearchSpace):
    """MLPs of 1-3 hidden layers of 16, 64 or 256 units, one activation, norm and dropout for the
    whole network: (3 + 9 + 27) widths × 2 × 2 × 2 = 312 architectures, trained with Adam
    (lr 1e-3, batch 64, no weight decay).

    Genome::

        {"space": "nasbench_mlp", "units": [64, 16], "activation": "relu" | "tanh",
         "norm": "none" | "batch", "dropout": 0.0 | 0.2}
    """

    name = "nasbench_mlp"

    def all_architectures(self) -> list[dict]:
        """Every architecture of the space, in a fixed order."""
        widths = [list(units) for depth in DEPTHS for units in itertools.product(UNITS, repeat=depth)]
        return [
            self._arch(units, activation, norm, dropout)
            for units in widths
            for activation in ACTIVATIONS
            for norm in NORMS
            for dropout in DROPOUTS
        ]

    def _arch(self, units: list[int], activation: str, norm: str, dropout: float) -> dict:
        return {"space": self.name, "units": list(units), "activation": activation, "norm": norm, "dropout": dropout}

    def to_mlp(self, arch: dict) -> dict:
        """The same network as an ``MLPSpace`` genome (which builds and costs it)."""
        layers = [{"units": u, "activation": arch["activation"], "dropout": arch["dropout"]} for u in arch["units"]]
        return {"space": "mlp", "layers": layers, "norm": arch["norm"], "residual": False, "train": dict(DEFAULT_TRAIN)}

    def sample(self, rng: np.random.Generator) -> dict:
        depth = pick(DEPTHS, rng)
        units = [pick(UNITS, rng) for _ in range(depth)]
        return self._arch(units, pick(ACTIVATIONS, rng), pick(NORMS, rng), pick(DROPOUTS, rng))

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        child = {**arch, "units": list(arch["units"])}
        units = child["units"]
        move = pick(("depth", "units", *SHARED_KEYS), rng)
        if move == "depth":
            depth = pick(DEPTHS, rng, other_than=len(units))
            child["units"] = units[:depth] + [pick(UNITS, rng) for _ in range(depth - len(units))]
        elif move == "units":
            i = int(rng.integers(len(units)))
            units[i] = pick(UNITS, rng, other_than=units[i])
        else:
            options = {"activation": ACTIVATIONS, "norm": NORMS, "dropout": DROPOUTS}[move]
            child[move] = pick(options, rng, other_than=child[move])
        return child

    def decisions(self) -> dict[str, tuple]:
        layers = {f"units_{i}": UNITS for i in range(max(DEPTHS))}
        return {"depth": DEPTHS, **layers, "activation": ACTIVATIONS, "norm": NORMS, "dropout": DROPOUTS}

    def from_decisions(self, choices: dict) -> dict:
        units = [choices[f"units_{i}"] for i in range(choices["depth"])]
        return self._arch(units, choices["activation"], choices["norm"], choices["dropout"])

    def to_decisions(self, arch: dict) -> dict:
        choices = {name: options[0] for name, options in self.decisions().items()}
        choices.update({f"units_{i}": u for i, u in enumerate(arch["units"])}, depth=len(arch["units"]))
        return choices | {key: arch[key] for key in SHARED_KEYS}

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        return _MLP.build_model(self.to_mlp(arch), n_inputs, n_outputs)

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        return _MLP.costs(self.to_mlp(arch), n_inputs, n_outputs)

    def _smallest(self, n_inputs: int, n_outputs: int) -> Costs:
        narrow = self._arch([min(UNITS)], ACTIVATIONS[0], "none", 0.0)
        return self.costs(narrow, n_inputs, n_outputs)

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return self._smallest(n_inputs, n_outputs).params

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return self._smallest(n_inputs, n_outputs).flops

    def smallest_memory(self, n_inputs: int, n_outputs: int) -> int:
        memory = self._smallest(n_inputs, n_outputs).memory_bytes
        return memory if memory is not None else super().smallest_memory(n_inputs, n_outputs)

    def describe(self, arch: dict) -> list[str]:
        return _MLP.describe(self.to_mlp(arch))
